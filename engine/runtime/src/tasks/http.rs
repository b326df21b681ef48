//! HTTP tasks: `arn:aws:states:::http:invoke`, with AWS's parameters and
//! output, to the destinations the operator allows.
//!
//! Parameters: `ApiEndpoint`, `Method`, `Headers`, `QueryParameters`,
//! `RequestBody`, `Transform.RequestBodyEncoding` (`NONE` or
//! `URL_ENCODED`, with `RequestEncodingOptions.ArrayFormat`), and
//! `Authentication.ConnectionArn` naming a configured connection.
//! Output: `{StatusCode, StatusText, Headers, ResponseBody}` (the body
//! parsed when it is JSON). A status outside 2xx fails with
//! `States.Http.StatusCode.<code>` and the output as the cause; a
//! connection problem with `States.Http.Socket`.
//!
//! Safety: loopback is allowed unless the operator says otherwise; any
//! other destination must match an allowed URL prefix (scheme, host and
//! port equal, path under the prefix in whole segments). A path is matched
//! decoded, and one a server could resolve out of its prefix (an encoded
//! `/` or `\`, a `.` or `..` segment in any encoding) is refused. stepline's
//! own listen addresses are refused unless the operator opts in, whatever
//! else is allowed. Hop-by-hop headers and `Host` cannot be set. A
//! connection's credentials go only to the URL prefixes its configuration
//! binds it to. Redirects are not followed (they could leave the allowed
//! set). Responses are read up to a bound.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::{Map, Value, json};

use super::config::{ConnectionAuth, ConnectionConfig, TaskConfig};
use crate::TaskCall;
use stepline_language::cause;
use stepline_language::interp::Failure;

/// Calls HTTP endpoints for tasks; one pooled client for all of them.
#[derive(Debug)]
pub struct HttpInvoker {
    client: reqwest::Client,
    /// OAuth access tokens by connection name, with their expiry.
    oauth_tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// A request as the parameters describe it.
#[derive(Debug)]
pub struct HttpRequest {
    pub url: Url,
    pub method: reqwest::Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<(Vec<u8>, &'static str)>,
}

fn bad_parameters(message: impl Into<String>) -> Failure {
    cause::HTTP_BAD_PARAMETERS.failure(&[("reason", &message.into())])
}

fn socket(message: impl Into<String>) -> Failure {
    cause::HTTP_SOCKET.failure(&[("reason", &message.into())])
}

/// The HTTP client could not be built (no TLS roots, say).
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("tasks.http.ca_file")]
    CaFile(#[source] CaFileError),
}

/// A file of CA certificates to trust that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: std::path::PathBuf },
    #[error("{path} is not a PEM certificate bundle")]
    Pem {
        path: std::path::PathBuf,
        #[source]
        source: reqwest::Error,
    },
}

