//! Global's KDS logic without a network: how a zone's updates are stored (per-zone
//! hashed names, provenance from the stream, rejections, removals and the initial
//! sync's deletions, never another zone's resources), what each zone is offered,
//! and the small stream helpers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use weft_model::resource::{parse_resource, tags};
use weft_store::MemoryStore;
use weft_sync::delta::Resource as DeltaResource;

fn dataplane(mesh: &str, name: &str) -> Resource {
    parse_resource(
        format!(
            "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 10.0.0.1\n  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: {name}\n"
        )
        .as_bytes(),
        false,
    )
    .unwrap()
}

fn ingress(name: &str) -> Resource {
    parse_resource(
        format!(
            "type: ZoneIngress\nname: {name}\nnetworking:\n  address: 10.0.0.9\n  port: 10001\n"
        )
        .as_bytes(),
        false,
    )
    .unwrap()
}

fn mesh(name: &str) -> Resource {
    parse_resource(format!("type: Mesh\nname: {name}\n").as_bytes(), false).unwrap()
}

/// The delta resource a zone sends for `res`.
fn sent(res: &Resource, zone: &str) -> DeltaResource {
    kds::to_delta(&zone_names::stamp_zone(res, zone))
}

async fn store_with_mesh() -> Arc<dyn ResourceStore> {
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    store.create(mesh("default")).await.unwrap();
    store
}

fn from_zone(zone: &str, store: &Arc<dyn ResourceStore>, insights: &ZoneInsights) -> FromZone {
    FromZone {
        zone: zone.into(),
        store: store.clone(),
        insights: insights.clone(),
    }
}

fn update(
    ty: ResourceType,
    kind: UpdateKind,
    resources: Vec<DeltaResource>,
    removed: &[&str],
) -> Update {
    Update {
        type_url: ty.name().into(),
        kind,
        resources,
        removed: removed.iter().map(|s| s.to_string()).collect(),
        completes_initial_sync: false,
    }
}

fn incremental(ty: ResourceType, resources: Vec<DeltaResource>, removed: &[&str]) -> Update {
    update(ty, UpdateKind::Incremental, resources, removed)
}

/// The key zone `zone`'s Dataplane `name` of mesh default is stored under.
fn stored_key(zone: &str, name: &str) -> ResourceKey {
    zone_names::global_key(
        &ResourceKey::new(ResourceType::Dataplane, Some("default"), name),
        zone,
    )
}

async fn get(store: &Arc<dyn ResourceStore>, key: &ResourceKey) -> Option<Resource> {
    store.get(key).await.unwrap()
}

#[tokio::test]
async fn a_zones_dataplane_is_stored_under_its_hashed_name_with_provenance() {
    // A reported Dataplane lands as <name>-<hash>, labelled with its zone, origin zone and display name.
    let store = store_with_mesh().await;
    let insights = ZoneInsights::default();
    let mut z1 = from_zone("zone-1", &store, &insights);
    let rejected = z1
        .apply(incremental(
            ResourceType::Dataplane,
            vec![sent(&dataplane("default", "dp-1"), "zone-1")],
            &[],
        ))
        .await
        .unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    let key = stored_key("zone-1", "dp-1");
    assert_ne!(key.name, "dp-1");
    let stored = get(&store, &key).await.expect("stored");
    let labels = &stored.meta.labels;
    assert_eq!(labels.get(tags::ZONE).map(String::as_str), Some("zone-1"));
    assert_eq!(labels.get(tags::ORIGIN).map(String::as_str), Some("zone"));
    assert_eq!(
        labels.get(tags::DISPLAY_NAME).map(String::as_str),
        Some("dp-1")
    );
    let seen = insights.get("zone-1").expect("insight recorded");
    assert_eq!(
        seen.received.get("Dataplane").map(|c| c.resources_received),
        Some(1)
    );
}

