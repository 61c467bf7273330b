//! The write planner both backends share.
//!
//! [`plan`] turns a batch of operations into the changes it commits, checking every
//! precondition (existence, expected version, mesh) against the stored state plus
//! the effects of the earlier operations in the same batch. It writes nothing: the
//! backend applies the returned changes atomically, or nothing when planning fails.
//! Each change takes the next revision, which is also the version of what it wrote.

use super::{Change, ChangeKind, StoreError, WriteOp};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

/// One operation of a write.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Create(Resource),
    Update {
        resource: Resource,
        expected: Option<u64>,
    },
    Delete {
        key: ResourceKey,
        expected: Option<u64>,
    },
    /// Create or replace, no version check.
    Upsert(Resource),
    /// Delete when present.
    DeleteIfPresent(ResourceKey),
}

impl From<WriteOp> for Op {
    fn from(op: WriteOp) -> Self {
        match op {
            WriteOp::Upsert(r) => Op::Upsert(r),
            WriteOp::Delete(k) => Op::DeleteIfPresent(k),
        }
    }
}

impl Op {
    /// Names of the Meshes the operations may delete (their contents must be known
    /// to the planner, see [`State::mesh_members`]).
    pub(crate) fn deleted_meshes(ops: &[Op]) -> BTreeSet<String> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Delete { key, .. } | Op::DeleteIfPresent(key)
                    if key.ty == ResourceType::Mesh =>
                {
                    Some(key.name.clone())
                }
                _ => None,
            })
            .collect()
    }
}

/// What the planner needs to know of a stored resource. Keeping it this small
/// means a record whose spec no longer decodes can still be replaced or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) version: u64,
    pub(crate) creation_time: Option<OffsetDateTime>,
}

impl Stamp {
    pub(crate) fn of(resource: &Resource) -> Stamp {
        Stamp {
            version: resource.meta.version,
            creation_time: resource.meta.creation_time,
        }
    }
}

/// The stored state as the planner reads it.
pub(crate) trait State {
    type Error: From<StoreError>;

    fn stamp(&mut self, key: &ResourceKey) -> Result<Option<Stamp>, Self::Error>;

    /// Keys of every stored mesh-scoped resource inside `mesh`.
    fn mesh_members(&mut self, mesh: &str) -> Result<Vec<ResourceKey>, Self::Error>;
}

/// The current time as stored: whole milliseconds, so it survives RFC 3339.
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// The changes `ops` make to `state`, numbered from `revision + 1`.
pub(crate) fn plan<S: State>(
    state: &mut S,
    revision: u64,
    now: OffsetDateTime,
    ops: &[Op],
) -> Result<Vec<Change>, S::Error> {
    let mut planner = Planner {
        state,
        overlay: BTreeMap::new(),
        revision,
        now,
        changes: Vec::new(),
    };
    for op in ops {
        planner.apply(op)?;
    }
    Ok(planner.changes)
}

struct Planner<'a, S> {
    state: &'a mut S,
    /// What earlier operations of the batch wrote (`None`: deleted).
    overlay: BTreeMap<ResourceKey, Option<Stamp>>,
    revision: u64,
    now: OffsetDateTime,
    changes: Vec<Change>,
}

