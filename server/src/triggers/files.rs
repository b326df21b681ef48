//! File triggers: a directory polled for files whose name matches a glob.
//! A file counts once its size and modification time have not changed for
//! the stability window; its execution is named after its name, size and
//! modification time, so a file is started once however often it is seen
//! (across restarts too), and a file rewritten later is a new event.
//!
//! Bounded: at most `max_in_flight` executions of a trigger run at once (a
//! permit is held from the start until the execution ends and the file is
//! moved); files beyond that stay in the directory until a permit is free,
//! which is the backpressure. A scan reads at most [`MAX_SCAN`] entries.
//! Symbolic links are never followed: the directory is canonical and inside
//! an operator's root, entries are read with `symlink_metadata`, and links
//! are skipped; finished files are moved through `stepline_runtime::confined`, which
//! refuses a `processed/` or `failed/` that is a link.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use stepline_runtime::confined::{ConfinedError, Root};
use stepline_store::ExecutionStatus;

use super::spec::FileWatch;
use super::{RETRY_AFTER, Trigger, Triggers, glob, hmac::hex, rfc3339};

/// The most directory entries one scan reads.
pub const MAX_SCAN: usize = 100_000;

/// Where finished files go, beside the watched files.
pub const PROCESSED: &str = "processed";
pub const FAILED: &str = "failed";

/// One file as a scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

impl Found {
    /// The event id: the name, size and modification time, hashed.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(self.size.to_be_bytes());
        h.update([0]);
        h.update(
            self.modified
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .to_be_bytes(),
        );
        hex(&h.finalize())[..24].to_owned()
    }
}

/// What a file trigger remembers between polls (in memory: after a
/// restart, files are found again and their execution names say which
/// were started).
#[derive(Debug)]
pub struct Watcher {
    watch: FileWatch,
    state: Mutex<State>,
    permits: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, Default)]
struct State {
    /// Each file's last size and modification time, and since when.
    seen: HashMap<PathBuf, (u64, DateTime<Utc>, DateTime<Utc>)>,
    /// Files whose execution is being started or runs.
    in_flight: HashSet<PathBuf>,
    /// Event ids started and ended (files left in place).
    done: HashSet<String>,
    /// Event ids whose start failed, and when to try again.
    failed: HashMap<String, DateTime<Utc>>,
    next_poll: Option<DateTime<Utc>>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Watcher {
    pub fn new(watch: FileWatch) -> Self {
        let permits = Arc::new(tokio::sync::Semaphore::new(watch.max_in_flight));
        Self {
            watch,
            state: Mutex::new(State::default()),
            permits,
        }
    }

    pub fn watch(&self) -> &FileWatch {
        &self.watch
    }

    /// Executions of this trigger running now.
    pub fn in_flight(&self) -> usize {
        lock(&self.state).in_flight.len()
    }
}

/// Lists the files of `directory` matching `pattern` (regular files only,
/// never through a link), at most [`MAX_SCAN`] entries read.
pub fn scan(directory: &Path, pattern: &str) -> Result<Vec<Found>, String> {
    // The directory itself must still be what was checked: not replaced by
    // a link since.
    match directory.canonicalize() {
        Ok(c) if c == directory => {}
        _ => {
            return Err(format!(
                "the directory '{}' is gone or is now a link",
                directory.display()
            ));
        }
    }
    let entries = std::fs::read_dir(directory)
        .map_err(|e| format!("cannot read '{}': {e}", directory.display()))?;
    let mut out = Vec::new();
    for entry in entries.take(MAX_SCAN) {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !glob::matches(pattern, &name) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let Ok(modified) = meta.modified() else {
            continue;
        };
        out.push(Found {
            path,
            name,
            size: meta.len(),
            modified: DateTime::<Utc>::from(modified),
        });
    }
    out.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
    Ok(out)
}

/// Polls one file trigger if its poll is due; when to poll it next.
pub async fn poll(triggers: &Triggers, trigger: Trigger, now: DateTime<Utc>) -> DateTime<Utc> {
    let super::Compiled::File(watch) = &trigger.kind else {
        return now + Duration::seconds(1);
    };
    let watcher = triggers.watcher(&trigger.name, watch);
    let poll_every = Duration::from_std(watch.poll).unwrap_or(Duration::seconds(1));
    if let Some(at) = lock(&watcher.state).next_poll {
        if at > now {
            return at;
        }
    }
    let next = now + poll_every;
    lock(&watcher.state).next_poll = Some(next);
    let (directory, pattern) = (watch.directory.clone(), watch.glob.clone());
    let found = match tokio::task::spawn_blocking(move || scan(&directory, &pattern)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            triggers.record_error(&trigger.name, &e).await;
            return next;
        }
        Err(e) => {
            triggers.record_error(&trigger.name, &e.to_string()).await;
            return next;
        }
    };
    let stable = Duration::from_std(watch.stable).unwrap_or(Duration::seconds(1));
    let trigger = Arc::new(trigger);
    let mut ready = Vec::new();
    {
        let mut state = lock(&watcher.state);
        let present: HashSet<&PathBuf> = found.iter().map(|f| &f.path).collect();
        state.seen.retain(|p, _| present.contains(p));
        let ids: HashSet<String> = found.iter().map(Found::id).collect();
        state.done.retain(|id| ids.contains(id));
        state.failed.retain(|id, _| ids.contains(id));
        for file in &found {
            let since = match state.seen.get(&file.path) {
                Some((size, modified, since))
                    if *size == file.size && *modified == file.modified =>
                {
                    *since
                }
                _ => {
                    state
                        .seen
                        .insert(file.path.clone(), (file.size, file.modified, now));
                    now
                }
            };
            if now - since < stable || state.in_flight.contains(&file.path) {
                continue;
            }
            let id = file.id();
            if state.done.contains(&id) || state.failed.get(&id).is_some_and(|at| *at > now) {
                continue;
            }
            // Backpressure: no permit, no start; the file waits.
            let Ok(permit) = Arc::clone(&watcher.permits).try_acquire_owned() else {
                break;
            };
            state.in_flight.insert(file.path.clone());
            ready.push((file.clone(), id, permit));
        }
    }
    for (file, id, permit) in ready {
        let (triggers, trigger, watcher) =
            (triggers.clone(), Arc::clone(&trigger), Arc::clone(&watcher));
        tokio::spawn(async move {
            process(&triggers, &trigger, &watcher, &file, &id).await;
            lock(&watcher.state).in_flight.remove(&file.path);
            drop(permit);
        });
    }
    next
}

