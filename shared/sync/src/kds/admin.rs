//! Envoy admin over KDS (decision 0015): global sends an [`EnvoyAdminRequest`]
//! down the stream a zone opened for that kind of request (`GlobalKDSService`'s
//! `StreamXDSConfigs`, `StreamStats`, `StreamClusters`); the zone answers under
//! the same request id, in parts of at most [`CHUNK_BYTES`].
//!
//! - [`AdminStreams`] (global): which zone holds which stream, the requests in
//!   flight on each, reassembly of the parts (bounded by
//!   [`MAX_RESPONSE_BYTES`]), timeouts. A zone's parts are matched only against
//!   requests sent on that zone's own stream: a zone cannot answer for another.
//! - [`into_parts`] / [`from_request`] (zone): turning a request into what the
//!   zone's relay needs, and an answer into response parts.

use kds_proto::{EnvoyAdminRequest, EnvoyAdminResponse};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use weft_model::proxy::admin::{
    AdminError, AdminOp, AdminQuery, Format, MAX_RESPONSE_BYTES, ProxyRef,
};
use weft_model::resource::ResourceType;

/// Largest payload of one response part: messages stay under 1 MiB, like every
/// KDS message.
pub const CHUNK_BYTES: usize = 1024 * 1024 - 4096;

/// Most requests in flight on one zone's stream; more are refused as busy.
pub const MAX_IN_FLIGHT: usize = 64;

pub use weft_model::proxy::admin::AdminReply;

/// The request global sends for `proxy`.
pub fn to_request(request_id: String, proxy: &ProxyRef, query: &AdminQuery) -> EnvoyAdminRequest {
    EnvoyAdminRequest {
        request_id,
        resource_type: proxy.ty.name().to_string(),
        resource_name: proxy.name.clone(),
        resource_mesh: proxy.mesh.clone().unwrap_or_default(),
        include_eds: query.include_eds,
        format: match query.format {
            Format::Text => String::new(),
            Format::Json => "json".into(),
        },
        filter: query.filter.clone().unwrap_or_default(),
    }
}

/// What a zone receives, checked as the REST API checks it (the zone does not
/// trust global to have done so): the proxy and the query, or the answer to send.
pub fn from_request(
    op: AdminOp,
    req: &EnvoyAdminRequest,
) -> Result<(ProxyRef, AdminQuery), AdminError> {
    let bad = |message: String| AdminError::Remote {
        status: 400,
        message,
    };
    let ty = ResourceType::from_name(&req.resource_type)
        .ok_or_else(|| bad(format!("unknown resource type {:?}", req.resource_type)))?;
    let mesh = (!req.resource_mesh.is_empty()).then_some(req.resource_mesh.as_str());
    let proxy = ProxyRef::new(ty, mesh, &req.resource_name).map_err(bad)?;
    let query = AdminQuery {
        include_eds: req.include_eds,
        format: Format::parse(&req.format).map_err(|e| bad(e.to_string()))?,
        filter: (!req.filter.is_empty()).then(|| req.filter.clone()),
    };
    query.check(op).map_err(|e| bad(e.to_string()))?;
    Ok((proxy, query))
}

/// The response parts for one answer: the payload in parts of at most
/// [`CHUNK_BYTES`] (every part but the last with `more`), or one error part.
pub fn into_parts(
    request_id: &str,
    result: Result<AdminReply, AdminError>,
) -> Vec<EnvoyAdminResponse> {
    match result {
        Err(e) => vec![EnvoyAdminResponse {
            request_id: request_id.to_string(),
            error: e.to_string(),
            error_status: u32::from(e.status()),
            ..EnvoyAdminResponse::default()
        }],
        Ok(reply) => {
            let mut parts: Vec<EnvoyAdminResponse> = reply
                .body
                .chunks(CHUNK_BYTES)
                .map(|c| EnvoyAdminResponse {
                    request_id: request_id.to_string(),
                    chunk: c.to_vec(),
                    more: true,
                    ..EnvoyAdminResponse::default()
                })
                .collect();
            if parts.is_empty() {
                parts.push(EnvoyAdminResponse {
                    request_id: request_id.to_string(),
                    ..EnvoyAdminResponse::default()
                });
            }
            if let Some(last) = parts.last_mut() {
                last.more = false;
            }
            if let Some(first) = parts.first_mut() {
                first.content_type = reply.content_type;
            }
            parts
        }
    }
}

type Done = oneshot::Sender<Result<AdminReply, AdminError>>;

struct Pending {
    done: Done,
    content_type: String,
    body: Vec<u8>,
    proxy: String,
}

struct Stream {
    generation: u64,
    requests: mpsc::Sender<EnvoyAdminRequest>,
    pending: HashMap<String, Pending>,
}

#[derive(Default)]
struct Inner {
    streams: HashMap<(String, AdminOp), Stream>,
    next_generation: u64,
    next_id: u64,
}

/// Global's side: the zones' admin streams and the requests in flight on them.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct AdminStreams {
    inner: Arc<Mutex<Inner>>,
}

/// A zone's open stream of one kind: global sends what arrives on `requests` to
/// the zone, and gives every part the zone sends to [`OpenStream::accept`].
/// Dropping it (the stream ended) fails the requests still waiting on it.
pub struct OpenStream {
    streams: AdminStreams,
    zone: String,
    op: AdminOp,
    generation: u64,
}

