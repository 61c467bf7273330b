//! A real sender and a real receiver paired in memory, over thousands of resources.

use super::*;
use std::collections::BTreeSet;
use std::time::Instant;

/// The sender splits at 64 KiB; the receiver keeps the default limit unless told.
const LIMIT: usize = 64 * 1024;
const RECEIVER_LIMIT: usize = SenderConfig::DEFAULT_MAX_MESSAGE_BYTES;

/// A model zone store: what the receiver's apply step writes. The initial sync is
/// staged and swapped in when the type's last initial part arrives.
#[derive(Default)]
struct Store {
    types: BTreeMap<String, BTreeMap<String, (String, Any)>>,
    staged: BTreeMap<String, BTreeMap<String, (String, Any)>>,
    /// Versions containing this marker are rejected (a validation failure); upper
    /// case, so it never occurs in the hex of a hash.
    reject_marker: &'static str,
    swaps: usize,
}

impl Store {
    fn apply(&mut self, u: Update) -> Result<Vec<Rejection>, BoxError> {
        let mut rejected = Vec::new();
        let target = match &u.kind {
            UpdateKind::Incremental => self.types.entry(u.type_url.clone()).or_default(),
            _ => self
                .staged
                .entry(u.type_url.clone())
                .or_insert_with(|| self.types.get(&u.type_url).cloned().unwrap_or_default()),
        };
        for n in &u.removed {
            target.remove(n);
        }
        for r in u.resources {
            if !self.reject_marker.is_empty() && r.version.contains(self.reject_marker) {
                rejected.push(Rejection::new(r.name, "invalid"));
                continue;
            }
            target.insert(r.name, (r.version, r.resource.unwrap_or_default()));
        }
        if let UpdateKind::InitialLast { full_state } = u.kind {
            let mut staged = self.staged.remove(&u.type_url).unwrap_or_default();
            staged.retain(|n, _| full_state.contains(n));
            self.types.insert(u.type_url.clone(), staged);
            self.swaps += 1;
        }
        Ok(rejected)
    }

