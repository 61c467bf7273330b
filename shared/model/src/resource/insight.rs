//! Kuma's `DataplaneInsight` (`dataplane_insight.proto`), the part Weft
//! persists: a proxy's ADS subscriptions — which control-plane instance served
//! it, when it connected and disconnected. The zone writes it on connect and
//! disconnect (not on every ACK), reports it to global with the Dataplanes, and
//! deletes it with the Dataplane; the zone's live counters stay in memory
//! (`/meshes/{mesh}/dataplanes/{name}/_overview`).

use super::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// How many subscriptions are kept (the newest last), as Kuma does.
pub const MAX_SUBSCRIPTIONS: usize = 5;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneInsightSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<DiscoverySubscription>,
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

impl DataplaneInsightSpec {
    /// Connected: its newest subscription has not ended.
    pub fn is_online(&self) -> bool {
        self.subscriptions
            .last()
            .is_some_and(|s| s.connect_time.is_some() && s.disconnect_time.is_none())
    }

    /// Records a new subscription, keeping the newest [`MAX_SUBSCRIPTIONS`].
    pub fn connected(&mut self, sub: DiscoverySubscription) {
        self.subscriptions.push(sub);
        let excess = self.subscriptions.len().saturating_sub(MAX_SUBSCRIPTIONS);
        self.subscriptions.drain(..excess);
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
}
