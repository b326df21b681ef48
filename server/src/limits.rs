//! The connection loop: how many connections are served at once, and to
//! one client, how big a request head may be, and how long a client may
//! take to send one. These are what keep one slow or greedy client from
//! starving everyone else (slowloris: opening connections and sending
//! headers a line at a time).
//!
//! Every connection is accepted at once, never left in the kernel's listen
//! backlog, where a probe of `/health` would wait behind an attacker's
//! connections. Past `max_connections_per_client` connections from one IP
//! address, or `max_connections` in all, the new connection takes the
//! place of the oldest one that is between requests (still waiting for a
//! request head, or idle after one): that one is closed. A client whose
//! connections are all in the middle of requests gets `503` on the new one,
//! at once. So a slowloris can hold at most its own share of places, and
//! even a client sharing its address gets in: its request head comes
//! before the attacker's. A request head over `max_header_bytes` is
//! answered `431 Request Header Fields Too Large` and its connection
//! closed; a head not complete within `header_timeout` (the whole head:
//! hyper starts the clock when it starts waiting for a head and does not
//! restart it as lines arrive; also the most a kept-alive connection may
//! sit idle between requests) closes the connection; a body not complete
//! within `body_timeout` fails the read, which the handlers answer with
//! 408.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::config::ServerConfig;

/// The bounds on connections, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub max_header_bytes: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_client: 128,
            max_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// The smallest head limit hyper accepts (its read buffer's floor).
pub const MIN_HEADER_BYTES: u32 = 8192;

impl Limits {
    /// `[server]`'s limits over the defaults.
    pub fn from_config(server: &ServerConfig) -> Self {
        let default = Self::default();
        let seconds =
            |s: Option<u32>, d: Duration| s.map_or(d, |s| Duration::from_secs(u64::from(s)));
        Self {
            max_connections: server
                .max_connections
                .map_or(default.max_connections, |n| n as usize),
            max_connections_per_client: server
                .max_connections_per_client
                .map_or(default.max_connections_per_client, |n| n as usize),
            max_header_bytes: server
                .max_header_bytes
                .map_or(default.max_header_bytes, |n| n as usize),
            header_timeout: seconds(server.header_timeout_seconds, default.header_timeout),
            body_timeout: seconds(server.body_timeout_seconds, default.body_timeout),
        }
    }
}

/// The rules on `[server]` limits that serde cannot say.
pub(crate) fn check_config(server: &ServerConfig) -> Result<(), String> {
    let positive = [
        ("max_connections", server.max_connections),
        (
            "max_connections_per_client",
            server.max_connections_per_client,
        ),
        ("header_timeout_seconds", server.header_timeout_seconds),
        ("body_timeout_seconds", server.body_timeout_seconds),
    ];
    for (name, value) in positive {
        if value == Some(0) {
            return Err(format!("server.{name}: must be at least 1"));
        }
    }
    if let Some(bytes) = server.max_header_bytes {
        if bytes < MIN_HEADER_BYTES {
            return Err(format!(
                "server.max_header_bytes: {bytes} is below the minimum, {MIN_HEADER_BYTES}"
            ));
        }
    }
    Ok(())
}

