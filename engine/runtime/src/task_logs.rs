//! What process tasks write, kept per attempt with the execution: the
//! runner hands each attempt's stderr (and stdout when it failed) to the
//! call's [`TaskLogSink`], the engine stores it as a `TaskLogRecord`.
//!
//! Bounded twice: each text keeps its last [`TASK_LOG_BYTES`], and an
//! execution keeps its last [`TASK_LOG_ATTEMPTS`] attempts (a task retried
//! forever cannot fill the disk). Stored without a flush of its own: the
//! step that records the attempt's result follows at once and its flush
//! covers the log; a crash in between loses that attempt's log, and the
//! attempt runs again anyway.

use std::sync::Arc;

/// The most of each text (stderr, stdout) kept per attempt: the end of it.
pub const TASK_LOG_BYTES: usize = 64 * 1024;

/// The most attempts whose logs one execution keeps (the latest ones).
pub const TASK_LOG_ATTEMPTS: u64 = 100;

/// What one attempt wrote, as the runner saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutput {
    pub stderr: Vec<u8>,
    /// Kept only when the attempt failed.
    pub stdout: Option<Vec<u8>>,
    /// The ASL error when the attempt failed.
    pub error: Option<String>,
    /// Whether either text was longer than what is kept.
    pub truncated: bool,
}

/// Where a runner leaves what an attempt wrote. Empty (`default`) for
/// calls whose output nobody keeps (benchmarks, TestState).
#[derive(Clone, Default)]
pub struct TaskLogSink(Option<Arc<dyn Fn(TaskOutput) + Send + Sync>>);

impl TaskLogSink {
    pub fn new(keep: impl Fn(TaskOutput) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(keep)))
    }

    pub fn keep(&self, output: TaskOutput) {
        if let Some(keep) = &self.0 {
            keep(output);
        }
    }
}

impl std::fmt::Debug for TaskLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TaskLogSink(kept)"
        } else {
            "TaskLogSink(none)"
        })
    }
}

/// The last `TASK_LOG_BYTES` of `bytes` as text (lossy UTF-8, cut on a
/// character boundary), and whether anything was dropped.
pub fn tail_text(bytes: &[u8]) -> (String, bool) {
    if bytes.len() <= TASK_LOG_BYTES {
        return (String::from_utf8_lossy(bytes).into_owned(), false);
    }
    let mut start = bytes.len() - TASK_LOG_BYTES;
    // Skip continuation bytes so the kept text starts on a character.
    while start < bytes.len() && (bytes[start] & 0xC0) == 0x80 {
        start += 1;
    }
    (String::from_utf8_lossy(&bytes[start..]).into_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_bounded_and_start_on_a_character() {
        let (short, cut) = tail_text(b"hello");
        assert_eq!((short.as_str(), cut), ("hello", false));
        let mut long = "é".repeat(TASK_LOG_BYTES);
        long.push_str("END");
        let (tail, cut) = tail_text(long.as_bytes());
        assert!(cut);
        assert!(tail.len() <= TASK_LOG_BYTES);
        assert!(tail.ends_with("END"));
        assert!(!tail.contains('\u{FFFD}'));
    }
}
