//! What a Mesh write does besides storing the Mesh, where the Mesh is owned (global
//! in multizone, the zone when standalone): a builtin mTLS backend gets its CA,
//! generated once and kept in two Secrets of the mesh that KDS syncs to zones; a
//! provided backend's certificate and key are checked (unless `skipValidation`).
//! Also the warnings a PUT answer carries for settings that have no effect, and the
//! rule that a CA's private key never leaves the API.

use super::ApiError;
use serde_json::Value;
use std::collections::HashMap;
use weft_model::resource::mesh::{CaBackendType, MeshSpec};
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_security::pki::mesh_ca;
use weft_store::{Page, ResourceStore};

/// The Secrets a Mesh write must store with the Mesh, and the answer's warnings.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    pub secrets: Vec<Resource>,
    pub warnings: Vec<String>,
}

/// Checks `mesh`'s CA backends against the store and generates the builtin CAs
/// it does not have yet.
pub(super) async fn prepare(
    store: &dyn ResourceStore,
    mesh: &Resource,
) -> Result<Prepared, ApiError> {
    let Spec::Mesh(spec) = &mesh.spec else {
        return Ok(Prepared::default());
    };
    let name = &mesh.meta.name;
    let mut out = Prepared::default();
    // `routing.zoneEgress` without mTLS is refused by validation (Kuma's rule).
    let Some(mtls) = &spec.mtls else {
        out.warnings
            .extend(unenforced_permissions(store, name, spec).await?);
        return Ok(out);
    };
    let skip_validation = mtls.skip_validation == Some(true);
    for (i, backend) in mtls.backends.iter().enumerate() {
        let field = |f: &str| format!("mtls.backends[{i}].{f}");
        match backend.backend_type {
            Some(CaBackendType::Builtin) => {
                if backend
                    .conf
                    .as_ref()
                    .and_then(|c| c.ca_cert.as_ref())
                    .and_then(|c| c.rsa_bits)
                    .is_some()
                {
                    out.warnings.push(format!(
                        "{}: ignored; Weft's builtin CA key is ECDSA P-256 (docs/decisions/0010-mesh-mtls.md)",
                        field("conf.caCert.RSAbits")
                    ));
                }
                let names = [
                    weft_model::resource::mesh::builtin_ca_cert_secret(name, &backend.name),
                    weft_model::resource::mesh::builtin_ca_key_secret(name, &backend.name),
                ];
                if secrets(store, name, &names).await?.len() == names.len() {
                    continue;
                }
                let (b, mesh_name) = (backend.clone(), name.clone());
                let (_, generated) = tokio::task::spawn_blocking(move || {
                    mesh_ca::builtin_ca_secrets(&mesh_name, &b)
                })
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
                tracing::info!(mesh = %name, backend = %backend.name, "created the builtin CA of an mTLS backend");
                out.secrets.extend(generated);
            }
            Some(CaBackendType::Provided) if !skip_validation => {
                let conf = backend.conf.as_ref();
                let referenced: Vec<String> = conf
                    .into_iter()
                    .flat_map(|c| [&c.cert, &c.key])
                    .flatten()
                    .filter_map(|s| s.secret.clone())
                    .collect();
                let found = secrets(store, name, &referenced).await?;
                let b = backend.clone();
                let mesh_name = name.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    mesh_ca::backend_ca(&mesh_name, &b, |n| found.get(n).cloned()).map(|_| ())
                })
                .await
                .map_err(ApiError::internal)?;
                if let Err(e) = checked {
                    let reason = e.to_string();
                    let reason = reason
                        .strip_prefix(&format!("{}: ", e.field()))
                        .unwrap_or(&reason)
                        .to_string();
                    return Err(ApiError::invalid_field(&field(e.field()), reason));
                }
            }
            _ => {}
        }
    }
    if !spec.mtls_enabled() {
        out.warnings
            .extend(unenforced_permissions(store, name, spec).await?);
    }
    Ok(out)
}

/// On global: a mesh without mTLS (Mesh `mtls` off and no MeshIdentity) stays
/// within each zone, since zone ingresses route on the SNI of mTLS — say so.
pub(super) async fn cross_zone_warning(
    store: &dyn ResourceStore,
    mesh: &Resource,
) -> Result<Option<String>, ApiError> {
    let Spec::Mesh(spec) = &mesh.spec else {
        return Ok(None);
    };
    if spec.mtls_enabled() {
        return Ok(None);
    }
    let name = &mesh.meta.name;
    let identities = store
        .list(
            ResourceType::MeshIdentity,
            Some(name),
            Page { size: 1, offset: 0 },
        )
        .await?;
    Ok((identities.total == 0).then(|| cross_zone_message(name)))
}

/// What a mesh without mTLS means across zones (the PUT warning, the zone
/// overview's note).
pub fn cross_zone_message(mesh: &str) -> String {
    format!(
        "mesh {mesh:?} has no mTLS (mtls.enabledBackend, or a MeshIdentity): its services are \
         not reachable from other zones, whose ingresses route on the TLS SNI of mesh mTLS"
    )
}

