//! What this zone's ingresses offer other zones: every local ZoneIngress carries
//! the zone's available services ([`weft_model::resource::zone::available_services`]:
//! per mesh and tag set of a healthy inbound, with instance counts), recomputed
//! on every change of the zone's Dataplanes or ingresses — not on a timer (Kuma
//! refreshes every second). A federated zone reports its ZoneIngresses to global,
//! which fans them out to the other zones.
//!
//! [`run`] is a restartable component; [`reconcile`] does one pass.

use weft_model::resource::zone::available_services;
use weft_model::resource::{Resource, ResourceType, Spec, tags};
use weft_runtime::health::Reporter;
use weft_store::{Page, ResourceStore, StoreError};

/// Follows the zone's Dataplanes and ZoneIngresses until dropped, keeping every
/// local ingress's `availableServices` current.
pub async fn run(store: std::sync::Arc<dyn ResourceStore>, zone: String, reporter: Reporter) {
    let (read, zone) = (store.clone(), zone.as_str());
    crate::follow::reconcile_on_changes(
        store,
        vec![ResourceType::Dataplane, ResourceType::ZoneIngress],
        "available services: cannot update the zone's ingresses",
        reporter,
        || reconcile(read.as_ref(), zone),
    )
    .await
}

/// Writes the zone's available services into every local ZoneIngress that does
/// not hold them yet; returns how many it updated. A concurrent change makes a
/// write fail with a conflict, and the change that caused it runs this again.
pub async fn reconcile(store: &dyn ResourceStore, zone: &str) -> Result<usize, StoreError> {
    let local: Vec<Resource> = store
        .list(ResourceType::ZoneIngress, None, Page::all())
        .await?
        .items
        .into_iter()
        .filter(|r| matches!(&r.spec, Spec::ZoneIngress(s) if is_local(r, s.zone.as_deref(), zone)))
        .collect();
    // No ingress in this zone (the common case): nothing to list the Dataplanes
    // for on each of their changes.
    if local.is_empty() {
        return Ok(0);
    }
    let dataplanes = store
        .list(ResourceType::Dataplane, None, Page::all())
        .await?
        .items;
    let offered = available_services(dataplanes.iter());
    let mut updated = 0;
    for ingress in local {
        let Spec::ZoneIngress(spec) = &ingress.spec else {
            continue;
        };
        if spec.available_services == offered {
            continue;
        }
        let version = ingress.meta.version;
        let mut next: Resource = ingress.clone();
        if let Spec::ZoneIngress(s) = &mut next.spec {
            s.available_services = offered.clone();
        }
        weft_store::put(store, next, Some(version)).await?;
        tracing::debug!(ingress = %ingress.meta.name, services = offered.len(), "available services updated");
        updated += 1;
    }
    Ok(updated)
}

/// An ingress of this zone: not received from global, and naming this zone or
/// none.
fn is_local(res: &Resource, spec_zone: Option<&str>, zone: &str) -> bool {
    res.meta.labels.get(tags::ORIGIN).map(String::as_str) != Some("global")
        && spec_zone.is_none_or(|z| z.is_empty() || z == zone)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_model::resource::parse_resource;
    use weft_store::MemoryStore;

    // Local ingresses get the zone's services with instance counts; an ingress
    // from another zone is left alone; a second pass with nothing new writes
    // nothing.
    #[tokio::test]
    async fn local_ingresses_carry_the_zones_services() {
        let store = MemoryStore::new();
        let backends = (1..=2).map(|i| {
            format!(
                "type: Dataplane\nmesh: default\nname: backend-{i}\nnetworking:\n  address: 10.0.0.{i}\n  inbound:\n    - {{port: 80, tags: {{kuma.io/service: backend}}}}\n"
            )
        });
        let docs = [
            "type: Mesh\nname: default\n".to_string(),
            "type: ZoneIngress\nname: ingress-1\nnetworking: {address: 10.0.0.9, port: 10001, advertisedAddress: 1.2.3.4, advertisedPort: 10001}\n".to_string(),
            "type: ZoneIngress\nname: remote\nlabels: {kuma.io/origin: global}\nzone: west\nnetworking: {address: 10.1.0.9, port: 10001}\n".to_string(),
        ];
        for yaml in docs.into_iter().chain(backends) {
            let res = parse_resource(yaml.as_bytes(), false).unwrap();
            weft_store::put(&store, res, None).await.unwrap();
        }
        assert_eq!(reconcile(&store, "east").await.unwrap(), 1);
        let get = |name: &str| {
            let key = weft_model::resource::ResourceKey::new(ResourceType::ZoneIngress, None, name);
            let store = &store;
            async move {
                match store.get(&key).await.unwrap().unwrap().spec {
                    Spec::ZoneIngress(s) => s.available_services,
                    _ => unreachable!(),
                }
            }
        };
        let offered = get("ingress-1").await;
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].instances, 2);
        assert_eq!(offered[0].mesh.as_deref(), Some("default"));
        assert!(get("remote").await.is_empty(), "another zone's ingress");
        assert_eq!(reconcile(&store, "east").await.unwrap(), 0, "nothing new");
    }
}
