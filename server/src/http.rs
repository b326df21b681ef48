//! The HTTP server: one port, the AWS Step Functions JSON 1.0 protocol on
//! `POST /`, the native REST API under `/v1/` (see `rest`), the web pages
//! on `GET /` (see `web`), and `/health`.
//! Thin: every request is one engine call.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use stepline_runtime::Engine;

use crate::access::{self, Credentials};
use crate::aws::pagination::Tokens;
use crate::aws::{Action, AwsError, constraints, dispatch};
use crate::limits::Limits;
use crate::origin::OriginPolicy;
use crate::triggers::Triggers;

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) engine: Engine,
    pub(crate) tokens: Tokens,
    /// Turns true when the server begins to shut down, so that long polls
    /// and event streams end instead of holding graceful shutdown open.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
    /// Triggers: definitions (REST), webhooks, backfills.
    pub(crate) triggers: Triggers,
    /// Who may call (see `access`): checked by layers, not by handlers.
    pub(crate) credentials: Arc<Credentials>,
}

/// How the server is reached: who may call it and the bounds on its
/// connections.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub credentials: Credentials,
    pub limits: Limits,
    /// The names and origins accepted beyond the server's own.
    pub origins: OriginPolicy,
    /// Whether webhook triggers without a secret may be created on a
    /// server with credentials (`[server] allow_unsigned_webhooks`).
    pub allow_unsigned_webhooks: bool,
    /// HTTPS (`[tls]`): every connection is a TLS one. None: plain HTTP.
    pub tls: Option<crate::tls::ServerTls>,
}

/// The largest request body: a 1 MiB definition, escaped, with room.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const AWS_JSON: &str = "application/x-amz-json-1.0";

/// Serves `engine` on `listener` until `shutdown` completes, with the
/// triggers stored in it (no file roots: file triggers are refused).
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let triggers = Triggers::new(engine.clone(), &[]).map_err(std::io::Error::other)?;
    serve_with_triggers(listener, engine, triggers, shutdown).await
}

/// Serves `engine` on `listener` and runs `triggers` until `shutdown`
/// completes, with no credentials and the default limits.
pub async fn serve_with_triggers(
    listener: tokio::net::TcpListener,
    engine: Engine,
    triggers: Triggers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_options(
        listener,
        engine,
        triggers,
        ServeOptions::default(),
        shutdown,
    )
    .await
}

/// Serves `engine` on `listener` and runs `triggers` until `shutdown`
/// completes, checking `options.credentials` and within `options.limits`.
pub async fn serve_with_options(
    listener: tokio::net::TcpListener,
    engine: Engine,
    triggers: Triggers,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    triggers.refuse_unsigned_webhooks(
        options.credentials.enabled() && !options.allow_unsigned_webhooks,
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let driver = tokio::spawn(triggers.clone().run(stopping.clone()));
    let refresher = tokio::spawn(crate::settings::refresh_loop(
        triggers.clone(),
        stopping.clone(),
    ));
    let app = App {
        engine,
        tokens: Tokens::new(secret()),
        stopping,
        triggers,
        credentials: Arc::new(options.credentials),
    };
    let bearer = middleware::from_fn_with_state(app.clone(), access::require_bearer);
    let router = Router::new()
        .route(
            "/",
            post(aws)
                .fallback(aws_method_not_allowed)
                .layer(middleware::from_fn_with_state(
                    app.clone(),
                    access::require_sigv4,
                )),
        )
        .route("/metrics", get(metrics).layer(bearer.clone()))
        .merge(crate::rest::router().route_layer(bearer))
        .route("/health", get(health))
        .route("/ready", get(ready))
        // The pages are static files; the data they show comes from /v1/.
        .merge(crate::web::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outermost: a request a foreign page made reaches nothing else.
        .layer(middleware::from_fn_with_state(
            Arc::new(options.origins),
            crate::origin::require_same_origin,
        ))
        .with_state(app);
    let served = crate::limits::serve(
        listener,
        router,
        options.limits,
        options.tls,
        shutdown,
        move || {
            let _ = stop.send(true);
        },
    )
    .await;
    driver.abort();
    refresher.abort();
    served
}

/// The pagination tokens' secret: unpredictable per process (the clock's
/// nanoseconds and the address of a fresh allocation, hashed).
fn secret() -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(now.as_nanos().to_le_bytes());
    let probe = Box::new(0u8);
    hasher.update((&*probe as *const u8 as usize).to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.finalize().into()
}

/// Any method but POST on `/`, in the AWS error shape.
async fn aws_method_not_allowed(method: axum::http::Method) -> Response {
    aws_error(&AwsError {
        kind: "UnknownOperationException",
        message: format!("the AWS Step Functions protocol takes POST /, not {method}"),
        status: 405,
    })
}

/// Alive: the process answers.
async fn health() -> &'static str {
    "ok\n"
}

/// Ready to take work: the store is open and recovery has finished (the
/// listener is bound only after both), the store still flushes, and the
/// server is not shutting down. 503 otherwise, so a load balancer or an
/// orchestrator stops sending requests.
async fn ready(State(app): State<App>) -> Response {
    if *app.stopping.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    if let Some(damage) = app.engine.store_damage() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store is damaged: {damage}; see `stepline store check`\n"),
        )
            .into_response();
    }
    let flushed =
        tokio::time::timeout(std::time::Duration::from_secs(5), app.engine.flush_now()).await;
    match flushed {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store cannot flush: {e}\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store did not flush within 5 s\n",
        )
            .into_response(),
    }
}

