//! The resource model in Kuma's universal format.
//!
//! A [`Resource`] is a [`Meta`] (name, mesh, labels, store version and times) and a
//! typed [`Spec`]. Documents are read with [`parse_document`] + [`Resource::from_value`]
//! (structure and types) and checked with [`Resource::validate`] (every semantic rule,
//! all violations collected). [`Resource::to_value`] writes the universal shape back;
//! [`canonical`] turns any value into stable bytes for hashing and storage.

pub mod canonical;
pub mod dataplane;
mod decode;
pub mod duration;
pub mod external;
pub mod identity;
pub mod insight;
pub mod mes;
pub mod mesh;
pub mod meshservice;
pub mod net;
pub mod policy;
pub mod secret;
#[cfg(test)]
pub(crate) mod test_support;
pub mod validate;
pub mod zone;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use duration::Duration;
pub use validate::{Path, Validate, ValidationErrors, Violation};

/// Tag or label maps. Ordered, so serialization is canonical.
pub type Tags = BTreeMap<String, String>;

/// Well-known tag and label keys (Kuma's).
pub mod tags {
    /// The URI SAN a Mesh-mTLS workload certificate carries for tag `key` with
    /// `value` (Kuma's `kuma://<tag>/<value>`), and that RBAC matches: anything
    /// outside RFC 3986's unreserved characters (and `/` in the key) is
    /// percent-encoded, the same way on both sides.
    pub fn kuma_uri(key: &str, value: &str) -> String {
        fn encode(out: &mut String, s: &str, keep_slash: bool) {
            for b in s.bytes() {
                let c = b as char;
                if c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '.' | '_' | '~')
                    || (keep_slash && c == '/')
                {
                    out.push(c);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        let mut out = String::from("kuma://");
        encode(&mut out, key, true);
        out.push('/');
        encode(&mut out, value, false);
        out
    }

    pub const SERVICE: &str = "kuma.io/service";
    pub const ZONE: &str = "kuma.io/zone";
    pub const PROTOCOL: &str = "kuma.io/protocol";
    pub const ORIGIN: &str = "kuma.io/origin";
    pub const DISPLAY_NAME: &str = "kuma.io/display-name";
    pub const MESH: &str = "kuma.io/mesh";
    pub const PROXY_TYPE: &str = "kuma.io/proxy-type";
    pub const POLICY_ROLE: &str = "kuma.io/policy-role";
    pub const EFFECT: &str = "kuma.io/effect";
    /// `kuma.io/protocol` values a user may write.
    pub const PROTOCOLS: &[&str] = &["tcp", "http", "http2", "grpc", "kafka"];
}

/// Whether a resource lives inside a mesh or beside the meshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Mesh,
}

/// Which control plane a type is written on in a federated deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Meshes, policies, secrets: applied on global, synced down to zones.
    Global,
    /// Dataplanes, zone ingresses and egresses: created in a zone, reported up.
    Zone,
}

/// Where a type's spec sits in the universal format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Fields beside `type`/`name` (proto-defined types: Mesh, Dataplane, ...).
    Inline,
    /// Fields under `spec:` (targetRef policies).
    Spec,
}

/// What every spec type can do.
pub trait SpecType:
    Serialize + DeserializeOwned + Validate + Clone + fmt::Debug + PartialEq + Send + Sync + 'static
{
}
impl<T> SpecType for T where
    T: Serialize
        + DeserializeOwned
        + Validate
        + Clone
        + fmt::Debug
        + PartialEq
        + Send
        + Sync
        + 'static
{
}

