//! The sixteen targetRef policies, one module each, on shared building blocks:
//! `targetref` (what a policy selects), `common` (`to` / `from` / `rules` items
//! and the validation sequences policies share), `matches` (SPIFFE ID / SNI rule
//! matches), `header`, `backend_ref`, `otel`, the int-or-string numbers
//! (`intorstring`) and the small checks with Kuma's wording (`checks`). Network
//! syntax (IPs, hostnames, URLs) is in [`crate::resource::net`].

pub mod backend_ref;
pub mod checks;
pub mod common;
pub mod header;
pub mod intorstring;
pub mod matches;
pub mod meshaccesslog;
pub mod meshcircuitbreaker;
pub mod meshfaultinjection;
pub mod meshhealthcheck;
pub mod meshhttproute;
pub mod meshloadbalancingstrategy;
pub mod meshmetric;
pub mod meshpassthrough;
pub mod meshproxypatch;
pub mod meshratelimit;
pub mod meshretry;
pub mod meshtcproute;
pub mod meshtimeout;
pub mod meshtls;
pub mod meshtrace;
pub mod meshtrafficpermission;
pub mod otel;
pub mod targetref;

pub use meshaccesslog::MeshAccessLog;
pub use meshcircuitbreaker::MeshCircuitBreaker;
pub use meshfaultinjection::MeshFaultInjection;
pub use meshhealthcheck::MeshHealthCheck;
pub use meshhttproute::MeshHTTPRoute;
pub use meshloadbalancingstrategy::MeshLoadBalancingStrategy;
pub use meshmetric::MeshMetric;
pub use meshpassthrough::MeshPassthrough;
pub use meshproxypatch::MeshProxyPatch;
pub use meshratelimit::MeshRateLimit;
pub use meshretry::MeshRetry;
pub use meshtcproute::MeshTCPRoute;
pub use meshtimeout::MeshTimeout;
pub use meshtls::MeshTLS;
pub use meshtrace::MeshTrace;
pub use meshtrafficpermission::MeshTrafficPermission;
