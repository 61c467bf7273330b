//! PLACEHOLDER — to be replaced with the full typed policy specs and their validation.

pub mod backend_ref;
pub mod common;
pub mod int_or_percent;
pub mod meshaccesslog;
pub mod meshhttproute;
pub mod meshmetric;
pub mod meshpassthrough;
pub mod meshproxypatch;
pub mod meshtcproute;
pub mod meshtls;
pub mod meshtrace;
pub mod net_checks;
pub mod otel;
pub mod targetref;

pub use meshaccesslog::MeshAccessLog;
pub use meshhttproute::MeshHTTPRoute;
pub use meshmetric::MeshMetric;
pub use meshpassthrough::MeshPassthrough;
pub use meshproxypatch::MeshProxyPatch;
pub use meshtcproute::MeshTCPRoute;
pub use meshtls::MeshTLS;
pub use meshtrace::MeshTrace;

use super::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

macro_rules! placeholder { ($($t:ident),*) => { $(
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct $t {}
impl Validate for $t { fn validate(&self, _path: &Path, _errs: &mut ValidationErrors) {} }
)* } }
placeholder!(
    MeshTrafficPermission,
    MeshTimeout,
    MeshRetry,
    MeshCircuitBreaker,
    MeshHealthCheck,
    MeshLoadBalancingStrategy,
    MeshFaultInjection,
    MeshRateLimit
);
