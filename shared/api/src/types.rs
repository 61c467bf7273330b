//! `GET /_resources`: the resource types this control plane serves, in Kuma
//! 2.14's `ResourceTypeDescriptionList` shape, so that Kuma tooling (and Weft's
//! own CLI and GUI) learn the paths, scopes and policy shapes from the server.

use super::{ApiState, Mode};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use weft_model::resource::{Owner, Resource, ResourceType, Scope};

/// Kuma's short names (KRIs, kubectl), for the types Kuma gives one.
pub(crate) fn short_name(ty: ResourceType) -> Option<&'static str> {
    use ResourceType::*;
    Some(match ty {
        Mesh => "m",
        Dataplane => "dp",
        ZoneIngress => "zi",
        ZoneEgress => "ze",
        Zone => "z",
        MeshExternalService => "extsvc",
        MeshIdentity => "mid",
        MeshService => "msvc",
        MeshTrust => "mtrust",
        MeshAccessLog => "mal",
        MeshCircuitBreaker => "mcb",
        MeshFaultInjection => "mfi",
        MeshHealthCheck => "mhc",
        MeshHTTPRoute => "mhttpr",
        MeshLoadBalancingStrategy => "mlbs",
        MeshMetric => "mm",
        MeshPassthrough => "mp",
        MeshProxyPatch => "mpp",
        MeshRateLimit => "mrl",
        MeshRetry => "mr",
        MeshTCPRoute => "mtcpr",
        MeshTimeout => "mt",
        MeshTLS => "mtls",
        MeshTrace => "mtr",
        MeshTrafficPermission => "mtp",
        DataplaneInsight | ZoneInsight | ExternalService | Secret | GlobalSecret => return None,
    })
}

/// Kuma's resource identifier of `r`, as the control plane of zone `here`
/// (`None` on global) names it:
/// `kri_<short name>_<mesh>_<zone>_<namespace>_<name>_<section>`. The zone is
/// the one a zone's resource came from (`kuma.io/zone`, or `here` for this
/// zone's own resources; empty for global's), the name its name in that zone
/// (`kuma.io/display-name`), namespace and section empty.
pub fn kri(r: &Resource, here: Option<&str>) -> String {
    kri_of(r, here, "")
}

/// [`kri`] naming section `section` (an inbound's name or port).
pub fn kri_of(r: &Resource, here: Option<&str>, section: &str) -> String {
    let ty = r.resource_type();
    let short = short_name(ty)
        .map(str::to_string)
        .unwrap_or_else(|| ty.name().to_lowercase());
    let labels = &r.meta.labels;
    let origin = labels
        .get(weft_model::resource::tags::ORIGIN)
        .map(String::as_str);
    let ours = origin == Some("zone") || (origin.is_none() && ty.owner() == Owner::Zone);
    let zone = labels
        .get(weft_model::resource::tags::ZONE)
        .map(String::as_str)
        .or(here.filter(|_| ours))
        .unwrap_or_default();
    let name = labels
        .get(weft_model::resource::tags::DISPLAY_NAME)
        .unwrap_or(&r.meta.name);
    format!(
        "kri_{short}_{}_{zone}__{name}_{section}",
        r.meta.mesh.as_deref().unwrap_or_default()
    )
}

/// The parts of a KRI: (short name, mesh, zone, namespace, name, section).
pub fn parse_kri(kri: &str) -> Option<[&str; 6]> {
    let rest = kri.strip_prefix("kri_")?;
    let parts: Vec<&str> = rest.splitn(6, '_').collect();
    <[&str; 6]>::try_from(parts).ok()
}

/// `MeshHTTPRoute` → `Mesh HTTP Route`: words split at a lower-to-upper change
/// and before the last capital of an acronym followed by lower case.
fn display_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let starts_word = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if starts_word {
            out.push(' ');
        }
        out.push(*c);
    }
    out
}

fn plural_of(singular: &str) -> String {
    if let Some(stem) = singular.strip_suffix('y') {
        format!("{stem}ies")
    } else if ["s", "ch", "sh", "x", "S"]
        .iter()
        .any(|e| singular.ends_with(e))
    {
        format!("{singular}es")
    } else {
        format!("{singular}s")
    }
}

/// Whether the model's spec has a top-level `spec.<field>` (asked of the model
/// itself, so this never drifts from it).
fn has_section(ty: ResourceType, field: &str) -> bool {
    let doc = json!({"type": ty.name(), "name": "x", "mesh": "m", "spec": {field: []}});
    !Resource::unknown_fields(doc)
        .iter()
        .any(|u| u == &format!("spec.{field}"))
}

pub(super) fn describe(ty: ResourceType, mode: &Mode) -> Value {
    let singular = display_name(ty.name());
    let mut d = json!({
        "name": ty.name(),
        "path": ty.plural(),
        "scope": match ty.scope() { Scope::Global => "Global", Scope::Mesh => "Mesh" },
        "singularDisplayName": singular,
        "pluralDisplayName": plural_of(&singular),
        "shortName": short_name(ty).unwrap_or_default(),
        "readOnly": super::resources::check_writable(mode, ty).is_err(),
        "includeInFederation": ty.owner() == Owner::Global,
    });
    if ty.is_policy() {
        let (to, from, rules) = (
            has_section(ty, "to"),
            has_section(ty, "from"),
            has_section(ty, "rules"),
        );
        d["policy"] = json!({
            "isTargetRef": true,
            "hasToTargetRef": to,
            "hasFromTargetRef": from,
            "hasRulesTargetRef": rules,
            "isFromAsRules": from && rules,
        });
    }
    d
}

pub(super) async fn list(State(state): State<ApiState>) -> Response {
    let resources: Vec<Value> = ResourceType::ALL
        .iter()
        .map(|ty| describe(*ty, &state.mode))
        .collect();
    axum::Json(json!({ "resources": resources })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Display names split words as Kuma writes them; plurals are English.
    #[test]
    fn names() {
        assert_eq!(display_name("MeshHTTPRoute"), "Mesh HTTP Route");
        assert_eq!(display_name("MeshTLS"), "Mesh TLS");
        assert_eq!(display_name("ZoneIngress"), "Zone Ingress");
        assert_eq!(plural_of("Mesh Retry"), "Mesh Retries");
        assert_eq!(plural_of("Zone Ingress"), "Zone Ingresses");
        assert_eq!(plural_of("Mesh Proxy Patch"), "Mesh Proxy Patches");
        assert_eq!(plural_of("Mesh"), "Meshes");
    }

    // Policy shapes come from the model: MeshRetry is outbound only, MeshTrafficPermission
    // inbound (from and rules), MeshTimeout both.
    #[test]
    fn policy_shapes_from_the_model() {
        let shape = |ty| {
            let d = describe(ty, &Mode::Global);
            (
                d["policy"]["hasToTargetRef"] == true,
                d["policy"]["hasFromTargetRef"] == true,
                d["policy"]["hasRulesTargetRef"] == true,
            )
        };
        assert_eq!(shape(ResourceType::MeshRetry), (true, false, false));
        assert_eq!(
            shape(ResourceType::MeshTrafficPermission),
            (false, true, true)
        );
        assert_eq!(shape(ResourceType::MeshTimeout), (true, true, true));
        let dp = describe(ResourceType::Dataplane, &Mode::Global);
        assert_eq!(dp["readOnly"], true);
        assert_eq!(dp["scope"], "Mesh");
        assert!(dp.get("policy").is_none());
    }
}
