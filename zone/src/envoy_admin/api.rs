//! The zone's REST routes (`weft_api::envoy_admin`), served through the proxies'
//! relays: 404 naming the proxy when the zone holds none of that name, 503 when
//! its relay is not connected, 504 when it does not answer within
//! [`ZONE_TIMEOUT`].

use super::Relay;
use axum::Router;
use weft_api::ApiState;
use weft_api::envoy_admin::AdminBackend;
use weft_model::proxy::admin::{
    AdminError, AdminOp, AdminQuery, AdminReply, ProxyRef, ZONE_TIMEOUT,
};

impl AdminBackend for Relay {
    async fn execute(
        &self,
        proxy: ProxyRef,
        op: AdminOp,
        query: AdminQuery,
    ) -> Result<AdminReply, AdminError> {
        Relay::execute(self, &proxy, op, &query, ZONE_TIMEOUT).await
    }
}

/// The nine routes (behind the admin token).
pub fn routes(relay: Relay) -> Router<ApiState> {
    weft_api::envoy_admin::routes(relay)
}
