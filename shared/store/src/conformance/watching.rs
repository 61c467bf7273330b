//! Watches, concurrency, compaction and durability.

use super::*;
use crate::{ChangeKind, Page};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Five changes: create m, create s1, update s1, delete s1, create s2.
async fn five_changes<S: ResourceStore>(s: &S) -> Vec<Change> {
    let m = s.create(mesh("m")).await.unwrap();
    let s1 = s.create(secret("m", "s1")).await.unwrap();
    let s1b = s
        .update(labelled(secret("m", "s1"), "v", "2"), None)
        .await
        .unwrap();
    s.delete(&s1.key(), None).await.unwrap();
    let s2 = s.create(secret("m", "s2")).await.unwrap();
    let change = |revision, kind, key, resource| Change {
        revision,
        kind,
        key,
        resource,
    };
    vec![
        change(1, ChangeKind::Created, m.key(), Some(m)),
        change(2, ChangeKind::Created, s1.key(), Some(s1)),
        change(3, ChangeKind::Updated, s1b.key(), Some(s1b.clone())),
        change(4, ChangeKind::Deleted, s1b.key(), None),
        change(5, ChangeKind::Created, s2.key(), Some(s2)),
    ]
}

// A watch from 0 replays every change once, in order, exactly as committed.
pub(crate) async fn watch_from_zero<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let expected = five_changes(&s).await;
    let mut w = s.watch(0).await.unwrap();
    assert_eq!(next_changes(&mut w, 5).await, expected);
    assert_quiet(&mut w).await;
}

// A watch from revision r replays only what came after r, then goes live.
pub(crate) async fn watch_from_middle<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let expected = five_changes(&s).await;
    let mut w = s.watch(3).await.unwrap();
    assert_eq!(next_changes(&mut w, 2).await, expected[3..]);
    assert_quiet(&mut w).await;
    let mut at_head = s.watch(5).await.unwrap();
    assert_quiet(&mut at_head).await;
    let s3 = s.create(secret("m", "s3")).await.unwrap();
    for w in [&mut w, &mut at_head] {
        let c = next_change(w).await;
        assert_eq!((c.revision, c.resource.as_ref()), (6, Some(&s3)));
    }
}

// A watch started before any write sees writes as they commit; several watchers
// each see everything, and dropping one disturbs nobody.
pub(crate) async fn watch_live<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let mut w1 = s.watch(0).await.unwrap();
    let mut w2 = s.watch(0).await.unwrap();
    let dropped = s.watch(0).await.unwrap();
    assert_quiet(&mut w1).await;
    drop(dropped);
    let m = s.create(mesh("m")).await.unwrap();
    let c = next_change(&mut w1).await;
    assert_eq!(
        (c.revision, c.kind, c.resource),
        (1, ChangeKind::Created, Some(m))
    );
    let u = s
        .update(labelled(mesh("m"), "a", "b"), Some(1))
        .await
        .unwrap();
    let c = next_change(&mut w1).await;
    assert_eq!(
        (c.revision, c.kind, c.resource),
        (2, ChangeKind::Updated, Some(u))
    );
    assert_eq!(revisions(&next_changes(&mut w2, 2).await), [1, 2]);
    assert_quiet(&mut w1).await;
}

// Concurrent writers: every write is one change, seen once, revisions strictly
// increasing without gaps, and each write's version is its change's revision.
pub(crate) async fn concurrent_writers<B: Backend>(b: &B) {
    const TASKS: usize = 8;
    const WRITES: usize = 50;
    let s = Arc::new(b.fresh(options()));
    s.create(mesh("m")).await.unwrap();
    let start = s.revision().await.unwrap();
    let mut w = s.watch(start).await.unwrap();
    let began = std::time::Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..WRITES {
                let r = s.create(secret("m", &format!("t{t}-{i}"))).await.unwrap();
                versions.push((r.meta.version, r.key()));
            }
            versions
        }));
    }
    let mut written = BTreeSet::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    let elapsed = began.elapsed();
    let seen = next_changes(&mut w, TASKS * WRITES).await;
    eprintln!(
        "store conformance: {} concurrent writes in {elapsed:?}",
        TASKS * WRITES
    );
    let revs = revisions(&seen);
    let want: Vec<u64> = (start + 1..=start + (TASKS * WRITES) as u64).collect();
    assert_eq!(revs, want);
    let seen: BTreeSet<_> = seen.into_iter().map(|c| (c.revision, c.key)).collect();
    assert_eq!(seen, written);
    assert_quiet(&mut w).await;
    assert_eq!(s.revision().await.unwrap(), start + (TASKS * WRITES) as u64);
}

// Watches started while writes are committing switch from replay to live
// without a gap or a duplicate, wherever they start.
pub(crate) async fn watch_during_writes<B: Backend>(b: &B) {
    const WRITES: u64 = 200;
    let s = Arc::new(b.fresh(options()));
    s.create(mesh("m")).await.unwrap();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..WRITES {
                s.create(secret("m", &format!("s{i}"))).await.unwrap();
            }
        })
    };
    let mut watchers = Vec::new();
    for i in 0..20u64 {
        let head = s.revision().await.unwrap();
        // Alternate between starting at the head and somewhat behind it.
        let after = if i % 2 == 0 { head } else { head / 2 };
        watchers.push((after, s.watch(after).await.unwrap()));
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    let last = 1 + WRITES;
    for (after, w) in &mut watchers {
        let got = next_changes(w, (last - *after) as usize).await;
        assert_eq!(revisions(&got), (*after + 1..=last).collect::<Vec<_>>());
    }
    futures::future::join_all(watchers.iter_mut().map(|(_, w)| assert_quiet(w))).await;
}

