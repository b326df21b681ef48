//! Every execution's timers in one task: Waits, retry intervals, task
//! timeouts and heartbeats. A timer armed here is an entry in an ordered
//! map (a few dozen bytes), where a task per timer cost a tokio task each,
//! held for as long as the execution waits; one sleep serves the earliest.
//!
//! Timers are in memory only: the store keeps each timer's due time, and
//! recovery arms them again (see `durable.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::executor::{Inbox, Message};
use super::metrics::Metrics;
use stepline_language::interp::{Command, TimerId};

/// An armed timer, to cancel it: its due instant and a number that makes
/// it unique (and orders timers due at the same instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    due: Instant,
    seq: u64,
}

impl TimerKey {
    pub fn due(&self) -> Instant {
        self.due
    }
}

enum Request {
    Arm {
        key: TimerKey,
        inbox: Inbox,
        message: Message,
    },
    Cancel(TimerKey),
}

/// The handle executions arm and cancel timers through.
pub(crate) struct TimerService {
    requests: mpsc::UnboundedSender<Request>,
    next: AtomicU64,
}

impl TimerService {
    /// Starts the timer task, which keeps `metrics`' timer queue depth.
    /// Must be called inside a tokio runtime.
    pub fn start(metrics: Arc<Metrics>) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        tokio::spawn(serve(receiver, metrics));
        Self {
            requests,
            next: AtomicU64::new(0),
        }
    }

    /// Sends `TimerFired { timer }` to `inbox` after `wait`.
    pub fn arm(&self, wait: Duration, inbox: Inbox, timer: TimerId) -> TimerKey {
        self.arm_message(wait, inbox, Message::Command(Command::TimerFired { timer }))
    }

    /// Sends `message` to `inbox` after `wait`.
    pub fn arm_message(&self, wait: Duration, inbox: Inbox, message: Message) -> TimerKey {
        let key = TimerKey {
            due: Instant::now() + wait,
            seq: self.next.fetch_add(1, Ordering::Relaxed),
        };
        // The task ends only with the runtime; a send that fails then
        // concerns a timer nobody will wait for.
        let _ = self.requests.send(Request::Arm {
            key,
            inbox,
            message,
        });
        key
    }

    /// Disarms a timer; nothing happens if it already fired.
    pub fn cancel(&self, key: TimerKey) {
        let _ = self.requests.send(Request::Cancel(key));
    }
}

async fn serve(mut requests: mpsc::UnboundedReceiver<Request>, metrics: Arc<Metrics>) {
    let mut timers: BTreeMap<TimerKey, (Inbox, Message)> = BTreeMap::new();
    // One sleep, moved to the earliest due time whenever that changes.
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    loop {
        let earliest = timers.keys().next().map(|k| k.due);
        if let Some(due) = earliest {
            if sleep.deadline() != due {
                sleep.as_mut().reset(due);
            }
        }
        tokio::select! {
            request = requests.recv() => match request {
                None => return,
                Some(Request::Arm { key, inbox, message }) => {
                    timers.insert(key, (inbox, message));
                }
                Some(Request::Cancel(key)) => {
                    timers.remove(&key);
                }
            },
            () = &mut sleep, if earliest.is_some() => {
                let now = Instant::now();
                while let Some(entry) = timers.first_entry() {
                    if entry.key().due > now {
                        break;
                    }
                    let (inbox, message) = entry.remove();
                    let _ = inbox.send(message);
                }
            }
        }
        metrics.set_timers_pending(timers.len());
    }
}
