//! Who may call the server. When the operator configures credentials
//! (`[[server.access_keys]]`, `[[server.tokens]]` in stepline.toml),
//! AWS-dialect requests must carry a valid AWS Signature Version 4 made
//! with one of the access keys, and REST requests `Authorization: Bearer
//! TOKEN` with one of the tokens. With no credentials configured every
//! request is let through (the server listens on loopback by default).
//!
//! Refusals are made as AWS makes them for its JSON 1.0 services
//! (`MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//! `UnrecognizedClientException`, `InvalidSignatureException`, all HTTP 400
//! as DynamoDB documents them for the same protocol), with AWS's messages,
//! so SDKs and the CLI report them the way users know. Secrets and
//! signatures are compared in constant time. This module never logs a
//! secret and never says which part of a valid-looking signature differed.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::aws::AwsError;
use crate::config::ServerConfig;
use crate::http::{App, aws_error};
use crate::rest::error::RestError;
use crate::triggers::hmac::{constant_time_eq, hex, hmac_sha256};

/// The only algorithm SigV4 names.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in a Step Functions credential scope.
const SERVICE: &str = "states";
/// How far a request's date may be from the server's clock, as AWS.
const MAX_SKEW_MINUTES: i64 = 15;
/// The shortest bearer token accepted: guessable tokens are refused at start.
const MIN_TOKEN_CHARS: usize = 16;

/// The credentials the server checks, resolved at start (environment
/// variables read once).
#[derive(Clone, Default)]
pub struct Credentials {
    /// Access key id -> secret access key.
    keys: BTreeMap<String, String>,
    /// SHA-256 of each bearer token: comparing digests takes the same time
    /// whatever the token's length.
    tokens: Vec<[u8; 32]>,
    /// The region a signature's scope must name (the server's region).
    region: String,
}

impl std::fmt::Debug for Credentials {
    // Never print a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .field("region", &self.region)
            .finish()
    }
}

impl Credentials {
    /// No credentials: every request is let through.
    pub fn none() -> Self {
        Self::default()
    }

    /// The credentials `[server]` configures, reading `*_env` variables
    /// through `env`. `region` is the region signatures must be scoped to.
    pub fn from_config(
        server: &ServerConfig,
        region: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        check_config(server)?;
        let mut credentials = Self {
            region: region.to_owned(),
            ..Self::default()
        };
        for key in &server.access_keys {
            let secret = match (&key.secret, &key.secret_env) {
                (Some(secret), _) => secret.clone(),
                (None, Some(var)) => env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                    format!(
                        "server.access_keys '{}': the environment variable {var} is not set",
                        key.id
                    )
                })?,
                (None, None) => unreachable!("check_config requires a secret"),
            };
            credentials.keys.insert(key.id.clone(), secret);
        }
        for (i, token) in server.tokens.iter().enumerate() {
            let value = match (&token.token, &token.token_env) {
                (Some(value), _) => value.clone(),
                (None, Some(var)) => env(var).ok_or_else(|| {
                    format!("server.tokens[{i}]: the environment variable {var} is not set")
                })?,
                (None, None) => unreachable!("check_config requires a token"),
            };
            check_token(&value).map_err(|e| format!("server.tokens[{i}]: {e}"))?;
            credentials
                .tokens
                .push(Sha256::digest(value.as_bytes()).into());
        }
        Ok(credentials)
    }

    /// A single access key and token, for tests and embedding.
    pub fn single(key_id: &str, secret: &str, token: &str, region: &str) -> Self {
        Self {
            keys: BTreeMap::from([(key_id.to_owned(), secret.to_owned())]),
            tokens: vec![Sha256::digest(token.as_bytes()).into()],
            region: region.to_owned(),
        }
    }

    /// Whether any credential is configured (and so every request checked).
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || !self.tokens.is_empty()
    }

    /// Whether `authorization` is `Bearer TOKEN` with a configured token.
    fn bearer_ok(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|a| {
            let (scheme, token) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        }) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        // Every token is compared, so the time says nothing of which matched.
        self.tokens
            .iter()
            .fold(false, |ok, token| constant_time_eq(token, &digest) | ok)
    }
}

