//! The connection loop: how many connections are served at once, how big a
//! request head may be, and how long a client may take to send one. These
//! are what keep one slow or greedy client from starving everyone else
//! (slowloris: opening connections and sending headers a byte at a time).
//!
//! Past `max_connections`, the loop stops accepting: further connections
//! wait in the kernel's listen backlog (and are served as others close)
//! rather than being refused, as most HTTP servers behave. A request head
//! over `max_header_bytes` is answered `431 Request Header Fields Too
//! Large` and its connection closed; a head not complete within
//! `header_timeout` (also the most a kept-alive connection may sit idle
//! between requests) closes the connection; a body not complete within
//! `body_timeout` fails the read, which the handlers answer with 408.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
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
    pub max_header_bytes: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(30),
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

/// Serves `router` on `listener` within `limits` until `shutdown`
/// completes; then stops accepting and waits for open connections to
/// finish (`on_stop` runs first, so long polls can end).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_stop: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    // One permit per open connection: the loop waits for a permit before
    // accepting, so connections past the limit queue in the backlog.
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES as usize));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before it
                // was accepted: not fatal, try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let request = request.map(|body| {
                Body::new(DeadlineBody {
                    body,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                })
            });
            // The router is always ready and never fails: errors are responses.
            tower_service::Service::call(&mut router.clone(), request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    on_stop();
    graceful.shutdown().await;
    Ok(())
}
