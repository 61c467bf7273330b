//! Workload identities and the trust they are checked against: the certificate
//! each proxy of an mTLS mesh gets, issued by the zone from the mesh's CA, and
//! the CA bundle every proxy trusts, both delivered over SDS.
//!
//! A proxy's certificate is kept until one of these: 80 % of its lifetime has
//! passed (Kuma's rule), the CA that should issue it changed, or the proxy's
//! identity (services, tags) changed. [`Identities::next_renewal`] tells the
//! cache's rebuilder when the next one falls due; regeneration then reissues it
//! and the new certificate goes out under the same secret name, which Envoy swaps
//! in without dropping connections. Issuance runs where generation runs: on
//! blocking threads, never on the async workers.
//!
//! **CA rotation without downtime** ([`Identities::plan`], per mesh, from what
//! each connected proxy has ACKed): the bundle is the enabled backend's CA plus
//! every CA a connected proxy's certificate (sent or held) comes from. When
//! `enabledBackend` changes, the new CA joins the bundle at once; certificates
//! keep coming from the old CA until every connected proxy has ACKed a bundle
//! holding the new one; then every proxy is reissued from the new CA; once every
//! proxy has ACKed its new certificate the old CA leaves the bundle. At no point
//! does a proxy present a certificate its peer does not trust.

use super::generate::mtls::MeshTls;
use super::node::ProxyKey;
use envoy_types::pb::google::protobuf::Any;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use weft_model::resource::dataplane::DataplaneSpec;
use weft_model::resource::{Resource, Spec, tags};
use weft_security::pki::Fingerprint;
use weft_security::pki::workload::{MeshCa, WorkloadIdentity};

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

impl CertInfo {
    /// What the proxy's persisted DataplaneInsight keeps of it (Kuma's `mTLS`).
    pub fn to_persisted(&self) -> weft_model::resource::insight::MtlsInsight {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        weft_model::resource::insight::MtlsInsight {
            certificate_expiration_time: rfc3339(self.certificate_expiration_time),
            last_certificate_regeneration: rfc3339(self.last_certificate_regeneration),
            certificate_regenerations: self.certificate_regenerations,
            issued_backend: self.issued_backend.clone(),
            supported_backends: vec![self.issued_backend.clone()],
        }
    }
}

/// The trust of one mesh at one moment: what proxies trust and which CA issues.
#[derive(Debug)]
pub struct TrustPlan {
    /// The CAs in the bundle, by fingerprint.
    pub bundle: BTreeSet<Fingerprint>,
    /// `mesh_ca:secret:<mesh>` holding the bundle (under the SPIFFE validator,
    /// the bundle is the trust domain `<mesh>` beside the MeshTrust domains).
    pub ca_secret: Any,
    /// The CA new certificates come from; `Err` when the mesh has none usable.
    pub issuer: Result<(Fingerprint, Arc<MeshCa>), String>,
    /// A rotation is under way: the bundle holds more than the enabled CA, or
    /// certificates still come from another CA.
    pub rotating: bool,
    /// The SPIFFE trust domains proxies verify peers in (empty without
    /// MeshIdentities and MeshTrusts: then only the Mesh's CAs).
    pub trust_domains: Vec<String>,
    /// The CAs every connected proxy has ACKed as trusted; `None` when no proxy
    /// is connected (then any CA is safe to issue from).
    pub trusted_by_all: Option<BTreeSet<Fingerprint>>,
}

impl TrustPlan {
    /// Whether every connected proxy trusts `ca` (so it may issue).
    pub fn everyone_trusts(&self, ca: &Fingerprint) -> bool {
        self.trusted_by_all.as_ref().is_none_or(|s| s.contains(ca))
    }
}

/// No certificate is renewed sooner than this after its issuance.
const MIN_RENEWAL: Duration = Duration::from_secs(1);

/// Who issues a certificate.
struct Issuer<'a> {
    fingerprint: Fingerprint,
    ca: &'a Arc<MeshCa>,
    /// What the insight calls it: a backend, or `MeshIdentity/<name>`.
    label: String,
    lifetime: Duration,
}