macro_rules! resource_types {
    ($( $variant:ident : $name:literal, $plural:literal, $scope:ident, $owner:ident, $layout:ident, $spec:ty; )*) => {
        /// Every resource type Weft knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ResourceType { $( $variant, )* }

        impl ResourceType {
            pub const ALL: &'static [ResourceType] = &[ $( ResourceType::$variant, )* ];

            /// The `type:` value, e.g. `MeshTimeout`.
            pub fn name(self) -> &'static str {
                match self { $( ResourceType::$variant => $name, )* }
            }

            /// The URL segment, e.g. `meshtimeouts`.
            pub fn plural(self) -> &'static str {
                match self { $( ResourceType::$variant => $plural, )* }
            }

            pub fn scope(self) -> Scope {
                match self { $( ResourceType::$variant => Scope::$scope, )* }
            }

            pub fn owner(self) -> Owner {
                match self { $( ResourceType::$variant => Owner::$owner, )* }
            }

            pub fn layout(self) -> Layout {
                match self { $( ResourceType::$variant => Layout::$layout, )* }
            }
        }

        /// A typed spec; the variant says the type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Spec { $( $variant($spec), )* }

        impl Spec {
            pub fn resource_type(&self) -> ResourceType {
                match self { $( Spec::$variant(_) => ResourceType::$variant, )* }
            }

            fn decode(ty: ResourceType, value: Value, at: &Path) -> decode::Decoded<Spec> {
                match ty { $( ResourceType::$variant => decode::decode::<$spec>(value, at).map(Spec::$variant), )* }
            }

            fn encode(&self) -> Value {
                match self { $( Spec::$variant(s) => encode_spec(s), )* }
            }

            fn check(&self, at: &Path, errs: &mut ValidationErrors) {
                match self { $( Spec::$variant(s) => s.validate(at, errs), )* }
            }
        }
    };
}

resource_types! {
    Mesh: "Mesh", "meshes", Global, Global, Inline, mesh::MeshSpec;
    Dataplane: "Dataplane", "dataplanes", Mesh, Zone, Inline, dataplane::DataplaneSpec;
    DataplaneInsight: "DataplaneInsight", "dataplane-insights", Mesh, Zone, Inline, insight::DataplaneInsightSpec;
    ZoneIngress: "ZoneIngress", "zoneingresses", Global, Zone, Inline, zone::ZoneIngressSpec;
    ZoneEgress: "ZoneEgress", "zoneegresses", Global, Zone, Inline, zone::ZoneEgressSpec;
    ExternalService: "ExternalService", "externalservices", Mesh, Global, Inline, external::ExternalServiceSpec;
    Zone: "Zone", "zones", Global, Global, Inline, zone::ZoneSpec;
    ZoneInsight: "ZoneInsight", "zone-insights", Global, Global, Inline, insight::ZoneInsightSpec;
    Secret: "Secret", "secrets", Mesh, Global, Inline, secret::SecretSpec;
    GlobalSecret: "GlobalSecret", "global-secrets", Global, Global, Inline, secret::SecretSpec;
    MeshTrafficPermission: "MeshTrafficPermission", "meshtrafficpermissions", Mesh, Global, Spec, policy::MeshTrafficPermission;
    MeshTimeout: "MeshTimeout", "meshtimeouts", Mesh, Global, Spec, policy::MeshTimeout;
    MeshRetry: "MeshRetry", "meshretries", Mesh, Global, Spec, policy::MeshRetry;
    MeshCircuitBreaker: "MeshCircuitBreaker", "meshcircuitbreakers", Mesh, Global, Spec, policy::MeshCircuitBreaker;
    MeshHealthCheck: "MeshHealthCheck", "meshhealthchecks", Mesh, Global, Spec, policy::MeshHealthCheck;
    MeshLoadBalancingStrategy: "MeshLoadBalancingStrategy", "meshloadbalancingstrategies", Mesh, Global, Spec, policy::MeshLoadBalancingStrategy;
    MeshHTTPRoute: "MeshHTTPRoute", "meshhttproutes", Mesh, Global, Spec, policy::MeshHTTPRoute;
    MeshTCPRoute: "MeshTCPRoute", "meshtcproutes", Mesh, Global, Spec, policy::MeshTCPRoute;
    MeshFaultInjection: "MeshFaultInjection", "meshfaultinjections", Mesh, Global, Spec, policy::MeshFaultInjection;
    MeshRateLimit: "MeshRateLimit", "meshratelimits", Mesh, Global, Spec, policy::MeshRateLimit;
    MeshAccessLog: "MeshAccessLog", "meshaccesslogs", Mesh, Global, Spec, policy::MeshAccessLog;
    MeshTrace: "MeshTrace", "meshtraces", Mesh, Global, Spec, policy::MeshTrace;
    MeshMetric: "MeshMetric", "meshmetrics", Mesh, Global, Spec, policy::MeshMetric;
    MeshTLS: "MeshTLS", "meshtlses", Mesh, Global, Spec, policy::MeshTLS;
    MeshPassthrough: "MeshPassthrough", "meshpassthroughs", Mesh, Global, Spec, policy::MeshPassthrough;
    MeshProxyPatch: "MeshProxyPatch", "meshproxypatches", Mesh, Global, Spec, policy::MeshProxyPatch;
    MeshIdentity: "MeshIdentity", "meshidentities", Mesh, Global, Spec, identity::MeshIdentitySpec;
    MeshTrust: "MeshTrust", "meshtrusts", Mesh, Global, Spec, identity::MeshTrustSpec;
    MeshExternalService: "MeshExternalService", "meshexternalservices", Mesh, Global, Spec, mes::MeshExternalServiceSpec;
    MeshService: "MeshService", "meshservices", Mesh, Zone, Spec, meshservice::MeshServiceSpec;
}