/// The rules on `[server]` credentials that serde cannot say.
pub(crate) fn check_config(server: &ServerConfig) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for key in &server.access_keys {
        let id_ok =
            (16..=128).contains(&key.id.len()) && key.id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok {
            return Err(format!(
                "server.access_keys: '{}' is not an access key id (16 to 128 letters and digits, like AKIAIOSFODNN7EXAMPLE)",
                key.id
            ));
        }
        if !ids.insert(key.id.as_str()) {
            return Err(format!(
                "server.access_keys: '{}' is configured twice",
                key.id
            ));
        }
        match (&key.secret, &key.secret_env) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!(
                    "server.access_keys '{}': give exactly one of secret and secret_env",
                    key.id
                ));
            }
            (Some(secret), None) if secret.is_empty() => {
                return Err(format!(
                    "server.access_keys '{}': the secret is empty",
                    key.id
                ));
            }
            _ => {}
        }
    }
    for (i, token) in server.tokens.iter().enumerate() {
        match (&token.token, &token.token_env) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!(
                    "server.tokens[{i}]: give exactly one of token and token_env"
                ));
            }
            (Some(value), None) => {
                check_token(value).map_err(|e| format!("server.tokens[{i}]: {e}"))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "a token must have at least {MIN_TOKEN_CHARS} characters"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token is printable ASCII without spaces".into());
    }
    Ok(())
}

/// Why a SigV4 request was refused: AWS's error types and messages.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    Missing,
    /// The Authorization header or the date is not what SigV4 requires.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not configured.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The scope, the clock or the signature itself is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl SigV4Error {
    /// AWS's `__type`.
    pub fn kind(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::UnknownKey => "UnrecognizedClientException",
            SigV4Error::Invalid(_) => "InvalidSignatureException",
        }
    }
}

/// What a signature covers.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded once).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., ...`.
struct Authorization<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        let first = value.split([',', ' ']).next().unwrap_or_default();
        return Err(SigV4Error::Incomplete(if first.contains('=') {
            format!("Unsupported AWS 'algorithm': '{algorithm}'")
        } else {
            format!(
                "'{value}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )
        }));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, v)) = part.split_once('=') else {
            return Err(SigV4Error::Incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )));
        };
        match name {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, found) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !found {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(SigV4Error::Incomplete(format!(
            "{missing}Authorization={value}"
        )));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = parts[..] else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential '{credential}' should have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request. Authorization={value}"
        )));
    };
    Ok(Authorization {
        key_id,
        date,
        region,
        service,
        terminator,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

/// The request's time: `X-Amz-Date` (ISO 8601 basic), else `Date` (RFC
/// 1123), as AWS reads them; and the form it takes in the string to sign.
fn request_time(
    headers: &HeaderMap,
    authorization: &str,
) -> Result<(DateTime<Utc>, String), SigV4Error> {
    if let Some(value) = headers.get("x-amz-date") {
        let text = value.to_str().unwrap_or_default();
        let time = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
            .map_err(|_| {
                SigV4Error::Incomplete(format!(
                    "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
                ))
            })?
            .and_utc();
        return Ok((time, text.to_owned()));
    }
    if let Some(value) = headers.get(header::DATE) {
        let text = value.to_str().unwrap_or_default();
        let time = DateTime::parse_from_rfc2822(text)
            .map_err(|_| {
                SigV4Error::Incomplete(format!("Date '{text}' is not an HTTP date (RFC 1123)"))
            })?
            .with_timezone(&Utc);
        return Ok((time, time.format("%Y%m%dT%H%M%SZ").to_string()));
    }
    Err(SigV4Error::Incomplete(format!(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={authorization}"
    )))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters,
/// as SigV4's canonical form requires.
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_digit = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex_digit(h).is_some() && hex_digit(l).is_some() => {
                let v = hex_digit(h).unwrap_or(0) * 16 + hex_digit(l).unwrap_or(0);
                out.push(v as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical request of SigV4 for every service but S3: the path
/// encoded once more, the query sorted, the signed headers lowercased with
/// their values trimmed and inner spaces folded, and the body's SHA-256
/// (always the body's own: a client's `x-amz-content-sha256` is only a
/// signed header, so a body changed after signing fails).
fn canonical_request(request: &SignedRequest<'_>, signed_headers: &[&str]) -> String {
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    let mut query: Vec<(String, String)> = request
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(n, v)| format!("{n}={v}")).collect();
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        uri_encode(path, true),
        query.join("&"),
        headers,
        signed_headers.join(";"),
        hex(&Sha256::digest(request.body)),
    )
}

impl Credentials {
    /// Checks `request`'s SigV4 signature at time `now`.
    pub fn verify_sigv4(
        &self,
        request: &SignedRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), SigV4Error> {
        let Some(value) = request.headers.get(header::AUTHORIZATION) else {
            return Err(SigV4Error::Missing);
        };
        let value = value
            .to_str()
            .map_err(|_| SigV4Error::Incomplete("the Authorization header is not ASCII".into()))?;
        let auth = parse_authorization(value)?;
        let (time, amz_date) = request_time(request.headers, value)?;
        if !auth
            .signed_headers
            .iter()
            .any(|h| *h == "host" || *h == ":authority")
        {
            return Err(SigV4Error::Incomplete(format!(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization. Authorization={value}"
            )));
        }
        // The target names the action: unsigned, a captured request could
        // be replayed as another action with the same body. AWS's SDKs and
        // CLI always sign it; the message follows AWS's for `host`.
        if !auth.signed_headers.contains(&"x-amz-target") {
            return Err(SigV4Error::Incomplete(format!(
                "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization. Authorization={value}"
            )));
        }
        if !auth.signed_headers.is_sorted()
            || auth
                .signed_headers
                .iter()
                .any(|h| h.bytes().any(|b| b.is_ascii_uppercase()))
        {
            return Err(SigV4Error::Incomplete(format!(
                "SignedHeaders must be lowercase and sorted. Authorization={value}"
            )));
        }
        if auth.date != &amz_date[..8] {
            return Err(SigV4Error::Invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.date,
                &amz_date[..8]
            )));
        }
        if auth.region != self.region {
            return Err(SigV4Error::Invalid(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            )));
        }
        if auth.service != SERVICE {
            return Err(SigV4Error::Invalid(format!(
                "Credential should be scoped to correct service: '{SERVICE}'. "
            )));
        }
        if auth.terminator != "aws4_request" {
            return Err(SigV4Error::Invalid(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
                auth.terminator
            )));
        }
        let Some(secret) = self.keys.get(auth.key_id) else {
            return Err(SigV4Error::UnknownKey);
        };
        let skew = TimeDelta::minutes(MAX_SKEW_MINUTES);
        let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        if time < now - skew {
            return Err(SigV4Error::Invalid(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - {MAX_SKEW_MINUTES} min.)",
                stamp(now - skew),
                stamp(now)
            )));
        }
        if time > now + skew {
            return Err(SigV4Error::Invalid(format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + {MAX_SKEW_MINUTES} min.)",
                stamp(now + skew),
                stamp(now)
            )));
        }
        let scope = format!("{}/{}/{SERVICE}/aws4_request", auth.date, auth.region);
        let canonical = canonical_request(request, &auth.signed_headers);
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = hmac_sha256(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
        let key = hmac_sha256(&key, auth.region.as_bytes());
        let key = hmac_sha256(&key, SERVICE.as_bytes());
        let key = hmac_sha256(&key, b"aws4_request");
        let expected = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
        if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            return Err(SigV4Error::Invalid(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            ));
        }
        Ok(())
    }
}

