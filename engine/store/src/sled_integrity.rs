//! Knowing when a sled directory is damaged, and saying so.
//!
//! sled 0.34 recovers its log by reading it until the first message whose
//! checksum fails, and treats everything after as a write torn by a crash.
//! That is right for a torn tail and silently wrong for a damaged middle:
//! a flipped byte or a truncated file makes it open a store that has lost
//! writes it had flushed, with no error at all (a file cut to 1 MB opened
//! "fine" with none of its 1,500 executions). Other damage makes it panic
//! while opening, or fail later reads with "Read corrupted data".
//!
//! Three defences, all here:
//! - **the watermark**: a small file beside sled's, rewritten every few
//!   seconds after a flush, that records how many flushes the store had
//!   made durable ([`GENERATION_KEY`] in sled's `meta` tree counts them).
//!   A store that opens with fewer flushes than its watermark has lost
//!   writes, and is refused;
//! - **a full read at open**: every key and value of every tree is read
//!   once, so every page's checksum is checked before anything is served;
//! - **panics caught**: sled's own panics while opening become one error
//!   that names the directory and what to do.
//!
//! What it cannot see: writes made after the last watermark (at most
//! [`WATERMARK_EVERY`] of them, the window a crash may lose anyway on a
//! machine that loses power) and damage to a page sled never reads again.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::StoreError;

/// The file, in the data directory, that holds the watermark.
pub const WATERMARK_FILE: &str = "stepline.watermark";

/// The key in sled's `meta` tree that counts durable flushes (u64).
pub(super) const GENERATION_KEY: &str = "generation";

/// How often the watermark is rewritten under a steady load.
pub(super) const WATERMARK_EVERY: Duration = Duration::from_secs(5);

/// What every damage message ends with: the way out.
fn what_to_do(dir: &Path) -> String {
    format!(
        "Stop stepline, keep a copy of {dir} as it is, and restore the latest backup \
         (`stepline store restore FILE --data-dir NEW_DIR`, docs/operations.md); \
         `stepline store check --data-dir {dir}` tells what can still be read",
        dir = dir.display()
    )
}

/// The damage error for `dir`.
pub(super) fn damaged(dir: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Damaged {
        path: dir.display().to_string(),
        reason: what.to_string(),
        remedy: what_to_do(dir),
    }
}

/// The watermark as kept in [`WATERMARK_FILE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Watermark {
    /// Durable flushes the store had made when it was written.
    pub generation: u64,
    /// When it was written (ms since the epoch), for the message.
    pub written_ms: i64,
}

impl Watermark {
    /// The watermark of `dir`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = dir.join(WATERMARK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                damaged(
                    dir,
                    format_args!("its watermark file {} is unreadable ({e})", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::File {
                what: format!("cannot read {}", path.display()),
                source: e,
            }),
        }
    }

    /// Writes it durably: a new file, synced, renamed over the old one,
    /// and the directory synced, so a crash leaves one or the other whole.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(WATERMARK_FILE);
        let temporary = dir.join(format!("{WATERMARK_FILE}.new"));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

/// Refuses a store that has fewer durable flushes than its watermark says
/// it made: sled dropped writes it had flushed.
pub(super) fn check_watermark(dir: &Path, generation: u64) -> Result<(), StoreError> {
    let Some(mark) = Watermark::read(dir)? else {
        return Ok(());
    };
    if generation >= mark.generation {
        return Ok(());
    }
    let when = chrono::DateTime::from_timestamp_millis(mark.written_ms)
        .map_or_else(|| "an unknown time".to_owned(), |t| t.to_rfc3339());
    Err(damaged(
        dir,
        format_args!(
            "it has lost writes that were on disk: it holds {generation} flushes, but had made \
             {} by {when} (the database file was truncated or damaged). To run on with what is \
             left instead, remove {}",
            mark.generation,
            dir.join(WATERMARK_FILE).display()
        ),
    ))
}

/// Reads every key and value of every tree of `db`, so that sled checks
/// every page's checksum. Returns the number of entries read.
pub(super) fn read_everything(db: &sled::Db, dir: &Path) -> Result<u64, StoreError> {
    let mut entries = 0u64;
    for name in db.tree_names() {
        let tree = db
            .open_tree(&name)
            .map_err(|e| damaged(dir, format_args!("a tree cannot be opened: {e}")))?;
        for entry in tree.iter() {
            entry.map_err(|e| damaged(dir, e))?;
            entries += 1;
        }
    }
    Ok(entries)
}

/// Runs `open` (sled's opening of `dir`), turning a panic inside it into a
/// damage error. The panic's message is kept for the error and not
/// printed: this thread's panics go to the error, others' to the hook that
/// was there before.
pub(super) fn catching_panics<T>(dir: &Path, open: impl FnOnce() -> T) -> Result<T, StoreError> {
    type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;
    let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
    let opener = std::thread::current().id();
    let caught: Arc<Mutex<Option<String>>> = Arc::default();
    {
        let previous = Arc::clone(&previous);
        let caught = Arc::clone(&caught);
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() == opener {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                *caught.lock().unwrap_or_else(|e| e.into_inner()) = Some(message + &place);
            } else {
                previous(info);
            }
        }));
    }
    let result = std::panic::catch_unwind(AssertUnwindSafe(open));
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result.map_err(|_| {
        let message = caught
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "a panic".to_owned());
        damaged(dir, format_args!("sled cannot read it ({message})"))
    })
}

/// When the watermark was last written, and what it said.
#[derive(Debug)]
pub(super) struct WatermarkClock {
    pub dir: PathBuf,
    pub last_written: Option<Instant>,
    /// The generation it holds.
    pub generation: u64,
}