impl ResourceType {
    pub fn from_name(name: &str) -> Option<ResourceType> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Accepts the canonical plural and Kuma's aliases (`zone-ingresses`, ...).
    pub fn from_plural(plural: &str) -> Option<ResourceType> {
        match plural {
            "zone-ingresses" => Some(ResourceType::ZoneIngress),
            "zone-egresses" => Some(ResourceType::ZoneEgress),
            "globalsecrets" => Some(ResourceType::GlobalSecret),
            // Kuma's path for ExternalService.
            "external-services" => Some(ResourceType::ExternalService),
            _ => Self::ALL.iter().copied().find(|t| t.plural() == plural),
        }
    }

    /// A targetRef policy (MeshIdentity and MeshTrust share the `spec:` layout
    /// but are not policies: they select by labels, or nothing).
    pub fn is_policy(self) -> bool {
        self.layout() == Layout::Spec
            && !matches!(
                self,
                ResourceType::MeshIdentity
                    | ResourceType::MeshTrust
                    | ResourceType::MeshExternalService
                    | ResourceType::MeshService
            )
    }

    /// What a control plane writes about its connections (DataplaneInsight,
    /// ZoneInsight): read-only through the API, as in Kuma.
    pub fn is_insight(self) -> bool {
        matches!(
            self,
            ResourceType::DataplaneInsight | ResourceType::ZoneInsight
        )
    }

    pub fn is_mesh_scoped(self) -> bool {
        self.scope() == Scope::Mesh
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The identity of a stored resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub ty: ResourceType,
    /// `Some` exactly for mesh-scoped types.
    pub mesh: Option<String>,
    pub name: String,
}

impl ResourceKey {
    pub fn new(ty: ResourceType, mesh: Option<&str>, name: &str) -> Self {
        ResourceKey {
            ty,
            mesh: mesh.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of the Mesh this resource lives in, if any.
    pub fn mesh_key(&self) -> Option<ResourceKey> {
        self.mesh
            .as_deref()
            .map(|m| ResourceKey::new(ResourceType::Mesh, None, m))
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mesh {
            Some(m) => write!(f, "{} {}/{}", self.ty, m, self.name),
            None => write!(f, "{} {}", self.ty, self.name),
        }
    }
}

/// Everything about a resource but its spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Meta {
    pub name: String,
    pub mesh: Option<String>,
    pub labels: Tags,
    /// Store revision of the last write; 0 before the resource is stored.
    pub version: u64,
    pub creation_time: Option<OffsetDateTime>,
    pub modification_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub meta: Meta,
    pub spec: Spec,
}

impl Resource {
    pub fn new(name: &str, mesh: Option<&str>, spec: Spec) -> Self {
        Resource {
            meta: Meta {
                name: name.to_string(),
                mesh: mesh.map(str::to_string),
                ..Meta::default()
            },
            spec,
        }
    }

