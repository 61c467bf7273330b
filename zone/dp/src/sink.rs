//! The access-log sink: a unix socket in weft-dp's private dir that the bootstrap's
//! static `access_log_sink` cluster points at. Envoy's Fluentd logger sends the
//! forward protocol (MessagePack `[tag, [[time, record], ...], option]`); each
//! record's `message` is written, newline-terminated, to the TCP collector named by
//! the tag (`weft.tcp.<host:port>`), over one persistent connection per collector
//! (as kuma-dp sends plain lines). Bounded: a queue per collector (lines dropped and
//! counted when it is full, e.g. while the collector is down), a reconnect back-off,
//! a cap on collectors and on a message's size.

use super::msgpack::{self, DecodeError, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use weft_model::proxy::TCP_TAG_PREFIX;
/// Lines queued per collector while it is slow or down.
pub const QUEUE_LINES: usize = 4096;
/// Collectors one proxy may log to.
pub const MAX_COLLECTORS: usize = 64;
/// Largest forward-protocol message buffered from Envoy.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot listen for access logs on {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the access-log socket path {} is {len} bytes, over the {max}-byte limit of a unix \
         socket; set TMPDIR to a shorter directory", path.display()
    )]
    PathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },
}

/// Counters (shared with the tasks).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Lines written to a collector.
    pub forwarded: AtomicU64,
    /// Lines dropped: queue full, collector unwritable, too many collectors, bad tag.
    pub dropped: AtomicU64,
}

/// The running sink; its tasks stop when it is dropped.
pub struct Sink {
    path: PathBuf,
    stats: Arc<SinkStats>,
    _tasks: JoinSet<()>,
}