/// Starts a file's execution, waits for its end, moves the file.
async fn process(
    triggers: &Triggers,
    trigger: &Trigger,
    watcher: &Watcher,
    file: &Found,
    id: &str,
) {
    let event = json!({
        "trigger": trigger.name,
        "kind": "file",
        "path": file.path.display().to_string(),
        "name": file.name,
        "size": file.size,
        "modified": rfc3339(file.modified),
    });
    let fired = match triggers.fire(trigger, id, event).await {
        Ok(fired) => {
            // The execution's name is a hash; the log says which file.
            if fired.new {
                tracing::info!(
                    trigger = %trigger.name,
                    file = %file.name,
                    execution = %fired.execution_arn,
                    "file trigger started an execution"
                );
            }
            fired
        }
        Err(_) => {
            let retry = triggers.engine().now() + RETRY_AFTER;
            lock(&watcher.state).failed.insert(id.to_owned(), retry);
            return;
        }
    };
    if fired.skipped.is_some() {
        // Refused by the trigger's windows: this file is not run.
        lock(&watcher.state).done.insert(id.to_owned());
        return;
    }
    let status = match triggers.engine().wait_for(&fired.execution_arn).await {
        Ok(record) => record.status,
        Err(_) => return,
    };
    if !watcher.watch.move_when_done {
        lock(&watcher.state).done.insert(id.to_owned());
        return;
    }
    let folder = if status == ExecutionStatus::Succeeded {
        PROCESSED
    } else {
        FAILED
    };
    let (from, directory, name, execution) = (
        file.path.clone(),
        watcher.watch.directory.clone(),
        file.name.clone(),
        fired.name.clone(),
    );
    let moved = tokio::task::spawn_blocking(move || {
        move_file(&from, &directory, folder, &name, &execution)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    if let Err(e) = moved {
        triggers
            .record_error(&trigger.name, &format!("cannot move '{}': {e}", file.name))
            .await;
    }
    // Remembered either way: a scan taken before the move may still list
    // the file, and it must not be handled again (the entry goes when the
    // file is no longer listed).
    lock(&watcher.state).done.insert(id.to_owned());
}

/// Moves `from` into `folder` of the watched `directory` as `name` (or
/// `EXECUTION-name` when that is taken), through [`Root`]: a
/// `processed/` or `failed/` that is a symbolic link (or a link at the
/// target name) is refused and the file stays where it is.
fn move_file(
    from: &Path,
    directory: &Path,
    folder: &str,
    name: &str,
    execution: &str,
) -> Result<(), String> {
    let root = Root::new(directory).map_err(|e| e.to_string())?;
    if root.path() != directory {
        return Err(format!(
            "the directory '{}' is now a link",
            directory.display()
        ));
    }
    let folder = Path::new(folder);
    match root.move_into(from, &folder.join(name)) {
        Err(ConfinedError::Exists { .. }) => root
            .move_into(from, &folder.join(format!("{execution}-{name}")))
            .map(drop),
        moved => moved.map(drop),
    }
    .map_err(|e| e.to_string())
}
