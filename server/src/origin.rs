//! What a browser could make the server do on behalf of a page that is not
//! the server's own: cross-site request forgery and DNS rebinding. A layer
//! in front of every route (`require_same_origin`), checked before
//! credentials, because a browser on the operator's machine reaches
//! `127.0.0.1` with the operator's network position and no token at all.
//!
//! - **Host.** Every request's `Host` must be a name the server answers
//!   to: the loopback names (`localhost`, `127.0.0.1`, `[::1]`) and the
//!   address the client connected to, with the server's port, plus the
//!   names listed in `[server] hosts`. A page whose name was rebound to
//!   127.0.0.1 sends its own name and is refused (421), so it can neither
//!   read nor write.
//! - **Origin.** A request that may change something (any method but GET,
//!   HEAD and OPTIONS) carrying an `Origin` is let through only when the
//!   origin is the server's own (its authority is the `Host`) or listed in
//!   `[server] origins`. `Sec-Fetch-Site: cross-site` (or `same-site`)
//!   without such an origin is refused too, for browsers that leave Origin
//!   out.
//! - **Content type.** Such a request must declare a JSON content type
//!   (`application/json`, `application/*+json`,
//!   `application/x-amz-json-1.0`/`1.1`): a form, `text/plain` or a
//!   `Blob` (no type) is what a browser sends cross-site without asking
//!   first, and JSON is what it never sends without a CORS preflight, which
//!   this server never grants. The one exception is a request with no body
//!   and no sign of a browser (no `Origin`, no `Sec-Fetch-*`): `curl -X
//!   POST` and `stepline start NAME` without input send that, and a
//!   browser always says where it comes from.
//!
//! Webhooks (`/v1/hooks/NAME`) get the same rules: their senders are
//! servers (GitHub, GitLab, a script) that send JSON and no `Origin`.
//!
//! This module never reads a body and holds no state but the policy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::aws::AwsError;
use crate::config::ServerConfig;
use crate::rest::error::RestError;

/// The names and origins the server accepts beyond its own, from
/// `[server] hosts` and `[server] origins`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Extra names, lowercased: `name` (any port) or `name:port`.
    hosts: Vec<String>,
    /// `hosts = ["*"]`: any Host (no protection against DNS rebinding).
    any_host: bool,
    /// Extra origins, normalised (`scheme://host[:port]`, default port
    /// left out).
    origins: Vec<String>,
}

/// The addresses of the connection a request came on, put in its
/// extensions by the connection loop (`limits`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionAddrs {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl OriginPolicy {
    /// `[server]`'s hosts and origins (already checked by `check_config`).
    pub fn from_config(server: &ServerConfig) -> Self {
        let mut policy = Self::default();
        for host in &server.hosts {
            if host == "*" {
                policy.any_host = true;
            } else {
                policy.hosts.push(host.to_ascii_lowercase());
            }
        }
        policy.origins = server
            .origins
            .iter()
            .filter_map(|o| normalise_origin(o))
            .collect();
        policy
    }

    /// Whether `host` (a Host header's value) names this server, reached
    /// at `local`.
    fn host_ok(&self, host: &str, local: Option<SocketAddr>) -> bool {
        if self.any_host {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        // AWS's SDKs and CLI put `sync-` before the host for
        // StartSyncExecution and TestState; the prefixed name of a name the
        // server answers to is the operator's as much as the name itself.
        let name = name.strip_prefix("sync-").unwrap_or(name);
        let host = host.strip_prefix("sync-").unwrap_or(&host);
        let local_port = local.map(|l| l.port());
        let port_ok = match (port, local_port) {
            (Some(p), Some(l)) => p == l,
            (None, Some(l)) => l == 80,
            // No connection information (not through our loop): names only.
            (_, None) => true,
        };
        let own = name == "localhost"
            || name == "127.0.0.1"
            || name == "[::1]"
            || local.is_some_and(|l| ip_literal(name) == Some(l.ip().to_canonical()));
        if own && port_ok {
            return true;
        }
        self.hosts.iter().any(|allowed| {
            if allowed.contains(':') && !allowed.ends_with(']') {
                *allowed == host
            } else {
                allowed == name
            }
        })
    }

    /// Whether `origin` (an Origin header's value) is the server's own,
    /// reached as `host`, or one the operator listed.
    fn origin_ok(&self, origin: &str, host: Option<&str>) -> bool {
        let Some(origin) = normalise_origin(origin) else {
            return false;
        };
        if self.origins.contains(&origin) {
            return true;
        }
        let Some(host) = host else {
            return false;
        };
        let Some((scheme, _)) = origin.split_once("://") else {
            return false;
        };
        normalise_origin(&format!("{scheme}://{}", host.trim())) == Some(origin)
    }

    /// Whether `origin` is one the operator listed.
    fn listed(&self, origin: Option<&str>) -> bool {
        origin
            .and_then(normalise_origin)
            .is_some_and(|o| self.origins.contains(&o))
    }
}

