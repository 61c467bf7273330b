//! Reads, writes, versions, meshes and batches.

use super::*;
use crate::{ChangeKind, ListPage, Page, WriteOp, put};

fn names(page: &ListPage) -> Vec<(Option<String>, String)> {
    page.items
        .iter()
        .map(|r| (r.meta.mesh.clone(), r.meta.name.clone()))
        .collect()
}

fn in_mesh(pairs: &[(&str, &str)]) -> Vec<(Option<String>, String)> {
    pairs
        .iter()
        .map(|(m, n)| (Some(m.to_string()), n.to_string()))
        .collect()
}

// A created resource reads back exactly as create returned it, stamped with the
// revision as its version and with both times.
pub(crate) async fn create_and_get<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let m = s.create(mesh("m1")).await.unwrap();
    assert_eq!(m.meta.version, 1);
    assert!(m.meta.creation_time.is_some());
    assert_eq!(m.meta.creation_time, m.meta.modification_time);
    let input = labelled(secret("m1", "s1"), "team", "a");
    let stored = s.create(input.clone()).await.unwrap();
    assert_eq!(stored.meta.version, 2);
    assert_eq!(stored.content_hash(), input.content_hash());
    assert_eq!(s.get(&stored.key()).await.unwrap(), Some(stored.clone()));
    assert_eq!(s.get(&m.key()).await.unwrap(), Some(m));
}

// Creating what exists fails and changes nothing.
pub(crate) async fn create_duplicate<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let m = s.create(mesh("m1")).await.unwrap();
    let err = s.create(labelled(mesh("m1"), "x", "y")).await.unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists(mesh_key("m1")));
    assert_eq!(s.revision().await.unwrap(), 1);
    assert_eq!(s.get(&mesh_key("m1")).await.unwrap(), Some(m));
}

// Reading what was never written gives None, not an error.
pub(crate) async fn get_missing<B: Backend>(b: &B) {
    let s = b.fresh(options());
    assert_eq!(s.get(&mesh_key("nope")).await.unwrap(), None);
    assert_eq!(s.get(&secret_key("nope", "s")).await.unwrap(), None);
    s.create(mesh("m")).await.unwrap();
    assert_eq!(s.get(&secret_key("m", "s")).await.unwrap(), None);
}

// Lists are ordered by (mesh, name) whatever the write order, per mesh and across.
pub(crate) async fn list_order<B: Backend>(b: &B) {
    let s = b.fresh(options());
    for m in ["b", "a", "c"] {
        s.create(mesh(m)).await.unwrap();
    }
    for (m, n) in [
        ("b", "s2"),
        ("a", "s3"),
        ("a", "s1"),
        ("c", "s0"),
        ("b", "s1"),
    ] {
        s.create(secret(m, n)).await.unwrap();
    }
    let all = s
        .list(ResourceType::Secret, None, Page::default())
        .await
        .unwrap();
    let expected = in_mesh(&[
        ("a", "s1"),
        ("a", "s3"),
        ("b", "s1"),
        ("b", "s2"),
        ("c", "s0"),
    ]);
    assert_eq!(names(&all), expected);
    assert_eq!((all.total, all.next_offset), (5, None));
    let a = s
        .list(ResourceType::Secret, Some("a"), Page::default())
        .await
        .unwrap();
    assert_eq!(names(&a), in_mesh(&[("a", "s1"), ("a", "s3")]));
    assert_eq!(a.total, 2);
    let meshes = s
        .list(ResourceType::Mesh, None, Page::default())
        .await
        .unwrap();
    let mesh_names: Vec<_> = meshes.items.iter().map(|r| r.meta.name.as_str()).collect();
    assert_eq!(mesh_names, ["a", "b", "c"]);
    for (ty, m) in [
        (ResourceType::MeshTimeout, None),
        (ResourceType::Secret, Some("zz")),
        (ResourceType::Mesh, Some("a")),
    ] {
        let empty = s.list(ty, m, Page::default()).await.unwrap();
        assert_eq!(
            (empty.items.len(), empty.total, empty.next_offset),
            (0, 0, None)
        );
    }
    // Listed items are the stored ones.
    let stored = s.get(&secret_key("b", "s2")).await.unwrap().unwrap();
    assert_eq!(all.items[3], stored);
}

