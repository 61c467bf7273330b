//! MeshTLS (order 300), only in a mesh with mTLS (the API warns otherwise):
//! `mode` (Strict / Permissive) overrides the mesh's mode per inbound; the
//! Mesh-wide `tlsVersion` (min/max) and `tlsCiphers` become
//! `common_tls_context.tls_params` on the inbound's mTLS chain and on every mesh
//! cluster's upstream context (Kuma allows versions and ciphers only on
//! policies whose top-level targetRef is `Mesh`, so every inbound of a proxy
//! carries the same ones).

use super::Ctx;
use crate::xds::generate::model::{InboundTls, ProxyConfig};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::TlsParameters;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::tls_parameters::TlsProtocol;
use weft_model::resource::ResourceType;
use weft_model::resource::mesh::MtlsMode;
use weft_model::resource::policy::meshtls::{Conf, Mode, TlsVersion};

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let Some(tls) = ctx.mtls else {
        return;
    };
    for part in cfg.inbounds.iter_mut() {
        let Some(conf) = ctx.from::<Conf>(ResourceType::MeshTLS, part.port) else {
            continue;
        };
        let mode = match conf.mode {
            Some(Mode::Strict) => MtlsMode::Strict,
            Some(Mode::Permissive) => MtlsMode::Permissive,
            None => tls.mode,
        };
        part.tls = Some(InboundTls {
            mode,
            socket: tls.downstream(params(&conf).as_ref()),
        });
    }
}

/// The TLS parameters of mesh clusters: the proxy's Mesh-wide MeshTLS versions
/// and ciphers (read from its first inbound's rules, which every inbound
/// shares for these fields).
pub fn outbound_params(ctx: &Ctx<'_>) -> Option<TlsParameters> {
    let rules = ctx.rules.types.get(&ResourceType::MeshTLS)?;
    let port = rules.from.keys().next()?;
    let conf: Conf = ctx.from(ResourceType::MeshTLS, *port)?;
    params(&conf)
}

/// `tls_params` for `conf`, `None` when it sets neither versions nor ciphers.
pub fn params(conf: &Conf) -> Option<TlsParameters> {
    let ciphers: Vec<String> = conf
        .tls_ciphers
        .iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if conf.tls_version.is_none() && ciphers.is_empty() {
        return None;
    }
    let version = |v: Option<TlsVersion>| {
        (match v.unwrap_or_default() {
            TlsVersion::Auto => TlsProtocol::TlsAuto,
            TlsVersion::Tls10 => TlsProtocol::TlSv10,
            TlsVersion::Tls11 => TlsProtocol::TlSv11,
            TlsVersion::Tls12 => TlsProtocol::TlSv12,
            TlsVersion::Tls13 => TlsProtocol::TlSv13,
        }) as i32
    };
    let v = conf.tls_version.clone().unwrap_or_default();
    Some(TlsParameters {
        tls_minimum_protocol_version: version(v.min),
        tls_maximum_protocol_version: version(v.max),
        cipher_suites: ciphers,
        ..TlsParameters::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_model::resource::policy::meshtls::{TlsCipher, Version};

    // Versions map to Envoy's enum, ciphers keep Kuma's (OpenSSL) names, and a
    // conf without either sets nothing.
    #[test]
    fn tls_params_from_conf() {
        let conf = Conf {
            tls_version: Some(Version {
                min: Some(TlsVersion::Tls12),
                max: Some(TlsVersion::Tls13),
            }),
            tls_ciphers: Some(vec![TlsCipher::EcdheEcdsaAes128GcmSha256]),
            mode: None,
        };
        let p = params(&conf).unwrap();
        assert_eq!(p.tls_minimum_protocol_version, TlsProtocol::TlSv12 as i32);
        assert_eq!(p.tls_maximum_protocol_version, TlsProtocol::TlSv13 as i32);
        assert_eq!(p.cipher_suites, ["ECDHE-ECDSA-AES128-GCM-SHA256"]);
        assert!(
            params(&Conf {
                mode: Some(Mode::Permissive),
                ..Conf::default()
            })
            .is_none()
        );
    }
}
