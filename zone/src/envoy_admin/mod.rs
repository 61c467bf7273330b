//! Envoy admin of this zone's proxies through the control plane (decision 0015):
//! `xds` (config dump), `stats` and `clusters` of any Dataplane, ZoneIngress or
//! ZoneEgress, for the zone's REST API ([`api`]) and for global over KDS ([`kds`]).
//!
//! Envoy's admin listens on `127.0.0.1` only; nothing reaches it over the network.
//! The zone reaches it through the proxy's `weft-dp`, which holds a relay stream
//! open to the zone ([`relay_api`]: `GET /envoy-admin/relay`, authenticated with
//! the proxy's dataplane token like `/bootstrap`). The zone sends a
//! [`RelayCommand`] down it; `weft-dp` performs the one `GET` it names on Envoy's
//! admin (only `/config_dump`, `/stats`, `/clusters`) and posts the answer back.
//! [`Relay`] holds which proxies are connected and the requests in flight.

pub mod api;
pub mod kds;
pub mod relay_api;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use weft_model::proxy::admin::{AdminError, AdminOp, AdminQuery, ProxyRef, RelayCommand};
use weft_model::resource::ResourceKey;
use weft_store::ResourceStore;
pub use weft_sync::kds::admin::AdminReply;

/// Most requests in flight to one proxy; more are refused as busy.
pub const MAX_IN_FLIGHT: usize = 16;

/// How often the zone writes a heartbeat line on an idle relay stream.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

struct Conn {
    generation: u64,
    session: String,
    token: Option<String>,
    commands: mpsc::Sender<RelayCommand>,
    pending: HashMap<u64, oneshot::Sender<Result<AdminReply, AdminError>>>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ProxyRef, Conn>,
    sessions: HashMap<String, ProxyRef>,
    next_generation: u64,
    next_id: u64,
}

/// The zone's proxies reachable for admin requests, and the requests in flight.
/// Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Mutex<Inner>>,
    store: Arc<dyn ResourceStore>,
}

/// A proxy's relay stream, registered while it lives; dropping it (the
/// connection closed) unregisters it and fails what waits on it.
pub struct Connection {
    relay: Relay,
    proxy: ProxyRef,
    generation: u64,
    /// The secret the proxy's answers must name.
    pub session: String,
}

/// What `weft-dp` reports for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Envoy's answer.
    Reply(AdminReply),
    /// Envoy answered more than the limit.
    TooLarge,
    /// Envoy could not be reached or answered an error; why.
    Envoy(String),
}

/// Why `weft-dp`'s answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("no relay session {0:?} (the proxy reconnected, or the zone restarted)")]
    UnknownSession(String),
    #[error("the token does not match the one this relay session was opened with")]
    WrongToken,
    #[error("request {0} is not waiting (it timed out)")]
    UnknownRequest(u64),
}