/// A proxy's certificate as sent.
struct Issued {
    ca: Fingerprint,
    identity: WorkloadIdentity,
    renew_at: Instant,
    secret: Any,
    version: String,
    info: CertInfo,
}

#[derive(Default)]
struct ProxyIdentity {
    issued: Option<Issued>,
    /// The CA of the certificate the proxy has ACKed.
    held_ca: Option<Fingerprint>,
    /// The CAs of the bundle the proxy has ACKed, and that bundle's version.
    trusts: BTreeSet<Fingerprint>,
    trusts_version: Option<String>,
}

#[derive(Default)]
struct State {
    proxies: HashMap<ProxyKey, ProxyIdentity>,
    /// Bundle secret version → its CAs (to read a proxy's ACK).
    bundles: HashMap<String, BTreeSet<Fingerprint>>,
    /// Every CA certificate seen per mesh, so that a CA dropped from the Mesh
    /// stays trusted while proxies still hold its certificates.
    pems: HashMap<String, BTreeMap<Fingerprint, String>>,
    plans: HashMap<String, Arc<TrustPlan>>,
}

/// Every connected proxy's certificate and trust.
#[derive(Default)]
pub struct Identities {
    state: Mutex<State>,
}

impl Identities {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Computes `tls`'s mesh's trust plan for its `connected` proxies and keeps it
    /// as the mesh's current one. `domains` (trust domain → PEM; MeshTrusts and
    /// this zone's MeshIdentity CAs) are trusted beside the Mesh's CAs when
    /// `tls.spiffe`.
    pub fn plan(
        &self,
        tls: &MeshTls,
        connected: &[ProxyKey],
        domains: &BTreeMap<String, String>,
        identity_rotating: bool,
    ) -> Arc<TrustPlan> {
        let mut st = self.lock();
        let pems = st.pems.entry(tls.mesh.clone()).or_default();
        for c in &tls.cas {
            pems.entry(c.fingerprint)
                .or_insert_with(|| c.cert_pem.clone());
        }
        let enabled = tls.ca.as_ref().ok().map(|c| c.fingerprint());
        let proxies: Vec<&ProxyIdentity> =
            connected.iter().filter_map(|k| st.proxies.get(k)).collect();
        let mut bundle: BTreeSet<Fingerprint> = enabled.into_iter().collect();
        for p in &proxies {
            bundle.extend(p.held_ca);
            bundle.extend(p.issued.as_ref().map(|i| i.ca));
        }
        let pems = &st.pems[&tls.mesh];
        bundle.retain(|f| pems.contains_key(f));
        let trusted_pem: String = bundle.iter().map(|f| pems[f].as_str()).collect();
        // The enabled CA issues once every connected proxy trusts it; until then
        // the CA most certificates come from goes on issuing.
        let everyone_trusts_enabled = enabled.is_some_and(|e| {
            connected
                .iter()
                .all(|k| st.proxies.get(k).is_some_and(|p| p.trusts.contains(&e)))
        });
        let enabled_issuer = tls
            .ca
            .as_ref()
            .map(|c| (c.fingerprint(), c.clone()))
            .map_err(Clone::clone);
        let issuer = if everyone_trusts_enabled {
            enabled_issuer
        } else {
            let mut counts: BTreeMap<Fingerprint, usize> = BTreeMap::new();
            for p in &proxies {
                if let Some(i) = &p.issued {
                    *counts.entry(i.ca).or_default() += 1;
                }
            }
            counts
                .into_iter()
                .filter_map(|(f, n)| {
                    tls.backend_of(&f)
                        .and_then(|b| b.ca.clone())
                        .map(|ca| (n, f, ca))
                })
                .max_by_key(|(n, _, _)| *n)
                .map(|(_, f, ca)| Ok((f, ca)))
                .unwrap_or(enabled_issuer)
        };
        let rotating = identity_rotating
            || bundle.len() > 1
            || issuer.as_ref().is_ok_and(|(f, _)| Some(*f) != enabled);
        let trusted_by_all = proxies
            .iter()
            .map(|p| p.trusts.clone())
            .reduce(|a, b| a.intersection(&b).copied().collect());
        let mut trust_domains = Vec::new();
        // Every CA the secret makes trusted: what a proxy ACKing it trusts.
        let mut trusted: BTreeSet<Fingerprint> = bundle.clone();
        let ca_secret = if tls.spiffe {
            let mut all = domains.clone();
            for pem in domains.values() {
                trusted.extend(Fingerprint::all_of_pem(pem));
            }
            if !trusted_pem.is_empty() {
                all.insert(tls.mesh.clone(), trusted_pem);
            }
            trust_domains = all.keys().cloned().collect();
            super::generate::mtls::spiffe_ca_secret(&tls.mesh, &all)
        } else {
            super::generate::mtls::ca_secret(&tls.mesh, &trusted_pem)
        };
        let version = weft_sync::delta::any_version(&ca_secret);
        st.bundles.insert(version.clone(), trusted);
        // Keep only the bundles some proxy holds, and this one.
        let held: BTreeSet<String> = st
            .proxies
            .values()
            .filter_map(|p| p.trusts_version.clone())
            .chain(std::iter::once(version))
            .collect();
        st.bundles.retain(|v, _| held.contains(v));
        let plan = Arc::new(TrustPlan {
            bundle,
            ca_secret,
            issuer,
            rotating,
            trust_domains,
            trusted_by_all,
        });
        st.plans.insert(tls.mesh.clone(), plan.clone());
        plan
    }