impl WatermarkClock {
    /// Whether a flush now should also rewrite the watermark.
    pub fn due(&self) -> bool {
        self.last_written
            .is_none_or(|at| at.elapsed() >= WATERMARK_EVERY)
    }

    /// Writes `generation`, which must be durable in sled already.
    pub fn write(&mut self, generation: u64) -> std::io::Result<()> {
        Watermark {
            generation,
            written_ms: chrono::Utc::now().timestamp_millis(),
        }
        .write(&self.dir)?;
        self.last_written = Some(Instant::now());
        self.generation = generation;
        Ok(())
    }
}

/// The first damage a read found while the store was open: `/ready`
/// reports it from then on.
#[derive(Debug, Default)]
pub(super) struct Damage(Mutex<Option<String>>);

impl Damage {
    fn notice<T>(&self, result: &sled::Result<T>) {
        if let Err(e @ sled::Error::Corruption { .. }) = result {
            let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() {
                tracing::error!(error = %e, "the store is damaged");
                *first = Some(e.to_string());
            }
        }
    }

    pub fn found(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A sled tree whose reads and writes note damage in [`Damage`] on their
/// way out; otherwise sled's own API, so every caller goes through it.
#[derive(Debug, Clone)]
pub(super) struct NoticingTree {
    tree: sled::Tree,
    damage: Arc<Damage>,
}

impl NoticingTree {
    pub fn new(tree: sled::Tree, damage: Arc<Damage>) -> Self {
        Self { tree, damage }
    }

    fn noticed<T>(&self, result: sled::Result<T>) -> sled::Result<T> {
        self.damage.notice(&result);
        result
    }

    fn iter_of(&self, iter: sled::Iter) -> NoticingIter {
        NoticingIter {
            iter,
            damage: Arc::clone(&self.damage),
        }
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<sled::IVec>> {
        self.noticed(self.tree.get(key))
    }

    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<sled::IVec>,
    ) -> sled::Result<Option<sled::IVec>> {
        self.noticed(self.tree.insert(key, value))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<sled::IVec>> {
        self.noticed(self.tree.remove(key))
    }

    pub fn apply_batch(&self, batch: sled::Batch) -> sled::Result<()> {
        self.noticed(self.tree.apply_batch(batch))
    }

    pub fn iter(&self) -> NoticingIter {
        self.iter_of(self.tree.iter())
    }

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> NoticingIter {
        self.iter_of(self.tree.scan_prefix(prefix))
    }

    pub fn range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(&self, range: R) -> NoticingIter {
        self.iter_of(self.tree.range(range))
    }
}

/// sled's iterator, noting damage in the items it yields.
pub(super) struct NoticingIter {
    iter: sled::Iter,
    damage: Arc<Damage>,
}

impl Iterator for NoticingIter {
    type Item = sled::Result<(sled::IVec, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.iter.next()?;
        self.damage.notice(&item);
        Some(item)
    }
}

impl DoubleEndedIterator for NoticingIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.iter.next_back()?;
        self.damage.notice(&item);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SledStore, StoreError};
    use super::WATERMARK_FILE;

    fn temp_dir(label: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stepline-integrity-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn damage_reason(result: Result<SledStore, StoreError>) -> String {
        match result {
            Err(StoreError::Damaged { reason, remedy, .. }) => {
                assert!(remedy.contains("stepline store restore"), "{remedy}");
                reason
            }
            other => panic!("not refused as damaged: {other:?}"),
        }
    }

    /// A panic while opening (sled panics on some damaged logs: "tried to
    /// serialize Uninitialized" on a file cut short) becomes the damage
    /// error, with its message, and the hook is back afterwards.
    #[test]
    fn a_panic_while_opening_is_a_damage_error() {
        let dir = temp_dir("panic");
        let caught = super::catching_panics(&dir, || -> u32 { panic!("tried to serialize") });
        let reason = match caught {
            Err(StoreError::Damaged { reason, .. }) => reason,
            other => panic!("not a damage error: {other:?}"),
        };
        assert!(
            reason.contains("sled cannot read it (tried to serialize at "),
            "{reason}"
        );
        assert_eq!(super::catching_panics(&dir, || 7).expect("no panic"), 7);
        let elsewhere = std::thread::spawn(|| std::panic::catch_unwind(|| panic!("elsewhere")));
        assert!(elsewhere.join().expect("joined").is_err());
    }

    /// The first corruption a read meets is kept (for `/ready`); other
    /// errors are not damage.
    #[test]
    fn damage_is_the_first_corruption_read() {
        let damage = super::Damage::default();
        damage.notice::<()>(&Err(sled::Error::Unsupported("not damage".into())));
        assert_eq!(damage.found(), None);
        damage.notice::<()>(&Err(sled::Error::Corruption { at: None, bt: () }));
        let found = damage.found().expect("noticed");
        damage.notice::<()>(&Err(sled::Error::Corruption { at: None, bt: () }));
        assert_eq!(damage.found(), Some(found));
    }

    /// A store that lost flushed writes is refused; removing the watermark
    /// is the operator's way to run on with what is left.
    #[test]
    fn a_store_behind_its_watermark_is_refused() {
        let dir = temp_dir("watermark");
        drop(SledStore::open(&dir).expect("open"));
        let mark = super::Watermark::read(&dir)
            .expect("read")
            .expect("written");
        super::Watermark {
            generation: mark.generation + 10,
            written_ms: mark.written_ms,
        }
        .write(&dir)
        .expect("write");
        let reason = damage_reason(SledStore::open(&dir));
        assert!(reason.contains("lost writes"), "{reason}");
        std::fs::remove_file(dir.join(WATERMARK_FILE)).expect("remove");
        drop(SledStore::open(&dir).expect("opens without its watermark"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
