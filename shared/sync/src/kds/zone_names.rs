//! How a zone's resources are named and labelled on global, so that names never
//! collide across zones and a zone can never write another zone's resources.
//!
//! Kuma's hash-suffix scheme (`pkg/kds/hash`): the stored name is
//! `<name>-<16 chars>` where the suffix is FNV-1a 64 of `mesh + name + zone`
//! (no separator), hex-encoded and mapped onto the alphabet
//! `bcdfghjklmnpqrstvwxz2456789`; `kuma.io/display-name` keeps the original name,
//! `kuma.io/zone` and `kuma.io/origin: zone` record provenance — always set by
//! global from the AUTHENTICATED zone, never taken from the payload.

use super::ORIGIN_ZONE;
use weft_model::resource::{Resource, ResourceKey, Spec, tags};

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const MAX_BASE: usize = 253 - 17;

/// `name-<hash>` for a resource `name` in `mesh` from `zone`.
pub fn hashed_name(mesh: Option<&str>, name: &str, zone: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in mesh
        .unwrap_or_default()
        .bytes()
        .chain(name.bytes())
        .chain(zone.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let suffix: String = hex_lower(h)
        .bytes()
        .map(|c| ALPHABET[usize::from(c) % ALPHABET.len()] as char)
        .collect();
    let base = if name.len() > MAX_BASE {
        &name[..MAX_BASE]
    } else {
        name
    };
    format!("{base}-{suffix}")
}

fn hex_lower(v: u64) -> String {
    format!("{v:016x}")
}

/// The key a zone's resource is stored under on global.
pub fn global_key(zone_key: &ResourceKey, zone: &str) -> ResourceKey {
    ResourceKey {
        ty: zone_key.ty,
        mesh: zone_key.mesh.clone(),
        name: hashed_name(zone_key.mesh.as_deref(), &zone_key.name, zone),
    }
}

/// What a zone sends for one of its resources: labelled as the zone's, and for
/// zone proxies, naming the zone. Global applies the same stamps again on receipt.
pub fn stamp_zone(res: &Resource, zone: &str) -> Resource {
    let mut out = res.clone();
    out.meta
        .labels
        .insert(tags::ORIGIN.into(), ORIGIN_ZONE.into());
    out.meta.labels.insert(tags::ZONE.into(), zone.into());
    out.meta.version = 0;
    out.meta.creation_time = None;
    out.meta.modification_time = None;
    match &mut out.spec {
        Spec::ZoneIngress(s) => s.zone = Some(zone.into()),
        Spec::ZoneEgress(s) => s.zone = Some(zone.into()),
        _ => {}
    }
    out
}

/// The resource global stores for `res` received from the authenticated `zone`.
pub fn to_global(res: &Resource, zone: &str) -> Resource {
    let mut out = stamp_zone(res, zone);
    out.meta
        .labels
        .insert(tags::DISPLAY_NAME.into(), res.meta.name.clone());
    out.meta.name = hashed_name(res.meta.mesh.as_deref(), &res.meta.name, zone);
    out
}

/// The inverse of [`to_global`]: the resource as the zone sent it (for the versions
/// global declares when the zone reconnects).
pub fn from_global(stored: &Resource) -> Option<Resource> {
    let mut out = stored.clone();
    let name = out.meta.labels.remove(tags::DISPLAY_NAME)?;
    out.meta.name = name;
    out.meta.version = 0;
    out.meta.creation_time = None;
    out.meta.modification_time = None;
    Some(out)
}

/// Which zone a stored resource belongs to.
pub fn zone_of(res: &Resource) -> Option<&str> {
    match res.meta.labels.get(tags::ORIGIN).map(String::as_str) {
        Some(ORIGIN_ZONE) => res.meta.labels.get(tags::ZONE).map(String::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_model::resource::parse_resource;

    // The suffix matches Kuma's golden files (pkg/kds/context/testdata).
    #[test]
    fn kuma_golden_names() {
        assert_eq!(
            hashed_name(Some("default"), "redis-zone-1", "zone-1"),
            "redis-zone-1-2v6wfvvcvbc9f55d"
        );
        assert_eq!(
            hashed_name(Some("default"), "redis-zone-2", "zone-2"),
            "redis-zone-2-ff29vc4685c6f594"
        );
    }

    // The same name from two zones never collides, and from_global inverts to_global.
    #[test]
    fn per_zone_names_and_inverse() {
        let dp = parse_resource(
            b"type: Dataplane\nname: dp-1\nmesh: default\nnetworking:\n  address: 10.0.0.1\n  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n",
            false,
        )
        .unwrap();
        let a = to_global(&dp, "zone-a");
        let b = to_global(&dp, "zone-b");
        assert_ne!(a.meta.name, b.meta.name);
        assert_eq!(zone_of(&a), Some("zone-a"));
        assert!(a.validate().is_ok(), "{:?}", a.validate());
        let sent = stamp_zone(&dp, "zone-a");
        assert_eq!(from_global(&a).unwrap().content_hash(), sent.content_hash());
    }

    // A payload claiming another zone is re-stamped with the authenticated one.
    #[test]
    fn provenance_comes_from_the_stream() {
        let ing = parse_resource(
            b"type: ZoneIngress\nname: ingress\nlabels:\n  kuma.io/zone: zone-b\nzone: zone-b\nnetworking:\n  address: 10.0.0.2\n  port: 10001\n",
            false,
        )
        .unwrap();
        let stored = to_global(&ing, "zone-a");
        assert_eq!(zone_of(&stored), Some("zone-a"));
        let Spec::ZoneIngress(s) = &stored.spec else {
            panic!()
        };
        assert_eq!(s.zone.as_deref(), Some("zone-a"));
    }
}
