//! The policies a new mesh gets, as Kuma 2.x creates them (`pkg/defaults/mesh`):
//! `mesh-timeout-all-<mesh>`, `mesh-gateways-timeout-all-<mesh>`,
//! `mesh-circuit-breaker-all-<mesh>` and `mesh-retry-all-<mesh>`, each skipped
//! when the Mesh lists its type (or `*`) in `skipCreatingInitialPolicies`. No
//! MeshTrafficPermission (Kuma stopped creating one in 2.6). Written in the same
//! store transaction as the Mesh (see docs/decisions/0005-default-policies.md).

use crate::resource::{Resource, Spec, ValidationErrors, parse_document};

fn timeout(mesh: &str) -> String {
    format!(
        r#"
type: MeshTimeout
mesh: {mesh}
name: mesh-timeout-all-{mesh}
labels: {{kuma.io/mesh: {mesh}}}
spec:
  targetRef: {{kind: Mesh, proxyTypes: [Sidecar]}}
  to:
    - targetRef: {{kind: Mesh}}
      default:
        connectionTimeout: 5s
        idleTimeout: 1h
        http: {{requestTimeout: 15s, streamIdleTimeout: 30m}}
  from:
    - targetRef: {{kind: Mesh}}
      default:
        connectionTimeout: 10s
        idleTimeout: 2h
        http: {{requestTimeout: 0s, streamIdleTimeout: 1h, maxStreamDuration: 0s}}
"#
    )
}

fn gateway_timeout(mesh: &str) -> String {
    format!(
        r#"
type: MeshTimeout
mesh: {mesh}
name: mesh-gateways-timeout-all-{mesh}
labels: {{kuma.io/mesh: {mesh}}}
spec:
  targetRef: {{kind: Mesh, proxyTypes: [Gateway]}}
  to:
    - targetRef: {{kind: Mesh}}
      default:
        idleTimeout: 1h
        http: {{streamIdleTimeout: 5s}}
"#
    )
}

fn circuit_breaker(mesh: &str) -> String {
    format!(
        r#"
type: MeshCircuitBreaker
mesh: {mesh}
name: mesh-circuit-breaker-all-{mesh}
labels: {{kuma.io/mesh: {mesh}}}
spec:
  targetRef: {{kind: Mesh}}
  to:
    - targetRef: {{kind: Mesh}}
      default:
        connectionLimits: {{maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3}}
"#
    )
}

fn retry(mesh: &str) -> String {
    format!(
        r#"
type: MeshRetry
mesh: {mesh}
name: mesh-retry-all-{mesh}
labels: {{kuma.io/mesh: {mesh}}}
spec:
  targetRef: {{kind: Mesh}}
  to:
    - targetRef: {{kind: Mesh}}
      default:
        tcp: {{maxConnectAttempt: 5}}
        http:
          numRetries: 5
          perTryTimeout: 16s
          backOff: {{baseInterval: 25ms, maxInterval: 250ms}}
        grpc:
          numRetries: 5
          perTryTimeout: 16s
          backOff: {{baseInterval: 25ms, maxInterval: 250ms}}
"#
    )
}

/// The default policies for `mesh` (a Mesh resource), validated.
pub fn default_policies(mesh: &Resource) -> Result<Vec<Resource>, ValidationErrors> {
    let Spec::Mesh(spec) = &mesh.spec else {
        return Ok(Vec::new());
    };
    let name = &mesh.meta.name;
    let mut out = Vec::new();
    for (ty, doc) in [
        ("MeshTimeout", timeout(name)),
        ("MeshTimeout", gateway_timeout(name)),
        ("MeshCircuitBreaker", circuit_breaker(name)),
        ("MeshRetry", retry(name)),
    ] {
        if !spec.creates_initial_policy(ty) {
            continue;
        }
        let value = parse_document(doc.as_bytes(), false)
            .map_err(|e| ValidationErrors::single(&crate::resource::Path::root(), e.to_string()))?;
        let r = Resource::from_value(value)?;
        r.validate()?;
        out.push(r);
    }
    Ok(out)
}

/// `mesh` followed by its default policies: what to write, in one transaction, to
/// create it.
pub fn mesh_with_defaults(mesh: Resource) -> Result<Vec<Resource>, ValidationErrors> {
    let defaults = default_policies(&mesh)?;
    let mut all = vec![mesh];
    all.extend(defaults);
    Ok(all)
}