    fn versions(&self, t: &str) -> BTreeMap<String, String> {
        self.types
            .get(t)
            .map(|m| m.iter().map(|(n, (v, _))| (n.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn payloads(&self, t: &str) -> BTreeMap<String, Any> {
        self.types
            .get(t)
            .map(|m| m.iter().map(|(n, (_, a))| (n.clone(), a.clone())).collect())
            .unwrap_or_default()
    }
}

/// Resources named `prefix-00000`.. with payloads of about 150 bytes, tagged `generation`.
fn generate(
    prefix: &str,
    range: std::ops::Range<usize>,
    generation: &str,
) -> Vec<(String, String)> {
    range
        .map(|i| {
            let name = format!("{prefix}-{i:05}");
            let content = format!("{name}:{generation}:{}", "p".repeat(120));
            (name, content)
        })
        .collect()
}

fn build(items: &BTreeMap<String, String>) -> TypeResources {
    let mut t = TypeResources::new();
    for (n, c) in items {
        // Version: a content hash, with the generation tag visible (for rejections).
        let generation = c.split(':').nth(1).unwrap_or_default();
        let p = any(c);
        t.insert(n.as_str(), format!("{generation}-{}", any_version(&p)), p);
    }
    t
}

struct World {
    mesh: BTreeMap<String, String>,
    timeout: BTreeMap<String, String>,
}

impl World {
    fn snapshot(&self) -> Snapshot {
        Snapshot::new()
            .with_type(MESH, build(&self.mesh))
            .with_type(TIMEOUT, build(&self.timeout))
    }
}

/// Connects a fresh sender/receiver pair and exchanges messages until quiet.
/// Returns the sender (for its counters) and the receiver.
fn session(
    world: &World,
    store: &mut Store,
    declare: bool,
    receiver_limit: usize,
) -> (Sender, Receiver) {
    let config = SenderConfig {
        max_message_bytes: LIMIT,
        ..SenderConfig::default()
    };
    let mut sender = Sender::new(config);
    sender.set_snapshot(world.snapshot());
    let local = |t: &str| {
        if declare {
            store.versions(t)
        } else {
            BTreeMap::new()
        }
    };
    let mut receiver = Receiver::with_max_message_bytes(
        Node {
            id: "zone-1".into(),
            ..Default::default()
        },
        [(MESH, local(MESH)), (TIMEOUT, local(TIMEOUT))],
        receiver_limit,
    );
    let mut now = Instant::now();
    for req in receiver.initial_requests() {
        sender.on_request(&req, now).expect("request");
    }
    pump(&mut sender, &mut receiver, store, &mut now);
    (sender, receiver)
}

fn pump(sender: &mut Sender, receiver: &mut Receiver, store: &mut Store, now: &mut Instant) {
    for _ in 0..10_000 {
        let out = sender.poll(*now);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        if out.responses.is_empty() {
            match sender.next_deadline() {
                Some(d) => *now = (*now).max(d),
                None => return,
            }
            continue;
        }
        for resp in out.responses {
            assert!(prost::Message::encoded_len(&resp) <= LIMIT);
            let answer = receiver
                .on_response(resp, |u| store.apply(u))
                .expect("applied");
            for reply in answer.replies {
                sender.on_request(&reply.request, *now).expect("ack");
            }
        }
    }
    panic!("the exchange never went quiet");
}

fn assert_in_sync(world: &World, store: &Store, except: &BTreeSet<String>) {
    let snap = world.snapshot();
    for t in [MESH, TIMEOUT] {
        let want: BTreeMap<String, Any> = snap
            .get(t)
            .map(|r| {
                r.iter()
                    .filter(|(n, _)| !except.contains(*n))
                    .map(|(n, e)| (n.to_string(), e.payload.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut have = store.payloads(t);
        have.retain(|n, _| !except.contains(n));
        assert_eq!(have.len(), want.len(), "{t}: resource count");
        let diff: Vec<&String> = want
            .iter()
            .filter(|(n, a)| have.get(*n) != Some(a))
            .map(|(n, _)| n)
            .take(5)
            .collect();
        assert!(
            diff.is_empty(),
            "{t}: store differs from snapshot at {diff:?}"
        );
    }
}

fn sent_totals(sender: &Sender) -> (u64, u64) {
    sender.all_stats().fold((0, 0), |(r, d), (_, s)| {
        (r + s.resources_sent, d + s.removals_sent)
    })
}

#[test]
fn receiver_converges_to_the_snapshot_through_changes_rejections_and_reconnects() {
    // Whatever happens (splits, changes, deletions, NACKs, reconnects), the receiver
    // ends equal to the snapshot, minus only the versions it rejected.
    let mut world = World {
        mesh: generate("m", 0..3000, "g0").into_iter().collect(),
        timeout: generate("t", 0..800, "g0").into_iter().collect(),
    };
    let mut store = Store::default();

    // 1. First connection: everything travels, split under the limit.
    let (mut sender, mut receiver) = session(&world, &mut store, true, RECEIVER_LIMIT);
    assert!(receiver.is_initial_sync_complete());
    assert_eq!(store.swaps, 2);
    assert_in_sync(&world, &store, &BTreeSet::new());
    let mesh_stats = sender.stats(MESH).cloned().unwrap_or_default();
    assert!(
        mesh_stats.responses_sent > 5,
        "3000 resources must be split"
    );
    assert_eq!(sent_totals(&sender), (3800, 0));

    // 2. Changes and deletions on the live stream: only they travel.
    for (n, c) in generate("m", 0..300, "g1") {
        world.mesh.insert(n, c);
    }
    for i in 1000..1200 {
        world.mesh.remove(&format!("m-{i:05}"));
    }
    for (n, c) in generate("t", 800..900, "g1") {
        world.timeout.insert(n, c);
    }
    let mut now = Instant::now();
    sender.set_snapshot(world.snapshot());
    pump(&mut sender, &mut receiver, &mut store, &mut now);
    assert_in_sync(&world, &store, &BTreeSet::new());
    assert_eq!(sent_totals(&sender), (3800 + 400, 200));

    // 3. Rejected versions are NACKed, kept out of the store, and never resent.
    store.reject_marker = "BAD";
    for (n, c) in generate("m", 2000..2010, "BAD") {
        world.mesh.insert(n, c);
    }
    for (n, c) in generate("m", 2010..2020, "g2") {
        world.mesh.insert(n, c);
    }
    sender.set_snapshot(world.snapshot());
    pump(&mut sender, &mut receiver, &mut store, &mut now);
    let bad: BTreeSet<String> = (2000..2010).map(|i| format!("m-{i:05}")).collect();
    assert_in_sync(&world, &store, &bad);
    assert!(
        store
            .versions(MESH)
            .get("m-02000")
            .is_some_and(|v| v.starts_with("g0"))
    );
    let st = sender.stats(MESH).cloned().unwrap_or_default();
    assert_eq!((st.nacks, st.resources_rejected), (1, 10));
    assert_eq!(sent_totals(&sender), (3800 + 400 + 20, 200));
    sender.set_snapshot(world.snapshot());
    pump(&mut sender, &mut receiver, &mut store, &mut now);
    assert_eq!(sent_totals(&sender).0, 3800 + 400 + 20);
    // Fixed versions go out.
    for (n, c) in generate("m", 2000..2010, "g3") {
        world.mesh.insert(n, c);
    }
    sender.set_snapshot(world.snapshot());
    pump(&mut sender, &mut receiver, &mut store, &mut now);
    assert_in_sync(&world, &store, &BTreeSet::new());
    store.reject_marker = "";

    // 4. Reconnect after changes made while disconnected: only the difference travels.
    for (n, c) in generate("m", 100..150, "g4") {
        world.mesh.insert(n, c);
    }
    for i in 2500..2520 {
        world.mesh.remove(&format!("m-{i:05}"));
    }
    let (sender, receiver) = session(&world, &mut store, true, RECEIVER_LIMIT);
    assert!(receiver.is_initial_sync_complete());
    assert_in_sync(&world, &store, &BTreeSet::new());
    assert_eq!(sent_totals(&sender), (50, 20));

    // 5. A receiver that declares nothing gets everything, and its full-state
    // reconciliation deletes a local leftover the sender no longer has.
    store
        .types
        .entry(MESH.to_string())
        .or_default()
        .insert("stray".into(), ("old".into(), any("stray")));
    let (sender, _) = session(&world, &mut store, false, RECEIVER_LIMIT);
    assert_in_sync(&world, &store, &BTreeSet::new());
    assert!(!store.versions(MESH).contains_key("stray"));
    let total = (world.mesh.len() + world.timeout.len()) as u64;
    assert_eq!(sent_totals(&sender), (total, 0));

    // 6. A receiver whose declared versions do not fit one request declares a prefix:
    // the rest is resent, and a leftover past the cut is still deleted.
    store
        .types
        .entry(MESH.to_string())
        .or_default()
        .insert("zz-stray".into(), ("old".into(), any("stray")));
    let (sender, receiver) = session(&world, &mut store, true, 16 * 1024);
    assert!(receiver.is_initial_sync_complete());
    assert_in_sync(&world, &store, &BTreeSet::new());
    assert!(!store.versions(MESH).contains_key("zz-stray"));
    let (resent, removed) = sent_totals(&sender);
    assert!(resent > 0 && resent < total, "{resent}");
    assert_eq!(removed, 0);
}