#[tokio::test]
async fn provenance_comes_from_the_stream_not_the_payload() {
    // A payload claiming another zone (or global) is stored as the authenticated zone's.
    let store = store_with_mesh().await;
    let mut z1 = from_zone("zone-1", &store, &ZoneInsights::default());
    let mut lying = dataplane("default", "dp-1");
    lying.meta.labels.insert(tags::ZONE.into(), "zone-2".into());
    let mut d = sent(&lying, "zone-2");
    d.name = "default/dp-1".into();
    let rejected = z1
        .apply(incremental(ResourceType::Dataplane, vec![d], &[]))
        .await
        .unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    let stored = get(&store, &stored_key("zone-1", "dp-1")).await.unwrap();
    assert_eq!(zone_names::zone_of(&stored), Some("zone-1"));
    assert!(get(&store, &stored_key("zone-2", "dp-1")).await.is_none());
}

#[tokio::test]
async fn the_same_name_from_two_zones_never_collides() {
    // Two zones reporting dp-1 give two stored Dataplanes, each its zone's.
    let store = store_with_mesh().await;
    let insights = ZoneInsights::default();
    for zone in ["zone-1", "zone-2"] {
        let mut z = from_zone(zone, &store, &insights);
        let r = z
            .apply(incremental(
                ResourceType::Dataplane,
                vec![sent(&dataplane("default", "dp-1"), zone)],
                &[],
            ))
            .await
            .unwrap();
        assert!(r.is_empty());
    }
    for zone in ["zone-1", "zone-2"] {
        let stored = get(&store, &stored_key(zone, "dp-1")).await.unwrap();
        assert_eq!(zone_names::zone_of(&stored), Some(zone));
    }
}