// Pages cut the ordered list: size, offset, total and the next offset agree.
pub(crate) async fn list_pages<B: Backend>(b: &B) {
    let s = b.fresh(options());
    s.create(mesh("m")).await.unwrap();
    for i in (0..5).rev() {
        s.create(secret("m", &format!("s{i}"))).await.unwrap();
    }
    let page = |size, offset| Page { size, offset };
    let cases: [(Page, &[&str], Option<usize>); 8] = [
        (page(2, 0), &["s0", "s1"], Some(2)),
        (page(2, 2), &["s2", "s3"], Some(4)),
        (page(2, 4), &["s4"], None),
        (page(2, 5), &[], None),
        (page(2, 99), &[], None),
        (page(5, 0), &["s0", "s1", "s2", "s3", "s4"], None),
        (Page::all(), &["s0", "s1", "s2", "s3", "s4"], None),
        (page(3, 1), &["s1", "s2", "s3"], Some(4)),
    ];
    for (p, want, next) in cases {
        for mesh in [None, Some("m")] {
            let got = s.list(ResourceType::Secret, mesh, p).await.unwrap();
            let got_names: Vec<_> = got.items.iter().map(|r| r.meta.name.as_str()).collect();
            assert_eq!(got_names, want, "{p:?}");
            assert_eq!(got.total, 5, "{p:?}");
            assert_eq!(got.next_offset, next, "{p:?}");
        }
    }
}

// Updates check the expected version, keep the creation time and take a new version.
pub(crate) async fn update_versions<B: Backend>(b: &B) {
    let s = b.fresh(options());
    s.create(mesh("m")).await.unwrap();
    let first = s.create(secret("m", "s")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v1 = first.meta.version;
    let second = s
        .update(labelled(secret("m", "s"), "v", "2"), Some(v1))
        .await
        .unwrap();
    assert!(second.meta.version > v1);
    assert_eq!(second.meta.version, s.revision().await.unwrap());
    assert_eq!(second.meta.creation_time, first.meta.creation_time);
    assert!(second.meta.modification_time > first.meta.modification_time);
    assert_eq!(second.meta.labels.get("v").map(String::as_str), Some("2"));
    assert_eq!(s.get(&second.key()).await.unwrap(), Some(second.clone()));

    let stale = s.update(secret("m", "s"), Some(v1)).await.unwrap_err();
    assert_eq!(
        stale,
        StoreError::Conflict {
            key: secret_key("m", "s"),
            expected: v1,
            actual: second.meta.version,
        }
    );
    assert_eq!(s.get(&second.key()).await.unwrap(), Some(second.clone()));

    let third = s.update(secret("m", "s"), None).await.unwrap();
    assert!(third.meta.version > second.meta.version);
    assert_eq!(third.meta.creation_time, first.meta.creation_time);
    assert!(third.meta.labels.is_empty());

    for expected in [None, Some(1)] {
        let err = s.update(secret("m", "nope"), expected).await.unwrap_err();
        assert_eq!(err, StoreError::NotFound(secret_key("m", "nope")));
    }
    assert_eq!(s.revision().await.unwrap(), third.meta.version);
}

// Deletes check the expected version and fail on what is not there.
pub(crate) async fn delete_versions<B: Backend>(b: &B) {
    let s = b.fresh(options());
    s.create(mesh("m")).await.unwrap();
    let a = s.create(secret("m", "a")).await.unwrap();
    s.create(secret("m", "b")).await.unwrap();
    let v = a.meta.version;
    let err = s.delete(&a.key(), Some(v + 100)).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            key: a.key(),
            expected: v + 100,
            actual: v,
        }
    );
    assert_eq!(s.get(&a.key()).await.unwrap(), Some(a.clone()));
    assert_eq!(s.delete(&a.key(), Some(v)).await.unwrap(), vec![a.key()]);
    assert_eq!(s.get(&a.key()).await.unwrap(), None);
    for expected in [None, Some(v)] {
        let err = s.delete(&a.key(), expected).await.unwrap_err();
        assert_eq!(err, StoreError::NotFound(a.key()));
    }
    let b_key = secret_key("m", "b");
    assert_eq!(s.delete(&b_key, None).await.unwrap(), vec![b_key]);
    assert_eq!(s.revision().await.unwrap(), 5);
}