/// The decoded Secrets of `mesh` among `names` that exist.
async fn secrets(
    store: &dyn ResourceStore,
    mesh: &str,
    names: &[String],
) -> Result<HashMap<String, Vec<u8>>, ApiError> {
    let mut found = HashMap::new();
    for n in names {
        let key = ResourceKey::new(ResourceType::Secret, Some(mesh), n);
        if let Some(Resource {
            spec: Spec::Secret(s),
            ..
        }) = store.get(&key).await?
            && let Ok(bytes) = s.bytes()
        {
            found.insert(n.clone(), bytes);
        }
    }
    Ok(found)
}

/// The warning for a mesh without mTLS that has MeshTrafficPermissions.
async fn unenforced_permissions(
    store: &dyn ResourceStore,
    mesh: &str,
    spec: &MeshSpec,
) -> Result<Option<String>, ApiError> {
    if spec.mtls_enabled() || has_identities(store, mesh).await? {
        return Ok(None);
    }
    let page = store
        .list(
            ResourceType::MeshTrafficPermission,
            Some(mesh),
            Page { size: 1, offset: 0 },
        )
        .await?;
    Ok((page.total > 0).then(|| permission_warning(mesh)))
}

/// Whether `mesh` has MeshIdentities (their proxies do mTLS without Mesh mTLS).
async fn has_identities(store: &dyn ResourceStore, mesh: &str) -> Result<bool, ApiError> {
    let page = store
        .list(
            ResourceType::MeshIdentity,
            Some(mesh),
            Page { size: 1, offset: 0 },
        )
        .await?;
    Ok(page.total > 0)
}

pub(super) fn permission_warning(mesh: &str) -> String {
    format!(
        "mesh {mesh:?} has no mTLS: MeshTrafficPermissions are not enforced until mtls.enabledBackend \
         is set or a MeshIdentity selects the proxies (without mTLS no client has an identity to check)"
    )
}

/// Warnings for a policy write: a MeshTrafficPermission or MeshTLS in a mesh
/// without mTLS, where it has no effect.
pub(super) async fn policy_warnings(
    store: &dyn ResourceStore,
    res: &Resource,
) -> Result<Vec<String>, ApiError> {
    let ty = res.resource_type();
    if ty == ResourceType::MeshLoadBalancingStrategy {
        return Ok(affinity_warnings(res));
    }
    if ty == ResourceType::MeshExternalService {
        return mes_warnings(store, res).await;
    }
    if ty != ResourceType::MeshTrafficPermission && ty != ResourceType::MeshTLS {
        return Ok(Vec::new());
    }
    let Some(mesh) = res.meta.mesh.as_deref() else {
        return Ok(Vec::new());
    };
    let key = ResourceKey::new(ResourceType::Mesh, None, mesh);
    let mesh_mtls = match store.get(&key).await? {
        Some(Resource {
            spec: Spec::Mesh(m),
            ..
        }) => m.mtls_enabled(),
        _ => return Ok(Vec::new()),
    };
    if mesh_mtls {
        return Ok(Vec::new());
    }
    let what = if ty == ResourceType::MeshTLS {
        "MeshTLS"
    } else {
        "MeshTrafficPermissions"
    };
    Ok(vec![if has_identities(store, mesh).await? {
        format!(
            "mesh {mesh:?} has no Mesh mTLS: {what} apply only to proxies a MeshIdentity selects; \
             proxies no MeshIdentity selects talk plaintext and are not checked"
        )
    } else if ty == ResourceType::MeshTLS {
        format!(
            "mesh {mesh:?} has no mTLS: MeshTLS has no effect until mtls.enabledBackend is set or a MeshIdentity selects the proxies"
        )
    } else {
        permission_warning(mesh)
    }])
}

/// A MeshExternalService is reached only through a zone egress over mesh mTLS
/// (Kuma's rule): say so when its mesh has not both.
async fn mes_warnings(store: &dyn ResourceStore, res: &Resource) -> Result<Vec<String>, ApiError> {
    let Some(mesh) = res.meta.mesh.as_deref() else {
        return Ok(Vec::new());
    };
    let key = ResourceKey::new(ResourceType::Mesh, None, mesh);
    let Some(Resource {
        spec: Spec::Mesh(m),
        ..
    }) = store.get(&key).await?
    else {
        return Ok(Vec::new());
    };
    let egress = m.routing.as_ref().and_then(|r| r.zone_egress) == Some(true);
    Ok((!m.mtls_enabled() || !egress)
        .then(|| {
            format!(
                "mesh {mesh:?} needs mTLS and routing.zoneEgress for this MeshExternalService: it is \
                 reached only through a zone egress, and until then its outbounds have no endpoint"
            )
        })
        .into_iter()
        .collect())
}