// Watching from before the oldest kept change fails with Compacted; later
// starting points still replay what is kept.
pub(crate) async fn compacted<B: Backend>(b: &B) {
    let s = b.fresh(StoreOptions {
        max_changes: 10,
        ..options()
    });
    s.create(mesh("m")).await.unwrap();
    for i in 0..24 {
        s.update(labelled(mesh("m"), "i", &i.to_string()), None)
            .await
            .unwrap();
    }
    assert_eq!(s.revision().await.unwrap(), 25);
    for after in [0, 14] {
        assert_eq!(
            watch_err(&s, after).await,
            StoreError::Compacted {
                requested: after,
                oldest: 16,
            }
        );
    }
    let mut w = s.watch(15).await.unwrap();
    assert_eq!(
        revisions(&next_changes(&mut w, 10).await),
        (16..=25).collect::<Vec<_>>()
    );
    let mut head = s.watch(25).await.unwrap();
    assert_quiet(&mut head).await;
    s.delete(&mesh_key("m"), None).await.unwrap();
    assert_eq!(next_change(&mut head).await.revision, 26);
    assert_eq!(next_change(&mut w).await.revision, 26);
    assert!(matches!(
        watch_err(&s, 15).await,
        StoreError::Compacted { oldest: 17, .. }
    ));
}

/// Reads `n` changes from a watch that may end with `Lagged` but never skips.
async fn gap_free(w: &mut Watch, from: u64, n: usize) -> bool {
    let mut expect = from + 1;
    for _ in 0..n {
        match tokio::time::timeout(DUE, w.next()).await {
            Ok(Some(Ok(c))) => {
                assert_eq!(c.revision, expect, "watch skipped or repeated a change");
                expect += 1;
            }
            Ok(Some(Err(StoreError::Lagged))) => {
                assert!(w.next().await.is_none(), "a lagged watch must end");
                return false;
            }
            other => panic!(
                "watch stalled or failed: {:?}",
                other.map(|o| o.map(|r| r.err()))
            ),
        }
    }
    true
}

// A watcher that falls far behind either catches up or ends with Lagged: it
// never silently loses a change (neither live nor while replaying).
pub(crate) async fn lagging_watcher<B: Backend>(b: &B) {
    let s = b.fresh(StoreOptions {
        watch_buffer: 2,
        ..options()
    });
    let mut live = s.watch(0).await.unwrap();
    s.create(mesh("m")).await.unwrap();
    for i in 0..30 {
        s.create(secret("m", &format!("s{i}"))).await.unwrap();
    }
    let mut replaying = s.watch(0).await.unwrap();
    let caught_up = gap_free(&mut replaying, 0, 5).await;
    for i in 30..50 {
        s.create(secret("m", &format!("s{i}"))).await.unwrap();
    }
    if caught_up && gap_free(&mut replaying, 5, 46).await {
        assert_quiet(&mut replaying).await;
    }
    if gap_free(&mut live, 0, 51).await {
        assert_quiet(&mut live).await;
    }
}

// Dropping the store ends its watch streams instead of leaving them hanging.
pub(crate) async fn store_drop_ends_watch<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let mut w = s.watch(0).await.unwrap();
    s.create(mesh("m")).await.unwrap();
    drop(s);
    // The change committed before the drop may still be delivered.
    let mut rest = Vec::new();
    loop {
        match tokio::time::timeout(DUE, w.next()).await {
            Ok(None) => break,
            Ok(Some(item)) => rest.push(item.map(|c| c.revision)),
            Err(_) => panic!("watch did not end after its store was dropped"),
        }
    }
    assert!(
        rest.len() <= 1 && rest.iter().all(|r| r == &Ok(1)),
        "{rest:?}"
    );
}

// A durable store reopened keeps its resources, revision and change log, and
// continues the revision sequence.
pub(crate) async fn reopen_keeps_everything<B: Backend>(b: &B) {
    let s = b.fresh(options());
    let expected = five_changes(&s).await;
    let before = s
        .list(ResourceType::Secret, None, Page::all())
        .await
        .unwrap();
    let mesh_before = s.get(&mesh_key("m")).await.unwrap();
    let Some(s) = b.reopen(s) else {
        return;
    };
    assert_eq!(s.revision().await.unwrap(), 5);
    assert_eq!(
        s.list(ResourceType::Secret, None, Page::all())
            .await
            .unwrap(),
        before
    );
    assert_eq!(s.get(&mesh_key("m")).await.unwrap(), mesh_before);
    let mut w = s.watch(0).await.unwrap();
    assert_eq!(next_changes(&mut w, 5).await, expected);
    let s3 = s.create(secret("m", "s3")).await.unwrap();
    assert_eq!(s3.meta.version, 6);
    assert_eq!(next_change(&mut w).await.revision, 6);
    drop(w);
    let Some(s) = b.reopen(s) else {
        return;
    };
    assert_eq!(s.revision().await.unwrap(), 6);
    assert_eq!(s.get(&s3.key()).await.unwrap(), Some(s3));
    s.delete(&mesh_key("m"), None).await.unwrap();
    let Some(s) = b.reopen(s) else {
        return;
    };
    assert_eq!(s.revision().await.unwrap(), 9);
    let left = s
        .list(ResourceType::Secret, None, Page::all())
        .await
        .unwrap();
    assert_eq!(left.total, 0);
    let mut w = s.watch(6).await.unwrap();
    assert_eq!(revisions(&next_changes(&mut w, 3).await), [7, 8, 9]);
}
