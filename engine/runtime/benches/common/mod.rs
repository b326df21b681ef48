//! What the engine's benches share (each bench is a binary of its own and
//! includes this module).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepline_language::interp::Failure;
use stepline_runtime::{Engine, EngineConfig, TaskCall, TaskFuture, TaskRunner, WallClock};
use stepline_store::{SledStore, Store};

/// A task runner for machines without tasks.
pub struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _: TaskCall) -> TaskFuture {
        Box::pin(async { Err(Failure::new("States.TaskFailed", "no tasks in benchmarks")) })
    }
}

/// A fresh directory under the system's temporary one, named for `label`
/// and this process.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stepline-bench-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An engine over a sled store in `dir`, on the wall clock, without tasks
/// (inside a tokio runtime: the engine starts its own tasks).
pub fn sled_engine(dir: &Path) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("open"));
    Engine::open(
        store,
        Arc::new(NoTasks),
        Arc::new(WallClock),
        EngineConfig::default(),
    )
    .expect("engine")
}