/// `host[:port]` into the name (brackets kept for IPv6) and the port.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if host.is_empty() {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((name, Some(port.parse().ok()?))),
            None if rest.is_empty() => Some((name, None)),
            None => None,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

/// An IP address written as a Host names it (IPv6 in brackets).
fn ip_literal(name: &str) -> Option<IpAddr> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// `scheme://host[:port]` lowercased, the scheme's default port and a
/// trailing slash left out; `None` for anything else (including `null`).
fn normalise_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let origin = origin.strip_suffix('/').unwrap_or(&origin);
    let (scheme, authority) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains('/') {
        return None;
    }
    let (name, port) = split_host(authority)?;
    let default = if scheme == "https" { 443 } else { 80 };
    Some(match port {
        Some(p) if p != default => format!("{scheme}://{name}:{p}"),
        _ => format!("{scheme}://{name}"),
    })
}

/// The rules on `[server] hosts` and `origins` that serde cannot say.
pub(crate) fn check_config(server: &ServerConfig) -> Result<(), String> {
    for host in &server.hosts {
        let ok = host == "*"
            || split_host(&host.to_ascii_lowercase()).is_some_and(|(name, _)| {
                !name.is_empty()
                    && (ip_literal(name).is_some()
                        || name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
            });
        if !ok {
            return Err(format!(
                "server.hosts: '{host}' is not a host name (like stepline.example.com or stepline.example.com:8083), an IP address, or *"
            ));
        }
    }
    for origin in &server.origins {
        if normalise_origin(origin).is_none() {
            return Err(format!(
                "server.origins: '{origin}' is not an origin (scheme://host[:port], like https://tools.example.com)"
            ));
        }
    }
    Ok(())
}

/// Whether a method can change something (everything but the safe ones).
fn mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a declared content type is JSON.
fn json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/json" | "application/x-amz-json-1.0" | "application/x-amz-json-1.1"
    ) || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether a request carries (or announces) a body.
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.to_str().map_or(true, |v| v.trim() != "0"))
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    MissingHost,
    Host(String),
    Origin(String),
    CrossSite,
    ContentType(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingHost => StatusCode::BAD_REQUEST,
            Refusal::Host(_) => StatusCode::MISDIRECTED_REQUEST,
            Refusal::Origin(_) | Refusal::CrossSite => StatusCode::FORBIDDEN,
            Refusal::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Refusal::MissingHost => "InvalidRequest",
            Refusal::Host(_) => "MisdirectedRequest",
            Refusal::Origin(_) | Refusal::CrossSite => "CrossOriginRequestRefused",
            Refusal::ContentType(_) => "UnsupportedMediaType",
        }
    }

    /// The type in AWS's error shape (`POST /`).
    fn aws_kind(&self) -> &'static str {
        match self {
            Refusal::MissingHost | Refusal::ContentType(_) => "SerializationException",
            Refusal::Host(_) => "MisdirectedRequestException",
            Refusal::Origin(_) | Refusal::CrossSite => "AccessDeniedException",
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::MissingHost => "an HTTP/1.1 request must have a Host header".into(),
            Refusal::Host(host) => format!(
                "this server does not answer to the name '{host}' (the Host header); if it is one of its names, add it to [server] hosts in stepline.toml"
            ),
            Refusal::Origin(origin) => format!(
                "requests that change something are not accepted from pages of another origin ('{origin}'); if that origin may use this server, add it to [server] origins in stepline.toml"
            ),
            Refusal::CrossSite => "requests that change something are not accepted from pages of another site (Sec-Fetch-Site); if that origin may use this server, add it to [server] origins in stepline.toml".into(),
            Refusal::ContentType(given) => format!(
                "a request that changes something must send a JSON body with its content type ({given}); send Content-Type: application/json (curl: --json), or application/x-amz-json-1.0 on POST /"
            ),
        }
    }
}

