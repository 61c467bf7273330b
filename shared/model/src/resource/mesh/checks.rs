//! The Mesh's semantic rules (Kuma's `mesh_validator.go`, the CA plugins'
//! `ValidateBackend` and the OSS limit of one mTLS backend).

use super::{
    CaBackend, CaBackendType, CaCert, CaConf, Constraints, DpCert, MembershipRule, MeshSpec, Mtls,
    RootChain,
};
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use std::collections::BTreeSet;

/// At most this many mTLS backends. Kuma OSS allows one (`AllowedMTLSBackends`);
/// Weft, like Kong Mesh, allows several so a CA can be rotated without downtime
/// (docs/decisions/0010-mesh-mtls.md).
pub const MAX_MTLS_BACKENDS: usize = 8;

/// RSA key sizes Weft generates a builtin CA with: below is weak, above makes key
/// generation slow enough to stall the control plane.
pub const RSA_BITS: std::ops::RangeInclusive<u32> = 2048..=8192;

impl Validate for MeshSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        self.mtls.validate(&path.field("mtls"), errs);
        self.tracing.validate(&path.field("tracing"), errs);
        self.logging.validate(&path.field("logging"), errs);
        self.metrics.validate(&path.field("metrics"), errs);
        self.constraints.validate(&path.field("constraints"), errs);
        // Traffic through a zone egress is identified by its mTLS certificate.
        if self.routing.as_ref().and_then(|r| r.zone_egress) == Some(true) && !self.mtls_enabled() {
            errs.add(&path.field("mtls"), "has to be set when zoneEgress enabled");
        }
        for (i, p) in self.skip_creating_initial_policies.iter().enumerate() {
            if p.is_empty() {
                errs.add(
                    &path.field("skipCreatingInitialPolicies").index(i),
                    "cannot be empty",
                );
            }
        }
    }
}

/// The field naming a backend list's default backend (`defaultBackend`,
/// `enabledBackend`), what it is set to, and Kuma's words when that is no backend.
pub(super) struct DefaultBackend<'a> {
    pub field: &'static str,
    pub name: Option<&'a str>,
    pub unknown: &'static str,
}

/// A backend list (`mtls`, `tracing`, `logging`, `metrics` at `path`): names
/// non-empty and unique (`"x" name is already used ...`), the default backend,
/// when set, one of them, and every backend valid.
pub(super) fn check_backend_list<B: Validate>(
    path: &Path,
    backends: &[B],
    names: &[&str],
    default: DefaultBackend<'_>,
    errs: &mut ValidationErrors,
) {
    let bp = path.field("backends");
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let p = bp.index(i).field("name");
        if name.is_empty() {
            errs.add(&p, "cannot be empty");
        } else if !seen.insert(*name) {
            errs.add(
                &p,
                format!("{name:?} name is already used for another backend"),
            );
        }
    }
    if let Some(d) = default.name.filter(|d| !d.is_empty())
        && !names.contains(&d)
    {
        errs.add(&path.field(default.field), default.unknown);
    }
    for (i, b) in backends.iter().enumerate() {
        b.validate(&bp.index(i), errs);
    }
}

impl Validate for Mtls {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let bp = path.field("backends");
        if self.backends.len() > MAX_MTLS_BACKENDS {
            errs.add(
                &bp,
                format!("cannot have more than {MAX_MTLS_BACKENDS} backends"),
            );
        }
        let names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
        let default = DefaultBackend {
            field: "enabledBackend",
            name: self.enabled_backend.as_deref(),
            unknown: "has to be set to one of the backends in the mesh",
        };
        check_backend_list(path, &self.backends, &names, default, errs);
    }
}

impl Validate for CaBackend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        self.dp_cert.validate(&path.field("dpCert"), errs);
        self.root_chain.validate(&path.field("rootChain"), errs);
        let conf_path = path.field("conf");
        match self.backend_type {
            None => errs.add(&path.field("type"), "must be defined"),
            Some(CaBackendType::Builtin) => {
                if let Some(conf) = &self.conf {
                    check_builtin_conf(&conf_path, conf, errs);
                }
            }
            Some(CaBackendType::Provided) => match &self.conf {
                None => errs.add(&conf_path, "has to be defined for a provided backend"),
                Some(conf) => check_provided_conf(&conf_path, conf, errs),
            },
        }
    }
}

impl Validate for DpCert {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(exp) = self.rotation.as_ref().and_then(|r| r.expiration.as_ref()) {
            exp.check_positive(&path.field("rotation").field("expiration"), errs);
        }
        if let Some(t) = &self.request_timeout {
            t.check_positive(&path.field("requestTimeout"), errs);
        }
    }
}

impl Validate for RootChain {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(t) = &self.request_timeout {
            t.check_positive(&path.field("requestTimeout"), errs);
        }
    }
}

fn check_builtin_conf(path: &Path, conf: &CaConf, errs: &mut ValidationErrors) {
    if let Some(CaCert {
        rsa_bits,
        expiration,
    }) = &conf.ca_cert
    {
        let p = path.field("caCert");
        if let Some(bits) = rsa_bits
            && !RSA_BITS.contains(bits)
        {
            errs.add(
                &p.field("RSAbits"),
                format!(
                    "must be between {} and {}",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ),
            );
        }
        if let Some(e) = expiration {
            e.check_positive(&p.field("expiration"), errs);
        }
    }
    for (name, set) in [("cert", conf.cert.is_some()), ("key", conf.key.is_some())] {
        if set {
            errs.add(&path.field(name), "is not allowed for a builtin backend");
        }
    }
}

fn check_provided_conf(path: &Path, conf: &CaConf, errs: &mut ValidationErrors) {
    for (name, source) in [("cert", &conf.cert), ("key", &conf.key)] {
        match source {
            None => errs.add(&path.field(name), "has to be defined"),
            Some(s) => s.validate(&path.field(name), errs),
        }
    }
    if conf.ca_cert.is_some() {
        errs.add(
            &path.field("caCert"),
            "is not allowed for a provided backend",
        );
    }
}

impl Validate for Constraints {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(dp) = &self.dataplane_proxy {
            let p = path.field("dataplaneProxy");
            dp.requirements.validate(&p.field("requirements"), errs);
            dp.restrictions.validate(&p.field("restrictions"), errs);
        }
    }
}

impl Validate for MembershipRule {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let p = path.field("tags");
        if self.tags.is_empty() {
            errs.add(&p, "must contain at least one tag");
        }
        validate::check_tags(&p, &self.tags, true, errs);
    }
}
