//! PLACEHOLDER — to be replaced with the full typed policy specs and their validation.

pub mod checks;
pub mod common;
pub mod header;
pub mod intorstring;
pub mod matches;
pub mod meshcircuitbreaker;
pub mod meshfaultinjection;
pub mod meshhealthcheck;
pub mod meshloadbalancingstrategy;
pub mod meshratelimit;
pub mod meshretry;
pub mod meshtimeout;
pub mod meshtrafficpermission;
pub mod targetref;

pub use meshcircuitbreaker::MeshCircuitBreaker;
pub use meshfaultinjection::MeshFaultInjection;
pub use meshhealthcheck::MeshHealthCheck;
pub use meshloadbalancingstrategy::MeshLoadBalancingStrategy;
pub use meshratelimit::MeshRateLimit;
pub use meshretry::MeshRetry;
pub use meshtimeout::MeshTimeout;
pub use meshtrafficpermission::MeshTrafficPermission;

use super::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

macro_rules! placeholder { ($($t:ident),*) => { $(
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct $t {}
impl Validate for $t { fn validate(&self, _path: &Path, _errs: &mut ValidationErrors) {} }
)* } }
placeholder!(
    MeshHTTPRoute,
    MeshTCPRoute,
    MeshAccessLog,
    MeshTrace,
    MeshMetric,
    MeshTLS,
    MeshPassthrough,
    MeshProxyPatch
);