    /// The mesh's current plan (from its last rebuild).
    pub fn current_plan(&self, mesh: &str) -> Option<Arc<TrustPlan>> {
        self.lock().plans.get(mesh).cloned()
    }

    /// Records what `key` has ACKed of its secrets (name → version). True when
    /// that moves a rotation of its mesh on: the mesh should be rebuilt.
    pub fn acked(&self, key: &ProxyKey, held: &BTreeMap<String, String>) -> bool {
        let mut st = self.lock();
        let version = held.get(&format!("mesh_ca:secret:{}", key.mesh)).cloned();
        let bundle = version.as_ref().and_then(|v| st.bundles.get(v)).cloned();
        let rotating = st.plans.get(&key.mesh).is_some_and(|p| p.rotating);
        let Some(p) = st.proxies.get_mut(key) else {
            return false;
        };
        let mut changed = false;
        if let Some(bundle) = bundle
            && p.trusts != bundle
        {
            p.trusts = bundle;
            p.trusts_version = version;
            changed = true;
        }
        let identity = held.get(&format!("identity_cert:secret:{}", key.mesh));
        if let Some(i) = &p.issued
            && identity == Some(&i.version)
            && p.held_ca != Some(i.ca)
        {
            p.held_ca = Some(i.ca);
            changed = true;
        }
        changed && rotating
    }

    /// The `identity_cert:secret:<mesh>` of `key` (Dataplane `dp`) under `plan`:
    /// the current certificate, or a new one when it is due. `Err` when the mesh
    /// has no usable CA or the proxy's names cannot make a SPIFFE id.
    pub fn secret(
        &self,
        key: &ProxyKey,
        dp: &Resource,
        tls: &MeshTls,
        plan: &TrustPlan,
    ) -> Result<Any, String> {
        self.secret_at(key, dp, tls, plan, Instant::now())
    }

    fn secret_at(
        &self,
        key: &ProxyKey,
        dp: &Resource,
        tls: &MeshTls,
        plan: &TrustPlan,
        now: Instant,
    ) -> Result<Any, String> {
        let (fingerprint, ca) = plan.issuer.as_ref().map_err(Clone::clone)?;
        let identity = identity_of(tls, dp)?;
        let backend = tls
            .backend_of(fingerprint)
            .map_or_else(|| tls.backend.clone(), |b| b.backend.clone());
        let issuer = Issuer {
            fingerprint: *fingerprint,
            ca,
            label: backend,
            lifetime: tls.cert_lifetime,
        };
        self.issue_at(key, tls, &issuer, identity, now)
    }