// A mesh-scoped resource cannot be written into a Mesh that does not exist.
pub(crate) async fn mesh_must_exist<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let err = s.create(secret("nope", "s")).await.unwrap_err();
    assert_eq!(err, StoreError::MeshNotFound("nope".into()));
    let err = s.update(secret("nope", "s"), None).await.unwrap_err();
    assert_eq!(err, StoreError::MeshNotFound("nope".into()));
    assert_eq!(s.revision().await.unwrap(), 0);
    s.create(mesh("m")).await.unwrap();
    s.create(secret("m", "s")).await.unwrap();
    s.delete(&mesh_key("m"), None).await.unwrap();
    let err = s.create(secret("m", "s")).await.unwrap_err();
    assert_eq!(err, StoreError::MeshNotFound("m".into()));
    let listed = s
        .list(ResourceType::Secret, None, Page::all())
        .await
        .unwrap();
    assert_eq!(listed.total, 0);
}

// Deleting a Mesh deletes everything in it in one write, the Mesh last, leaving
// other meshes alone; watchers see every delete.
pub(crate) async fn mesh_delete_cascades<B: Backend>(b: &B) {
    let s = b.fresh(options());
    for m in ["m1", "m2"] {
        s.create(mesh(m)).await.unwrap();
    }
    for (m, n) in [("m1", "b"), ("m1", "a"), ("m2", "a"), ("m1", "c")] {
        s.create(secret(m, n)).await.unwrap();
    }
    let r = s.revision().await.unwrap();
    let mut w = s.watch(r).await.unwrap();
    let deleted = s.delete(&mesh_key("m1"), None).await.unwrap();
    let expected = vec![
        secret_key("m1", "a"),
        secret_key("m1", "b"),
        secret_key("m1", "c"),
        mesh_key("m1"),
    ];
    assert_eq!(deleted, expected);
    let seen = next_changes(&mut w, 4).await;
    assert_eq!(keys(&seen), expected);
    assert_eq!(revisions(&seen), [r + 1, r + 2, r + 3, r + 4]);
    assert!(
        seen.iter()
            .all(|c| c.kind == ChangeKind::Deleted && c.resource.is_none())
    );
    assert_quiet(&mut w).await;
    assert_eq!(s.revision().await.unwrap(), r + 4);
    let m1 = s
        .list(ResourceType::Secret, Some("m1"), Page::all())
        .await
        .unwrap();
    assert_eq!(m1.total, 0);
    assert!(s.get(&mesh_key("m2")).await.unwrap().is_some());
    assert!(s.get(&secret_key("m2", "a")).await.unwrap().is_some());
    // A new Mesh of the same name starts empty.
    s.create(mesh("m1")).await.unwrap();
    let m1 = s
        .list(ResourceType::Secret, Some("m1"), Page::all())
        .await
        .unwrap();
    assert_eq!(m1.total, 0);
}

