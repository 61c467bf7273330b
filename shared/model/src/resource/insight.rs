//! Kuma's insights, the parts Weft persists.
//!
//! - `DataplaneInsight` (`dataplane_insight.proto`): a proxy's ADS
//!   subscriptions — which control-plane instance served it, when it connected
//!   and disconnected — and its workload certificate (`mTLS`). The zone writes it
//!   on connect, on disconnect and when it issues a certificate (not on every
//!   ACK), reports it to global with the Dataplanes, and deletes it with the
//!   Dataplane; the zone's live per-type counters stay in memory and are merged
//!   in when the zone answers `_overview`.
//! - `ZoneInsight` (`zone_insight.proto`): a zone's KDS subscriptions as global
//!   saw them — connect and disconnect times, the zone's version, and per type
//!   what was sent, ACKed and NACKed. Global writes it on connect, on disconnect
//!   and when the counters changed (at most every few seconds), so a restarted
//!   global still shows each zone's last known state.

use super::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// How many subscriptions are kept (the newest last), as Kuma does.
pub const MAX_SUBSCRIPTIONS: usize = 5;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneInsightSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<DiscoverySubscription>,
    /// The proxy's workload certificate, in an mTLS mesh.
    #[serde(default, rename = "mTLS", skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsInsight>,
}

/// Kuma's `DataplaneInsight.MTLS`: what the proxy's certificate is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MtlsInsight {
    /// RFC 3339.
    #[serde(default)]
    pub certificate_expiration_time: String,
    /// RFC 3339.
    #[serde(default)]
    pub last_certificate_regeneration: String,
    #[serde(default)]
    pub certificate_regenerations: u64,
    /// The mTLS backend whose CA issued it.
    #[serde(default)]
    pub issued_backend: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_backends: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverySubscription {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub control_plane_instance_id: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_time: Option<String>,
}

/// A subscription is open once it connected and until it ends.
fn open(connect: &Option<String>, disconnect: &Option<String>) -> bool {
    connect.is_some() && disconnect.is_none()
}

/// Appends `sub`, dropping the oldest beyond [`MAX_SUBSCRIPTIONS`].
fn keep_newest<T>(subs: &mut Vec<T>, sub: T) {
    subs.push(sub);
    let excess = subs.len().saturating_sub(MAX_SUBSCRIPTIONS);
    subs.drain(..excess);
}

impl DataplaneInsightSpec {
    /// Connected: its newest subscription has not ended.
    pub fn is_online(&self) -> bool {
        self.subscriptions
            .last()
            .is_some_and(|s| open(&s.connect_time, &s.disconnect_time))
    }

    /// Records a new subscription, keeping the newest [`MAX_SUBSCRIPTIONS`].
    pub fn connected(&mut self, sub: DiscoverySubscription) {
        keep_newest(&mut self.subscriptions, sub);
    }

    /// Ends subscription `id` at `at`; false when it is unknown or ended.
    pub fn disconnected(&mut self, id: &str, at: &str) -> bool {
        match self
            .subscriptions
            .iter_mut()
            .find(|s| s.id == id && s.disconnect_time.is_none())
        {
            Some(s) => {
                s.disconnect_time = Some(at.to_string());
                true
            }
            None => false,
        }
    }

    /// Ends every open subscription not of control-plane `instance` (it ended
    /// without saying so: a restart or a crash); true when something changed.
    pub fn close_stale(&mut self, instance: &str, at: &str) -> bool {
        let mut changed = false;
        for s in &mut self.subscriptions {
            if s.disconnect_time.is_none() && s.control_plane_instance_id != instance {
                s.disconnect_time = Some(at.to_string());
                changed = true;
            }
        }
        changed
    }
}

/// Kuma's `ZoneInsight`: the newest [`MAX_SUBSCRIPTIONS`] KDS subscriptions of
/// a zone, the newest last.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneInsightSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<KdsSubscription>,
}

/// One KDS connection of a zone (Kuma's `KDSSubscription`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsSubscription {
    #[serde(default)]
    pub id: String,
    /// The global instance that served it.
    #[serde(default)]
    pub global_instance_id: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_time: Option<String>,
    #[serde(default)]
    pub status: KdsSubscriptionStatus,
    #[serde(default)]
    pub version: KdsVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsSubscriptionStatus {
    /// RFC 3339: when the counters were last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default)]
    pub total: KdsServiceStats,
    /// Per resource type (`MeshTimeout`, ...), global → zone.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stat: std::collections::BTreeMap<String, KdsServiceStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsServiceStats {
    #[serde(default)]
    pub responses_sent: u64,
    #[serde(default)]
    pub responses_acknowledged: u64,
    #[serde(default)]
    pub responses_rejected: u64,
}

