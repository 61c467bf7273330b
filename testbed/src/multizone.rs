//! Two zones federated with one global, all real processes on loopback: zones
//! `east` and `west`, each with an ingress and apps with sidecars
//! ([`crate::mesh::MeshHarness`]); what the cross-zone tests, the cross-zone
//! benchmark and the demo start from.

use crate::mesh::{AppSpec, MeshHarness};
use crate::process::{ControlPlane, TestbedError};
use crate::wait::until;
use std::time::Duration;

/// Mesh `default` with a builtin mTLS backend.
pub const MESH_MTLS: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n";

/// Everything may talk to everything (with mTLS on, Kuma ≥ 2.6 denies by default).
pub const ALLOW_ALL: &str = "type: MeshTrafficPermission\nmesh: default\nname: allow-all\nspec:\n  targetRef: {kind: Mesh}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {action: Allow}\n";

/// A global with mesh `default` on mTLS, and zones `east` and `west` that hold it
/// (with its CA), each with an ingress.
pub struct TwoZones {
    // The zones' harnesses go before global.
    pub east: MeshHarness,
    pub west: MeshHarness,
    pub global: ControlPlane,
}

impl TwoZones {
    /// Mesh `default` with builtin mTLS and an allow-all permission (with mTLS
    /// on, nothing is allowed until a permission says so, Kuma ≥ 2.6).
    pub async fn start() -> Result<TwoZones, TestbedError> {
        Self::start_with(
            MESH_MTLS,
            &[(
                "/meshes/default/meshtrafficpermissions/allow-all",
                ALLOW_ALL,
            )],
        )
        .await
    }

    /// Mesh `default` as `mesh` and `docs` (path, YAML) written on global, then
    /// the zones, each waiting until it holds global's mesh, and their ingresses.
    pub async fn start_with(mesh: &str, docs: &[(&str, &str)]) -> Result<TwoZones, TestbedError> {
        let global = tokio::task::spawn_blocking(|| ControlPlane::global(&[]))
            .await
            .map_err(|e| TestbedError::Build(format!("the global start task failed: {e}")))??;
        let api = crate::Client::new(global.api_url(), global.token());
        let put = |path: String, doc: String| {
            let api = api.clone();
            async move {
                let (status, body) = api.put(&path, &doc).await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(TestbedError::Refused {
                        what: format!("PUT {path}"),
                        status,
                        body: body.to_string(),
                    })
                }
            }
        };
        put("/meshes/default".into(), mesh.into()).await?;
        for (path, doc) in docs {
            put(path.to_string(), doc.to_string()).await?;
        }
        let (_, on_global) = api.get("/meshes/default").await;
        let mut zones = Vec::new();
        for name in ["east", "west"] {
            // Blocks until the zone prints its ready line (a second or so).
            let zone = ControlPlane::federated_zone(&global, name, &[])?;
            let mut h = MeshHarness::on_zone(zone, Some(name))?;
            let client = h.api();
            until(
                Duration::from_secs(20),
                &format!("{name} holds global's mesh default"),
                || {
                    let (client, want) = (client.clone(), on_global["mtls"].clone());
                    async move {
                        let (s, m) = client.get("/meshes/default").await;
                        s.is_success() && m["mtls"] == want
                    }
                },
            )
            .await;
            h.start_ingress(&format!("ingress-{name}")).await?;
            zones.push(h);
        }
        let (Some(west), Some(east)) = (zones.pop(), zones.pop()) else {
            return Err(TestbedError::Build("two zones expected".into()));
        };
        Ok(TwoZones { east, west, global })
    }

    /// The usual cast: `backend-west-1` in west, `backend-east-1` in east when
    /// `east_backend`, and `frontend-east-1` in east calling `backend`, ready once
    /// the frontend's Envoy holds every backend endpoint (east's and west's
    /// ingress). Get the frontend with `east.app("frontend-east-1")`.
    pub async fn start_backends_and_frontend(
        &mut self,
        east_backend: bool,
    ) -> Result<(), TestbedError> {
        self.west
            .start_app(AppSpec::http("backend", "backend-west-1"))
            .await?;
        if east_backend {
            self.east
                .start_app(AppSpec::http("backend", "backend-east-1"))
                .await?;
        }
        self.east
            .start_app(AppSpec::http("frontend", "frontend-east-1").outbound("backend"))
            .await?
            .until_healthy_hosts("backend", 1 + usize::from(east_backend))
            .await;
        Ok(())
    }
}
