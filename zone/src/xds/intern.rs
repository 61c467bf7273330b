//! Sharing identical per-type resource sets between the snapshots of a mesh's
//! proxies (most proxies of a mesh get the same clusters and endpoints), and across
//! rebuilds (an unchanged type keeps its `Arc`, which the delta sender recognises
//! by pointer and skips without diffing).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use weft_sync::delta::{Snapshot, TypeResources};

/// One mesh's shared type maps: those used since the last rebuild started, and
/// those of the rebuild before (dropped when the next rebuild starts).
#[derive(Default)]
pub struct Interner {
    current: HashMap<(String, u64), Vec<Arc<TypeResources>>>,
    previous: HashMap<(String, u64), Vec<Arc<TypeResources>>>,
}

fn fingerprint(resources: &TypeResources) -> u64 {
    let mut h = DefaultHasher::new();
    for (name, entry) in resources.iter() {
        name.hash(&mut h);
        entry.version.hash(&mut h);
    }
    h.finish()
}

/// Same names with the same versions (versions are content hashes).
fn same(a: &TypeResources, b: &TypeResources) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((na, ea), (nb, eb))| na == nb && ea.version == eb.version)
}

impl Interner {
    /// Starts a rebuild: what no proxy used during the last one is forgotten.
    pub fn rotate(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// `snapshot` with every type map replaced by an equal shared one when known.
    pub fn intern(&mut self, snapshot: &Snapshot) -> Snapshot {
        let mut out = Snapshot::new();
        for type_url in snapshot.type_urls() {
            let Some(resources) = snapshot.get(type_url) else {
                continue;
            };
            let key = (type_url.to_string(), fingerprint(resources));
            let shared = self.lookup(&key, resources).unwrap_or_else(|| {
                let fresh = Arc::new(resources.clone());
                self.current.entry(key).or_default().push(fresh.clone());
                fresh
            });
            out.set_type_shared(type_url, shared);
        }
        out
    }

    fn lookup(
        &mut self,
        key: &(String, u64),
        resources: &TypeResources,
    ) -> Option<Arc<TypeResources>> {
        if let Some(found) = self
            .current
            .get(key)
            .and_then(|c| c.iter().find(|c| same(c, resources)))
        {
            return Some(found.clone());
        }
        let found = self
            .previous
            .get(key)
            .and_then(|c| c.iter().find(|c| same(c, resources)))?
            .clone();
        self.current
            .entry(key.clone())
            .or_default()
            .push(found.clone());
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use weft_sync::delta::Any;

    fn snap(v: &str) -> Snapshot {
        let mut t = TypeResources::new();
        t.insert_hashed(
            "a",
            Any {
                type_url: "t".into(),
                value: v.as_bytes().to_vec(),
            },
        );
        Snapshot::new().with_type("T", t)
    }

    // Equal type maps come out as one shared map, also one rebuild later; not two later.
    #[test]
    fn shares_equal_maps_across_one_rotation() {
        let mut i = Interner::default();
        let a = i.intern(&snap("1"));
        let b = i.intern(&snap("1"));
        assert!(std::ptr::eq(a.get("T").unwrap(), b.get("T").unwrap()));
        let c = i.intern(&snap("2"));
        assert!(!std::ptr::eq(a.get("T").unwrap(), c.get("T").unwrap()));
        i.rotate();
        let d = i.intern(&snap("1"));
        assert!(std::ptr::eq(a.get("T").unwrap(), d.get("T").unwrap()));
        i.rotate();
        i.rotate();
        let e = i.intern(&snap("1"));
        assert!(!std::ptr::eq(a.get("T").unwrap(), e.get("T").unwrap()));
        assert_eq!(a, e);
    }
}
