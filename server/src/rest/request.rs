//! Reading requests strictly: query parameters (known names only, each at
//! most once), bodies (bounded, JSON content types only, valid JSON), and
//! JSON objects (known members only, each of the right type). Every refusal
//! is a `RestError` naming the parameter or member at fault.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use serde_json::{Map, Value};

use super::error::RestError;

/// The largest request body (a 1 MiB definition, escaped inside a JSON
/// string, fits with room), the same as the AWS dialect's.
pub const MAX_BODY_BYTES: usize = crate::http::MAX_BODY_BYTES;
/// The largest definition and execution input, as AWS.
pub const MAX_DEFINITION_BYTES: usize = stepline_language::asl::MAX_DEFINITION_BYTES;
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// Query parameters, decoded.
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte; the result must be UTF-8.
fn decode(part: &str) -> Result<String, RestError> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = bytes
                    .get(i + 1)
                    .and_then(|&h| hex(h))
                    .zip(bytes.get(i + 2).and_then(|&l| hex(l)));
                let Some((h, l)) = pair else {
                    return Err(RestError::invalid(format!(
                        "the query string has a malformed escape in '{part}'"
                    )));
                };
                out.push(h * 16 + l);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| RestError::invalid(format!("the query parameter '{part}' is not UTF-8")))
}

impl Query {
    /// Parses the query of `uri`, refusing any name not in `allowed`.
    pub fn parse(uri: &Uri, allowed: &[&str]) -> Result<Self, RestError> {
        let mut params = BTreeMap::new();
        for pair in uri.query().unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if !allowed.contains(&name.as_str()) {
                return Err(RestError::invalid(if allowed.is_empty() {
                    format!("unknown query parameter '{name}': this endpoint takes none")
                } else {
                    format!(
                        "unknown query parameter '{name}'; expected one of: {}",
                        allowed.join(", ")
                    )
                }));
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(RestError::invalid(format!(
                    "the query parameter '{name}' is given more than once"
                )));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-negative integer parameter within `0..=max`.
    pub fn number(&self, name: &str, max: u64) -> Result<Option<u64>, RestError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(RestError::invalid(format!(
                "the query parameter '{name}' must be an integer from 0 to {max}, not '{text}'"
            ))),
        }
    }
}

/// Refuses bodies whose declared content type is not JSON. A body without
/// a content type is read as JSON (`curl --data-binary` with no header).
fn json_content_type(headers: &HeaderMap) -> Result<(), RestError> {
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
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(RestError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the content type '{text}' is not supported; send application/json (curl: --json, or -H 'Content-Type: application/json')"
            ),
        ))
    }
}

/// A write's body: JSON (or with no content type), read whole.
pub async fn json_body(headers: &HeaderMap, body: Body) -> Result<Bytes, RestError> {
    json_content_type(headers)?;
    read_body(body).await
}

/// Reads a whole body, at most `MAX_BODY_BYTES`.
pub async fn read_body(body: Body) -> Result<Bytes, RestError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if crate::limits::is_body_timeout(&e) {
                return RestError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeout",
                    e.to_string(),
                );
            }
            RestError::too_large(
                "PayloadTooLarge",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        })
}

/// Parses a JSON body; an empty body is `None`.
pub fn parse_json(body: &[u8]) -> Result<Option<Value>, RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "InvalidJson",
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

/// The members of a request object, checked against the names allowed.
#[derive(Debug)]
pub struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    pub fn new(object: &'a Map<String, Value>, allowed: &[&str]) -> Result<Self, RestError> {
        if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(RestError::invalid(format!(
                "unknown field '{unknown}'; expected one of: {}",
                allowed.join(", ")
            )));
        }
        Ok(Self(object))
    }

    pub fn value(&self, name: &str) -> Option<&'a Value> {
        match self.0.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<&'a str>, RestError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(RestError::invalid(format!(
                "the field '{name}' must be a string, not {}",
                kind(other)
            ))),
        }
    }
}

/// A JSON value's type, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