    /// The certificate of `key` under MeshIdentity `selected`, issued by this
    /// zone's CA for it — by the CA it replaces while a connected proxy does not
    /// trust the new one yet.
    pub fn identity_secret(
        &self,
        key: &ProxyKey,
        tls: &MeshTls,
        selected: &super::generate::workload_identity::SelectedIdentity,
        ca: &crate::identity::IdentityCa,
        plan: &TrustPlan,
    ) -> Result<Any, String> {
        let spiffe_id = selected.spiffe_id.clone()?;
        let (fingerprint, issuing) = match &ca.retiring {
            Some(old) if !plan.everyone_trusts(&ca.fingerprint) => (old.fingerprint(), old),
            _ => (ca.fingerprint, &ca.ca),
        };
        let issuer = Issuer {
            fingerprint,
            ca: issuing,
            label: format!("MeshIdentity/{}", selected.name),
            lifetime: selected.lifetime,
        };
        let identity = WorkloadIdentity {
            spiffe_id,
            uris: Vec::new(),
        };
        self.issue_at(key, tls, &issuer, identity, Instant::now())
    }

    fn issue_at(
        &self,
        key: &ProxyKey,
        tls: &MeshTls,
        issuer: &Issuer<'_>,
        identity: WorkloadIdentity,
        now: Instant,
    ) -> Result<Any, String> {
        let (fingerprint, ca) = (&issuer.fingerprint, issuer.ca);
        let regenerations = {
            let st = self.lock();
            match st.proxies.get(key).and_then(|p| p.issued.as_ref()) {
                Some(i) if i.ca == *fingerprint && i.identity == identity && now < i.renew_at => {
                    return Ok(i.secret.clone());
                }
                Some(i) => i.info.certificate_regenerations + 1,
                None => 1,
            }
        };
        let lifetime = issuer.lifetime;
        let cert = ca.issue(&identity, lifetime).map_err(|e| e.to_string())?;
        let secret = tls.identity_secret(&cert.cert_pem, cert.key_pem.expose());
        let backend = issuer.label.clone();
        let info = CertInfo {
            spiffe_id: identity.spiffe_id.clone(),
            serial: cert.serial.clone(),
            certificate_expiration_time: cert.not_after,
            last_certificate_regeneration: OffsetDateTime::now_utc(),
            certificate_regenerations: regenerations,
            issued_backend: backend,
            ca_fingerprint: fingerprint.to_string(),
        };
        tracing::debug!(proxy = %key, serial = %info.serial, spiffe_id = %info.spiffe_id, backend = %info.issued_backend, "issued a workload certificate");
        let mut st = self.lock();
        let entry = st.proxies.entry(key.clone()).or_default();
        // Another generation of this proxy (a connect beside a rebuild) may have
        // issued meanwhile: keep one certificate, the one recorded first.
        if let Some(i) = &entry.issued
            && i.ca == *fingerprint
            && i.identity == identity
            && now < i.renew_at
        {
            return Ok(i.secret.clone());
        }
        entry.issued = Some(Issued {
            ca: *fingerprint,
            identity,
            // At 80 % of the lifetime, and never sooner than a second.
            renew_at: now + lifetime.mul_f64(0.8).max(MIN_RENEWAL),
            version: weft_sync::delta::any_version(&secret),
            secret: secret.clone(),
            info,
        });
        Ok(secret)
    }

    /// What the insight shows of `key`'s certificate.
    pub fn info(&self, key: &ProxyKey) -> Option<CertInfo> {
        self.lock()
            .proxies
            .get(key)
            .and_then(|p| p.issued.as_ref())
            .map(|i| i.info.clone())
    }

    /// Whether every connected proxy of `connected` whose certificate comes from
    /// `label` (`MeshIdentity/<name>`) holds one from `ca`.
    pub fn all_hold(&self, connected: &[ProxyKey], label: &str, ca: &Fingerprint) -> bool {
        let st = self.lock();
        connected
            .iter()
            .filter_map(|k| st.proxies.get(k))
            .filter(|p| {
                p.issued
                    .as_ref()
                    .is_some_and(|i| i.info.issued_backend == label)
            })
            .all(|p| {
                p.held_ca.as_ref() == Some(ca) && p.issued.as_ref().is_some_and(|i| i.ca == *ca)
            })
    }