impl<S: State> Planner<'_, S> {
    fn apply(&mut self, op: &Op) -> Result<(), S::Error> {
        match op {
            Op::Create(resource) => {
                let key = resource.key();
                if self.get(&key)?.is_some() {
                    return Err(StoreError::AlreadyExists(key).into());
                }
                self.check_mesh(&key)?;
                self.write(resource.clone(), None);
            }
            Op::Update { resource, expected } => {
                let key = resource.key();
                self.check_mesh(&key)?;
                let current = self.existing(&key, *expected)?;
                self.write(resource.clone(), Some(current));
            }
            Op::Delete { key, expected } => {
                self.existing(key, *expected)?;
                self.remove(key)?;
            }
            Op::Upsert(resource) => {
                let key = resource.key();
                self.check_mesh(&key)?;
                let current = self.get(&key)?;
                self.write(resource.clone(), current);
            }
            Op::DeleteIfPresent(key) => {
                if self.get(key)?.is_some() {
                    self.remove(key)?;
                }
            }
        }
        Ok(())
    }

    fn get(&mut self, key: &ResourceKey) -> Result<Option<Stamp>, S::Error> {
        match self.overlay.get(key) {
            Some(stamp) => Ok(*stamp),
            None => self.state.stamp(key),
        }
    }

    /// The stored resource, which must exist and be at `expected` when given.
    fn existing(&mut self, key: &ResourceKey, expected: Option<u64>) -> Result<Stamp, S::Error> {
        let Some(current) = self.get(key)? else {
            return Err(StoreError::NotFound(key.clone()).into());
        };
        match expected {
            Some(expected) if expected != current.version => Err(StoreError::Conflict {
                key: key.clone(),
                expected,
                actual: current.version,
            }
            .into()),
            _ => Ok(current),
        }
    }

    /// A mesh-scoped resource needs its Mesh.
    fn check_mesh(&mut self, key: &ResourceKey) -> Result<(), S::Error> {
        if !key.ty.is_mesh_scoped() {
            return Ok(());
        }
        let mesh = key.mesh.clone().unwrap_or_default();
        let mesh_key = ResourceKey::new(ResourceType::Mesh, None, &mesh);
        if self.get(&mesh_key)?.is_none() {
            return Err(StoreError::MeshNotFound(mesh).into());
        }
        Ok(())
    }

    fn write(&mut self, mut resource: Resource, current: Option<Stamp>) {
        self.revision += 1;
        resource.meta.version = self.revision;
        resource.meta.modification_time = Some(self.now);
        let kind = match current {
            Some(current) => {
                resource.meta.creation_time = current.creation_time.or(Some(self.now));
                ChangeKind::Updated
            }
            None => {
                resource.meta.creation_time = Some(self.now);
                ChangeKind::Created
            }
        };
        let key = resource.key();
        self.overlay.insert(key.clone(), Some(Stamp::of(&resource)));
        self.changes.push(Change {
            revision: self.revision,
            kind,
            key,
            resource: Some(resource),
        });
    }

    /// Deletes `key`; a Mesh takes everything inside it along, before itself.
    fn remove(&mut self, key: &ResourceKey) -> Result<(), S::Error> {
        if key.ty == ResourceType::Mesh {
            for member in self.members(&key.name)? {
                self.record_delete(member);
            }
        }
        self.record_delete(key.clone());
        Ok(())
    }

    fn record_delete(&mut self, key: ResourceKey) {
        self.revision += 1;
        self.overlay.insert(key.clone(), None);
        self.changes.push(Change {
            revision: self.revision,
            kind: ChangeKind::Deleted,
            key,
            resource: None,
        });
    }

    /// Stored members of `mesh` with this batch's writes applied, in key order.
    fn members(&mut self, mesh: &str) -> Result<BTreeSet<ResourceKey>, S::Error> {
        let mut keys: BTreeSet<ResourceKey> = self.state.mesh_members(mesh)?.into_iter().collect();
        for (key, value) in &self.overlay {
            if key.ty.is_mesh_scoped() && key.mesh.as_deref() == Some(mesh) {
                if value.is_some() {
                    keys.insert(key.clone());
                } else {
                    keys.remove(key);
                }
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Map(BTreeMap<ResourceKey, Resource>);

    impl State for Map {
        type Error = StoreError;
        fn stamp(&mut self, key: &ResourceKey) -> Result<Option<Stamp>, StoreError> {
            Ok(self.0.get(key).map(Stamp::of))
        }
        fn mesh_members(&mut self, mesh: &str) -> Result<Vec<ResourceKey>, StoreError> {
            Ok(self
                .0
                .keys()
                .filter(|k| k.mesh.as_deref() == Some(mesh))
                .cloned()
                .collect())
        }
    }

    fn res(v: serde_json::Value) -> Resource {
        Resource::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    // Revisions are consecutive from the base, one per change, and become versions.
    #[test]
    fn numbers_changes_consecutively() {
        let mut state = Map(BTreeMap::new());
        let ops = [
            Op::Create(res(json!({"type": "Mesh", "name": "m"}))),
            Op::Upsert(res(json!({"type": "Mesh", "name": "m"}))),
        ];
        let changes = plan(&mut state, 7, now(), &ops).unwrap_or_default();
        let revs: Vec<u64> = changes.iter().map(|c| c.revision).collect();
        assert_eq!(revs, [8, 9]);
        assert_eq!(changes[1].kind, ChangeKind::Updated);
        assert_eq!(
            changes[1].resource.as_ref().map(|r| r.meta.version),
            Some(9)
        );
    }

    // Deleting a Mesh in a batch also deletes what the batch put inside it.
    #[test]
    fn cascade_sees_the_batch() {
        let mut state = Map(BTreeMap::new());
        let mesh = res(json!({"type": "Mesh", "name": "m"}));
        let ops = [Op::Upsert(mesh.clone()), Op::DeleteIfPresent(mesh.key())];
        let changes = plan(&mut state, 0, now(), &ops).unwrap_or_default();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].kind, ChangeKind::Deleted);
    }

    // Stored times are whole milliseconds.
    #[test]
    fn now_is_whole_milliseconds() {
        assert_eq!(now().nanosecond() % 1_000_000, 0);
    }
}