/// MeshLoadBalancingStrategy's `localityAwareness.localZone.affinityTags` are
/// accepted (Kuma's format) but not applied yet: say so for each.
fn affinity_warnings(res: &Resource) -> Vec<String> {
    let spec = res.to_value();
    let mut out = Vec::new();
    for (i, to) in spec["spec"]["to"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let tags = &to["default"]["localityAwareness"]["localZone"]["affinityTags"];
        if tags.as_array().is_some_and(|a| !a.is_empty()) {
            out.push(format!(
                "spec.to[{i}].default.localityAwareness.localZone.affinityTags: not applied yet \
                 (Weft orders endpoints by zone only); traffic within the zone is balanced \
                 across all its instances"
            ));
        }
    }
    out
}

/// Removes private keys from `value` (a resource's JSON) before it is answered:
/// a Secret whose data holds a PEM private key (a builtin CA key, a provided CA
/// key, anything else) loses `data`; inline keys of a Mesh's provided backends and
/// of a MeshIdentity's CA are removed.
pub(super) fn redact(res: &Resource, value: &mut Value) {
    match &res.spec {
        Spec::Secret(s) => {
            let is_key = s
                .bytes()
                .map(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY"))
                .unwrap_or(false)
                || res.meta.mesh.as_deref().is_some_and(|m| {
                    weft_model::resource::mesh::is_builtin_ca_key_secret(m, &res.meta.name)
                });
            if is_key && let Value::Object(o) = value {
                o.remove("data");
            }
        }
        Spec::Mesh(_) => {
            if let Some(backends) = value
                .pointer_mut("/mtls/backends")
                .and_then(Value::as_array_mut)
            {
                for b in backends {
                    if let Some(Value::Object(key)) = b.pointer_mut("/conf/key") {
                        key.remove("inline");
                        key.remove("inlineString");
                    }
                }
            }
        }
        Spec::MeshIdentity(_) => {
            if let Some(Value::Object(key)) =
                value.pointer_mut("/spec/provider/bundled/ca/privateKey")
            {
                key.remove("insecureInline");
            }
        }
        Spec::ExternalService(_) => {
            if let Some(Value::Object(key)) = value.pointer_mut("/networking/tls/clientKey") {
                key.remove("inline");
                key.remove("inlineString");
            }
        }
        Spec::MeshExternalService(_) => {
            if let Some(Value::Object(key)) = value.pointer_mut("/spec/tls/verification/clientKey")
            {
                key.remove("inline");
                key.remove("inlineString");
                key.remove("insecureInline");
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn answer(yaml: &str) -> Value {
        let res = weft_model::resource::parse_resource(yaml.as_bytes(), false).unwrap();
        let mut v = res.to_value();
        redact(&res, &mut v);
        v
    }

    // No private key leaves through an answer: a Secret holding one (whatever
    // its name), a provided backend's inline key, a MeshIdentity's inline key,
    // an ExternalService's or MeshExternalService's client key.
    #[test]
    fn private_keys_are_removed_from_answers() {
        let key = weft_model::resource::secret::encode_base64(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let v = answer(&format!(
            "type: Secret\nmesh: default\nname: any-name\ndata: {key}\n"
        ));
        assert!(v.get("data").is_none(), "{v}");
        let v = answer("type: Secret\nmesh: default\nname: plain\ndata: aGk=\n");
        assert_eq!(v["data"], "aGk=");
        let v = answer(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: mine\n  backends:\n    - name: mine\n      type: provided\n      conf:\n        cert: {secret: c}\n        key: {inlineString: \"-----BEGIN PRIVATE KEY-----\"}\n",
        );
        assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
        let v = answer(
            "type: MeshIdentity\nmesh: default\nname: id\nspec:\n  provider:\n    type: Bundled\n    bundled:\n      ca:\n        certificate: {type: File, file: {path: /c}}\n        privateKey: {type: InsecureInline, insecureInline: {value: \"-----BEGIN PRIVATE KEY-----\"}}\n",
        );
        assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
        assert_eq!(
            v["spec"]["provider"]["bundled"]["ca"]["privateKey"]["type"],
            "InsecureInline"
        );
        let v = answer(
            "type: ExternalService\nmesh: default\nname: es\ntags: {kuma.io/service: es}\nnetworking:\n  address: a.example:443\n  tls: {enabled: true, clientCert: {inlineString: cert}, clientKey: {inlineString: \"-----BEGIN PRIVATE KEY-----\"}}\n",
        );
        assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
        let v = answer(
            "type: MeshExternalService\nmesh: default\nname: mes\nspec:\n  match: {port: 443}\n  endpoints: [{address: a.example, port: 443}]\n  tls:\n    enabled: true\n    verification:\n      clientCert: {inlineString: cert}\n      clientKey: {type: InsecureInline, insecureInline: {value: \"-----BEGIN PRIVATE KEY-----\"}}\n",
        );
        assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
    }
}
