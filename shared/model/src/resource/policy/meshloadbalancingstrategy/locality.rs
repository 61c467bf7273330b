//! Locality-aware load balancing: priorities by tag inside the local zone, and
//! the order in which other zones take over when local endpoints fail.

use crate::resource::policy::checks::{MUST_BE_DEFINED, MUST_NOT_BE_EMPTY, check_positive};
use crate::resource::policy::intorstring::IntOrString;
use crate::resource::policy::targetref::{TargetRef, TargetRefKind};
use crate::resource::validate::{Path, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityAwareness {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_zone: Option<LocalZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_zone: Option<CrossZone>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalZone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_tags: Option<Vec<AffinityTag>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffinityTag {
    pub key: String,
    /// Share of local traffic; all tags have one or none do (then 90/9/1...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossZone {
    /// Zone priority groups, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Vec<Failover>>,
    /// Live-endpoint % below which the next priority is used (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_threshold: Option<FailoverThreshold>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failover {
    /// Zones of the clients the rule applies to (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<FromZone>,
    pub to: ToZone,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FromZone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToZoneType {
    None,
    Only,
    Any,
    AnyExcept,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToZone {
    #[serde(rename = "type")]
    pub zone_type: ToZoneType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverThreshold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<IntOrString>,
}

impl LocalityAwareness {
    pub(super) fn check(&self, path: &Path, to: &TargetRef, errs: &mut ValidationErrors) {
        if let Some(tags) = self
            .local_zone
            .as_ref()
            .and_then(|z| z.affinity_tags.as_ref())
        {
            let p = path.field("localZone").field("affinityTags");
            for (i, tag) in tags.iter().enumerate() {
                if tag.key.is_empty() {
                    errs.add(&p.index(i).field("key"), MUST_NOT_BE_EMPTY);
                }
                check_positive(&p.index(i).field("weight"), tag.weight, errs);
            }
            let weighted = tags.iter().filter(|t| t.weight.is_some()).count();
            if weighted > 0 && weighted != tags.len() {
                errs.add(&p, "all or none affinity tags should have weight");
            }
        }
        let Some(cz) = &self.cross_zone else { return };
        let p = path.field("crossZone");
        let real_service = to.kind == TargetRefKind::MeshService
            && (to.section_name.as_deref().is_some_and(|s| !s.is_empty())
                || to.labels.as_ref().is_some_and(|l| !l.is_empty()));
        if real_service {
            errs.add(&p, "must not be set: MeshService traffic is local");
        }
        for (i, f) in cz.failover.iter().flatten().enumerate() {
            let fp = p.field("failover").index(i);
            if let Some(from) = &f.from {
                let zp = fp.field("from").field("zones");
                match &from.zones {
                    Some(zones) if !zones.is_empty() => {
                        for (j, z) in zones.iter().enumerate() {
                            if z.is_empty() {
                                errs.add(&zp.index(j), MUST_NOT_BE_EMPTY);
                            }
                        }
                    }
                    _ => errs.add(&zp, MUST_NOT_BE_EMPTY),
                }
            }
            let has_zones = f.to.zones.as_ref().is_some_and(|z| !z.is_empty());
            let zp = fp.field("to").field("zones");
            match f.to.zone_type {
                ToZoneType::Any | ToZoneType::None if has_zones => errs.add(
                    &zp,
                    format!("must be empty when type is {:?}", f.to.zone_type),
                ),
                ToZoneType::Only | ToZoneType::AnyExcept if !has_zones => errs.add(
                    &zp,
                    format!("must not be empty when type is {:?}", f.to.zone_type),
                ),
                _ => {}
            }
        }
        if let Some(t) = &cz.failover_threshold {
            let tp = p.field("failoverThreshold").field("percentage");
            match &t.percentage {
                None => errs.add(&tp, MUST_BE_DEFINED),
                Some(pct) => pct.check_percentage(&tp, false, errs),
            }
        }
    }
}