/// The policy applied to one request's method, version and headers.
fn check(
    policy: &OriginPolicy,
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    local: Option<SocketAddr>,
) -> Result<(), Refusal> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let host = text(header::HOST);
    match &host {
        Some(h) if !policy.host_ok(h, local) => return Err(Refusal::Host(h.clone())),
        None if version >= Version::HTTP_11 => return Err(Refusal::MissingHost),
        _ => {}
    }
    if !mutating(method) {
        return Ok(());
    }
    let origin = text(header::ORIGIN);
    if let Some(origin) = &origin {
        if !policy.origin_ok(origin, host.as_deref()) {
            return Err(Refusal::Origin(origin.clone()));
        }
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if matches!(site.as_deref(), Some("cross-site" | "same-site"))
        && !policy.listed(origin.as_deref())
    {
        return Err(Refusal::CrossSite);
    }
    match text(header::CONTENT_TYPE) {
        Some(given) if !json_content_type(&given) => {
            Err(Refusal::ContentType(format!("'{given}' was sent")))
        }
        Some(_) => Ok(()),
        None => {
            let browser =
                origin.is_some() || site.is_some() || headers.contains_key("sec-fetch-mode");
            if has_body(headers) || browser {
                Err(Refusal::ContentType("none was sent".into()))
            } else {
                Ok(())
            }
        }
    }
}