/// Whether a body read failed because the client was too slow (rather
/// than the body being too large), so the handler can answer 408.
pub fn is_body_timeout(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<BodyTimeout>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The error a body gives when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the time allowed")]
pub struct BodyTimeout;

/// A request body with a deadline for the whole of it (not per chunk: a
/// client trickling a byte at a time is cut off all the same).
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// One open connection as the loop sees it.
#[derive(Debug, Default)]
struct ConnectionState {
    /// Requests in progress, counted until their response body ends: 0
    /// means the connection is between requests and may be closed to make
    /// room.
    busy: AtomicUsize,
    /// Woken to close the connection.
    evict: tokio::sync::Notify,
}

/// Holds a connection busy for as long as it lives (the request's handler,
/// then its response body).
struct Busy(Arc<ConnectionState>);

impl Busy {
    fn new(state: &Arc<ConnectionState>) -> Self {
        state.busy.fetch_add(1, Ordering::SeqCst);
        Self(state.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its connection busy until it ends.
struct BusyBody {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for BusyBody {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The open connections, oldest first, and how many each client holds.
#[derive(Debug, Default)]
struct OpenConnections {
    next: u64,
    by_age: BTreeMap<u64, (IpAddr, Arc<ConnectionState>)>,
    per_client: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    /// Makes room for a connection from `client` (closing the oldest one
    /// between requests if a limit is reached) and registers it; `None`
    /// when there is no room to make.
    fn admit(&mut self, client: IpAddr, limits: &Limits) -> Option<(u64, Arc<ConnectionState>)> {
        let held = self.per_client.get(&client).copied().unwrap_or(0);
        let over_client = held >= limits.max_connections_per_client;
        let over_total = self.by_age.len() >= limits.max_connections;
        if over_client || over_total {
            let victim = self
                .by_age
                .iter()
                .find(|(_, (ip, state))| {
                    (!over_client || *ip == client) && state.busy.load(Ordering::SeqCst) == 0
                })
                .map(|(id, _)| *id)?;
            if let Some(state) = self.remove(victim) {
                state.evict.notify_one();
            }
        }
        let id = self.next;
        self.next += 1;
        let state = Arc::new(ConnectionState::default());
        self.by_age.insert(id, (client, state.clone()));
        *self.per_client.entry(client).or_insert(0) += 1;
        Some((id, state))
    }

    fn remove(&mut self, id: u64) -> Option<Arc<ConnectionState>> {
        let (client, state) = self.by_age.remove(&id)?;
        if let Some(held) = self.per_client.get_mut(&client) {
            *held -= 1;
            if *held == 0 {
                self.per_client.remove(&client);
            }
        }
        Some(state)
    }
}

fn lock(open: &std::sync::Mutex<OpenConnections>) -> std::sync::MutexGuard<'_, OpenConnections> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a connection with no room gets before it is closed.
const NO_ROOM: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 74\r\nRetry-After: 1\r\nConnection: close\r\n\r\nthe server has no room for another connection from this client; try again\n";

/// Serves `router` on `listener` within `limits` until `shutdown`
/// completes; then stops accepting and waits for open connections to
/// finish (`on_stop` runs first, so long polls can end). With `tls`, every
/// connection is a TLS one: its handshake runs in the connection's own
/// task and must end within `header_timeout`, like a request head.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<crate::tls::ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_stop: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(std::sync::Mutex::new(OpenConnections::default()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES as usize));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before it
                // was accepted: not fatal, try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let client = peer.ip().to_canonical();
        let Some((id, state)) = lock(&open).admit(client, &limits) else {
            // Best effort and never waiting: a fresh socket's send buffer
            // takes these few bytes (a TLS client could not read them: it
            // is only closed).
            if tls.is_none() {
                let _ = stream.try_write(NO_ROOM);
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let addrs = crate::origin::ConnectionAddrs {
            local: stream.local_addr().unwrap_or(peer),
            peer,
        };
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let connection_state = state.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::new(&connection_state);
            let mut request = request.map(|body| {
                Body::new(DeadlineBody {
                    body,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                })
            });
            request.extensions_mut().insert(addrs);
            // The router is always ready and never fails: errors are responses.
            let response = tower_service::Service::call(&mut router.clone(), request);
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Body::new(BusyBody { body, _busy: busy })),
                )
            }
        });
        let (builder, watcher, open, tls) = (
            builder.clone(),
            graceful.watcher(),
            open.clone(),
            tls.clone(),
        );
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let served = async move {
                match tls {
                    None => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                    Some(tls) => {
                        let accepted =
                            tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream))
                                .await;
                        // A failed or slow handshake only closes its socket.
                        let Ok(Ok(stream)) = accepted else { return };
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                }
            };
            tokio::select! {
                () = served => {}
                // Dropping the connection closes its socket.
                () = state.evict.notified() => {}
            }
            lock(&open).remove(id);
        });
    }
    drop(listener);
    on_stop();
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_client: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_client: per_client,
            ..Limits::default()
        }
    }

    #[test]
    fn a_client_past_its_share_closes_its_own_oldest_idle_connection() {
        let limits = limits(10, 2);
        let mut open = OpenConnections::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let (_, other) = open.admit(b, &limits).unwrap();
        let (first, first_state) = open.admit(a, &limits).unwrap();
        let (second, second_state) = open.admit(a, &limits).unwrap();
        let _busy = Busy::new(&second_state);
        let (third, _) = open.admit(a, &limits).unwrap();
        // The oldest of a's, not b's, which is older still.
        assert!(!open.by_age.contains_key(&first));
        assert!(open.by_age.contains_key(&second) && open.by_age.contains_key(&third));
        assert_eq!(open.per_client[&a], 2);
        assert_eq!(
            Arc::strong_count(&first_state),
            1,
            "handed back to be woken"
        );
        assert_eq!(other.busy.load(Ordering::SeqCst), 0);
        // Both of a's are busy now: no room.
        let third_state = open.by_age[&third].1.clone();
        let _busy_too = Busy::new(&third_state);
        assert!(open.admit(a, &limits).is_none());
        assert!(open.admit(b, &limits).is_some());
    }

    #[test]
    fn past_the_total_the_oldest_idle_connection_of_anyone_goes() {
        let limits = limits(2, 2);
        let mut open = OpenConnections::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let (first, first_state) = open.admit(a, &limits).unwrap();
        let _busy = Busy::new(&first_state);
        let (second, _) = open.admit(a, &limits).unwrap();
        open.admit(b, &limits).unwrap();
        assert!(open.by_age.contains_key(&first) && !open.by_age.contains_key(&second));
        assert_eq!(open.by_age.len(), 2);
        drop(_busy);
        open.remove(first);
        assert_eq!(open.per_client.get(&a), None);
    }
}
