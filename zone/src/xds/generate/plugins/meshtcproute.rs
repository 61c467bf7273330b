//! MeshTCPRoute (order 200): the merged conf's first rule's `backendRefs` become
//! the outbound `tcp_proxy`'s `cluster` (one backend) or `weighted_clusters`.
//! An HTTP destination with a MeshTCPRoute and no MeshHTTPRoute is proxied as
//! TCP; when both exist, HTTP wins (Kuma).

use super::Ctx;
use crate::xds::generate::base::ensure_outbound_cluster;
use crate::xds::generate::model::{Chain, ProxyConfig};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use serde::Deserialize;
use weft_model::resource::policy::meshtcproute::Rule;
use weft_model::resource::policy::targetref::TargetRefKind;
use weft_model::resource::{ResourceType, Tags};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConf {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for i in 0..cfg.outbounds.len() {
        let service = cfg.outbounds[i].service.clone();
        let Some(conf) = ctx.to::<RouteConf>(ResourceType::MeshTCPRoute, &service) else {
            continue;
        };
        if matches!(cfg.outbounds[i].chain, Chain::Http(_))
            && ctx
                .rules
                .to(ResourceType::MeshHTTPRoute, &service)
                .is_some()
        {
            continue;
        }
        let refs = conf
            .rules
            .first()
            .and_then(|r| r.default.backend_refs.clone())
            .unwrap_or_default();
        let mut weighted: Vec<(String, u32)> = Vec::new();
        for b in &refs {
            let name = b.service_name().unwrap_or_else(|| service.clone());
            let tags = if b.kind == TargetRefKind::MeshServiceSubset {
                b.tags.clone().unwrap_or_default()
            } else {
                Tags::new()
            };
            let cluster = ensure_outbound_cluster(cfg, ctx.view, &name, &tags);
            weighted.push((cluster, b.weight.unwrap_or(1)));
        }
        weighted.retain(|(_, w)| *w > 0);
        let spec = match weighted.len() {
            0 => tcp_proxy::ClusterSpecifier::Cluster(service.clone()),
            1 => tcp_proxy::ClusterSpecifier::Cluster(weighted[0].0.clone()),
            _ => tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
                clusters: weighted
                    .into_iter()
                    .map(
                        |(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                            name,
                            weight,
                            ..tcp_proxy::weighted_cluster::ClusterWeight::default()
                        },
                    )
                    .collect(),
            }),
        };
        let part = &mut cfg.outbounds[i];
        match &mut part.chain {
            Chain::Tcp(tcp) => tcp.cluster_specifier = Some(spec),
            Chain::Http(_) => {
                part.chain = Chain::Tcp(Box::new(TcpProxy {
                    cluster_specifier: Some(spec),
                    ..crate::xds::generate::base::tcp_chain(&service, "")
                }));
            }
        }
    }
}