// A batch applies completely or not at all; each op sees the earlier ones.
pub(crate) async fn transact_all_or_nothing<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let m = s.create(mesh("m")).await.unwrap();
    let r0 = s.revision().await.unwrap();

    let failing = [
        vec![
            WriteOp::Upsert(mesh("x")),
            WriteOp::Upsert(secret("x", "s")),
            WriteOp::Upsert(secret("nope", "s")),
        ],
        vec![
            WriteOp::Upsert(secret("m", "a")),
            WriteOp::Delete(mesh_key("m")),
            WriteOp::Upsert(secret("m", "b")),
        ],
    ];
    let errors = [
        StoreError::MeshNotFound("nope".into()),
        StoreError::MeshNotFound("m".into()),
    ];
    for (ops, error) in failing.into_iter().zip(errors) {
        assert_eq!(s.transact(ops).await.unwrap_err(), error);
        assert_eq!(s.revision().await.unwrap(), r0);
        assert_eq!(s.get(&mesh_key("x")).await.unwrap(), None);
        assert_eq!(s.get(&secret_key("m", "a")).await.unwrap(), None);
        assert_eq!(s.get(&mesh_key("m")).await.unwrap(), Some(m.clone()));
    }

    let changes = s
        .transact(vec![
            WriteOp::Upsert(mesh("x")),
            WriteOp::Upsert(secret("x", "s")),
            WriteOp::Delete(secret_key("m", "missing")),
            WriteOp::Upsert(labelled(mesh("m"), "v", "2")),
        ])
        .await
        .unwrap();
    assert_eq!(revisions(&changes), [r0 + 1, r0 + 2, r0 + 3]);
    let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Created,
            ChangeKind::Created,
            ChangeKind::Updated
        ]
    );
    for c in &changes {
        let stored = c.resource.clone().unwrap();
        assert_eq!(stored.meta.version, c.revision);
        assert_eq!(s.get(&c.key).await.unwrap(), Some(stored));
    }
    let m2 = s.get(&mesh_key("m")).await.unwrap().unwrap();
    assert_eq!(m2.meta.creation_time, m.meta.creation_time);

    // Deleting a Mesh in a batch takes along what the batch put in it.
    let changes = s
        .transact(vec![
            WriteOp::Upsert(secret("x", "t")),
            WriteOp::Delete(mesh_key("x")),
        ])
        .await
        .unwrap();
    assert_eq!(
        keys(&changes),
        [
            secret_key("x", "t"),
            secret_key("x", "s"),
            secret_key("x", "t"),
            mesh_key("x"),
        ]
    );
    assert_eq!(s.get(&secret_key("x", "t")).await.unwrap(), None);

    let r = s.revision().await.unwrap();
    assert_eq!(s.transact(Vec::new()).await.unwrap(), Vec::new());
    let noop = vec![WriteOp::Delete(mesh_key("gone"))];
    assert_eq!(s.transact(noop).await.unwrap(), Vec::new());
    assert_eq!(s.revision().await.unwrap(), r);
}

// The revision starts at 0, moves with every change (one per key touched) and
// not with failed writes.
pub(crate) async fn revision_follows_changes<B: Backend>(b: &B) {
    let s = b.fresh(options());
    assert_eq!(s.revision().await.unwrap(), 0);
    let mut last = 0;
    let m = s.create(mesh("m")).await.unwrap();
    assert!(m.meta.version > last);
    last = m.meta.version;
    assert_eq!(s.revision().await.unwrap(), last);
    for name in ["a", "b"] {
        let r = s.create(secret("m", name)).await.unwrap();
        assert_eq!(r.meta.version, last + 1);
        last = r.meta.version;
    }
    s.create(secret("m", "a")).await.unwrap_err();
    assert_eq!(s.revision().await.unwrap(), last);
    let u = s.update(secret("m", "a"), None).await.unwrap();
    assert_eq!(u.meta.version, last + 1);
    last = u.meta.version;
    s.delete(&mesh_key("m"), None).await.unwrap();
    assert_eq!(s.revision().await.unwrap(), last + 3);
    let mut w = s.watch(0).await.unwrap();
    let all = next_changes(&mut w, 7).await;
    assert_eq!(revisions(&all), (1..=7).collect::<Vec<_>>());
    assert_eq!(
        all.last().map(|c| c.revision),
        Some(s.revision().await.unwrap())
    );
}

// `put` creates when absent and updates when present.
pub(crate) async fn put_creates_then_updates<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let (m, created) = put(&s, mesh("m"), None).await.unwrap();
    assert!(created);
    let (m2, created) = put(&s, labelled(mesh("m"), "a", "b"), Some(m.meta.version))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(m2.meta.creation_time, m.meta.creation_time);
    let err = put(&s, mesh("other"), Some(1)).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound(mesh_key("other")));
}
