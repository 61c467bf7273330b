//! Workload identities: the certificate each proxy of an mTLS mesh gets, issued
//! by the zone from the mesh's CA and delivered over SDS.
//!
//! A proxy's certificate is kept until one of these: 80 % of its lifetime has
//! passed (Kuma's rule), the mesh's issuing CA changed, or the proxy's identity
//! (services, tags) changed. [`Identities::next_renewal`] tells the cache's
//! rebuilder when the next one falls due; regeneration then reissues it and the
//! new certificate goes out under the same secret name, which Envoy swaps in
//! without dropping connections. Issuance runs where generation runs: on blocking
//! threads, never on the async workers.

use super::generate::mtls::MeshTls;
use super::node::ProxyKey;
use envoy_types::pb::google::protobuf::Any;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use weft_model::resource::dataplane::DataplaneSpec;
use weft_model::resource::{Resource, Spec, tags};
use weft_security::pki::Fingerprint;
use weft_security::pki::workload::WorkloadIdentity;

/// What a proxy's DataplaneInsight shows of its certificate (Kuma's `mTLS` block,
/// plus the serial and CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertInfo {
    /// The SPIFFE id.
    pub spiffe_id: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub certificate_expiration_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_certificate_regeneration: OffsetDateTime,
    pub certificate_regenerations: u64,
    /// The mTLS backend whose CA issued it.
    pub issued_backend: String,
    /// SHA-256 of the issuing CA certificate.
    pub ca_fingerprint: String,
}

/// A proxy's current certificate.
struct Issued {
    ca: Fingerprint,
    identity: WorkloadIdentity,
    renew_at: Instant,
    secret: Any,
    info: CertInfo,
}

/// Every connected proxy's certificate.
#[derive(Default)]
pub struct Identities {
    issued: Mutex<HashMap<ProxyKey, Issued>>,
}

impl Identities {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProxyKey, Issued>> {
        self.issued.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `identity_cert:secret:<mesh>` of `key` (Dataplane `dp`) in `tls`'s mesh:
    /// the current certificate, or a new one when it is due. `Err` when the mesh
    /// has no usable CA or the proxy's names cannot make a SPIFFE id.
    pub fn secret(&self, key: &ProxyKey, dp: &Resource, tls: &MeshTls) -> Result<Any, String> {
        self.secret_at(key, dp, tls, Instant::now())
    }

    fn secret_at(
        &self,
        key: &ProxyKey,
        dp: &Resource,
        tls: &MeshTls,
        now: Instant,
    ) -> Result<Any, String> {
        let ca = tls.ca.as_ref().map_err(Clone::clone)?;
        let identity = identity_of(tls, dp)?;
        let fingerprint = ca.fingerprint();
        let regenerations = {
            let issued = self.lock();
            match issued.get(key) {
                Some(i) if i.ca == fingerprint && i.identity == identity && now < i.renew_at => {
                    return Ok(i.secret.clone());
                }
                Some(i) => i.info.certificate_regenerations + 1,
                None => 1,
            }
        };
        let lifetime = tls.cert_lifetime;
        let cert = ca.issue(&identity, lifetime).map_err(|e| e.to_string())?;
        let secret = tls.identity_secret(&cert.cert_pem, cert.key_pem.expose());
        let info = CertInfo {
            spiffe_id: identity.spiffe_id.clone(),
            serial: cert.serial.clone(),
            certificate_expiration_time: cert.not_after,
            last_certificate_regeneration: OffsetDateTime::now_utc(),
            certificate_regenerations: regenerations,
            issued_backend: tls.backend.clone(),
            ca_fingerprint: fingerprint.to_string(),
        };
        tracing::debug!(proxy = %key, serial = %info.serial, spiffe_id = %info.spiffe_id, "issued a workload certificate");
        self.lock().insert(
            key.clone(),
            Issued {
                ca: fingerprint,
                identity,
                renew_at: now + lifetime.mul_f64(0.8),
                secret: secret.clone(),
                info,
            },
        );
        Ok(secret)
    }

    /// What the insight shows of `key`'s certificate.
    pub fn info(&self, key: &ProxyKey) -> Option<CertInfo> {
        self.lock().get(key).map(|i| i.info.clone())
    }

    /// Forgets `key`'s certificate (the proxy is gone).
    pub fn remove(&self, key: &ProxyKey) {
        self.lock().remove(key);
    }