/// Prometheus's text exposition format.
async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.engine.metrics_text(),
    )
        .into_response()
}

fn aws_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, AWS_JSON)], body.to_string()).into_response()
}

/// An AWS-dialect request's body, bounded; a body too slow or too large
/// is answered in AWS's error shape (408 / 413), not as plain text.
pub(crate) async fn read_aws_body(body: axum::body::Body) -> Result<axum::body::Bytes, Response> {
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => Ok(body),
        Err(e) if crate::limits::is_body_timeout(&e) => Err(aws_error(&AwsError {
            kind: "RequestTimeoutException",
            message: e.to_string(),
            status: 408,
        })),
        Err(_) => Err(aws_error(&AwsError {
            kind: "RequestEntityTooLarge",
            message: format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            status: 413,
        })),
    }
}

pub(crate) fn aws_error(error: &AwsError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    aws_response(status, &error.body())
}

/// Whether a request's content type is one the AWS dialect reads: AWS's own
/// (`application/x-amz-json-1.0`, and 1.1 which some clients send) or plain
/// JSON; a request without one is read as JSON too.
fn aws_content_type(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-amz-json-1.0" | "application/x-amz-json-1.1" | "application/json" => Ok(()),
        _ => Err(format!(
            "the content type '{text}' is not supported; send {AWS_JSON}"
        )),
    }
}

async fn aws(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(action) = target.strip_prefix("AWSStepFunctions.") else {
        return aws_error(&AwsError {
            kind: "UnknownOperationException",
            message: format!(
                "missing or unknown X-Amz-Target '{target}'; expected AWSStepFunctions.<Action>"
            ),
            status: 400,
        });
    };
    if let Err(message) = aws_content_type(&headers) {
        return aws_error(&AwsError {
            kind: "SerializationException",
            message,
            status: 400,
        });
    }
    // Read here rather than by the `Bytes` extractor so that an oversized
    // body is answered in AWS's error shape, not as plain text.
    let body = match read_aws_body(body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return aws_error(&AwsError {
                    kind: "SerializationException",
                    message: "the request body must be a JSON object".into(),
                    status: 400,
                });
            }
            Err(e) => {
                return aws_error(&AwsError {
                    kind: "SerializationException",
                    message: format!("the request body is not valid JSON: {e}"),
                    status: 400,
                });
            }
        }
    };
    // Named after the body is read: a body that is not JSON is refused
    // first, whatever the action.
    let Some(action) = Action::from_name(action) else {
        return aws_error(&crate::aws::dispatch::unknown(action));
    };
    if let Err(error) = constraints::check(action, &request) {
        return aws_error(&error);
    }
    match dispatch(&app.engine, &app.tokens, action, &request).await {
        Ok(response) => aws_response(StatusCode::OK, &response),
        Err(error) => aws_error(&error),
    }
}
