//! The web pages: a small single-page application served at `GET /`,
//! every asset embedded in the binary (no CDN). The pages' own scripts
//! need no build step; the one vendored library, the authoring page's
//! code editor (CodeMirror 6), is bundled once from `editor/` and the
//! bundle committed (docs/decisions/code-editor.md).
//!
//! The pages are a face like the CLI: the browser reads and writes only
//! through the REST API under `/v1/`, so this module holds no logic beyond
//! serving fixed bytes. The JavaScript builds the DOM with `textContent`
//! (state names, inputs and errors are untrusted), and every answer here
//! carries a Content-Security-Policy that allows scripts, styles and
//! requests only from this origin and no inline script at all, so even a
//! mistake in the page's code cannot run injected script.
//!
//! `POST /` stays the AWS dialect (`http.rs`); only `GET /` is the page.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::http::App;

/// What the pages may load: their own scripts, styles, images and API
/// calls; nothing inline, nothing from another origin, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: the path it is served at, its content type, bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// An embedded file under `assets/`, served at `path`.
macro_rules! asset {
    ($path:literal, $file:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $file)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/assets/app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!(
        "/assets/graph.js",
        "graph.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/assets/author.js",
        "author.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/assets/vendor/codemirror.js",
        "vendor/codemirror.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/assets/vendor/codemirror.LICENSE.txt",
        "vendor/codemirror.LICENSE.txt",
        "text/plain; charset=utf-8"
    ),
    // The schema the validator uses: the editor completes field names
    // from it.
    Asset {
        path: "/assets/asl.schema.json",
        content_type: "application/json",
        body: include_bytes!("../../../schemas/asl.schema.json"),
    },
    asset!("/assets/app.css", "app.css", "text/css; charset=utf-8"),
    asset!(
        "/assets/editor.css",
        "editor.css",
        "text/css; charset=utf-8"
    ),
    asset!("/assets/favicon.svg", "favicon.svg", "image/svg+xml"),
];

/// The pages' routes, merged into the server's router by `http.rs`. `/`
/// has only GET here; axum merges it with the AWS dialect's POST.
pub(crate) fn router() -> Router<App> {
    let mut router = Router::new();
    for asset in ASSETS {
        // Hashed once, when the router is built.
        let tag = HeaderValue::from_str(&etag(asset.body)).expect("hex in quotes");
        router = router.route(
            asset.path,
            get(move |headers: HeaderMap| serve(asset, tag.clone(), headers)),
        );
    }
    // The authoring workbench has an address of its own; the page routes
    // by fragment, so it is a redirect to the fragment.
    router.route("/author", get(|| async { Redirect::to("/#/author") }))
}

/// An asset's entity tag: a hash of its bytes (FNV-1a, 64 bits), so a
/// browser revalidating (`no-cache`) gets 304 until the binary changes.
fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

async fn serve(asset: &'static Asset, tag: HeaderValue, request: HeaderMap) -> Response {
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().as_bytes() == tag.as_bytes() || t.trim() == "*")
        });
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The assets change with the binary: revalidate every time (a 304
    // while the entity tag matches), so an upgraded server never runs
    // yesterday's script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored editor was built from the recipe beside it: every
    /// package its licence file names (written by the build) is in the
    /// lock file at that version, and every package of the lock but the
    /// bundler is named. A bundle rebuilt without its lock, or a lock
    /// changed without a rebuild, fails here.
    #[test]
    fn the_vendored_editor_matches_its_recipe() {
        let licences = include_str!("assets/vendor/codemirror.LICENSE.txt");
        let lock: serde_json::Value =
            serde_json::from_str(include_str!("editor/package-lock.json")).expect("the lock");
        let mut bundled = Vec::new();
        for line in licences.lines() {
            let Some(rest) = line.strip_prefix("==== ") else {
                continue;
            };
            let mut words = rest.split(' ');
            let (name, version) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let locked = &lock["packages"][format!("node_modules/{name}")]["version"];
            assert_eq!(locked, version, "{name} in the licences and the lock");
            bundled.push(name.to_owned());
        }
        for (path, _) in lock["packages"].as_object().expect("packages") {
            let Some(name) = path.strip_prefix("node_modules/") else {
                continue;
            };
            if name == "esbuild" || name.starts_with("@esbuild/") {
                continue;
            }
            assert!(
                bundled.iter().any(|b| b == name),
                "{name} is locked but not bundled"
            );
        }
        let bundle = ASSETS
            .iter()
            .find(|a| a.path == "/assets/vendor/codemirror.js")
            .expect("the bundle");
        assert!(bundle.body.starts_with(b"/*! CodeMirror 6"));
    }

    /// The page must not need anything the policy forbids: no inline
    /// script or style, no remote origin.
    #[test]
    fn the_page_needs_nothing_the_policy_forbids() {
        let html = std::str::from_utf8(ASSETS[0].body).expect("utf-8");
        for forbidden in ["<script>", "style=", "http://", "https://", "<style"] {
            assert!(
                !html.contains(forbidden),
                "index.html contains '{forbidden}', which the policy forbids or which loads from elsewhere"
            );
        }
        // Inline event handlers (`onclick=`...) are inline script too.
        let inline_handler = html.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!inline_handler, "index.html has an inline event handler");
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let js = std::str::from_utf8(asset.body).expect("utf-8");
            assert!(
                !js.contains("innerHTML")
                    && !js.contains("eval(")
                    && !js.contains("insertAdjacentHTML"),
                "{} builds markup from strings; use textContent",
                asset.path
            );
        }
    }
}