/// The layer in front of every route.
pub(crate) async fn require_same_origin(
    State(policy): State<std::sync::Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let local = request
        .extensions()
        .get::<ConnectionAddrs>()
        .map(|addrs| addrs.local);
    let checked = check(
        &policy,
        request.method(),
        request.version(),
        request.headers(),
        local,
    );
    let Err(refusal) = checked else {
        return next.run(request).await;
    };
    tracing::debug!(refusal = ?refusal, "request refused");
    if request.uri().path() == "/" && request.method() == Method::POST {
        // AWS's JSON services answer a content type they cannot read with
        // 400 SerializationException, as the AWS handler does too.
        let status = match refusal {
            Refusal::ContentType(_) => StatusCode::BAD_REQUEST,
            _ => refusal.status(),
        };
        return crate::http::aws_error(&AwsError {
            kind: refusal.aws_kind(),
            message: refusal.message(),
            status: status.as_u16(),
        });
    }
    RestError::new(refusal.status(), refusal.code(), refusal.message()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], origins: &[&str]) -> OriginPolicy {
        let server = ServerConfig {
            hosts: hosts.iter().map(|s| (*s).to_owned()).collect(),
            origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            ..ServerConfig::default()
        };
        check_config(&server).expect("a valid policy");
        OriginPolicy::from_config(&server)
    }

    fn local() -> Option<SocketAddr> {
        Some("127.0.0.1:8083".parse().unwrap())
    }

    #[test]
    fn hosts_are_the_loopback_names_the_local_address_and_the_listed_ones() {
        let p = policy(&[], &[]);
        for ok in [
            "localhost:8083",
            "127.0.0.1:8083",
            "[::1]:8083",
            "LOCALHOST:8083",
        ] {
            assert!(p.host_ok(ok, local()), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:8083",
            "localhost:9999",
            "localhost",
            "127.0.0.1.attacker.example:8083",
            "",
            "[::1",
        ] {
            assert!(!p.host_ok(refused, local()), "{refused}");
        }
        let lan: SocketAddr = "192.168.1.5:8083".parse().unwrap();
        assert!(p.host_ok("192.168.1.5:8083", Some(lan)));
        assert!(!p.host_ok("192.168.1.6:8083", Some(lan)));
        let mapped: SocketAddr = "[::ffff:192.168.1.5]:8083".parse().unwrap();
        assert!(p.host_ok("192.168.1.5:8083", Some(mapped)));
        let p = policy(&["stepline.example.com", "other.example:8443"], &[]);
        assert!(p.host_ok("stepline.example.com", local()));
        assert!(p.host_ok("stepline.example.com:443", local()));
        assert!(p.host_ok("other.example:8443", local()));
        assert!(!p.host_ok("other.example:8444", local()));
        assert!(policy(&["*"], &[]).host_ok("anything.example", local()));
        // The SDKs' prefix for StartSyncExecution and TestState.
        assert!(p.host_ok("sync-stepline.example.com", local()));
        assert!(policy(&[], &[]).host_ok("sync-127.0.0.1:8083", local()));
        assert!(!policy(&[], &[]).host_ok("sync-attacker.example:8083", local()));
    }

    #[test]
    fn origins_are_the_servers_own_or_listed() {
        let p = policy(&[], &["https://tools.example.com/"]);
        assert!(p.origin_ok("http://localhost:8083", Some("localhost:8083")));
        assert!(p.origin_ok("https://stepline.example.com", Some("stepline.example.com")));
        assert!(p.origin_ok("https://tools.example.com", Some("localhost:8083")));
        assert!(p.origin_ok("https://tools.example.com:443", None));
        assert!(!p.origin_ok("http://localhost:9000", Some("localhost:8083")));
        assert!(!p.origin_ok("null", Some("localhost:8083")));
        assert!(!p.origin_ok("http://attacker.example", Some("localhost:8083")));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, "127.0.0.1:8083".parse().unwrap());
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn writes_need_json_and_no_foreign_origin() {
        let p = policy(&[], &[]);
        let run = |method: Method, pairs: &[(&'static str, &str)]| {
            check(&p, &method, Version::HTTP_11, &headers(pairs), local())
        };
        assert_eq!(
            run(Method::GET, &[("origin", "http://evil.example")]),
            Ok(())
        );
        assert_eq!(
            run(
                Method::POST,
                &[
                    ("content-type", "application/json"),
                    ("content-length", "2")
                ]
            ),
            Ok(())
        );
        assert_eq!(
            run(
                Method::POST,
                &[("content-type", "application/x-amz-json-1.0; charset=utf-8")]
            ),
            Ok(())
        );
        // A bodiless request with no sign of a browser: curl -X POST.
        assert_eq!(run(Method::POST, &[]), Ok(()));
        assert_eq!(run(Method::DELETE, &[("content-length", "0")]), Ok(()));
        let refused = [
            (
                Method::POST,
                vec![("content-type", "text/plain"), ("content-length", "2")],
            ),
            (Method::POST, vec![("content-length", "2")]),
            (Method::POST, vec![("transfer-encoding", "chunked")]),
            (Method::POST, vec![("sec-fetch-mode", "no-cors")]),
            (
                Method::POST,
                vec![("origin", "http://127.0.0.1:8083"), ("content-length", "0")],
            ),
            (
                Method::POST,
                vec![
                    ("content-type", "application/json"),
                    ("origin", "http://evil.example"),
                ],
            ),
            (
                Method::POST,
                vec![
                    ("content-type", "application/json"),
                    ("sec-fetch-site", "cross-site"),
                ],
            ),
            (
                Method::PUT,
                vec![("content-type", "application/x-www-form-urlencoded")],
            ),
        ];
        for (method, pairs) in refused {
            assert!(run(method.clone(), &pairs).is_err(), "{method} {pairs:?}");
        }
        assert_eq!(
            run(
                Method::POST,
                &[
                    ("content-type", "application/json"),
                    ("origin", "http://127.0.0.1:8083")
                ]
            ),
            Ok(())
        );
        let listed = policy(&[], &["https://tools.example.com"]);
        let h = headers(&[
            ("content-type", "application/json"),
            ("origin", "https://tools.example.com"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(
            check(&listed, &Method::POST, Version::HTTP_11, &h, local()),
            Ok(())
        );
        let mut no_host = HeaderMap::new();
        assert_eq!(
            check(&p, &Method::GET, Version::HTTP_11, &no_host, local()),
            Err(Refusal::MissingHost)
        );
        assert_eq!(
            check(&p, &Method::GET, Version::HTTP_10, &no_host, local()),
            Ok(())
        );
        no_host.insert(header::HOST, "attacker.example:8083".parse().unwrap());
        assert!(matches!(
            check(&p, &Method::GET, Version::HTTP_11, &no_host, local()),
            Err(Refusal::Host(_))
        ));
    }

    #[test]
    fn configured_names_and_origins_are_checked() {
        for bad in [
            ServerConfig {
                hosts: vec!["a b".into()],
                ..ServerConfig::default()
            },
            ServerConfig {
                hosts: vec!["".into()],
                ..ServerConfig::default()
            },
            ServerConfig {
                origins: vec!["tools.example.com".into()],
                ..ServerConfig::default()
            },
            ServerConfig {
                origins: vec!["https://x.example/path".into()],
                ..ServerConfig::default()
            },
            ServerConfig {
                origins: vec!["null".into()],
                ..ServerConfig::default()
            },
        ] {
            assert!(check_config(&bad).is_err(), "{bad:?}");
        }
    }
}
