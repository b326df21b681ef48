//! Where `stepline serve` writes its log lines: stderr, through a buffer
//! that a thread of its own writes out.
//!
//! Why: every execution logs two lines (`execution started`, `execution
//! ended`), and writing each to stderr as it is made was a write(2) per
//! line on the thread running the execution, about 6 % of the server's
//! CPU under a load of EXPRESS starts. Lines are appended to a shared
//! buffer instead; the writer thread wakes when the first arrives, lets
//! more gather for a few milliseconds and writes them all at once, so
//! under load one write (and one wake-up) carries many lines. Order is kept (one buffer, one
//! writer). Bounded: past [`LIMIT`] bytes waiting, a logging thread waits
//! for the writer rather than letting the buffer grow. `flush` (at
//! shutdown) waits until everything was written; what a `kill -9` finds in
//! the buffer (lines of the last moment) is lost.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Bytes of lines waiting past which loggers wait for the writer.
const LIMIT: usize = 1024 * 1024;

/// How long the writer lets lines gather after the first one arrives.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The writer has taken a batch it has not finished writing.
    writing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Lines arrived (the writer waits on it).
    arrived: Condvar,
    /// A batch was written (full loggers and `flush` wait on it).
    written: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A `MakeWriter` for tracing-subscriber: cheap to clone, one writer
/// thread per `spawn`.
#[derive(Debug, Clone)]
pub struct LogLines {
    shared: Arc<Shared>,
}

impl LogLines {
    /// Starts the writer thread, writing to `out`.
    pub fn spawn(mut out: impl Write + Send + 'static) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("stepline-log".into())
            .spawn(move || {
                loop {
                    {
                        let mut pending = writer.lock();
                        while pending.bytes.is_empty() {
                            pending = writer
                                .arrived
                                .wait(pending)
                                .unwrap_or_else(|e| e.into_inner());
                        }
                        pending.writing = true;
                    }
                    // Lines come in bursts: gathering them for a moment
                    // makes one write (and one wake-up) of many.
                    std::thread::sleep(GATHER);
                    let batch = std::mem::take(&mut writer.lock().bytes);
                    // Nowhere to report a failed write of the log itself.
                    let _ = out.write_all(&batch);
                    let _ = out.flush();
                    writer.lock().writing = false;
                    writer.written.notify_all();
                }
            })?;
        Ok(Self { shared })
    }

    /// Waits until every line given so far was written.
    pub fn flush(&self) {
        let mut pending = self.shared.lock();
        while !pending.bytes.is_empty() || pending.writing {
            pending = self
                .shared
                .written
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        while pending.bytes.len() > LIMIT {
            pending = self
                .shared
                .written
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(buf);
        drop(pending);
        if was_empty {
            self.shared.arrived.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogLines {
    type Writer = LogLines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_from_many_threads_are_written_whole_and_in_order_per_thread() {
        let sink = Sink::default();
        let lines = LogLines::spawn(sink.clone()).expect("spawn");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut lines = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        // Long enough that the bound is reached now and then.
                        let line = format!("{t} {i} {}\n", "x".repeat(1000));
                        lines.write_all(line.as_bytes()).expect("write");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("join");
        }
        lines.flush();
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut parts = line.split(' ');
            let t: usize = parts.next().and_then(|p| p.parse().ok()).expect("thread");
            let i: usize = parts.next().and_then(|p| p.parse().ok()).expect("index");
            assert_eq!(parts.next().map(str::len), Some(1000), "a whole line");
            assert_eq!(i, next[t], "thread {t}'s lines in order");
            next[t] += 1;
        }
        assert_eq!(next, [2000; 4], "every line written");
    }
}