    /// Forgets every certificate and plan of `mesh` (its mTLS is off); whether
    /// it had any.
    pub fn forget_mesh(&self, mesh: &str) -> bool {
        let mut st = self.lock();
        if st.plans.remove(mesh).is_none() && !st.proxies.keys().any(|k| k.mesh == mesh) {
            return false;
        }
        st.proxies.retain(|k, _| k.mesh != mesh);
        st.pems.remove(mesh);
        true
    }

    /// Puts `key`'s next renewal `after` from now (its issuance failed).
    pub fn defer(&self, key: &ProxyKey, after: Duration) {
        if let Some(i) = self
            .lock()
            .proxies
            .get_mut(key)
            .and_then(|p| p.issued.as_mut())
        {
            i.renew_at = i.renew_at.max(Instant::now() + after);
        }
    }

    /// Forgets `key` (the proxy is gone).
    pub fn remove(&self, key: &ProxyKey) {
        self.lock().proxies.remove(key);
    }

    /// Forgets every certificate whose key `drop` picks (a zone egress's per
    /// mesh, once it is gone or no longer serves that mesh).
    pub fn remove_where(&self, drop: impl Fn(&ProxyKey) -> bool) {
        self.lock().proxies.retain(|k, _| !drop(k));
    }

    /// The earliest renewal due, and the meshes whose proxies are due by then.
    pub fn next_renewal(&self) -> Option<(Instant, Vec<String>)> {
        let st = self.lock();
        let due = |p: &ProxyIdentity| p.issued.as_ref().map(|i| i.renew_at);
        let at = st.proxies.values().filter_map(due).min()?;
        // Renewals within a second of the first are done in the same rebuild.
        let horizon = at + Duration::from_secs(1);
        let mut meshes: Vec<String> = st
            .proxies
            .iter()
            .filter(|(_, p)| due(p).is_some_and(|t| t <= horizon))
            .map(|(k, _)| k.mesh.clone())
            .collect();
        meshes.sort();
        meshes.dedup();
        Some((horizon, meshes))
    }

    /// Per connected proxy of `mesh`: the backend its certificate comes from
    /// (sent) and the backends it has ACKed as trusted — a rotation's progress.
    pub fn mesh_state(&self, tls: &MeshTls, proxies: &[ProxyKey]) -> Vec<ProxyTrust> {
        let st = self.lock();
        let name = |f: &Fingerprint| {
            tls.backend_of(f)
                .map_or_else(|| f.to_string(), |b| b.backend.clone())
        };
        proxies
            .iter()
            .filter_map(|k| st.proxies.get(k).map(|p| (k, p)))
            .map(|(k, p)| ProxyTrust {
                name: k.name.clone(),
                issued_by: p.issued.as_ref().map(|i| name(&i.ca)),
                holds: p.held_ca.as_ref().map(name),
                trusts: p.trusts.iter().map(name).collect(),
            })
            .collect()
    }
}

