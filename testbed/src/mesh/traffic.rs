//! Bounded request loops through a proxy, tallied by status and by the echo
//! instance that answered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a request loop saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub total: usize,
    /// HTTP status → count.
    pub by_status: BTreeMap<u16, usize>,
    /// Echo `instance` → count (answers that carried one).
    pub by_instance: BTreeMap<String, usize>,
    /// Transport errors (no HTTP answer), by message.
    pub errors: BTreeMap<String, usize>,
    /// The slowest request.
    pub max_latency: Duration,
}

impl Tally {
    pub fn status(&self, status: u16) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Share of requests answered with `status`, 0.0..=1.0.
    pub fn share(&self, status: u16) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.status(status) as f64 / self.total as f64
        }
    }

    pub fn instance(&self, instance: &str) -> usize {
        self.by_instance.get(instance).copied().unwrap_or(0)
    }

    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }

    fn record(&mut self, outcome: Result<(u16, Option<String>), String>, took: Duration) {
        self.total += 1;
        self.max_latency = self.max_latency.max(took);
        match outcome {
            Ok((status, instance)) => {
                *self.by_status.entry(status).or_default() += 1;
                if let Some(i) = instance {
                    *self.by_instance.entry(i).or_default() += 1;
                }
            }
            Err(e) => *self.errors.entry(e).or_default() += 1,
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    pub headers: Vec<(String, String)>,
    /// One request's limit.
    pub timeout: Duration,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// `n` sequential GETs of `url`.
pub async fn request_loop(url: &str, n: usize, opts: &LoopOptions) -> Tally {
    let client = client();
    let mut tally = Tally::default();
    for _ in 0..n {
        let started = Instant::now();
        let outcome = one(&client, url, opts).await;
        tally.record(outcome, started.elapsed());
    }
    tally
}

/// Sequential GETs of `url` for `duration` (at most `max` requests).
pub async fn request_loop_for(
    url: &str,
    duration: Duration,
    max: usize,
    opts: &LoopOptions,
) -> Tally {
    let client = client();
    let mut tally = Tally::default();
    let end = Instant::now() + duration;
    while Instant::now() < end && tally.total < max {
        let started = Instant::now();
        let outcome = one(&client, url, opts).await;
        tally.record(outcome, started.elapsed());
    }
    tally
}

fn client() -> reqwest::Client {
    // No connection reuse: each request may pick another endpoint, as separate
    // clients would.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}

async fn one(
    client: &reqwest::Client,
    url: &str,
    opts: &LoopOptions,
) -> Result<(u16, Option<String>), String> {
    let mut req = client.get(url).timeout(opts.timeout);
    for (k, v) in &opts.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            "timeout".to_string()
        } else if e.is_connect() {
            "connect".to_string()
        } else {
            format!("{e}")
        }
    })?;
    let status = resp.status().as_u16();
    let body: Option<serde_json::Value> = resp.json().await.ok();
    let instance = body
        .as_ref()
        .and_then(|b| b.get("instance"))
        .and_then(|i| i.as_str())
        .map(str::to_string);
    Ok((status, instance))
}

/// The status of one GET of `url` (0 when no HTTP answer came).
pub async fn status(url: &str) -> u16 {
    let t = request_loop(url, 1, &LoopOptions::default()).await;
    t.by_status.keys().next().copied().unwrap_or(0)
}

/// Sends `ping` over a new TCP connection to `addr` and reads until it comes back
/// after the echo app's greeting; an error when the connection is refused, closed
/// or reset first, or after 3 s.
pub async fn tcp_echo(addr: std::net::SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        conn.write_all(b"ping").await?;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.ends_with(b"ping") {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::other(format!(
                    "closed after {:?}",
                    String::from_utf8_lossy(&got)
                )));
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(3), io).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// What a background loop saw: successes, and each failure.
pub type LoopOutcome<E> = (u64, Vec<E>);

/// GETs `url` one after another until `stop` is set: the 200s, and the other
/// statuses (0: no HTTP answer).
pub fn http_until(
    url: &str,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<LoopOutcome<u16>> {
    let (url, stop) = (url.to_string(), stop.clone());
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0u64, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match status(&url).await {
                200 => ok += 1,
                other => failed.push(other),
            }
        }
        (ok, failed)
    })
}

/// Opens TCP connections to `addr` one after another (each a new mTLS handshake
/// through the proxies) until `stop` is set: the echoed ones, and the failures.
pub fn tcp_until(
    addr: std::net::SocketAddr,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<LoopOutcome<String>> {
    let stop = stop.clone();
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0u64, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match tcp_echo(addr).await {
                Ok(()) => ok += 1,
                Err(e) => failed.push(e),
            }
        }
        (ok, failed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shares and counts follow the recorded outcomes.
    #[test]
    fn tally_counts() {
        let mut t = Tally::default();
        t.record(Ok((200, Some("a".into()))), Duration::from_millis(5));
        t.record(Ok((503, None)), Duration::from_millis(9));
        t.record(Err("connect".into()), Duration::from_millis(1));
        assert_eq!(t.total, 3);
        assert_eq!(t.status(200), 1);
        assert!((t.share(503) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(t.instance("a"), 1);
        assert_eq!(t.error_count(), 1);
        assert_eq!(t.max_latency, Duration::from_millis(9));
    }
}