/// The largest CA file read: a bundle is a few hundred KiB at most.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The certificates of `path`, a PEM bundle (`[tasks.http] ca_file`, the
/// CLI's `--ca-file`).
pub fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, CaFileError> {
    use std::io::Read;
    let read = |source| CaFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(MAX_CA_FILE_BYTES)
        .read_to_end(&mut pem)
        .map_err(read)?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| CaFileError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(CaFileError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

impl HttpInvoker {
    pub fn new(config: &TaskConfig) -> Result<Self, HttpClientError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.http.timeout_seconds))
            .connect_timeout(Duration::from_secs(config.http.timeout_seconds.min(10)))
            .pool_max_idle_per_host(64)
            // Mozilla's roots always; the system's only when asked.
            .tls_built_in_native_certs(config.http.system_roots);
        if let Some(path) = &config.http.ca_file {
            for certificate in ca_certificates(path).map_err(HttpClientError::CaFile)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(HttpClientError::Build)?;
        Ok(Self {
            client,
            oauth_tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Performs the `http:invoke` task of `call`.
    pub async fn invoke(&self, config: &TaskConfig, call: &TaskCall) -> Result<Value, Failure> {
        let request = parse_request(&call.request.input)?;
        check_allowed(config, &request.url)?;
        // Resolved before anything is sent: credentials never leave for a
        // URL their connection is not bound to.
        let connection = match connection_name(&call.request.input)? {
            None => None,
            Some(name) => {
                let connection = config.connections.get(&name).ok_or_else(|| {
                    bad_parameters(format!(
                        "the connection '{name}' is not configured: add it under [tasks.connections.{name}] in stepline.toml"
                    ))
                })?;
                check_connection_allowed(&name, connection, &request.url)?;
                Some((name, connection))
            }
        };
        check_resolved_host(config, &request.url).await?;
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone());
        let mut has_idempotency = false;
        for (name, value) in &request.headers {
            has_idempotency |= name.eq_ignore_ascii_case("idempotency-key");
            builder = builder.header(name, value);
        }
        if !has_idempotency {
            builder = builder.header("Idempotency-Key", &call.idempotency_key);
        }
        if let Some((body, content_type)) = request.body {
            if !request
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                builder = builder.header("Content-Type", content_type);
            }
            builder = builder.body(body);
        }
        if let Some((name, connection)) = connection {
            builder = self.authenticate(builder, &name, &connection.auth).await?;
        }
        let response = builder.send().await.map_err(|e| {
            socket(format!(
                "calling {} failed: {}",
                request.url,
                error_chain(&e)
            ))
        })?;
        let output = read_response(response, config.http.max_response_bytes).await?;
        let status = output["StatusCode"].as_u64().unwrap_or(0);
        if (200..300).contains(&status) {
            Ok(output)
        } else {
            Err(cause::HTTP_STATUS.failure_as(
                format!("States.Http.StatusCode.{status}"),
                &[("response", &output)],
            ))
        }
    }

    async fn authenticate(
        &self,
        builder: reqwest::RequestBuilder,
        name: &str,
        connection: &ConnectionAuth,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        Ok(match connection {
            ConnectionAuth::ApiKey { name, value } => builder.header(name, value),
            ConnectionAuth::Basic { username, password } => {
                builder.basic_auth(username, Some(password))
            }
            ConnectionAuth::Bearer { token } => builder.bearer_auth(token),
            ConnectionAuth::Oauth {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let cached = self
                    .oauth_tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(name)
                    .filter(|(_, expiry)| *expiry > Instant::now())
                    .map(|(token, _)| token.clone());
                let token = match cached {
                    Some(token) => token,
                    None => {
                        let (token, lifetime) = self
                            .fetch_oauth_token(token_url, client_id, client_secret, scope)
                            .await?;
                        // Renewed a little before it expires.
                        let expiry =
                            Instant::now() + lifetime.saturating_sub(Duration::from_secs(30));
                        self.oauth_tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.to_owned(), (token.clone(), expiry));
                        token
                    }
                };
                builder.bearer_auth(token)
            }
        })
    }

    async fn fetch_oauth_token(
        &self,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
        scope: &Option<String>,
    ) -> Result<(String, Duration), Failure> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.to_owned()),
            ("client_secret", client_secret.to_owned()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.clone()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .client
            .post(token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                socket(format!(
                    "fetching an OAuth token from {token_url} failed: {}",
                    error_chain(&e)
                ))
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            socket(format!(
                "reading the OAuth token answer from {token_url} failed: {e}"
            ))
        })?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| {
            socket(format!(
                "the OAuth token answer from {token_url} is not JSON: {e}"
            ))
        })?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|_| status.is_success())
            .ok_or_else(|| {
                cause::HTTP_OAUTH_NO_TOKEN.failure_as(
                    format!("States.Http.StatusCode.{}", status.as_u16()),
                    &[("url", &token_url), ("answer", &answer)],
                )
            })?;
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        Ok((token.to_owned(), Duration::from_secs(lifetime)))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads the parameters of an `http:invoke` task.
pub fn parse_request(params: &Value) -> Result<HttpRequest, Failure> {
    let endpoint = params
        .get("ApiEndpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_parameters("an HTTP task needs an ApiEndpoint string"))?;
    let mut url = Url::parse(endpoint)
        .map_err(|e| bad_parameters(format!("the ApiEndpoint '{endpoint}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad_parameters(format!(
            "the ApiEndpoint '{endpoint}' must be an http or https URL"
        )));
    }
    let method_text = params
        .get("Method")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_parameters("an HTTP task needs a Method string (GET, POST, PUT, DELETE, PATCH, OPTIONS or HEAD)"))?;
    let method = match method_text.to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "DELETE" => reqwest::Method::DELETE,
        "PATCH" => reqwest::Method::PATCH,
        "OPTIONS" => reqwest::Method::OPTIONS,
        "HEAD" => reqwest::Method::HEAD,
        _ => {
            return Err(bad_parameters(format!(
                "the Method '{method_text}' is not one of GET, POST, PUT, DELETE, PATCH, OPTIONS, HEAD"
            )));
        }
    };
    let mut headers = Vec::new();
    match params.get("Headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if is_refused_header(name) {
                    return Err(bad_parameters(format!(
                        "the header '{name}' cannot be set by an HTTP task: hop-by-hop headers (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), Host and Content-Length are stepline's to send"
                    )));
                }
                headers.push((name.clone(), scalar_text(value)));
            }
        }
        Some(_) => return Err(bad_parameters("Headers must be an object")),
    }
    let array_format = params
        .pointer("/Transform/RequestEncodingOptions/ArrayFormat")
        .and_then(Value::as_str)
        .unwrap_or("INDICES");
    match params.get("QueryParameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            let pairs = form_pairs(map, array_format);
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(&k, &v);
            }
        }
        Some(_) => return Err(bad_parameters("QueryParameters must be an object")),
    }
    let url_encoded = params
        .pointer("/Transform/RequestBodyEncoding")
        .and_then(Value::as_str)
        == Some("URL_ENCODED");
    let body = match params.get("RequestBody") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if url_encoded => {
            let text = form_pairs(map, array_format)
                .iter()
                .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            Some((text.into_bytes(), "application/x-www-form-urlencoded"))
        }
        Some(Value::String(text)) => Some((text.clone().into_bytes(), "text/plain")),
        Some(value) => Some((value.to_string().into_bytes(), "application/json")),
    };
    Ok(HttpRequest {
        url,
        method,
        headers,
        body,
    })
}

