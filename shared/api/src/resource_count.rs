//! Kuma's `resources_count{resource_type}`: how many resources of each type the
//! store holds (decision 0018).
//!
//! Kuma lists every type once a minute on the leader. Weft follows the store
//! with the one [`Reflector`]: a list at start (and after a store failure), then
//! each committed change adjusts its type's count, so the gauge is exact at any
//! scrape and a scrape costs nothing but the encoding. What it keeps is the set
//! of keys per type (a change may repeat what the list already showed, so counts
//! alone would drift): a few dozen bytes per resource, no resource bodies.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use weft_model::resource::{ResourceKey, ResourceType};
use weft_store::ResourceStore;
use weft_store::reflector::{Event, Reflector};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeLabel {
    resource_type: &'static str,
}

/// The gauge family and what it counts; cheap to clone.
#[derive(Clone, Debug)]
pub struct ResourceCounter {
    counts: Family<TypeLabel, Gauge>,
}

/// The keys the counter holds, per type.
#[derive(Default)]
struct Held(HashMap<ResourceType, HashSet<(Option<String>, String)>>);

impl Held {
    fn add(&mut self, key: &ResourceKey) {
        self.0
            .entry(key.ty)
            .or_default()
            .insert((key.mesh.clone(), key.name.clone()));
    }

    fn remove(&mut self, key: &ResourceKey) {
        if let Some(keys) = self.0.get_mut(&key.ty) {
            keys.remove(&(key.mesh.clone(), key.name.clone()));
        }
    }

    fn count(&self, ty: ResourceType) -> usize {
        self.0.get(&ty).map_or(0, HashSet::len)
    }
}

impl ResourceCounter {
    /// Registers `resources_count` in `kuma` (a registry with Kuma's `zone` label).
    pub fn new(kuma: &mut Registry) -> Self {
        let counts = Family::<TypeLabel, Gauge>::default();
        kuma.register(
            "resources_count",
            "Number of resources of each type in the store",
            counts.clone(),
        );
        ResourceCounter { counts }
    }

    /// Follows `store` for as long as it is polled (the reflector relists on
    /// its own after a failure; the counts stay as they were meanwhile).
    pub async fn run(&self, store: Arc<dyn ResourceStore>) {
        let mut reflector = Reflector::new(store, ResourceType::ALL.to_vec());
        let mut held = Held::default();
        loop {
            let touched: Vec<ResourceType> = match reflector.next().await {
                Event::Init { resources, .. } => {
                    held = Held::default();
                    for r in &resources {
                        held.add(&r.key());
                    }
                    ResourceType::ALL.to_vec()
                }
                Event::Changes(changes) => {
                    let mut touched = Vec::new();
                    for c in changes {
                        match c.resource {
                            Some(_) => held.add(&c.key),
                            None => held.remove(&c.key),
                        }
                        touched.push(c.key.ty);
                    }
                    touched
                }
                Event::Broken { error, retry_in } => {
                    tracing::debug!(%error, ?retry_in, "resources_count: store unavailable; counts kept");
                    continue;
                }
            };
            for ty in touched {
                self.set(ty, held.count(ty));
            }
        }
    }

    fn set(&self, ty: ResourceType, count: usize) {
        self.counts
            .get_or_create(&TypeLabel {
                resource_type: ty.name(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prometheus_client::encoding::text::encode;
    use std::time::Duration;
    use weft_model::resource::parse_resource;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).unwrap();
        out
    }

    async fn wait_for(registry: &Registry, line: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let t = text(registry);
            if t.contains(line) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{line} never in\n{t}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // The count per type follows creates and deletes (and counts what the store
    // held before the counter started).
    #[tokio::test]
    async fn counts_follow_the_store() {
        let store: Arc<dyn ResourceStore> = Arc::new(weft_store::MemoryStore::new());
        let mesh = |name: &str| {
            parse_resource(format!("type: Mesh\nname: {name}\n").as_bytes(), false).unwrap()
        };
        store.create(mesh("one")).await.unwrap();
        let mut registry = Registry::default();
        let counter = ResourceCounter::new(&mut registry);
        let run = counter.clone();
        let followed = store.clone();
        let task = tokio::spawn(async move { run.run(followed).await });
        wait_for(&registry, "resources_count{resource_type=\"Mesh\"} 1\n").await;
        wait_for(
            &registry,
            "resources_count{resource_type=\"MeshTimeout\"} 0\n",
        )
        .await;
        store.create(mesh("two")).await.unwrap();
        wait_for(&registry, "resources_count{resource_type=\"Mesh\"} 2\n").await;
        store
            .delete(&ResourceKey::new(ResourceType::Mesh, None, "one"), None)
            .await
            .unwrap();
        wait_for(&registry, "resources_count{resource_type=\"Mesh\"} 1\n").await;
        task.abort();
    }
}
