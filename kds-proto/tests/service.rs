//! The generated `KDSSyncService` works end to end over gRPC with envoy-types'
//! delta xDS messages and a packed `KdsResource`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use kds_proto::{
    KDS_RESOURCE_TYPE_URL, KdsMeta, KdsResource, KdsSyncService, KdsSyncServiceClient,
    KdsSyncServiceServer, pack, unpack,
};
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

type Outbound<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn mtp(mesh: &str) -> KdsResource {
    KdsResource {
        meta: Some(KdsMeta {
            r#type: "MeshTrafficPermission".into(),
            name: "allow-all".into(),
            mesh: mesh.into(),
            labels: BTreeMap::from([("kuma.io/origin".into(), "global".into())]),
        }),
        spec: br#"{"targetRef":{"kind":"Mesh"}}"#.to_vec(),
    }
}

/// Answers every request with one resource of the requested type, and ACKs every
/// response it is sent.
struct Fake;

#[tonic::async_trait]
impl KdsSyncService for Fake {
    type GlobalToZoneSyncStream = Outbound<DeltaDiscoveryResponse>;
    type ZoneToGlobalSyncStream = Outbound<DeltaDiscoveryRequest>;

    async fn global_to_zone_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::GlobalToZoneSyncStream>, Status> {
        let answers = request.into_inner().map(|req| {
            let req = req?;
            let zone = req.node.map(|n| n.id).unwrap_or_default();
            Ok(DeltaDiscoveryResponse {
                type_url: req.type_url,
                system_version_info: format!("for-{zone}"),
                nonce: "n1".into(),
                resources: vec![Resource {
                    name: "allow-all.default".into(),
                    version: "v1".into(),
                    resource: Some(pack(&mtp("default"))),
                    ..Resource::default()
                }],
                ..DeltaDiscoveryResponse::default()
            })
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn zone_to_global_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalSyncStream>, Status> {
        let acks = request.into_inner().map(|resp| {
            let resp = resp?;
            Ok(DeltaDiscoveryRequest {
                type_url: resp.type_url,
                response_nonce: resp.nonce,
                ..DeltaDiscoveryRequest::default()
            })
        });
        Ok(Response::new(Box::pin(acks)))
    }
}

async fn start() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KdsSyncServiceServer::new(Fake))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    (addr, stop)
}

#[tokio::test]
async fn global_to_zone_carries_a_packed_kds_resource() {
    // A zone's request reaches the server and a response with a KdsResource comes back intact.
    let (addr, _stop) = start().await;
    let mut client = KdsSyncServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let subscribe = DeltaDiscoveryRequest {
        node: Some(Node {
            id: "zone-1".into(),
            ..Node::default()
        }),
        type_url: "MeshTrafficPermission".into(),
        resource_names_subscribe: vec!["*".into()],
        ..DeltaDiscoveryRequest::default()
    };
    let mut inbound = client
        .global_to_zone_sync(tokio_stream::iter([subscribe]))
        .await
        .unwrap()
        .into_inner();

    let resp = inbound.message().await.unwrap().expect("one response");
    assert_eq!(resp.type_url, "MeshTrafficPermission");
    assert_eq!(resp.system_version_info, "for-zone-1");
    assert_eq!(resp.resources.len(), 1);
    let any = resp.resources[0].resource.as_ref().expect("resource Any");
    assert_eq!(any.type_url, KDS_RESOURCE_TYPE_URL);
    assert_eq!(unpack(any).unwrap(), mtp("default"));
    // The client closed its side after one request, so the server ends the stream.
    assert!(inbound.message().await.unwrap().is_none());
}

#[tokio::test]
async fn zone_to_global_runs_with_roles_inverted() {
    // The zone sends a response on its client stream and receives the ACK request.
    let (addr, _stop) = start().await;
    let mut client = KdsSyncServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let push = DeltaDiscoveryResponse {
        type_url: "Dataplane".into(),
        nonce: "z7".into(),
        resources: vec![Resource {
            name: "dp-1.default".into(),
            resource: Some(pack(&mtp("default"))),
            ..Resource::default()
        }],
        ..DeltaDiscoveryResponse::default()
    };
    let mut inbound = client
        .zone_to_global_sync(tokio_stream::iter([push]))
        .await
        .unwrap()
        .into_inner();

    let ack = inbound.message().await.unwrap().expect("one ACK");
    assert_eq!(ack.type_url, "Dataplane");
    assert_eq!(ack.response_nonce, "z7");
    assert!(ack.error_detail.is_none());
}
