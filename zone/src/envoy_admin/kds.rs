//! Answering global's Envoy admin requests over KDS (decision 0015): on each
//! accepted KDS connection the zone opens `GlobalKDSService`'s three streams
//! (`StreamXDSConfigs`, `StreamStats`, `StreamClusters`) with the same zone token
//! and `client-id` as its sync streams. Global sends requests down them; the zone
//! checks each as its own API would, carries it out through the proxy's relay
//! ([`Relay::execute`]) and answers under the request id, in parts under 1 MiB.
//!
//! These streams never end the sync session: one that fails is reopened after a
//! back-off while the session lives; a global that does not serve them
//! (`UNIMPLEMENTED`, an older global) is noted once and left alone.

use super::Relay;
use kds_proto::{EnvoyAdminRequest, EnvoyAdminResponse, GlobalKdsServiceClient};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use weft_model::proxy::admin::{AdminError, AdminOp, ZONE_TIMEOUT, kds_rpc};
use weft_sync::kds::admin::{from_request, into_parts};

/// Requests carried out at once per stream; more are answered busy at once.
pub const MAX_CONCURRENT: usize = 8;

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// gRPC message limit (parts stay under 1 MiB).
const MAX_GRPC_MESSAGE: usize = 4 * 1024 * 1024;

/// Runs the three streams on `channel` (with `metadata`: token, zone, version)
/// until the future is dropped.
pub async fn serve(channel: Channel, metadata: MetadataMap, relay: Relay) {
    let streams = AdminOp::ALL.map(|op| one(op, channel.clone(), metadata.clone(), relay.clone()));
    futures::future::join_all(streams).await;
}

async fn one(op: AdminOp, channel: Channel, metadata: MetadataMap, relay: Relay) {
    let rpc = kds_rpc(op);
    let mut pause = BACKOFF_START;
    loop {
        let (tx, rx) = mpsc::channel::<EnvoyAdminResponse>(16);
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        *request.metadata_mut() = metadata.clone();
        let mut client = GlobalKdsServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE);
        let opened = match op {
            AdminOp::XdsConfig => client.stream_xds_configs(request).await,
            AdminOp::Stats => client.stream_stats(request).await,
            AdminOp::Clusters => client.stream_clusters(request).await,
        };
        let mut incoming = match opened {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                tracing::info!(
                    rpc,
                    "KDS: global does not serve Envoy admin requests (an older global); not offered"
                );
                return;
            }
            Err(status) => {
                tracing::warn!(rpc, code = ?status.code(), reason = status.message(), retry_in = ?pause, "KDS: global refused an Envoy admin stream");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        tracing::debug!(rpc, "KDS: Envoy admin stream open");
        pause = BACKOFF_START;
        let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
        let mut running = JoinSet::new();
        let end = loop {
            while running.try_join_next().is_some() {}
            match incoming.message().await {
                Ok(Some(req)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        let busy = AdminError::Busy {
                            what: "this zone".into(),
                            limit: MAX_CONCURRENT,
                        };
                        for part in into_parts(&req.request_id, Err(busy)) {
                            let _ = tx.send(part).await;
                        }
                        continue;
                    };
                    let (tx, relay) = (tx.clone(), relay.clone());
                    running.spawn(async move {
                        let _permit = permit;
                        answer(op, req, &relay, &tx).await;
                    });
                }
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        };
        match end {
            Some(s) if s.code() == tonic::Code::Unimplemented => return,
            Some(s) => {
                tracing::warn!(rpc, code = ?s.code(), reason = s.message(), retry_in = ?pause, "KDS: Envoy admin stream ended")
            }
            None => {
                tracing::info!(rpc, retry_in = ?pause, "KDS: global closed an Envoy admin stream")
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

/// Carries out one request and sends its answer's parts.
async fn answer(
    op: AdminOp,
    req: EnvoyAdminRequest,
    relay: &Relay,
    tx: &mpsc::Sender<EnvoyAdminResponse>,
) {
    let result = match from_request(op, &req) {
        Ok((proxy, query)) => {
            let r = relay.execute(&proxy, op, &query, ZONE_TIMEOUT).await;
            if let Err(e) = &r {
                tracing::debug!(%proxy, error = %e, "KDS: Envoy admin request failed");
            }
            r
        }
        Err(e) => Err(e),
    };
    for part in into_parts(&req.request_id, result) {
        if tx.send(part).await.is_err() {
            return;
        }
    }
}
