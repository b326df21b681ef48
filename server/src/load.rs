//! `stepline serve --load DIR`: every definition file in a folder becomes a
//! state machine, kept in sync while the server runs, so definitions can be
//! authored by hand without a deploy step.
//!
//! A file `NAME.asl.json` (or `NAME.json`) defines the state machine NAME
//! (STANDARD; `NAME.express.asl.json` for EXPRESS). The folder is read at
//! start and then polled: a new file creates its machine, a changed file
//! updates it (running executions keep their revision), and a file that
//! does not validate is reported with the line, column and pointer of every
//! problem and leaves the machine as it was. Removing a file leaves its
//! machine in place (deleting is an explicit act).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use stepline_runtime::{Engine, EngineError};
use stepline_store::WorkflowType;

/// How often the folder is looked at again.
const POLL: Duration = Duration::from_millis(500);

/// The largest definition file read (AWS's definition limit).
const MAX_DEFINITION: u64 = 1024 * 1024;

/// The state machine a file defines, from its name.
fn machine_of(path: &Path) -> Option<(String, WorkflowType)> {
    let file = path.file_name()?.to_str()?;
    if let Some(name) = file.strip_suffix(".express.asl.json") {
        return Some((name.to_owned(), WorkflowType::Express));
    }
    let name = file
        .strip_suffix(".asl.json")
        .or_else(|| file.strip_suffix(".json"))?;
    Some((name.to_owned(), WorkflowType::Standard))
}

/// What was loaded from each file: its modification time and text.
#[derive(Debug, Default)]
pub struct Loader {
    dir: PathBuf,
    seen: HashMap<PathBuf, (SystemTime, String)>,
}

impl Loader {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            seen: HashMap::new(),
        }
    }

    /// Loads what changed since the last call; reports on `log`.
    pub async fn sync(&mut self, engine: &Engine, log: &mut (dyn Write + Send)) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                let _ = writeln!(log, "stepline: cannot read {}: {e}", self.dir.display());
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && machine_of(p).is_some())
            .collect();
        files.sort();
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if self.seen.get(&path).is_some_and(|(m, _)| *m == modified) {
                continue;
            }
            if meta.len() > MAX_DEFINITION {
                let _ = writeln!(
                    log,
                    "stepline: {}: larger than {MAX_DEFINITION} bytes; not loaded",
                    path.display()
                );
                self.seen.insert(path, (modified, String::new()));
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                let _ = writeln!(
                    log,
                    "stepline: {}: not readable as UTF-8 text",
                    path.display()
                );
                continue;
            };
            if self.seen.get(&path).is_some_and(|(_, t)| *t == text) {
                self.seen.insert(path, (modified, text));
                continue;
            }
            self.load(engine, &path, &text, log).await;
            self.seen.insert(path, (modified, text));
        }
    }

    async fn load(&self, engine: &Engine, path: &Path, text: &str, log: &mut (dyn Write + Send)) {
        let Some((name, kind)) = machine_of(path) else {
            return;
        };
        let c = engine.config();
        let arn = format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            c.region, c.account
        );
        let result = match engine.describe_state_machine(&arn) {
            Ok(existing) if existing.definition == text => return,
            Ok(_) => engine
                .update_state_machine(&arn, Some(text), None)
                .await
                .map(|r| ("updated", r.revision)),
            Err(_) => engine
                .create_state_machine(&name, text, None, kind)
                .await
                .map(|r| ("created", r.revision)),
        };
        match result {
            Ok((what, revision)) => {
                let _ = writeln!(
                    log,
                    "stepline: {}: {what} state machine {name} (revision {revision})",
                    path.display()
                );
            }
            Err(EngineError::InvalidDefinition(diagnostics)) => {
                for d in diagnostics {
                    let _ = writeln!(log, "{}:{d}", path.display());
                }
            }
            Err(e) => {
                let _ = writeln!(log, "stepline: {}: not loaded: {e}", path.display());
            }
        }
    }
}

/// Loads `dir` now, then keeps polling it until the process ends.
pub async fn watch(engine: Engine, dir: PathBuf) {
    let mut loader = Loader::new(dir);
    loader.sync(&engine, &mut std::io::stderr()).await;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(POLL).await;
            loader.sync(&engine, &mut std::io::stderr()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::machine_of;
    use std::path::Path;
    use stepline_store::WorkflowType;

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(
            machine_of(Path::new("/d/orders.asl.json")),
            Some(("orders".into(), WorkflowType::Standard))
        );
        assert_eq!(
            machine_of(Path::new("/d/quick.express.asl.json")),
            Some(("quick".into(), WorkflowType::Express))
        );
        assert_eq!(
            machine_of(Path::new("d/plain.json")),
            Some(("plain".into(), WorkflowType::Standard))
        );
        assert_eq!(machine_of(Path::new("d/notes.txt")), None);
    }
}
