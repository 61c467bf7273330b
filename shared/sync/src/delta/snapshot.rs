//! Resource snapshots: what a sender offers, per type URL, name → (version, payload).
//!
//! A [`Snapshot`] is immutable once built and cheap to clone: the type map and every
//! type's resource map sit behind `Arc`s, so one snapshot can be handed to many
//! streams, and a new snapshot that changes one type shares all the others. The
//! sender uses pointer equality of a type's map to skip types that did not change.

use envoy_types::pb::google::protobuf::Any;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One resource as offered: its version (a content hash chosen by the caller) and
/// its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub version: String,
    pub payload: Any,
}

/// The resources of one type, ordered by name (so responses are deterministic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeResources {
    entries: BTreeMap<String, Arc<Entry>>,
}

impl TypeResources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `name`. `version` must change whenever the payload does
    /// (for KDS: `Resource::content_hash()`; for Envoy: [`any_version`]).
    pub fn insert(&mut self, name: impl Into<String>, version: impl Into<String>, payload: Any) {
        let entry = Entry {
            version: version.into(),
            payload,
        };
        self.entries.insert(name.into(), Arc::new(entry));
    }

    /// Adds or replaces `name`, versioned by [`any_version`] of the payload.
    pub fn insert_hashed(&mut self, name: impl Into<String>, payload: Any) {
        let version = any_version(&payload);
        self.insert(name, version, payload);
    }

    /// Adds or replaces `name` with an entry shared with other snapshots (e.g. one
    /// service's endpoints offered to every proxy of a mesh).
    pub fn insert_shared(&mut self, name: impl Into<String>, entry: Arc<Entry>) {
        self.entries.insert(name.into(), entry);
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<Entry>> {
        self.entries.remove(name)
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name).map(|e| e.as_ref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Resources in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(n, e)| (n.as_str(), e.as_ref()))
    }

    /// name → version, e.g. to compare with what a receiver holds.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|(n, e)| (n.clone(), e.version.clone()))
            .collect()
    }
}

impl<N: Into<String>> FromIterator<(N, Entry)> for TypeResources {
    fn from_iter<I: IntoIterator<Item = (N, Entry)>>(iter: I) -> Self {
        TypeResources {
            entries: iter
                .into_iter()
                .map(|(n, e)| (n.into(), Arc::new(e)))
                .collect(),
        }
    }
}

/// Everything a sender offers on a stream, per type URL. A type absent from the
/// snapshot is served as empty (a receiver subscribed to it is told it has nothing).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    types: Arc<BTreeMap<String, Arc<TypeResources>>>,
    /// When the feed that built it published it (for propagation latency); not
    /// part of its content.
    published: Option<tokio::time::Instant>,
}

/// Snapshots are equal when they offer the same resources, whenever published.
impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.types == other.types
    }
}

impl Snapshot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records when this snapshot was published.
    pub fn stamp(&mut self, at: tokio::time::Instant) {
        self.published = Some(at);
    }

    /// When the snapshot was published, if its feed said.
    pub fn published_at(&self) -> Option<tokio::time::Instant> {
        self.published
    }

    /// Sets one type's resources, keeping every other type shared with `self`'s
    /// previous value.
    pub fn set_type(&mut self, type_url: impl Into<String>, resources: TypeResources) {
        self.set_type_shared(type_url, Arc::new(resources));
    }

    /// Like [`Snapshot::set_type`] with an already shared map (one type's resources
    /// reused by several snapshots, e.g. the same meshes for every zone).
    pub fn set_type_shared(&mut self, type_url: impl Into<String>, resources: Arc<TypeResources>) {
        Arc::make_mut(&mut self.types).insert(type_url.into(), resources);
    }

    /// Builder form of [`Snapshot::set_type`].
    pub fn with_type(mut self, type_url: impl Into<String>, resources: TypeResources) -> Self {
        self.set_type(type_url, resources);
        self
    }

    pub fn remove_type(&mut self, type_url: &str) {
        if self.types.contains_key(type_url) {
            Arc::make_mut(&mut self.types).remove(type_url);
        }
    }

    pub fn get(&self, type_url: &str) -> Option<&TypeResources> {
        self.types.get(type_url).map(|t| t.as_ref())
    }

    pub(crate) fn get_shared(&self, type_url: &str) -> Option<&Arc<TypeResources>> {
        self.types.get(type_url)
    }

    /// Type URLs present, in order.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}

/// A stable version for a payload: hex SHA-256 over its type URL and bytes. Use it
/// for Envoy resources (the same config always gets the same version, across
/// restarts, so a reconnecting Envoy is not sent what it already has).
pub fn any_version(payload: &Any) -> String {
    let mut h = Sha256::new();
    h.update((payload.type_url.len() as u64).to_be_bytes());
    h.update(payload.type_url.as_bytes());
    h.update(&payload.value);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(v: &str) -> Any {
        Any {
            type_url: "t".into(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn set_type_shares_untouched_types() {
        // Replacing one type leaves the other types' maps shared, not copied.
        let mut a = Snapshot::new();
        a.set_type(
            "A",
            [(
                "x",
                Entry {
                    version: "1".into(),
                    payload: any("x"),
                },
            )]
            .into_iter()
            .collect(),
        );
        a.set_type("B", TypeResources::new());
        let mut b = a.clone();
        b.set_type(
            "B",
            [(
                "y",
                Entry {
                    version: "1".into(),
                    payload: any("y"),
                },
            )]
            .into_iter()
            .collect(),
        );
        let (Some(a_a), Some(b_a)) = (a.get_shared("A"), b.get_shared("A")) else {
            panic!("type A missing");
        };
        assert!(Arc::ptr_eq(a_a, b_a));
        assert_eq!(a.get("B").map(TypeResources::len), Some(0));
        assert_eq!(b.get("B").map(TypeResources::len), Some(1));
    }

    #[test]
    fn any_version_is_stable_and_content_sensitive() {
        // Equal payloads hash equal; a different byte or type URL changes the version.
        assert_eq!(any_version(&any("a")), any_version(&any("a")));
        assert_ne!(any_version(&any("a")), any_version(&any("b")));
        let other_type = Any {
            type_url: "u".into(),
            value: b"a".to_vec(),
        };
        assert_ne!(any_version(&any("a")), any_version(&other_type));
        assert_eq!(any_version(&any("a")).len(), 64);
    }
}