    pub fn resource_type(&self) -> ResourceType {
        self.spec.resource_type()
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            ty: self.resource_type(),
            mesh: self.meta.mesh.clone(),
            name: self.meta.name.clone(),
        }
    }

    /// Reads a universal-format document (already parsed into a JSON value).
    /// Checks structure and field types only; call [`Resource::validate`] next,
    /// or use [`Resource::read`], which does both in one pass.
    /// `creationTime`, `modificationTime` and `kri` are server-managed and ignored here.
    pub fn from_value(value: Value) -> Result<Resource, ValidationErrors> {
        let mut parsed = Self::parse(value);
        if let Some(d) = &parsed.decoded {
            parsed.errors.extend(d.decode_errors());
        }
        match parsed.resource {
            Some(r) if parsed.errors.is_empty() => Ok(r),
            _ => Err(parsed.errors),
        }
    }

    /// Reads and validates a document in one pass: every type error, missing
    /// field and semantic rule is reported together, each at its own path.
    /// Unknown fields are not errors; [`Read::unknown`] lists them.
    pub fn read(value: Value) -> Result<Read, ValidationErrors> {
        let parsed = Self::parse(value);
        let mut errors = parsed.errors;
        let Some(decoded) = parsed.decoded else {
            return Err(errors);
        };
        let Some(resource) = parsed.resource else {
            errors.extend(decoded.decode_errors());
            return Err(errors);
        };
        errors.extend(decoded.finish(&resource.violations()));
        errors.into_result().map(|()| Read {
            resource,
            unknown: decoded.unknown,
        })
    }

    /// The paths of the fields of `value` that its type does not have, whether
    /// or not the rest is valid (how the policies table test asks the model
    /// whether a field exists).
    pub fn unknown_fields(value: Value) -> Vec<String> {
        Self::parse(value)
            .decoded
            .map(|d| d.unknown)
            .unwrap_or_default()
    }

    fn parse(value: Value) -> Parsed {
        let root = Path::root();
        let Value::Object(mut obj) = value else {
            return Parsed {
                resource: None,
                errors: ValidationErrors::single(
                    &root,
                    format!("a resource must be an object, got {}", json_kind(&value)),
                ),
                decoded: None,
            };
        };
        let mut errs = ValidationErrors::new();
        let mut unknown = Vec::new();
        let ty = match obj.remove("type") {
            Some(Value::String(t)) => match ResourceType::from_name(&t) {
                Some(ty) => Some(ty),
                None => {
                    errs.add(&root.field("type"), format!("unknown type {t:?}"));
                    None
                }
            },
            Some(other) => {
                errs.add(
                    &root.field("type"),
                    format!("must be a string, got {}", json_kind(&other)),
                );
                None
            }
            None => {
                errs.add(&root.field("type"), "must be defined");
                None
            }
        };
        let name = take_string(&mut obj, "name", &mut errs);
        let mesh_value = obj.remove("mesh");
        let labels = match obj.remove("labels") {
            None | Some(Value::Null) => Tags::new(),
            Some(v) => match serde_json::from_value::<Tags>(v) {
                Ok(l) => l,
                Err(_) => {
                    errs.add(&root.field("labels"), "must be a map of strings to strings");
                    Tags::new()
                }
            },
        };
        obj.remove("creationTime");
        obj.remove("modificationTime");
        // Kuma 2.14's answers carry the resource's KRI; derived, never stored.
        obj.remove("kri");
        let Some(ty) = ty else {
            return Parsed {
                resource: None,
                errors: errs,
                decoded: None,
            };
        };
        let mesh = match (ty.scope(), mesh_value) {
            (Scope::Mesh, Some(Value::String(m))) => Some(m),
            (Scope::Mesh, None | Some(Value::Null)) => {
                errs.add(&root.field("mesh"), "must be defined");
                None
            }
            (Scope::Mesh, Some(other)) => {
                errs.add(
                    &root.field("mesh"),
                    format!("must be a string, got {}", json_kind(&other)),
                );
                None
            }
            (Scope::Global, None | Some(Value::Null)) => None,
            (Scope::Global, Some(_)) => {
                errs.add(
                    &root.field("mesh"),
                    format!("must not be set: {ty} is not inside a mesh"),
                );
                None
            }
        };
        let (spec_value, spec_path) = match ty.layout() {
            Layout::Inline => (Value::Object(obj), root.clone()),
            Layout::Spec => {
                let spec = obj.remove("spec").unwrap_or(Value::Object(Map::new()));
                unknown.extend(obj.keys().map(|k| root.field(k).to_string()));
                (spec, root.field("spec"))
            }
        };
        let mut decoded = Spec::decode(ty, spec_value, &spec_path);
        unknown.append(&mut decoded.unknown);
        decoded.unknown = unknown;
        let resource = decoded.spec.take().map(|spec| Resource {
            meta: Meta {
                name: name.unwrap_or_default(),
                mesh,
                labels,
                ..Meta::default()
            },
            spec,
        });
        Parsed {
            resource,
            errors: errs,
            decoded: Some(decoded),
        }
    }