#[tokio::test]
async fn bad_resources_are_rejected_one_by_one() {
    // A name that does not match its payload, an undecodable payload and a missing mesh are
    // each rejected under the zone's name for them; the good resource in the same update is stored.
    let store = store_with_mesh().await;
    let mut z1 = from_zone("zone-1", &store, &ZoneInsights::default());
    let mut renamed = sent(&dataplane("default", "dp-1"), "zone-1");
    renamed.name = "default/other".into();
    let garbage = DeltaResource {
        name: "default/garbage".into(),
        version: "1".into(),
        resource: Some(weft_sync::delta::Any {
            type_url: kds_proto::KDS_RESOURCE_TYPE_URL.into(),
            value: vec![0xff, 0x01, 0x02],
        }),
        ..Default::default()
    };
    let no_mesh = sent(&dataplane("nowhere", "dp-3"), "zone-1");
    let good = sent(&dataplane("default", "dp-2"), "zone-1");
    let rejected = z1
        .apply(incremental(
            ResourceType::Dataplane,
            vec![renamed, garbage, no_mesh, good],
            &[],
        ))
        .await
        .unwrap();
    let by_name: BTreeMap<&str, &str> = rejected
        .iter()
        .map(|r| (r.name.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        by_name.keys().copied().collect::<Vec<_>>(),
        ["default/garbage", "default/other", "nowhere/dp-3"]
    );
    assert!(by_name["default/other"].contains("does not match"));
    assert!(!by_name["default/garbage"].is_empty());
    assert!(
        by_name["nowhere/dp-3"].contains("nowhere"),
        "{}",
        by_name["nowhere/dp-3"]
    );
    assert!(get(&store, &stored_key("zone-1", "dp-2")).await.is_some());
    assert!(get(&store, &stored_key("zone-1", "dp-1")).await.is_none());
}

#[tokio::test]
async fn a_type_zones_do_not_report_ends_the_stream() {
    // Meshes, secrets or unknown types on ZoneToGlobalSync are a protocol error,
    // not a NACK (policies are reported: a zone's own, kuma.io/origin: zone).
    let store = store_with_mesh().await;
    let mut z1 = from_zone("zone-1", &store, &ZoneInsights::default());
    for ty in ["Mesh", "Secret", "NoSuchType"] {
        let mut u = incremental(ResourceType::Dataplane, vec![], &[]);
        u.type_url = ty.into();
        let err = z1.apply(u).await.unwrap_err();
        assert!(
            err.to_string().contains("zones do not report"),
            "{ty}: {err}"
        );
    }
}

#[tokio::test]
async fn a_zone_never_overwrites_or_deletes_what_it_does_not_own() {
    // Where zone-1's hashed name is held by another zone or by global, zone-1's write is
    // rejected naming the owner, and its removal of that name deletes nothing.
    let store = store_with_mesh().await;
    let mut z1 = from_zone("zone-1", &store, &ZoneInsights::default());
    // Squatters at the keys zone-1 would use for dp-1 and dp-2.
    let mut by_zone2 = zone_names::to_global(&dataplane("default", "x"), "zone-2");
    by_zone2.meta.name = stored_key("zone-1", "dp-1").name;
    store.create(by_zone2).await.unwrap();
    let mut by_global = dataplane("default", "y");
    by_global.meta.name = stored_key("zone-1", "dp-2").name;
    store.create(by_global).await.unwrap();

    let rejected = z1
        .apply(incremental(
            ResourceType::Dataplane,
            vec![
                sent(&dataplane("default", "dp-1"), "zone-1"),
                sent(&dataplane("default", "dp-2"), "zone-1"),
            ],
            &[],
        ))
        .await
        .unwrap();
    let reasons: BTreeMap<&str, &str> = rejected
        .iter()
        .map(|r| (r.name.as_str(), r.reason.as_str()))
        .collect();
    assert!(reasons["default/dp-1"].contains("zone-2"), "{reasons:?}");
    assert!(reasons["default/dp-2"].contains("global"), "{reasons:?}");

    let rejected = z1
        .apply(incremental(
            ResourceType::Dataplane,
            vec![],
            &["default/dp-1", "default/dp-2"],
        ))
        .await
        .unwrap();
    assert!(rejected.is_empty());
    let owner = get(&store, &stored_key("zone-1", "dp-1")).await.unwrap();
    assert_eq!(zone_names::zone_of(&owner), Some("zone-2"));
    assert!(get(&store, &stored_key("zone-1", "dp-2")).await.is_some());
}

#[tokio::test]
async fn removals_delete_the_zones_own_resources() {
    // A removed name deletes the zone's stored copy; a malformed name is ignored.
    let store = store_with_mesh().await;
    let mut z1 = from_zone("zone-1", &store, &ZoneInsights::default());
    z1.apply(incremental(
        ResourceType::Dataplane,
        vec![sent(&dataplane("default", "dp-1"), "zone-1")],
        &[],
    ))
    .await
    .unwrap();
    let rejected = z1
        .apply(incremental(
            ResourceType::Dataplane,
            vec![],
            &["default/dp-1", "no-mesh-part"],
        ))
        .await
        .unwrap();
    assert!(rejected.is_empty());
    assert!(get(&store, &stored_key("zone-1", "dp-1")).await.is_none());
}

#[tokio::test]
async fn the_initial_sync_deletes_what_the_zone_no_longer_has() {
    // On InitialLast, the zone's stored resources of the type missing from full_state go; other zones' stay.
    let store = store_with_mesh().await;
    let insights = ZoneInsights::default();
    let mut z1 = from_zone("zone-1", &store, &insights);
    let mut z2 = from_zone("zone-2", &store, &insights);
    z1.apply(incremental(
        ResourceType::Dataplane,
        vec![
            sent(&dataplane("default", "dp-1"), "zone-1"),
            sent(&dataplane("default", "dp-2"), "zone-1"),
        ],
        &[],
    ))
    .await
    .unwrap();
    z2.apply(incremental(
        ResourceType::Dataplane,
        vec![sent(&dataplane("default", "dp-2"), "zone-2")],
        &[],
    ))
    .await
    .unwrap();
    // zone-1 reconnects and now has only dp-1.
    let full_state = BTreeSet::from(["default/dp-1".to_string()]);
    let rejected = z1
        .apply(update(
            ResourceType::Dataplane,
            UpdateKind::InitialLast { full_state },
            vec![],
            &[],
        ))
        .await
        .unwrap();
    assert!(rejected.is_empty());
    assert!(get(&store, &stored_key("zone-1", "dp-1")).await.is_some());
    assert!(get(&store, &stored_key("zone-1", "dp-2")).await.is_none());
    assert!(get(&store, &stored_key("zone-2", "dp-2")).await.is_some());
}

#[tokio::test]
async fn a_zone_ingress_names_its_zone() {
    // A reported ZoneIngress (global-scoped) is stored hashed, with spec.zone set to the stream's zone.
    let store = store_with_mesh().await;
    let mut z1 = from_zone("zone-1", &store, &ZoneInsights::default());
    let rejected = z1
        .apply(incremental(
            ResourceType::ZoneIngress,
            vec![sent(&ingress("ingress-1"), "zone-1")],
            &[],
        ))
        .await
        .unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    let key = zone_names::global_key(
        &ResourceKey::new(ResourceType::ZoneIngress, None, "ingress-1"),
        "zone-1",
    );
    let stored = get(&store, &key).await.expect("stored");
    match &stored.spec {
        Spec::ZoneIngress(s) => assert_eq!(s.zone.as_deref(), Some("zone-1")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_zone_is_offered_globals_resources_and_other_zones_ingresses_only() {
    // offer_for(zone): global's own resources (stamped global), other zones' ingresses and
    // egresses; never the zone's own ingress, nor any zone's Dataplanes.
    let offer = offer_for("zone-1".into());
    let own = zone_names::to_global(&ingress("i"), "zone-1");
    let other = zone_names::to_global(&ingress("i"), "zone-2");
    let other_dp = zone_names::to_global(&dataplane("default", "dp"), "zone-2");
    let global_mesh = mesh("default");
    assert!(offer(&own).is_none());
    assert!(offer(&other_dp).is_none());
    let offered = offer(&other).expect("other zone's ingress");
    assert!(kds::is_from_global(&offered));
    assert!(kds::is_from_global(
        &offer(&global_mesh).expect("global's mesh")
    ));
    // What every zone gets alike never includes zone-owned types.
    for t in global_owned_types() {
        assert!(!kds::ZONE_TO_GLOBAL_TYPES.contains(&t), "{t}");
    }
}

#[test]
fn the_zone_version_is_read_from_metadata() {
    // x-weft-version travels as metadata; absent or non-ASCII is None.
    let mut md = tonic::metadata::MetadataMap::new();
    assert_eq!(zone_version(&md), None);
    md.insert(VERSION_HEADER, "1.2.3".parse().unwrap());
    assert_eq!(zone_version(&md).as_deref(), Some("1.2.3"));
}

#[tokio::test]
async fn a_stream_ends_with_the_status_it_is_given() {
    // with_end yields the pump's messages, then ends with the status sent on `end` (e.g. revoked token).
    use futures::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (end_tx, end_rx) = tokio::sync::oneshot::channel();
    let mut s = with_end(rx, end_rx);
    tx.send(1u32).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), 1);
    end_tx.send(Status::unauthenticated("revoked")).unwrap();
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(s.next().await.is_none());
    // Without a status, the stream ends when the pump does.
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<Status>();
    drop(end_tx);
    drop(tx);
    assert!(with_end(rx, end_rx).next().await.is_none());
}

// A token for another zone is PERMISSION_DENIED; a missing, revoked or otherwise
// unacceptable one is UNAUTHENTICATED (DESIGN §5); the message says what to do.
#[test]
fn token_refusals_map_to_their_grpc_codes() {
    use weft_security::tokens::{PermissionDenied, TokenError, Unauthenticated, ZONE_TOKEN};
    let denied = refusal(TokenError::PermissionDenied(
        PermissionDenied::ZoneMismatch {
            token_zone: "zone-a".into(),
            zone: "zone-b".into(),
        },
    ));
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(
        denied
            .message()
            .contains("weft-global token zone --zone zone-b"),
        "{}",
        denied.message()
    );
    for e in [
        Unauthenticated::Missing { kind: ZONE_TOKEN },
        Unauthenticated::Revoked {
            kind: ZONE_TOKEN,
            jti: "j1".into(),
        },
    ] {
        let status = refusal(TokenError::Unauthenticated(e.clone()));
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{e}");
        assert_eq!(status.message(), e.to_string());
    }
}
