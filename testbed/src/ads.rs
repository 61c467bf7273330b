//! A lightweight ADS client for tests and benchmarks: dials a zone's xDS port over
//! TLS (trusting the zone's xDS CA) and opens SotW or delta streams as a proxy would,
//! with the node and `authorization` metadata weft-dp's bootstrap gives Envoy.

use std::future::Future;
use std::net::SocketAddr;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status, Streaming};
use weft_sync::delta::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, Node};
use weft_zone::xds::XdsEndpoint;
use weft_zone::xds::node::node_for;

pub use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
pub use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
pub use weft_zone::xds::generate::mtls::SECRET_TYPE;
pub use weft_zone::xds::sotw::{CLUSTER_TYPE, LISTENER_TYPE};

pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// A TLS channel to the zone's xDS server, verifying it with its CA.
pub async fn channel(xds: &XdsEndpoint) -> Result<Channel, tonic::transport::Error> {
    let port = xds.address.port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&xds.ca_pem))
                .domain_name("localhost"),
        )?
        .tcp_nodelay(true)
        .connect()
        .await
}

/// A Dataplane in universal JSON with one inbound of `service` on `port`.
pub fn dataplane_json(mesh: &str, name: &str, service: &str, port: u16) -> String {
    serde_json::json!({
        "type": "Dataplane",
        "mesh": mesh,
        "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": port, "tags": {"kuma.io/service": service}}]
        }
    })
    .to_string()
}

/// The node a proxy sends (weft-dp's form).
pub fn node(mesh: &str, name: &str, dataplane_json: &str) -> Node {
    node_for(dataplane_json, mesh, name)
}

fn with_token<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut req = Request::new(msg);
    if let Some(t) = token
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// One open ADS stream: requests go out on `tx`, responses come in on `rx`.
pub struct AdsStream<Req, Resp> {
    pub tx: mpsc::Sender<Req>,
    pub rx: Streaming<Resp>,
}

/// One open delta ADS stream.
pub type DeltaStream = AdsStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/// One open SotW ADS stream.
pub type SotwStream = AdsStream<DiscoveryRequest, DiscoveryResponse>;

type Client = AggregatedDiscoveryServiceClient<Channel>;

impl<Req, Resp> AdsStream<Req, Resp> {
    /// Opens a stream with `rpc` whose first request is `first` (it should carry
    /// the node).
    async fn open_with<F, Fut>(
        channel: Channel,
        token: Option<&str>,
        first: Req,
        rpc: F,
    ) -> Result<Self, Status>
    where
        F: FnOnce(Client, Request<ReceiverStream<Req>>) -> Fut,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>>,
    {
        let (tx, rx) = mpsc::channel(16);
        tx.send(first)
            .await
            .map_err(|_| Status::internal("request queue closed"))?;
        let client = Client::new(channel).max_decoding_message_size(16 * 1024 * 1024);
        let resp = rpc(client, with_token(ReceiverStream::new(rx), token)).await?;
        Ok(AdsStream {
            tx,
            rx: resp.into_inner(),
        })
    }

    /// The next response, or the stream's end status.
    pub async fn next(&mut self) -> Result<Resp, Status> {
        match self.rx.message().await? {
            Some(m) => Ok(m),
            None => Err(Status::cancelled("stream ended")),
        }
    }

    pub async fn send(&self, req: Req) -> Result<(), Status> {
        self.tx
            .send(req)
            .await
            .map_err(|_| Status::internal("request queue closed"))
    }
}

impl DeltaStream {
    /// Opens a delta stream whose first request is `first` (it should carry the node).
    pub async fn open(
        channel: Channel,
        token: Option<&str>,
        first: DeltaDiscoveryRequest,
    ) -> Result<Self, Status> {
        Self::open_with(channel, token, first, |mut c, req| async move {
            c.delta_aggregated_resources(req).await
        })
        .await
    }

    /// ACKs `resp`.
    pub async fn ack(&self, resp: &DeltaDiscoveryResponse) -> Result<(), Status> {
        self.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })
        .await
    }

    /// Subscribes to `names` of `type_url` (the type's first request, or more
    /// names later), as Envoy does for the SDS secrets its config names.
    pub async fn subscribe(&self, type_url: &str, names: &[&str]) -> Result<(), Status> {
        self.send(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names_subscribe: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    /// Drops `names` of `type_url` from the subscription.
    pub async fn unsubscribe(&self, type_url: &str, names: &[&str]) -> Result<(), Status> {
        self.send(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names_unsubscribe: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    /// NACKs `resp` with `reason` (as Envoy does: naming no resource).
    pub async fn nack(&self, resp: &DeltaDiscoveryResponse, reason: &str) -> Result<(), Status> {
        self.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            error_detail: Some(rpc_status(reason)),
            ..Default::default()
        })
        .await
    }
}

impl SotwStream {
    /// Opens a SotW stream whose first request is `first` (it should carry the node).
    pub async fn open(
        channel: Channel,
        token: Option<&str>,
        first: DiscoveryRequest,
    ) -> Result<Self, Status> {
        Self::open_with(channel, token, first, |mut c, req| async move {
            c.stream_aggregated_resources(req).await
        })
        .await
    }

    /// ACKs `resp`, keeping `names` subscribed.
    pub async fn ack(&self, resp: &DiscoveryResponse, names: &[&str]) -> Result<(), Status> {
        self.send(DiscoveryRequest {
            type_url: resp.type_url.clone(),
            version_info: resp.version_info.clone(),
            response_nonce: resp.nonce.clone(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    /// Asks for exactly `names` of `type_url` (a SotW request replaces the type's
    /// subscription; no ACK/NACK part).
    pub async fn subscribe(&self, type_url: &str, names: &[&str]) -> Result<(), Status> {
        self.send(DiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    /// NACKs `resp`, reporting `held` as the version still in use.
    pub async fn nack(
        &self,
        resp: &DiscoveryResponse,
        held: &str,
        reason: &str,
    ) -> Result<(), Status> {
        self.send(DiscoveryRequest {
            type_url: resp.type_url.clone(),
            version_info: held.to_string(),
            response_nonce: resp.nonce.clone(),
            error_detail: Some(rpc_status(reason)),
            ..Default::default()
        })
        .await
    }
}

fn rpc_status(reason: &str) -> envoy_types::pb::google::rpc::Status {
    envoy_types::pb::google::rpc::Status {
        code: 3,
        message: reason.to_string(),
        details: vec![],
    }
}