/// The connection named by `Authentication.ConnectionArn`
/// (`arn:aws:events:REGION:ACCOUNT:connection/NAME/ID`), if any.
fn connection_name(params: &Value) -> Result<Option<String>, Failure> {
    let Some(arn) = params.pointer("/Authentication/ConnectionArn") else {
        return Ok(None);
    };
    let arn = arn
        .as_str()
        .ok_or_else(|| bad_parameters("Authentication.ConnectionArn must be a string"))?;
    let name = arn
        .split_once(":connection/")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad_parameters(format!(
                "'{arn}' is not a connection ARN (arn:aws:events:REGION:ACCOUNT:connection/NAME/ID)"
            ))
        })?;
    Ok(Some(name.to_owned()))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Key/value pairs of a query string or form body, with arrays written as
/// AWS's ArrayFormat says.
fn form_pairs(map: &Map<String, Value>, array_format: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (key, value) in map {
        match value {
            Value::Array(items) => match array_format {
                "COMMAS" => pairs.push((
                    key.clone(),
                    items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
                )),
                "REPEAT" => {
                    for item in items {
                        pairs.push((key.clone(), scalar_text(item)));
                    }
                }
                "BRACKETS" => {
                    for item in items {
                        pairs.push((format!("{key}[]"), scalar_text(item)));
                    }
                }
                _ => {
                    for (i, item) in items.iter().enumerate() {
                        pairs.push((format!("{key}[{i}]"), scalar_text(item)));
                    }
                }
            },
            other => pairs.push((key.clone(), scalar_text(other))),
        }
    }
    pairs
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Header names a definition may not set: the hop-by-hop headers, which
/// steer the connection rather than the request, and those that choose
/// where or how the request lands (`Host` would reach another virtual host
/// on an allowed address; `Content-Length` could split one request in two).
fn is_refused_header(name: &str) -> bool {
    const REFUSED: [&str; 8] = [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    ];
    let name = name.trim().to_ascii_lowercase();
    REFUSED.contains(&name.as_str()) || name.starts_with("proxy-")
}

/// Whether the operator lets tasks call `url`.
pub fn check_allowed(config: &TaskConfig, url: &Url) -> Result<(), Failure> {
    let http = &config.http;
    let refused = |why: String| {
        Err(cause::HTTP_NOT_ALLOWED.failure(&[("url", &url_without_query(url)), ("reason", &why)]))
    };
    let segments = match path_segments(url.path()) {
        Ok(segments) => segments,
        Err(why) => return refused(why),
    };
    if !http.allow_own_address && targets_own_address(url, &config.listen) {
        return refused(
            "it is stepline's own address (the operator allows it with [tasks.http] allow_own_address = true in stepline.toml)"
                .to_owned(),
        );
    }
    if http.allow_loopback && is_loopback(url) {
        return Ok(());
    }
    if http
        .allow
        .iter()
        .any(|prefix| prefix_matches(prefix, url, &segments))
    {
        Ok(())
    } else {
        refused("the operator must list it under [tasks.http] allow in stepline.toml".to_owned())
    }
}

/// Whether `connection`'s credentials may be sent to `url`.
fn check_connection_allowed(
    name: &str,
    connection: &ConnectionConfig,
    url: &Url,
) -> Result<(), Failure> {
    let shown = url_without_query(url);
    let refused = |why: String| {
        Err(cause::HTTP_CONNECTION_NOT_ALLOWED.failure(&[
            ("name", &name),
            ("url", &shown),
            ("reason", &why),
        ]))
    };
    if connection.allow.is_empty() {
        return refused(format!(
            "it is bound to no URL; the operator lists the URL prefixes its credentials may go to under [tasks.connections.{name}] allow in stepline.toml"
        ));
    }
    let segments = match path_segments(url.path()) {
        Ok(segments) => segments,
        Err(why) => return refused(why),
    };
    if connection
        .allow
        .iter()
        .any(|prefix| prefix_matches(prefix, url, &segments))
    {
        Ok(())
    } else {
        refused(format!(
            "it is bound to {} ([tasks.connections.{name}] allow in stepline.toml)",
            connection.allow.join(", ")
        ))
    }
}

/// Whether the allowlist entry `prefix` covers `url`, whose path is
/// `segments`: scheme, host and port equal, and the prefix's path segments
/// the first of the URL's.
fn prefix_matches(prefix: &str, url: &Url, segments: &[String]) -> bool {
    if prefix == "*" {
        return true;
    }
    let Ok(p) = Url::parse(prefix) else {
        return false;
    };
    let Ok(mut wanted) = path_segments(p.path()) else {
        return false;
    };
    // A prefix ending in `/` names the directory, not an empty segment.
    if wanted.last().is_some_and(String::is_empty) {
        wanted.pop();
    }
    p.scheme() == url.scheme()
        && p.host() == url.host()
        && p.port_or_known_default() == url.port_or_known_default()
        && segments.starts_with(&wanted)
}

/// The segments of a URL path, percent-decoded. Refused: a segment that
/// decodes (once or twice) to something holding `/` or `\`, or to `.` or
/// `..` (also with `;` parameters), which a server may resolve to climb out
/// of the prefix the path was allowed under. (The URL parser has already
/// removed plain and `%2e` dot segments.)
fn path_segments(path: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for raw in path.strip_prefix('/').unwrap_or(path).split('/') {
        let once = percent_decode(raw.as_bytes());
        let twice = percent_decode(&once);
        for decoded in [&once, &twice] {
            if decoded.iter().any(|b| matches!(b, b'/' | b'\\')) {
                return Err(format!(
                    "its path segment '{raw}' holds an encoded '/' or '\\'"
                ));
            }
            let bare = decoded.split(|b| *b == b';').next().unwrap_or_default();
            if bare == b"." || bare == b".." {
                return Err(format!("its path segment '{raw}' is a '.' or '..' segment"));
            }
        }
        out.push(String::from_utf8_lossy(&once).into_owned());
    }
    Ok(out)
}

/// `%XX` sequences decoded; anything else (a stray `%`) kept as it is.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' && i + 2 < text.len() {
            if let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Whether `url` names, by an address literal or `localhost`, one of the
/// addresses the server listens on (`listen`).
fn targets_own_address(url: &Url, listen: &[SocketAddr]) -> bool {
    let Some(port) = url.port_or_known_default() else {
        return false;
    };
    let candidates: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(d)) if is_localhost_name(d) => {
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        }
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .any(|ip| reaches_listener(SocketAddr::new(ip, port), listen))
}