    /// Every semantic rule: name, mesh, labels, then the spec.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        self.violations().into_result()
    }

    fn violations(&self) -> ValidationErrors {
        let root = Path::root();
        let mut errs = ValidationErrors::new();
        validate::check_name(&root.field("name"), &self.meta.name, &mut errs);
        if let Some(mesh) = &self.meta.mesh {
            validate::check_name(&root.field("mesh"), mesh, &mut errs);
        }
        for (k, v) in &self.meta.labels {
            let p = root.field("labels").key(k);
            validate::check_tag_key(&p, k, &mut errs);
            if v.len() > 253 {
                errs.add(&p, "label value must be at most 253 characters");
            }
        }
        let at = match self.resource_type().layout() {
            Layout::Inline => root,
            Layout::Spec => root.field("spec"),
        };
        self.spec.check(&at, &mut errs);
        errs
    }

    /// The universal shape, with server-managed times when the resource is stored.
    pub fn to_value(&self) -> Value {
        let mut obj = self.identity();
        if let Some(t) = self
            .meta
            .creation_time
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            obj.insert("creationTime".into(), Value::String(t));
        }
        if let Some(t) = self
            .meta
            .modification_time
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            obj.insert("modificationTime".into(), Value::String(t));
        }
        Value::Object(obj)
    }

    /// Type, name, mesh, labels and spec: what the resource *is*, without store
    /// bookkeeping. Its canonical bytes give [`Resource::content_hash`].
    fn identity(&self) -> Map<String, Value> {
        let ty = self.resource_type();
        let mut obj = Map::new();
        obj.insert("type".into(), Value::String(ty.name().into()));
        obj.insert("name".into(), Value::String(self.meta.name.clone()));
        if let Some(m) = &self.meta.mesh {
            obj.insert("mesh".into(), Value::String(m.clone()));
        }
        if !self.meta.labels.is_empty() {
            let labels = self
                .meta
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            obj.insert("labels".into(), Value::Object(labels));
        }
        match (ty.layout(), self.spec.encode()) {
            (Layout::Inline, Value::Object(fields)) => obj.extend(fields),
            (Layout::Inline, Value::Null) => {}
            (_, spec) => {
                obj.insert("spec".into(), spec);
            }
        }
        obj
    }

    /// Stable across runs and machines: hex SHA-256 of the canonical encoding of
    /// type, name, mesh, labels and spec. KDS and xDS versions build on it.
    pub fn content_hash(&self) -> String {
        canonical::hash_hex(&canonical::to_bytes(&Value::Object(self.identity())))
    }

    /// Canonical bytes of [`Resource::to_value`].
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical::to_bytes(&self.to_value())
    }

    /// YAML text of [`Resource::to_value`] (keys in canonical order).
    pub fn to_yaml(&self) -> String {
        // Serializing a JSON value to YAML cannot fail: keys are strings, no tags.
        serde_yaml_ng::to_string(&canonical::sorted(&self.to_value())).unwrap_or_default()
    }
}

