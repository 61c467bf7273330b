//! What the control planes' gRPC servers (KDS on global, ADS on a zone) share:
//! TLS with the server's identity, HTTP/2 keepalive, and serving a bound
//! listener until shutdown.

use crate::server::{ServeFuture, ServerError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use weft_runtime::shutdown::CancellationToken;

/// A gRPC server builder over TLS with the identity `cert_chain_pem` /
/// `key_pem`, pinging an idle connection every `keepalive` and waiting as long
/// for the answer. A refused identity is a [`ServerError::Setup`] of `what`.
pub fn tls_server(
    what: &'static str,
    cert_chain_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
    keepalive: Duration,
) -> Result<Server, ServerError> {
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_chain_pem, key_pem));
    Ok(Server::builder()
        .tls_config(tls)
        .map_err(ServerError::setup(what))?
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive)))
}

/// Serves `router` on `listener` until `shutdown`, letting open calls finish; a
/// failure is a [`ServerError::Serve`] of `what`.
pub fn serve(
    what: &'static str,
    router: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> ServeFuture {
    Box::pin(async move {
        router
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await
            .map_err(|e| ServerError::Serve {
                what,
                source: std::io::Error::other(e),
            })
    })
}
