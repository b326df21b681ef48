//! The fuzzers' findings, replayed on stable in every `cargo test`: each
//! committed corpus input (`fuzz/corpus/TARGET/*`) and each reproducer of a
//! fixed crash (`fuzz/regressions/TARGET/*`) goes through the same harness
//! the cargo-fuzz targets call (`fuzz/harness.rs`). Reproducers of crashes
//! not fixed yet wait in `fuzz/open/TARGET/`, which this test skips.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use crate::support::repo_root;

#[path = "../../fuzz/harness.rs"]
mod harness;

/// Runs every file under `fuzz/DIR/TARGET/` through TARGET's harness and
/// reports each input that panics by its path, all at once.
fn replay(dir: &str) -> usize {
    let root = repo_root().join("fuzz").join(dir);
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, target) in harness::TARGETS {
        for file in files(&root.join(name)) {
            let data = std::fs::read(&file).unwrap();
            let started = Instant::now();
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(format!("{} panicked", file.display()));
            }
            let elapsed = started.elapsed();
            // The fuzzers run with a limit of 10 s per input in a release
            // build (docs/security.md, "Fuzzing"); a debug build is slower,
            // but an input that takes that long even here is a hang to look at.
            if elapsed.as_secs() >= 10 {
                failures.push(format!("{} took {elapsed:?}", file.display()));
            }
            count += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    count
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_corpus_input_passes_its_harness() {
    let count = replay("corpus");
    // Every target has a corpus; an empty replay would prove nothing.
    for (name, _) in harness::TARGETS {
        let dir = repo_root().join("fuzz/corpus").join(name);
        assert!(!files(&dir).is_empty(), "fuzz/corpus/{name} is empty");
    }
    assert!(count > 0);
}

#[test]
fn every_fixed_crash_reproducer_passes_its_harness() {
    replay("regressions");
}