/// One proxy's side of a mesh's rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyTrust {
    pub name: String,
    /// The backend of the certificate last sent.
    pub issued_by: Option<String>,
    /// The backend of the certificate the proxy has ACKed.
    pub holds: Option<String>,
    /// The backends of the bundle the proxy has ACKed.
    pub trusts: Vec<String>,
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
    // A zone egress is one identity per mesh, whatever its name.
    let fallback = match &dp.spec {
        Spec::ZoneEgress(_) => super::generate::external::EGRESS_IDENTITY.to_string(),
        _ => dp.meta.name.clone(),
    };
    let first = services.first().cloned().unwrap_or(fallback);
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
    use weft_model::resource::mesh::CaBackend;
    use weft_security::pki::mesh_ca;

    /// The CA Secrets of builtin backends `names`.
    fn ca_secrets(names: &[&str]) -> Vec<Arc<Resource>> {
        names
            .iter()
            .flat_map(|n| {
                let backend = CaBackend {
                    name: n.to_string(),
                    backend_type: Some(weft_model::resource::mesh::CaBackendType::Builtin),
                    ..CaBackend::default()
                };
                mesh_ca::builtin_ca_secrets("default", &backend).unwrap().1
            })
            .map(Arc::new)
            .collect()
    }

    fn view(
        enabled: &str,
        backends: &[&str],
        lifetime: &str,
        secrets: &[Arc<Resource>],
    ) -> MeshView {
        let list: String = backends
            .iter()
            .map(|b| format!("    - {{name: {b}, type: builtin, dpCert: {{rotation: {{expiration: {lifetime}}}}}}}\n"))
            .collect();
        let mesh = res(&format!(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: {enabled}\n  backends:\n{list}"
        ));
        MeshView::new(mesh, secrets.to_vec())
    }

    fn web(name: &str, version: &str) -> Arc<Resource> {
        dataplane(
            name,
            "127.0.0.1",
            20000,
            "web",
            "http",
            &format!(", version: {version}"),
            "    []",
        )
    }

    fn key(name: &str) -> ProxyKey {
        ProxyKey {
            mesh: "default".into(),
            name: name.into(),
        }
    }

    // A certificate is kept until 80 % of its lifetime, then reissued; a new CA
    // or changed tags reissue at once. The insight counts every issuance.
    #[test]
    fn renews_at_eighty_percent_and_on_change() {
        let ids = Identities::default();
        let k = key("web-1");
        let secrets = ca_secrets(&["ca-1", "ca-2"]);
        let v = view("ca-1", &["ca-1"], "100s", &secrets);
        let tls = v.mtls.as_ref().unwrap();
        let plan = ids.plan(tls, std::slice::from_ref(&k), &BTreeMap::new(), false);
        let t0 = Instant::now();
        let first = ids
            .secret_at(&k, &web("web-1", "v1"), tls, &plan, t0)
            .unwrap();
        let info = ids.info(&k).unwrap();
        assert_eq!(info.spiffe_id, "spiffe://default/web");
        assert_eq!(info.certificate_regenerations, 1);
        let later = ids
            .secret_at(
                &k,
                &web("web-1", "v1"),
                tls,
                &plan,
                t0 + Duration::from_secs(79),
            )
            .unwrap();
        assert_eq!(first, later, "kept before 80 %");
        let (due, meshes) = ids.next_renewal().unwrap();
        assert!(due >= t0 + Duration::from_secs(80) && due <= t0 + Duration::from_secs(82));
        assert_eq!(meshes, ["default"]);
        let renewed = ids
            .secret_at(
                &k,
                &web("web-1", "v1"),
                tls,
                &plan,
                t0 + Duration::from_secs(81),
            )
            .unwrap();
        assert_ne!(first, renewed, "renewed after 80 %");
        assert_eq!(ids.info(&k).unwrap().certificate_regenerations, 2);
        // New tags: reissued at once.
        let retagged = ids
            .secret_at(
                &k,
                &web("web-1", "v2"),
                tls,
                &plan,
                t0 + Duration::from_secs(82),
            )
            .unwrap();
        assert_ne!(renewed, retagged);
        // A mesh whose only CA is another one: reissued at once.
        let other = view("ca-2", &["ca-2"], "100s", &secrets);
        let other_tls = other.mtls.as_ref().unwrap();
        let plan = ids.plan(other_tls, std::slice::from_ref(&k), &BTreeMap::new(), false);
        let moved = ids
            .secret_at(
                &k,
                &web("web-1", "v2"),
                other_tls,
                &plan,
                t0 + Duration::from_secs(83),
            )
            .unwrap();
        assert_ne!(retagged, moved);
        let info = ids.info(&k).unwrap();
        assert_eq!(
            (info.certificate_regenerations, info.issued_backend.as_str()),
            (4, "ca-2")
        );
        ids.remove(&k);
        assert!(ids.next_renewal().is_none());
    }

    fn held(mesh_ca: &Any, identity: Option<&Any>) -> BTreeMap<String, String> {
        let mut m = BTreeMap::from([(
            "mesh_ca:secret:default".to_string(),
            weft_sync::delta::any_version(mesh_ca),
        )]);
        if let Some(i) = identity {
            m.insert(
                "identity_cert:secret:default".into(),
                weft_sync::delta::any_version(i),
            );
        }
        m
    }

    // Rotation ca-1 → ca-2 never lets a proxy present a certificate a peer does
    // not trust: ca-2 joins the bundle first, issues only once every proxy has
    // ACKed that bundle, and ca-1 leaves only once every proxy has ACKed its
    // ca-2 certificate.
    #[test]
    fn rotation_trusts_first_then_reissues_then_drops() {
        let ids = Identities::default();
        let secrets = ca_secrets(&["ca-1", "ca-2"]);
        let (a, b) = (key("a"), key("b"));
        let both = [a.clone(), b.clone()];
        let (dp_a, dp_b) = (web("a", "v1"), web("b", "v1"));
        let before = view("ca-1", &["ca-1", "ca-2"], "24h", &secrets);
        let tls = before.mtls.as_ref().unwrap();
        let fp = |backend: &str| {
            tls.cas
                .iter()
                .find(|c| c.backend == backend)
                .unwrap()
                .fingerprint
        };
        let (ca1, ca2) = (fp("ca-1"), fp("ca-2"));
        // Steady state on ca-1.
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        let cert_a = ids.secret(&a, &dp_a, tls, &plan).unwrap();
        let cert_b = ids.secret(&b, &dp_b, tls, &plan).unwrap();
        ids.acked(&a, &held(&plan.ca_secret, Some(&cert_a)));
        ids.acked(&b, &held(&plan.ca_secret, Some(&cert_b)));
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(plan.bundle, BTreeSet::from([ca1]));
        assert!(!plan.rotating);

        // enabledBackend moves to ca-2: both trusted, ca-1 still issues.
        let after = view("ca-2", &["ca-1", "ca-2"], "24h", &secrets);
        let tls = after.mtls.as_ref().unwrap();
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(plan.bundle, BTreeSet::from([ca1, ca2]));
        assert_eq!(plan.issuer.as_ref().unwrap().0, ca1);
        assert!(plan.rotating);
        assert_eq!(
            ids.secret(&a, &dp_a, tls, &plan).unwrap(),
            cert_a,
            "not yet"
        );
        // a trusts both; b not yet: ca-1 goes on issuing.
        assert!(ids.acked(&a, &held(&plan.ca_secret, Some(&cert_a))));
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(plan.issuer.as_ref().unwrap().0, ca1);
        assert!(ids.acked(&b, &held(&plan.ca_secret, Some(&cert_b))));
        // Everyone trusts ca-2: reissue from it; ca-1 stays trusted.
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(plan.issuer.as_ref().unwrap().0, ca2);
        let new_a = ids.secret(&a, &dp_a, tls, &plan).unwrap();
        let new_b = ids.secret(&b, &dp_b, tls, &plan).unwrap();
        assert_eq!(ids.info(&a).unwrap().issued_backend, "ca-2");
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(plan.bundle, BTreeSet::from([ca1, ca2]), "ca-1 until ACKed");
        assert!(ids.acked(&a, &held(&plan.ca_secret, Some(&new_a))));
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(
            plan.bundle,
            BTreeSet::from([ca1, ca2]),
            "b still holds ca-1"
        );
        assert!(ids.acked(&b, &held(&plan.ca_secret, Some(&new_b))));
        // Done: ca-1 dropped.
        let plan = ids.plan(tls, &both, &BTreeMap::new(), false);
        assert_eq!(plan.bundle, BTreeSet::from([ca2]));
        assert!(!plan.rotating);
        let state = ids.mesh_state(tls, &both);
        assert!(
            state.iter().all(|p| p.holds.as_deref() == Some("ca-2")),
            "{state:?}"
        );
    }
}
