//! MeshTLS (Kuma order 300): inbound TLS mode (Strict / Permissive), TLS
//! versions and cipher suites, via `from[]` or (2.10+) `rules[]`.
//! Kuma: `pkg/plugins/policies/meshtls/api/v1alpha1`, `api/common/v1alpha1/tls`.

use super::checks::non_empty;
use super::common::{
    From, Kinds, Rule, check_from, check_rules_exclude_from, check_top, top_or_mesh,
};
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::validate::{Path, Validate, ValidationErrors};
use TargetRefKind::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTLS {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<From<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule<Conf>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Mode {
    /// Only mutual TLS is accepted (Kuma's default).
    #[default]
    Strict,
    /// Plaintext and TLS are accepted too, for migrations.
    Permissive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "TLSAuto")]
    Auto,
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsCipher {
    #[serde(rename = "ECDHE-ECDSA-AES128-GCM-SHA256")]
    EcdheEcdsaAes128GcmSha256,
    #[serde(rename = "ECDHE-ECDSA-AES256-GCM-SHA384")]
    EcdheEcdsaAes256GcmSha384,
    #[serde(rename = "ECDHE-ECDSA-CHACHA20-POLY1305")]
    EcdheEcdsaChacha20Poly1305,
    #[serde(rename = "ECDHE-RSA-AES128-GCM-SHA256")]
    EcdheRsaAes128GcmSha256,
    #[serde(rename = "ECDHE-RSA-AES256-GCM-SHA384")]
    EcdheRsaAes256GcmSha384,
    #[serde(rename = "ECDHE-RSA-CHACHA20-POLY1305")]
    EcdheRsaChacha20Poly1305,
}

/// `tlsVersion`: both bounds default to TLSAuto (Envoy's choice).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<TlsVersion>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ciphers: Option<Vec<TlsCipher>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// Top-level kinds over Kuma 2.9–2.14.
pub const TOP_KINDS: &[TargetRefKind] =
    &[Mesh, MeshSubset, MeshService, MeshServiceSubset, Dataplane];
pub const FROM_KINDS: &[TargetRefKind] = &[Mesh];

impl Validate for MeshTLS {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let (from, rules) = (non_empty(&self.from), non_empty(&self.rules));
        // A section (port) of a Dataplane is an inbound: only `from`/`rules` use it.
        let kinds = Kinds {
            inbound: from || rules,
            ..Kinds::new(TOP_KINDS, &[], FROM_KINDS)
        };
        check_top(path, &self.target_ref, kinds, errs);
        check_rules_exclude_from(path, from, rules, errs);
        let top_is_mesh = top_or_mesh(&self.target_ref).kind == Mesh;
        for (i, r) in self.rules.iter().flatten().enumerate() {
            let p = path.field("rules").index(i).field("default");
            r.default.validate(&p, errs);
            check_conf(&p, &r.default, top_is_mesh, errs);
        }
        check_from(path, &self.from, kinds, errs);
        for (i, f) in self.from.iter().flatten().enumerate() {
            check_conf(
                &path.field("from").index(i).field("default"),
                &f.default,
                top_is_mesh,
                errs,
            );
        }
    }
}

/// Context-free parts only; the Mesh-only rules need the top-level kind (see [`check_conf`]).
impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(v) = &self.tls_version {
            check_version(&path.field("tlsVersion"), v, errs);
        }
    }
}

fn check_conf(path: &Path, conf: &Conf, top_is_mesh: bool, errs: &mut ValidationErrors) {
    if conf.tls_ciphers.as_ref().is_some_and(|c| !c.is_empty()) && !top_is_mesh {
        errs.add(
            &path.field("tlsCiphers"),
            "tlsCiphers can only be defined with top level targetRef kind: Mesh",
        );
    }
    if conf.tls_version.is_some() && !top_is_mesh {
        errs.add(
            &path.field("tlsVersion"),
            "tlsVersion can only be defined with top level targetRef kind: Mesh",
        );
    }
}

/// `min` must not exceed `max` when both are specific versions.
fn check_version(path: &Path, v: &Version, errs: &mut ValidationErrors) {
    let specific = |x: Option<TlsVersion>| x.filter(|x| *x != TlsVersion::Auto);
    if let (Some(min), Some(max)) = (specific(v.min), specific(v.max))
        && min > max
    {
        errs.add(&path.field("min"), "min version must be lower than max");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_messages;

    fn violations(yaml: &str) -> Vec<String> {
        spec_messages::<MeshTLS>(yaml)
    }

    // Mesh-wide TLS settings with an ordered version range are valid.
    #[test]
    fn valid_mesh_wide() {
        let v = violations(
            "targetRef: {kind: Mesh}\nrules:\n- default:\n    mode: Permissive\n    tlsVersion: {min: TLS12, max: TLSAuto}\n    tlsCiphers: [ECDHE-RSA-AES128-GCM-SHA256]\n",
        );
        assert!(v.is_empty(), "{v:?}");
    }

    // Versions and ciphers are Mesh-only; min <= max; from and rules are exclusive.
    #[test]
    fn collects_all() {
        let v = violations(
            "targetRef: {kind: Dataplane, labels: {app: web}}\nfrom:\n- targetRef: {kind: MeshService, name: a}\n  default: {tlsVersion: {min: TLS13, max: TLS12}}\nrules:\n- default: {tlsCiphers: [ECDHE-RSA-AES256-GCM-SHA384], mode: Strict}\n",
        );
        assert_eq!(
            v,
            vec![
                "spec.from: must be empty when 'rules' is defined",
                "spec.rules[0].default.tlsCiphers: tlsCiphers can only be defined with top level targetRef kind: Mesh",
                "spec.from[0].targetRef.kind: value 'MeshService' is not supported; allowed here: Mesh",
                "spec.from[0].default.tlsVersion.min: min version must be lower than max",
                "spec.from[0].default.tlsVersion: tlsVersion can only be defined with top level targetRef kind: Mesh",
            ]
        );
    }

    // Unknown ciphers and versions are refused by the parser.
    #[test]
    fn enums() {
        assert!(
            serde_yaml_ng::from_str::<MeshTLS>("rules: [{default: {tlsCiphers: [RC4]}}]").is_err()
        );
        assert!(
            serde_yaml_ng::from_str::<MeshTLS>("rules: [{default: {tlsVersion: {min: TLS14}}}]")
                .is_err()
        );
    }
}