/// The zone's control-plane version (Kuma's `Version.kumaCp`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdsVersion {
    #[serde(default)]
    pub kuma_cp: CpVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpVersion {
    #[serde(default)]
    pub version: String,
    /// Whether global serves this zone version (Weft: same major.minor).
    #[serde(default)]
    pub kuma_cp_global_compatible: bool,
}

impl ZoneInsightSpec {
    /// Connected: the newest subscription has not ended.
    pub fn is_online(&self) -> bool {
        self.subscriptions
            .last()
            .is_some_and(|s| open(&s.connect_time, &s.disconnect_time))
    }

    /// Records a new subscription, keeping the newest [`MAX_SUBSCRIPTIONS`].
    pub fn connected(&mut self, sub: KdsSubscription) {
        keep_newest(&mut self.subscriptions, sub);
    }

    /// The subscription `id`, if kept.
    pub fn subscription_mut(&mut self, id: &str) -> Option<&mut KdsSubscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    /// Ends every open subscription not served by `instance` (it ended without
    /// saying so: global restarted or crashed); true when something changed.
    pub fn close_stale(&mut self, instance: &str, at: &str) -> bool {
        let mut changed = false;
        for s in &mut self.subscriptions {
            if s.disconnect_time.is_none() && s.global_instance_id != instance {
                s.disconnect_time = Some(at.to_string());
                changed = true;
            }
        }
        changed
    }

    /// When the zone was last seen: the newest disconnect, or `None` while online
    /// or never connected.
    pub fn offline_since(&self) -> Option<&str> {
        if self.is_online() {
            return None;
        }
        self.subscriptions
            .last()
            .and_then(|s| s.disconnect_time.as_deref())
    }
}

impl Validate for ZoneInsightSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (i, s) in self.subscriptions.iter().enumerate() {
            if s.id.is_empty() {
                errs.add(
                    &path.field("subscriptions").index(i).field("id"),
                    "cannot be empty",
                );
            }
        }
    }
}

impl Validate for DataplaneInsightSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (i, s) in self.subscriptions.iter().enumerate() {
            if s.id.is_empty() {
                errs.add(
                    &path.field("subscriptions").index(i).field("id"),
                    "cannot be empty",
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sub(id: &str, instance: &str) -> DiscoverySubscription {
        DiscoverySubscription {
            id: id.into(),
            control_plane_instance_id: instance.into(),
            connect_time: Some("2026-12-07T10:00:00Z".into()),
            disconnect_time: None,
        }
    }

    // Online follows the newest subscription; old ones roll off; a restarted
    // control plane closes what its predecessor left open.
    #[test]
    fn subscriptions_say_whether_a_proxy_is_online() {
        let mut i = DataplaneInsightSpec::default();
        assert!(!i.is_online());
        i.connected(sub("a", "cp-1"));
        assert!(i.is_online());
        assert!(i.disconnected("a", "2026-12-07T10:01:00Z"));
        assert!(
            !i.disconnected("a", "2026-12-07T10:02:00Z"),
            "already ended"
        );
        assert!(!i.is_online());
        for n in 0..7 {
            i.connected(sub(&format!("s{n}"), "cp-1"));
        }
        assert_eq!(i.subscriptions.len(), MAX_SUBSCRIPTIONS);
        assert_eq!(i.subscriptions.last().unwrap().id, "s6");
        assert!(i.close_stale("cp-2", "2026-12-07T11:00:00Z"));
        assert!(!i.is_online());
        assert!(!i.close_stale("cp-2", "2026-12-07T11:00:00Z"));
    }

    // A zone is online while its newest KDS subscription is open; a restarted
    // global closes what its predecessor left open and the zone is offline
    // since then.
    #[test]
    fn zone_subscriptions_say_whether_a_zone_is_online() {
        let mut z = ZoneInsightSpec::default();
        assert!(!z.is_online() && z.offline_since().is_none());
        for n in 0..7 {
            z.connected(KdsSubscription {
                id: format!("s{n}"),
                global_instance_id: "g-1".into(),
                connect_time: Some("2026-12-07T10:00:00Z".into()),
                ..Default::default()
            });
        }
        assert_eq!(z.subscriptions.len(), MAX_SUBSCRIPTIONS);
        assert!(z.is_online());
        z.subscription_mut("s6")
            .unwrap()
            .status
            .total
            .responses_sent = 3;
        assert!(z.close_stale("g-2", "2026-12-07T11:00:00Z"));
        assert!(!z.is_online());
        assert_eq!(z.offline_since(), Some("2026-12-07T11:00:00Z"));
        assert_eq!(z.subscriptions[4].status.total.responses_sent, 3);
    }
}
