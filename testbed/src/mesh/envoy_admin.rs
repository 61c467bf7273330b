//! Reading an Envoy's admin endpoint: readiness, listeners, cluster members and stats
//! (e.g. `update_rejected` per xDS type: any non-zero value means Envoy NACKed).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// One request's limit.
const TIMEOUT: Duration = Duration::from_secs(5);

/// An Envoy admin endpoint on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct EnvoyAdmin {
    pub address: SocketAddr,
    http: reqwest::Client,
}

impl EnvoyAdmin {
    pub fn new(port: u16) -> Self {
        EnvoyAdmin {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            http: reqwest::Client::new(),
        }
    }

    /// GET `path` as text; `Err` says why.
    pub async fn get(&self, path: &str) -> Result<String, String> {
        let url = format!("http://{}{path}", self.address);
        let resp = self
            .http
            .get(&url)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("GET {url}: {status}: {}", text.trim()))
        }
    }

    /// Ok when `/ready` says LIVE and every `expected` listener exists.
    pub async fn readiness(&self, expected: &[String]) -> Result<(), String> {
        let ready = self.get("/ready").await?;
        if ready.trim() != "LIVE" {
            return Err(format!("Envoy is {}", ready.trim()));
        }
        let listeners = self.listeners().await?;
        let missing: Vec<&String> = expected
            .iter()
            .filter(|name| !listeners.contains(name))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("listeners {missing:?} missing (has {listeners:?})"))
        }
    }

    /// The server's state from `/server_info` (`LIVE`, `INITIALIZING`,
    /// `PRE_INITIALIZING`, `DRAINING`).
    pub async fn server_state(&self) -> Result<String, String> {
        let text = self.get("/server_info").await?;
        let info: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("/server_info is not JSON: {e}"))?;
        info.get("state")
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("/server_info has no state: {}", text.trim()))
    }

    /// The names of the active listeners.
    pub async fn listeners(&self) -> Result<Vec<String>, String> {
        let text = self.get("/listeners").await?;
        Ok(text
            .lines()
            .filter_map(|l| l.split("::").next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The members of `cluster` (`ip:port`) with their health flags (`healthy`, or
    /// e.g. `/failed_outlier_check`).
    pub async fn cluster_hosts(&self, cluster: &str) -> Result<BTreeMap<String, String>, String> {
        let text = self.get("/clusters").await?;
        Ok(parse_cluster_hosts(&text, cluster))
    }

    /// The load-balancing weight of each member of `cluster` (`ip:port` → weight).
    pub async fn host_weights(&self, cluster: &str) -> Result<BTreeMap<String, u32>, String> {
        let text = self.get("/clusters").await?;
        let prefix = format!("{cluster}::");
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (host, value) = rest.split_once("::weight::")?;
                Some((host.to_string(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// Every numeric stat (`/stats`, counters and gauges).
    pub async fn stats(&self) -> Result<BTreeMap<String, u64>, String> {
        let text = self.get("/stats").await?;
        Ok(parse_stats(&text))
    }

    /// One stat, 0 when absent or unreadable.
    pub async fn stat(&self, name: &str) -> u64 {
        self.stats()
            .await
            .ok()
            .and_then(|s| s.get(name).copied())
            .unwrap_or(0)
    }

    /// The `*.update_rejected` stats above zero (CDS, LDS, EDS per cluster, RDS per
    /// route config, SDS per secret) and ECDS's `*.config_fail` /
    /// `*.config_conflict`: Envoy refused configuration. Unreadable stats count as a
    /// rejection named `admin`.
    pub async fn rejected_updates(&self) -> BTreeMap<String, u64> {
        match self.stats().await {
            Ok(stats) => rejected(&stats),
            Err(e) => BTreeMap::from([(format!("admin unreadable: {e}"), 1)]),
        }
    }
}

/// The rejection counters above zero.
pub fn rejected(stats: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let refusal = |k: &str| {
        k.ends_with(".update_rejected")
            || (k.starts_with("extension_config_discovery.")
                && (k.ends_with(".config_fail") || k.ends_with(".config_conflict")))
    };
    stats
        .iter()
        .filter(|(k, v)| refusal(k) && **v > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// `name: 12` lines; histograms and text values are skipped.
pub fn parse_stats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| v.trim().parse::<u64>().ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// `/clusters` lines `backend::127.0.1.2:8080::health_flags::healthy`.
pub fn parse_cluster_hosts(text: &str, cluster: &str) -> BTreeMap<String, String> {
    let prefix = format!("{cluster}::");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let mut parts = rest.split("::");
            let host = parts.next()?;
            if parts.next()? != "health_flags" {
                return None;
            }
            Some((host.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Stats lines parse to numbers; rejections are the non-zero update_rejected ones.
    #[test]
    fn stats_and_rejections() {
        let text = "cluster_manager.cds.update_rejected: 0\nlistener_manager.lds.update_rejected: 2\n\
                    cluster_manager.cds.version_text: \"abc\"\ncluster.backend.update_rejected: 1\n\
                    http.x.rq: P0(nan,1)\n";
        let stats = parse_stats(text);
        assert_eq!(stats.get("cluster_manager.cds.update_rejected"), Some(&0));
        assert!(!stats.contains_key("cluster_manager.cds.version_text"));
        let r = rejected(&stats);
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("listener_manager.lds.update_rejected"), Some(&2));
    }

    // Cluster hosts come with their health flags, only for the asked cluster.
    #[test]
    fn cluster_hosts() {
        let text = "backend::127.0.1.2:80::health_flags::healthy\nbackend::127.0.1.2:80::cx_active::0\n\
                    backend::127.0.1.3:80::health_flags::/failed_outlier_check\nother::1.1.1.1:1::health_flags::healthy\n";
        let h = parse_cluster_hosts(text, "backend");
        assert_eq!(h.len(), 2);
        assert_eq!(h["127.0.1.2:80"], "healthy");
        assert_eq!(h["127.0.1.3:80"], "/failed_outlier_check");
    }
}