impl Relay {
    pub fn new(store: Arc<dyn ResourceStore>) -> Relay {
        Relay {
            inner: Arc::default(),
            store,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `proxy`'s relay stream is open.
    pub fn is_connected(&self, proxy: &ProxyRef) -> bool {
        self.lock().conns.contains_key(proxy)
    }

    /// Registers `proxy`'s new relay stream (replacing an older one: a restarted
    /// `weft-dp`); the commands to write on it arrive on the receiver.
    pub fn connect(
        &self,
        proxy: ProxyRef,
        token: Option<String>,
    ) -> (Connection, mpsc::Receiver<RelayCommand>) {
        use rand::RngCore;
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        let session = hex::encode(secret);
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let mut inner = self.lock();
        inner.next_generation += 1;
        let generation = inner.next_generation;
        inner.sessions.insert(session.clone(), proxy.clone());
        let old = inner.conns.insert(
            proxy.clone(),
            Conn {
                generation,
                session: session.clone(),
                token,
                commands: tx,
                pending: HashMap::new(),
            },
        );
        if let Some(old) = old {
            inner.sessions.remove(&old.session);
            drop(inner);
            fail_all(old, &proxy, "its weft-dp reconnected");
        }
        (
            Connection {
                relay: self.clone(),
                proxy,
                generation,
                session,
            },
            rx,
        )
    }

    /// Asks `proxy`'s Envoy for `op` and waits up to `timeout`: 404 when the zone
    /// holds no such proxy, 503 when its relay is not connected, 504 when it does
    /// not answer in time.
    pub async fn execute(
        &self,
        proxy: &ProxyRef,
        op: AdminOp,
        query: &AdminQuery,
        timeout: Duration,
    ) -> Result<AdminReply, AdminError> {
        let key = ResourceKey::new(proxy.ty, proxy.mesh.as_deref(), &proxy.name);
        let stored = self.store.get(&key).await.map_err(|e| AdminError::Remote {
            status: 500,
            message: format!("cannot read {proxy} from the zone's store: {e}"),
        })?;
        match stored {
            None => {
                return Err(AdminError::NotFound {
                    proxy: proxy.to_string(),
                    where_: " in this zone".into(),
                });
            }
            Some(res) if crate::xds::server::is_from_global(&res) => {
                let zone = res
                    .meta
                    .labels
                    .get(weft_model::resource::tags::ZONE)
                    .map_or_else(|| "another zone".to_string(), |z| format!("zone {z}"));
                return Err(AdminError::NotFound {
                    proxy: proxy.to_string(),
                    where_: format!(" in this zone (it is {zone}'s; ask global or that zone)"),
                });
            }
            Some(_) => {}
        }
        let (done, answer) = oneshot::channel();
        let (id, commands) = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            let Some(conn) = inner.conns.get_mut(proxy) else {
                return Err(AdminError::NotConnected {
                    proxy: proxy.to_string(),
                    reason: "its weft-dp holds no admin relay to this zone (not running, \
                             still starting, or older than this zone)"
                        .into(),
                });
            };
            if conn.pending.len() >= MAX_IN_FLIGHT {
                return Err(AdminError::Busy {
                    what: proxy.to_string(),
                    limit: MAX_IN_FLIGHT,
                });
            }
            conn.pending.insert(id, done);
            (id, conn.commands.clone())
        };
        let command = RelayCommand {
            id,
            op,
            query: query.clone(),
        };
        if commands.try_send(command).is_err() {
            self.forget(proxy, id);
            return Err(AdminError::NotConnected {
                proxy: proxy.to_string(),
                reason: "its relay stream closed".into(),
            });
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AdminError::NotConnected {
                proxy: proxy.to_string(),
                reason: "its relay stream closed before it answered".into(),
            }),
            Err(_) => {
                self.forget(proxy, id);
                Err(AdminError::Timeout {
                    what: proxy.to_string(),
                    after: timeout,
                })
            }
        }
    }

    fn forget(&self, proxy: &ProxyRef, id: u64) {
        if let Some(c) = self.lock().conns.get_mut(proxy) {
            c.pending.remove(&id);
        }
    }

    /// Completes request `id` of relay `session` with what `weft-dp` reported;
    /// `token` must be the one the session was opened with.
    pub fn answer(
        &self,
        session: &str,
        token: Option<&str>,
        id: u64,
        outcome: Outcome,
    ) -> Result<(), AnswerError> {
        let mut inner = self.lock();
        let proxy = inner
            .sessions
            .get(session)
            .cloned()
            .ok_or_else(|| AnswerError::UnknownSession(session.into()))?;
        let conn = inner
            .conns
            .get_mut(&proxy)
            .filter(|c| c.session == session)
            .ok_or_else(|| AnswerError::UnknownSession(session.into()))?;
        if conn.token.as_deref() != token {
            return Err(AnswerError::WrongToken);
        }
        let done = conn
            .pending
            .remove(&id)
            .ok_or(AnswerError::UnknownRequest(id))?;
        let result = match outcome {
            Outcome::Reply(reply) => Ok(reply),
            Outcome::TooLarge => Err(AdminError::TooLarge {
                proxy: proxy.to_string(),
                limit: weft_model::proxy::admin::MAX_RESPONSE_BYTES,
            }),
            Outcome::Envoy(reason) => Err(AdminError::Envoy {
                proxy: proxy.to_string(),
                reason,
            }),
        };
        let _ = done.send(result);
        Ok(())
    }
}

fn fail_all(conn: Conn, proxy: &ProxyRef, why: &str) {
    for (_, done) in conn.pending {
        let _ = done.send(Err(AdminError::NotConnected {
            proxy: proxy.to_string(),
            reason: why.into(),
        }));
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut inner = self.relay.lock();
        if inner
            .conns
            .get(&self.proxy)
            .is_some_and(|c| c.generation == self.generation)
            && let Some(conn) = inner.conns.remove(&self.proxy)
        {
            inner.sessions.remove(&conn.session);
            drop(inner);
            tracing::info!(proxy = %self.proxy, "envoy admin: relay closed");
            fail_all(conn, &self.proxy, "its relay stream closed");
        }
    }
}