/// Layer on `POST /`: a request must be signed. The body is read here
/// (bounded) because the signature covers it, then handed on whole.
pub(crate) async fn require_sigv4(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Response {
    if !app.credentials.enabled() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = match crate::http::read_aws_body(body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    if let Err(e) = app.credentials.verify_sigv4(&signed, app.engine.now()) {
        return aws_error(&AwsError {
            kind: e.kind(),
            message: e.to_string(),
            status: 400,
        });
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Layer on the REST API and `/metrics`: `Authorization: Bearer TOKEN`.
/// Webhooks (`/v1/hooks/NAME`) are let through: they carry their own HMAC
/// signature, which senders like GitHub can make but a token they cannot
/// send.
pub(crate) async fn require_bearer(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Response {
    if !app.credentials.enabled() || request.uri().path().starts_with("/v1/hooks/") {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if app.credentials.bearer_ok(authorization) {
        return next.run(request).await;
    }
    let message = if authorization.is_some() {
        "the bearer token is not one this server accepts"
    } else {
        "this server requires Authorization: Bearer TOKEN (one of [[server.tokens]])"
    };
    let mut response =
        RestError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"stepline\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 example (the IAM guide's "GET
    /// /?Action=ListUsers&Version=2010-05-08" request), its query given
    /// out of order to check the sorting. Real clients' signatures are
    /// checked end to end in tests/e2e/access.rs.
    #[test]
    fn canonical_request_matches_the_documented_form() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "iam.amazonaws.com".parse().unwrap());
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: Some("Version=2010-05-08&Action=ListUsers"),
            headers: &headers,
            body: b"",
        };
        let canonical = canonical_request(&request, &["content-type", "host", "x-amz-date"]);
        // The canonical request and its hash from AWS's documentation.
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
    }

    #[test]
    fn the_documented_signing_key_and_signature() {
        // AWS's example secret, date, region and service (iam, us-east-1).
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let key = hmac_sha256(format!("AWS4{secret}").as_bytes(), b"20150830");
        let key = hmac_sha256(&key, b"us-east-1");
        let key = hmac_sha256(&key, b"iam");
        let key = hmac_sha256(&key, b"aws4_request");
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let string_to_sign = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        assert_eq!(
            hex(&hmac_sha256(&key, string_to_sign.as_bytes())),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn authorization_headers_are_parsed_or_refused_as_aws_does() {
        let e = parse_authorization("Bearer abc").err().unwrap();
        assert_eq!(e.kind(), "IncompleteSignatureException");
        assert!(e.to_string().contains("missing equal-sign"), "{e}");
        let e = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=A/20261122/us-east-1/states/aws4_request",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("requires 'Signature' parameter"),
            "{e}"
        );
        assert!(
            e.to_string().contains("requires 'SignedHeaders' parameter"),
            "{e}"
        );
        let e = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=A/2026/x, SignedHeaders=host, Signature=00",
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), "IncompleteSignatureException");
        let ok = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
        )
        .ok()
        .unwrap();
        assert_eq!(ok.key_id, "AKIDEXAMPLE");
        assert_eq!(ok.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(ok.signature, "abcd");
    }

    #[test]
    fn the_date_comes_from_x_amz_date_or_date() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::DATE,
            "Sun, 22 Nov 2026 06:30:00 GMT".parse().unwrap(),
        );
        let (time, stamp) = request_time(&headers, "a").ok().unwrap();
        assert_eq!(stamp, "20261122T063000Z");
        assert_eq!(time.to_rfc3339(), "2026-11-22T06:30:00+00:00");
        // X-Amz-Date wins when both are sent, as AWS reads them.
        headers.insert("x-amz-date", "20261122T070000Z".parse().unwrap());
        assert_eq!(
            request_time(&headers, "a").ok().unwrap().1,
            "20261122T070000Z"
        );
        headers.insert("x-amz-date", "2026-11-22T07:00:00Z".parse().unwrap());
        let e = request_time(&headers, "a").err().unwrap();
        assert_eq!(e.kind(), "IncompleteSignatureException");
    }

    /// A request signed with the right key, over `signed_headers`.
    fn signed_request(signed_headers: &[&str]) -> (HeaderMap, DateTime<Utc>) {
        let now = Utc::now();
        let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:8083".parse().unwrap());
        headers.insert("x-amz-date", stamp.parse().unwrap());
        headers.insert(
            "x-amz-target",
            "AWSStepFunctions.DeleteStateMachine".parse().unwrap(),
        );
        let request = SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            body: b"{}",
        };
        let canonical = canonical_request(&request, signed_headers);
        let scope = format!("{}/us-east-1/states/aws4_request", &stamp[..8]);
        let string_to_sign = format!(
            "{ALGORITHM}\n{stamp}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = hmac_sha256(b"AWS4secret", &stamp.as_bytes()[..8]);
        let key = hmac_sha256(&key, b"us-east-1");
        let key = hmac_sha256(&key, b"states");
        let key = hmac_sha256(&key, b"aws4_request");
        let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
        let authorization = format!(
            "{ALGORITHM} Credential=AKIDEXAMPLE12345/{scope}, SignedHeaders={}, Signature={signature}",
            signed_headers.join(";")
        );
        headers.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        (headers, now)
    }

    /// A signature that leaves the target out would let its request be
    /// replayed as any other action: refused even when it is right.
    #[test]
    fn the_target_must_be_signed() {
        let credentials = Credentials::single("AKIDEXAMPLE12345", "secret", "t", "us-east-1");
        let verify = |signed: &[&str]| {
            let (headers, now) = signed_request(signed);
            let request = SignedRequest {
                method: "POST",
                path: "/",
                query: None,
                headers: &headers,
                body: b"{}",
            };
            credentials.verify_sigv4(&request, now)
        };
        assert_eq!(verify(&["host", "x-amz-date", "x-amz-target"]), Ok(()));
        let refused = verify(&["host", "x-amz-date"]).unwrap_err();
        assert_eq!(refused.kind(), "IncompleteSignatureException");
        assert!(
            refused
                .to_string()
                .starts_with("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
            "{refused}"
        );
    }

    #[test]
    fn tokens_are_compared_by_digest() {
        let credentials =
            Credentials::single("AKIDEXAMPLE12345", "s", "a-long-enough-token", "us-east-1");
        assert!(credentials.bearer_ok(Some("Bearer a-long-enough-token")));
        assert!(credentials.bearer_ok(Some("bearer  a-long-enough-token ")));
        assert!(!credentials.bearer_ok(Some("Bearer a-long-enough-tokeN")));
        assert!(!credentials.bearer_ok(Some("Basic a-long-enough-token")));
        assert!(!credentials.bearer_ok(None));
    }
}