impl Sink {
    /// Binds `path` (a unix socket) and starts receiving.
    pub fn start(path: &Path) -> Result<Self, SinkError> {
        let len = path.as_os_str().len();
        if len > weft_model::proxy::MAX_SOCKET_PATH {
            return Err(SinkError::PathTooLong {
                path: path.to_path_buf(),
                len,
                max: weft_model::proxy::MAX_SOCKET_PATH,
            });
        }
        let listener = UnixListener::bind(path).map_err(|source| SinkError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
        let stats = Arc::new(SinkStats::default());
        let router = Router {
            queues: Arc::new(Mutex::new(HashMap::new())),
            stats: stats.clone(),
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, router));
        tracing::info!(path = %path.display(), "access-log sink listening");
        Ok(Sink {
            path: path.to_path_buf(),
            stats,
            _tasks: tasks,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }
}

/// Hands lines to the per-collector forwarders, starting them on first use.
#[derive(Clone)]
struct Router {
    queues: Arc<Mutex<HashMap<String, mpsc::Sender<String>>>>,
    stats: Arc<SinkStats>,
}

impl Router {
    fn send(&self, address: &str, line: String) {
        let tx = {
            let Ok(mut queues) = self.queues.lock() else {
                return;
            };
            match queues.get(address) {
                Some(tx) => tx.clone(),
                None if queues.len() >= MAX_COLLECTORS => {
                    self.drop_line(address, "too many collectors");
                    return;
                }
                None => {
                    let (tx, rx) = mpsc::channel(QUEUE_LINES);
                    // The forwarder ends when the router (and so the sink) is gone.
                    tokio::spawn(forward(address.to_string(), rx, self.stats.clone()));
                    queues.insert(address.to_string(), tx.clone());
                    tx
                }
            }
        };
        if tx.try_send(line).is_err() {
            self.drop_line(address, "the collector's queue is full");
        }
    }

    fn drop_line(&self, address: &str, why: &str) {
        let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n.is_power_of_two() {
            tracing::warn!(collector = %address, dropped = n, "dropping access-log lines: {why}");
        }
    }
}

async fn accept_loop(listener: UnixListener, router: Router) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(receive(stream, router.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "access-log sink: accept failed");
                    tokio::time::sleep(BACKOFF_START).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One Envoy connection: decode messages as they arrive, route their lines, ack
/// chunks that ask for it.
async fn receive(mut stream: UnixStream, router: Router) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        loop {
            match msgpack::decode(&buf) {
                Ok((msg, used)) => {
                    buf.drain(..used);
                    match handle(msg, &router) {
                        Ok(Some(id)) => {
                            if stream.write_all(&msgpack::ack(&id)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(why) => {
                            tracing::warn!(reason = %why, "access-log sink: ignoring a message")
                        }
                    }
                }
                Err(DecodeError::Incomplete) => break,
                Err(DecodeError::Invalid(why)) => {
                    tracing::warn!(reason = %why, "access-log sink: closing a connection sending bad data");
                    return;
                }
            }
        }
        if buf.len() > MAX_MESSAGE {
            tracing::warn!(
                limit = MAX_MESSAGE,
                "access-log sink: closing a connection whose message is too large"
            );
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Routes one forward-protocol message's lines; the chunk id to ack, if asked.
fn handle(msg: Value, router: &Router) -> Result<Option<String>, String> {
    let (tag, lines, option) = parse_message(msg)?;
    let Some(address) = tag
        .strip_prefix(TCP_TAG_PREFIX)
        .filter(|a| valid_address(a))
    else {
        for _ in &lines {
            router.drop_line(&tag, "the tag names no TCP collector");
        }
        return Ok(option);
    };
    for line in lines {
        router.send(address, line);
    }
    Ok(option)
}

/// `host:port` with a numeric port.
fn valid_address(a: &str) -> bool {
    a.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
}

/// (tag, newline-terminated lines, the chunk id to ack) of Forward, PackedForward
/// or Message mode.
pub fn parse_message(msg: Value) -> Result<(String, Vec<String>, Option<String>), String> {
    let Value::Array(items) = msg else {
        return Err("a message must be an array".into());
    };
    let tag = items
        .first()
        .and_then(Value::as_str)
        .ok_or("a message must start with a string tag")?
        .to_string();
    let mut records = Vec::new();
    let option = match items.get(1) {
        // Forward: [tag, [[time, record], ...], option?]
        Some(Value::Array(entries)) => {
            for e in entries {
                if let Value::Array(pair) = e
                    && let Some(r) = pair.get(1)
                {
                    records.push(r.clone());
                }
            }
            items.get(2)
        }
        // PackedForward: [tag, bin of concatenated [time, record], option?]
        Some(Value::Bin(packed)) => {
            if items.get(2).and_then(|o| o.get("compressed")).is_some() {
                return Err("compressed entries are not supported".into());
            }
            let mut rest = packed.as_slice();
            while !rest.is_empty() {
                let (entry, used) = msgpack::decode(rest).map_err(|e| e.to_string())?;
                rest = &rest[used..];
                if let Value::Array(pair) = entry
                    && let Some(r) = pair.get(1)
                {
                    records.push(r.clone());
                }
            }
            items.get(2)
        }
        // Message: [tag, time, record, option?]
        Some(_) => {
            if let Some(r) = items.get(2) {
                records.push(r.clone());
            }
            items.get(3)
        }
        None => return Err("a message has no entries".into()),
    };
    let lines = records
        .iter()
        .filter_map(|r| r.get("message").and_then(Value::as_str))
        .map(|m| {
            let mut line = m.to_string();
            if !line.ends_with('\n') {
                line.push('\n');
            }
            line
        })
        .collect();
    let chunk = option
        .and_then(|o| o.get("chunk"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((tag, lines, chunk))
}

/// One collector's connection: connect (bounded back-off), write queued lines,
/// reconnect after a failure. Ends when the queue's senders are gone.
async fn forward(address: String, mut rx: mpsc::Receiver<String>, stats: Arc<SinkStats>) {
    let mut pause = BACKOFF_START;
    let mut conn: Option<TcpStream> = None;
    while let Some(line) = rx.recv().await {
        if conn.is_none() {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await {
                Ok(Ok(c)) => {
                    tracing::info!(collector = %address, "connected to the access-log collector");
                    pause = BACKOFF_START;
                    conn = Some(c);
                }
                Ok(Err(e)) => down(&address, &stats, &e.to_string(), &mut pause).await,
                Err(_) => down(&address, &stats, "connect timed out", &mut pause).await,
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = c.write_all(line.as_bytes()).await {
            conn = None;
            down(&address, &stats, &e.to_string(), &mut pause).await;
            continue;
        }
        stats.forwarded.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts the line in hand as dropped and waits the back-off (lines arriving
/// meanwhile queue up to [`QUEUE_LINES`]).
async fn down(address: &str, stats: &SinkStats, why: &str, pause: &mut Duration) {
    let n = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(collector = %address, error = %why, retry_in = ?*pause, dropped = n,
        "access-log collector unreachable");
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(BACKOFF_MAX);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn str_(out: &mut Vec<u8>, s: &str) {
        msgpack::write_str(out, s);
    }

    /// `[tag, [[time, {"message": m}] ...]]` the way Envoy's Fluentd logger packs it.
    fn forward_message(tag: &str, messages: &[&str]) -> Vec<u8> {
        let mut out = vec![0x92];
        str_(&mut out, tag);
        out.push(0x90 | messages.len() as u8);
        for m in messages {
            out.extend([0x92, 0xce, 0x65, 0, 0, 0, 0x81]);
            str_(&mut out, "message");
            str_(&mut out, m);
        }
        out
    }

    // Forward mode gives the tag and each record's message, newline-terminated.
    #[test]
    fn parses_forward_mode() {
        let (msg, _) = msgpack::decode(&forward_message("weft.tcp.h:1", &["a", "b\n"])).unwrap();
        let (tag, lines, chunk) = parse_message(msg).unwrap();
        assert_eq!(tag, "weft.tcp.h:1");
        assert_eq!(lines, vec!["a\n", "b\n"]);
        assert_eq!(chunk, None);
        assert!(parse_message(Value::Int(1)).is_err());
        assert!(valid_address("127.0.0.1:5170") && valid_address("[::1]:1"));
        assert!(!valid_address("host") && !valid_address(":1") && !valid_address("h:0"));
    }

    // End to end: lines sent in pieces over the socket reach a TCP collector in order;
    // with no collector listening, lines are dropped and counted, not buffered forever.
    #[tokio::test]
    async fn forwards_lines_to_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("al.sock");
        let sink = Sink::start(&path).unwrap();
        let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = collector.local_addr().unwrap();
        let mut bytes = forward_message(&format!("weft.tcp.{address}"), &["GET /one", "GET /two"]);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        bytes.extend(forward_message(&format!("weft.tcp.{dead}"), &["lost"]));
        let mut envoy = UnixStream::connect(&path).await.unwrap();
        let (first, second) = bytes.split_at(5);
        envoy.write_all(first).await.unwrap();
        envoy.flush().await.unwrap();
        envoy.write_all(second).await.unwrap();
        let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), collector.accept())
            .await
            .unwrap()
            .unwrap();
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while got.len() < "GET /one\nGET /two\n".len() {
            let mut b = [0u8; 256];
            let n = tokio::time::timeout_at(deadline, conn.read(&mut b))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&b[..n]);
        }
        assert_eq!(String::from_utf8(got).unwrap(), "GET /one\nGET /two\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sink.stats().dropped.load(Ordering::Relaxed) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the lost line is counted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sink.stats().forwarded.load(Ordering::Relaxed), 2);
        assert_eq!(sink.path(), path);
    }
}