    /// The earliest renewal due, and the meshes whose proxies are due by then.
    pub fn next_renewal(&self) -> Option<(Instant, Vec<String>)> {
        let issued = self.lock();
        let at = issued.values().map(|i| i.renew_at).min()?;
        // Renewals within a second of the first are done in the same rebuild.
        let horizon = at + Duration::from_secs(1);
        let mut meshes: Vec<String> = issued
            .iter()
            .filter(|(_, i)| i.renew_at <= horizon)
            .map(|(k, _)| k.mesh.clone())
            .collect();
        meshes.sort();
        meshes.dedup();
        Some((horizon, meshes))
    }
}

/// Kuma's Mesh mTLS identity of a proxy: `spiffe://<mesh>/<service>` for its first
/// service (further services as extra SPIFFE URIs) and `kuma://<tag>/<value>` for
/// every inbound tag value. A proxy without a service is named by its Dataplane.
fn identity_of(tls: &MeshTls, dp: &Resource) -> Result<WorkloadIdentity, String> {
    let mut by_tag: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Spec::Dataplane(DataplaneSpec {
        networking: Some(net),
        ..
    }) = &dp.spec
    {
        for inbound in &net.inbound {
            for (k, v) in &inbound.tags {
                let values = by_tag.entry(k.clone()).or_default();
                if !values.contains(v) {
                    values.push(v.clone());
                }
            }
        }
    }
    let services = by_tag.get(tags::SERVICE).cloned().unwrap_or_default();
    let first = services
        .first()
        .cloned()
        .unwrap_or_else(|| dp.meta.name.clone());
    let mut identity =
        WorkloadIdentity::mesh_service(&tls.mesh, &first, &by_tag).map_err(|e| e.to_string())?;
    for other in services.iter().skip(1) {
        identity.uris.insert(0, tls.spiffe_id(other));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::xds::generate::MeshView;
    use crate::xds::generate::tests::{dataplane, res};
    use std::sync::Arc;
    use weft_security::pki::mesh_ca;

    fn view(backend: &str, lifetime: &str) -> MeshView {
        let mesh = res(&format!(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: {backend}\n  backends:\n    - name: {backend}\n      type: builtin\n      dpCert: {{rotation: {{expiration: {lifetime}}}}}\n"
        ));
        let Spec::Mesh(spec) = &mesh.spec else {
            unreachable!()
        };
        let (_, secrets) =
            mesh_ca::builtin_ca_secrets("default", &spec.mtls.as_ref().unwrap().backends[0])
                .unwrap();
        MeshView::new(mesh, secrets.into_iter().map(Arc::new).collect())
    }

    fn web(version: &str) -> Arc<Resource> {
        dataplane(
            "web-1",
            "127.0.0.1",
            20000,
            "web",
            "http",
            &format!(", version: {version}"),
            "    []",
        )
    }

    // A certificate is kept until 80 % of its lifetime, then reissued; a new CA
    // or changed tags reissue at once. The insight counts every issuance.
    #[test]
    fn renews_at_eighty_percent_and_on_change() {
        let ids = Identities::default();
        let key = ProxyKey {
            mesh: "default".into(),
            name: "web-1".into(),
        };
        let v = view("ca-1", "100s");
        let tls = v.mtls.as_ref().unwrap();
        let t0 = Instant::now();
        let first = ids.secret_at(&key, &web("v1"), tls, t0).unwrap();
        let info = ids.info(&key).unwrap();
        assert_eq!(info.spiffe_id, "spiffe://default/web");
        assert_eq!(info.certificate_regenerations, 1);
        let later = ids
            .secret_at(&key, &web("v1"), tls, t0 + Duration::from_secs(79))
            .unwrap();
        assert_eq!(first, later, "kept before 80 %");
        let (due, meshes) = ids.next_renewal().unwrap();
        assert!(due >= t0 + Duration::from_secs(80) && due <= t0 + Duration::from_secs(82));
        assert_eq!(meshes, ["default"]);
        let renewed = ids
            .secret_at(&key, &web("v1"), tls, t0 + Duration::from_secs(81))
            .unwrap();
        assert_ne!(first, renewed, "renewed after 80 %");
        assert_eq!(ids.info(&key).unwrap().certificate_regenerations, 2);
        // New tags: reissued at once.
        let retagged = ids
            .secret_at(&key, &web("v2"), tls, t0 + Duration::from_secs(82))
            .unwrap();
        assert_ne!(renewed, retagged);
        // Another CA: reissued at once.
        let other = view("ca-2", "100s");
        let moved = ids
            .secret_at(
                &key,
                &web("v2"),
                other.mtls.as_ref().unwrap(),
                t0 + Duration::from_secs(83),
            )
            .unwrap();
        assert_ne!(retagged, moved);
        let info = ids.info(&key).unwrap();
        assert_eq!(
            (info.certificate_regenerations, info.issued_backend.as_str()),
            (4, "ca-2")
        );
        ids.remove(&key);
        assert!(ids.next_renewal().is_none());
    }
}