/// Whether a connection to `target` would reach one of the `listen`
/// addresses: the same port, and an address that lands on this host's
/// listener (any loopback or unspecified address, the listener's own, or,
/// for a listener on every interface, any address of this host).
fn reaches_listener(target: SocketAddr, listen: &[SocketAddr]) -> bool {
    let ip = target.ip().to_canonical();
    listen.iter().any(|own| {
        let own_ip = own.ip().to_canonical();
        own.port() == target.port()
            && (ip.is_loopback()
                || ip.is_unspecified()
                || ip == own_ip
                || (own_ip.is_unspecified() && is_address_of_this_host(ip)))
    })
}

/// An address can be bound to only when an interface of this host has it.
fn is_address_of_this_host(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

fn is_localhost_name(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    d == "localhost" || d.ends_with(".localhost")
}

/// For a URL naming a host by a DNS name: refused when the name resolves
/// to one of stepline's own listen addresses. (A name that resolves
/// differently when the request connects is the DNS-rebinding gap
/// docs/security.md describes.)
async fn check_resolved_host(config: &TaskConfig, url: &Url) -> Result<(), Failure> {
    if config.http.allow_own_address || config.listen.is_empty() {
        return Ok(());
    }
    let (Some(url::Host::Domain(domain)), Some(port)) = (url.host(), url.port_or_known_default())
    else {
        return Ok(());
    };
    // Only a URL on a port stepline listens on can reach it: others need
    // no lookup.
    if !config.listen.iter().any(|own| own.port() == port) {
        return Ok(());
    }
    // A name that does not resolve fails when the request is sent, as a
    // socket error.
    let Ok(addresses) = tokio::net::lookup_host((domain, port)).await else {
        return Ok(());
    };
    let mut addresses = addresses;
    if addresses.any(|a| reaches_listener(a, &config.listen)) {
        return Err(cause::HTTP_OWN_ADDRESS
            .failure(&[("url", &url_without_query(url)), ("domain", &domain)]));
    }
    Ok(())
}

fn url_without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// AWS's output of an HTTP task, read up to `limit` bytes of body.
async fn read_response(mut response: reqwest::Response, limit: usize) -> Result<Value, Failure> {
    let status = response.status();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if let Value::Array(values) = headers
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(Value::String(value));
        }
    }
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| socket(format!("reading the response failed: {}", error_chain(&e))))?
    {
        if body.len() + chunk.len() > limit {
            return Err(cause::HTTP_BODY_TOO_LARGE.failure(&[("limit", &limit)]));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let response_body = if is_json {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    } else {
        Value::String(text)
    };
    Ok(json!({
        "Headers": headers,
        "ResponseBody": response_body,
        "StatusCode": status.as_u16(),
        "StatusText": status.canonical_reason().unwrap_or(""),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow: &[&str], loopback: bool) -> TaskConfig {
        let mut c = TaskConfig::default();
        c.http.allow = allow.iter().map(|s| s.to_string()).collect();
        c.http.allow_loopback = loopback;
        c
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_allowlist_matches_whole_origins_and_path_segments() {
        let c = config(&["https://api.example.com/v1/"], true);
        assert!(check_allowed(&c, &url("http://127.0.0.1:9/x")).is_ok());
        assert!(check_allowed(&c, &url("http://localhost/x")).is_ok());
        assert!(check_allowed(&c, &url("http://[::1]:80/")).is_ok());
        assert!(check_allowed(&c, &url("https://api.example.com/v1/items?a=1")).is_ok());
        assert!(check_allowed(&c, &url("https://api.example.com/v1")).is_ok());
        for denied in [
            "https://api.example.com/v10/x",
            "https://api.example.com/v2/x",
            "https://api.example.com.evil.test/v1/",
            "http://api.example.com/v1/",
            "https://api.example.com:8443/v1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let f = check_allowed(&c, &url(denied)).unwrap_err();
            assert!(f.cause.unwrap().contains("does not allow"), "{denied}");
        }
        let closed = config(&[], false);
        assert!(check_allowed(&closed, &url("http://127.0.0.1/")).is_err());
        assert!(check_allowed(&config(&["*"], false), &url("http://10.0.0.1/")).is_ok());
    }

    #[test]
    fn paths_that_could_climb_out_of_a_prefix_are_refused() {
        let c = config(&["http://10.0.0.5:8080/api/"], false);
        for allowed in [
            "http://10.0.0.5:8080/api/items",
            "http://10.0.0.5:8080/api/%41bc",
            "http://10.0.0.5:8080/api/a%20b",
            "http://10.0.0.5:8080/%61pi/x",
        ] {
            assert!(check_allowed(&c, &url(allowed)).is_ok(), "{allowed}");
        }
        for denied in [
            "http://10.0.0.5:8080/api/..%2fsecret",
            "http://10.0.0.5:8080/api/..%2Fsecret",
            "http://10.0.0.5:8080/api/%2e%2e%2fsecret",
            "http://10.0.0.5:8080/api/..%5csecret",
            "http://10.0.0.5:8080/api/%252e%252e/secret",
            "http://10.0.0.5:8080/api/..%252fsecret",
            "http://10.0.0.5:8080/api/..;/secret",
            "http://10.0.0.5:8080/api/%2e%2e;x/secret",
            "http://10.0.0.5:8080/api/../secret",
            "http://10.0.0.5:8080/api/%2e%2e/secret",
            "http://10.0.0.5:8080/apix",
        ] {
            assert!(check_allowed(&c, &url(denied)).is_err(), "{denied}");
        }
        // The same holds on loopback.
        let local = config(&[], true);
        assert!(check_allowed(&local, &url("http://127.0.0.1/a/..%2f")).is_err());
    }

    #[test]
    fn stepline_own_address_is_refused_unless_allowed() {
        let mut c = config(&["*"], true);
        c.listen = vec!["127.0.0.1:8083".parse().unwrap()];
        for own in [
            "http://127.0.0.1:8083/v1/state-machines",
            "http://localhost:8083/",
            "http://LOCALHOST.:8083/",
            "http://api.localhost:8083/",
            "http://127.0.0.2:8083/",
            "http://0.0.0.0:8083/",
            "http://0:8083/",
            "http://2130706433:8083/",
            "http://[::1]:8083/",
            "http://[::ffff:127.0.0.1]:8083/",
        ] {
            let f = check_allowed(&c, &url(own)).unwrap_err();
            assert!(f.cause.unwrap().contains("own address"), "{own}");
        }
        assert!(check_allowed(&c, &url("http://127.0.0.1:8084/")).is_ok());
        c.http.allow_own_address = true;
        assert!(check_allowed(&c, &url("http://127.0.0.1:8083/")).is_ok());
        // A server on every interface: this host's addresses are its own.
        let every: Vec<SocketAddr> = vec!["0.0.0.0:80".parse().unwrap()];
        assert!(reaches_listener("127.0.0.1:80".parse().unwrap(), &every));
        assert!(!reaches_listener("192.0.2.1:80".parse().unwrap(), &every));
        assert!(!reaches_listener("127.0.0.1:81".parse().unwrap(), &every));
    }

    #[test]
    fn connections_go_only_where_they_are_bound() {
        let bound = ConnectionConfig {
            allow: vec!["https://crm.example.com/api/".into()],
            auth: ConnectionAuth::Bearer { token: "t".into() },
        };
        assert!(
            check_connection_allowed("crm", &bound, &url("https://crm.example.com/api/x")).is_ok()
        );
        for elsewhere in [
            "https://crm.example.com/other",
            "https://crm.example.com/api/..%2fother",
            "http://crm.example.com/api/x",
            "https://evil.example.com/api/x",
        ] {
            let f = check_connection_allowed("crm", &bound, &url(elsewhere)).unwrap_err();
            assert_eq!(f.error.as_deref(), Some("States.TaskFailed"));
            assert!(
                f.cause.unwrap().contains("'crm' may not be sent"),
                "{elsewhere}"
            );
        }
        let unbound = ConnectionConfig {
            allow: Vec::new(),
            auth: ConnectionAuth::Bearer { token: "t".into() },
        };
        let f = check_connection_allowed("old", &unbound, &url("https://crm.example.com/"))
            .unwrap_err();
        assert!(f.cause.unwrap().contains("[tasks.connections.old] allow"));
    }

    #[test]
    fn hop_by_hop_and_host_headers_are_refused() {
        for name in [
            "Host",
            "host",
            "Connection",
            "Keep-Alive",
            "Proxy-Authorization",
            "proxy-connection",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Content-Length",
        ] {
            let f = parse_request(&json!({"ApiEndpoint": "http://127.0.0.1/", "Method": "GET",
                                          "Headers": {name: "x"}}))
            .unwrap_err();
            assert!(f.cause.unwrap().contains("cannot be set"), "{name}");
        }
        assert!(
            parse_request(&json!({"ApiEndpoint": "http://127.0.0.1/", "Method": "GET",
                                  "Headers": {"X-Host": "x", "Authorization": "y"}}))
            .is_ok()
        );
    }

    #[test]
    fn parameters_become_a_request() {
        let r = parse_request(&json!({
            "ApiEndpoint": "http://127.0.0.1:8080/items",
            "Method": "post",
            "Headers": {"X-Trace": "abc", "X-Count": 3},
            "QueryParameters": {"q": "a b", "tags": ["x", "y"]},
            "RequestBody": {"n": 1},
        }))
        .unwrap();
        assert_eq!(r.method, reqwest::Method::POST);
        assert_eq!(
            r.url.as_str(),
            "http://127.0.0.1:8080/items?q=a+b&tags%5B0%5D=x&tags%5B1%5D=y"
        );
        assert_eq!(r.headers[1], ("X-Count".to_owned(), "3".to_owned()));
        let (body, ct) = r.body.unwrap();
        assert_eq!(body, br#"{"n":1}"#);
        assert_eq!(ct, "application/json");

        let r = parse_request(&json!({
            "ApiEndpoint": "http://127.0.0.1/f", "Method": "PUT",
            "RequestBody": {"a": "x y", "b": [1, 2]},
            "Transform": {"RequestBodyEncoding": "URL_ENCODED",
                          "RequestEncodingOptions": {"ArrayFormat": "COMMAS"}},
        }))
        .unwrap();
        let (body, ct) = r.body.unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), "a=x+y&b=1%2C2");
        assert_eq!(ct, "application/x-www-form-urlencoded");
    }

    #[test]
    fn bad_parameters_are_named() {
        for (params, words) in [
            (json!({"Method": "GET"}), "ApiEndpoint"),
            (
                json!({"ApiEndpoint": "ftp://x/", "Method": "GET"}),
                "http or https",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "BREW"}),
                "BREW",
            ),
            (json!({"ApiEndpoint": "http://x/"}), "Method"),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "GET", "Headers": []}),
                "Headers",
            ),
        ] {
            let f = parse_request(&params).unwrap_err();
            assert!(
                f.cause.as_deref().unwrap().contains(words),
                "{params}: {f:?}"
            );
        }
        assert_eq!(
            connection_name(&json!({"Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:1:connection/my-api/abc"}})).unwrap(),
            Some("my-api".to_owned())
        );
        assert!(connection_name(&json!({"Authentication": {"ConnectionArn": "nope"}})).is_err());
    }
}