/// A document read by [`Resource::read`]: valid, with what it held that Weft
/// does not know.
#[derive(Debug, Clone)]
pub struct Read {
    pub resource: Resource,
    /// Paths of unknown fields, ignored (Kuma drops them silently; the API
    /// returns them as warnings so that a typo does not pass unnoticed).
    pub unknown: Vec<String>,
}

impl Read {
    /// One warning per unknown field.
    pub fn warnings(&self) -> Vec<String> {
        self.unknown
            .iter()
            .map(|p| format!("{p}: unknown field, ignored"))
            .collect()
    }
}

struct Parsed {
    resource: Option<Resource>,
    /// Errors in the metadata (type, name, mesh, labels).
    errors: ValidationErrors,
    decoded: Option<decode::Decoded<Spec>>,
}

/// Why a request body could not even be read as a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("malformed YAML: {0}")]
    Yaml(String),
    #[error("the body is empty: expected a resource in YAML or JSON")]
    Empty,
}

/// How much YAML flow style (`[ ]`, `{ }`) a body may use: its count of `[` and `{`
/// times its length in bytes. The YAML parser (libyaml) keeps a pending key per open
/// flow collection and checks them all at every token, so nested flow collections
/// cost depth × tokens: 16,000 nested `{a: ` (64 KiB) took 1.8 s and a 1 MiB body
/// minutes. Within this budget (128 openers in 1 MiB, 1,280 in 100 KiB, every one
/// of a small resource's) parsing stays well under a second; JSON bodies have no
/// such cost and no such limit.
pub const YAML_FLOW_BUDGET: usize = 128 * 1024 * 1024;

/// Parses a YAML or JSON body into a JSON value. `json` picks the strict JSON
/// parser (for `Content-Type: application/json`); YAML is tried otherwise, within
/// [`YAML_FLOW_BUDGET`].
pub fn parse_document(body: &[u8], json: bool) -> Result<Value, DocumentError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DocumentError::Empty);
    }
    if json {
        return serde_json::from_slice(body).map_err(|e| DocumentError::Json(e.to_string()));
    }
    let openers = body.iter().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers.saturating_mul(body.len()) > YAML_FLOW_BUDGET {
        return Err(DocumentError::Yaml(format!(
            "{openers} flow collections ('[' or '{{') in {} bytes is more than YAML parsing \
             allows (flow style costs time per nesting level); send the document as JSON \
             (Content-Type: application/json) or in YAML block style",
            body.len()
        )));
    }
    let text =
        std::str::from_utf8(body).map_err(|e| DocumentError::Yaml(format!("not UTF-8: {e}")))?;
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| DocumentError::Yaml(e.to_string()))
}

/// Parses and validates in one go: what the API and tests want.
pub fn parse_resource(body: &[u8], json: bool) -> Result<Resource, ResourceError> {
    let value = parse_document(body, json)?;
    Ok(Resource::read(value)?.resource)
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("resource is not valid: {0}")]
    Invalid(#[from] ValidationErrors),
}

fn encode_spec<T: SpecType>(spec: &T) -> Value {
    // Our spec types serialize to JSON infallibly (string keys, no non-finite floats
    // are ever produced by deserialization from JSON).
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

fn take_string(
    obj: &mut Map<String, Value>,
    key: &str,
    errs: &mut ValidationErrors,
) -> Option<String> {
    match obj.remove(key) {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => {
            errs.add(&Path::root().field(key), "must be defined");
            None
        }
        Some(other) => {
            errs.add(
                &Path::root().field(key),
                format!("must be a string, got {}", json_kind(&other)),
            );
            None
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