/// A part the zone sent that global cannot use; the stream goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    #[error("answer to unknown request {0:?} (it timed out, or was never sent on this stream)")]
    UnknownRequest(String),
}

impl AdminStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `zone`'s new stream for `op`; it replaces an older one of the
    /// same zone and kind (whose requests in flight then fail).
    pub fn open(&self, zone: &str, op: AdminOp) -> (OpenStream, mpsc::Receiver<EnvoyAdminRequest>) {
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let mut inner = self.lock();
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let old = inner.streams.insert(
            (zone.to_string(), op),
            Stream {
                generation,
                requests: tx,
                pending: HashMap::new(),
            },
        );
        drop(inner);
        if let Some(old) = old {
            fail_all(old, zone);
        }
        (
            OpenStream {
                streams: self.clone(),
                zone: zone.to_string(),
                op,
                generation,
            },
            rx,
        )
    }

    /// Whether `zone` holds a stream for `op`.
    pub fn has_stream(&self, zone: &str, op: AdminOp) -> bool {
        self.lock().streams.contains_key(&(zone.to_string(), op))
    }

    /// Sends `op` for `proxy` (named as its zone names it) to `zone` and waits up
    /// to `timeout` for the whole answer. [`AdminError::ZoneOffline`] when the
    /// zone holds no stream for `op`.
    pub async fn request(
        &self,
        zone: &str,
        op: AdminOp,
        proxy: &ProxyRef,
        query: &AdminQuery,
        timeout: Duration,
    ) -> Result<AdminReply, AdminError> {
        let (done, answer) = oneshot::channel();
        let key = (zone.to_string(), op);
        let (id, requests) = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = format!("{:x}-{}", inner.next_id, std::process::id());
            let Some(stream) = inner.streams.get_mut(&key) else {
                return Err(AdminError::ZoneOffline { zone: zone.into() });
            };
            if stream.pending.len() >= MAX_IN_FLIGHT {
                return Err(AdminError::Busy {
                    what: format!("zone {zone}"),
                    limit: MAX_IN_FLIGHT,
                });
            }
            stream.pending.insert(
                id.clone(),
                Pending {
                    done,
                    content_type: String::new(),
                    body: Vec::new(),
                    proxy: proxy.to_string(),
                },
            );
            (id, stream.requests.clone())
        };
        let sent = requests.try_send(to_request(id.clone(), proxy, query));
        if sent.is_err() {
            self.forget(&key, &id);
            return Err(match sent {
                Err(mpsc::error::TrySendError::Full(_)) => AdminError::Busy {
                    what: format!("zone {zone}"),
                    limit: MAX_IN_FLIGHT,
                },
                _ => AdminError::ZoneOffline { zone: zone.into() },
            });
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            // The stream ended and its pending requests were dropped.
            Ok(Err(_)) => Err(AdminError::ZoneOffline { zone: zone.into() }),
            Err(_) => {
                self.forget(&key, &id);
                Err(AdminError::Timeout {
                    what: format!("zone {zone} (for {proxy})"),
                    after: timeout,
                })
            }
        }
    }

    fn forget(&self, key: &(String, AdminOp), id: &str) {
        if let Some(s) = self.lock().streams.get_mut(key) {
            s.pending.remove(id);
        }
    }
}

/// Fails every request still waiting on a stream that ended.
fn fail_all(stream: Stream, zone: &str) {
    for (_, p) in stream.pending {
        let _ = p
            .done
            .send(Err(AdminError::ZoneOffline { zone: zone.into() }));
    }
}

impl OpenStream {
    /// Takes one part the zone sent on this stream: completes its request when it
    /// is the last part, an error, or makes the answer too large.
    pub fn accept(&self, part: EnvoyAdminResponse) -> Result<(), PartError> {
        let mut inner = self.streams.lock();
        let stream = inner
            .streams
            .get_mut(&(self.zone.clone(), self.op))
            .filter(|s| s.generation == self.generation);
        let Some(stream) = stream else {
            return Err(PartError::UnknownRequest(part.request_id));
        };
        let Some(pending) = stream.pending.get_mut(&part.request_id) else {
            return Err(PartError::UnknownRequest(part.request_id));
        };
        let outcome = if !part.error.is_empty() {
            Some(Err(AdminError::Remote {
                status: u16::try_from(part.error_status).unwrap_or(502),
                message: part.error,
            }))
        } else if pending.body.len() + part.chunk.len() > MAX_RESPONSE_BYTES {
            Some(Err(AdminError::TooLarge {
                proxy: pending.proxy.clone(),
                limit: MAX_RESPONSE_BYTES,
            }))
        } else {
            if pending.content_type.is_empty() {
                pending.content_type = part.content_type;
            }
            pending.body.extend_from_slice(&part.chunk);
            (!part.more).then(|| {
                Ok(AdminReply {
                    content_type: std::mem::take(&mut pending.content_type),
                    body: std::mem::take(&mut pending.body),
                })
            })
        };
        if let Some(result) = outcome
            && let Some(p) = stream.pending.remove(&part.request_id)
        {
            let _ = p.done.send(result);
        }
        Ok(())
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut inner = self.streams.lock();
        let key = (self.zone.clone(), self.op);
        if inner
            .streams
            .get(&key)
            .is_some_and(|s| s.generation == self.generation)
            && let Some(stream) = inner.streams.remove(&key)
        {
            drop(inner);
            fail_all(stream, &self.zone);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
