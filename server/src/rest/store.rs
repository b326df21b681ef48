//! `POST /v1/store/backup`: a consistent backup of the whole store, as one
//! file (the format of `stepline_store::backup`), for `stepline
//! store backup` to save and `stepline store restore` to bring back.
//!
//! The store is written to a temporary file first, with writers paused
//! for as long as that takes, then the file is sent: a slow client never
//! holds the pause.

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::error::RestError;
use super::request::Query;
use crate::http::App;

/// Bytes per chunk of the answer.
const CHUNK: usize = 256 * 1024;

pub async fn backup(State(app): State<App>, uri: Uri) -> Result<Response, RestError> {
    Query::parse(&uri, &[])?;
    let engine = app.engine.clone();
    let taken = tokio::task::spawn_blocking(move || {
        let path = std::env::temp_dir().join(format!(
            "stepline-backup-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let failed = |e: std::io::Error| unavailable(format!("cannot write the backup: {e}"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(failed)?;
        // Unlinked at once: the open file is all that is needed, and
        // nothing is left behind whatever happens to the request.
        let _ = std::fs::remove_file(&path);
        let summary = {
            let mut out = std::io::BufWriter::new(&mut file);
            engine.backup(&mut out)?
        };
        std::io::Seek::rewind(&mut file).map_err(failed)?;
        Ok::<_, RestError>((file, summary))
    })
    .await
    .map_err(|e| unavailable(format!("the backup stopped: {e}")))?;
    let (mut file, summary) = taken?;
    let (chunks, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut chunk = vec![0u8; CHUNK];
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if chunks.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = chunks.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, summary.bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"stepline.backup\"".to_owned(),
            ),
        ],
        Body::from_stream(Chunks(receiver)),
    )
        .into_response())
}

/// The file's chunks as the body's stream.
struct Chunks(mpsc::Receiver<std::io::Result<Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

fn unavailable(message: String) -> RestError {
    RestError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        message,
    )
}
