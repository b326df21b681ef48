//! `stepline serve`: the main job. Opens the embedded store, resumes every
//! open execution, and serves the AWS Step Functions API on one port until
//! SIGINT or SIGTERM.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use stepline_engine::interp::{Failure, TaskRequest};
use stepline_engine::runtime::{Engine, EngineConfig, TaskRunner, WallClock};
use stepline_engine::store::SledStore;

use super::EXIT_USAGE;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: SocketAddr,
    /// Directory of the embedded database.
    #[arg(long, default_value = "./stepline-data")]
    data_dir: PathBuf,
    /// Operator configuration file (stepline.toml; read once the tasks work lands).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Until task runners are configured, a Task fails honestly (and can be
/// caught) instead of pretending.
struct NoRunners;

impl TaskRunner for NoRunners {
    fn run(
        &self,
        request: TaskRequest,
        _idempotency_key: String,
    ) -> Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send>> {
        Box::pin(async move {
            Err(Failure::new(
                "States.TaskFailed",
                format!(
                    "stepline cannot run the resource '{}' of the state '{}' here: no task runner is configured for it",
                    request.resource.arn, request.state_name
                ),
            ))
        })
    }
}

pub fn run(args: &Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    if let Some(config) = &args.config {
        let _ = writeln!(
            stderr,
            "stepline serve: --config {} is not read yet (task runners arrive with the tasks work)",
            config.display()
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(stderr, "stepline serve: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let store = SledStore::open(&args.data_dir).map_err(|e| e.to_string())?;
        let engine = Engine::open(
            Arc::new(store),
            Arc::new(NoRunners),
            Arc::new(WallClock),
            EngineConfig::default(),
        )
        .map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let _ = writeln!(
            stdout,
            "stepline listening on http://{address} (data in {})",
            args.data_dir.display()
        );
        let _ = stdout.flush();
        crate::http::serve(listener, engine, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => 0,
        Err(message) => {
            let _ = writeln!(stderr, "stepline serve: {message}");
            EXIT_USAGE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
