//! Every execution's timers in one task: Waits, retry intervals, task
//! timeouts and heartbeats. A timer armed here is an entry in an ordered
//! map (a few dozen bytes), where a task per timer cost a tokio task each,
//! held for as long as the execution waits; one sleep serves the earliest.
//!
//! Timers are in memory only: the store keeps each timer's due time, and
//! recovery arms them again (see `durable.rs`).
//!
//! Due times are the engine's [`Clock`]'s: on the wall clock the task
//! sleeps until the earliest is due; on a [`ManualClock`] it waits for the
//! clock to be advanced, so a test moves a whole engine through hours of
//! Waits at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use stepline_language::clock::{Clock, ManualClock};
use tokio::sync::mpsc;

use super::executor::{Inbox, Message};
use super::metrics::Metrics;
use stepline_language::interp::{Command, TimerId};

/// An armed timer, to cancel it: its due time and a number that makes it
/// unique (and orders timers due at the same time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    due: DateTime<Utc>,
    seq: u64,
}

impl TimerKey {
    pub fn due(&self) -> DateTime<Utc> {
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
    pub fn start(clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        tokio::spawn(serve(receiver, clock, metrics));
        Self {
            requests,
            next: AtomicU64::new(0),
        }
    }

    /// Sends `TimerFired { timer }` to `inbox` when `due`.
    pub fn arm(&self, due: DateTime<Utc>, inbox: Inbox, timer: TimerId) -> TimerKey {
        self.arm_message(due, inbox, Message::Command(Command::TimerFired { timer }))
    }

    /// Sends `message` to `inbox` when `due`.
    pub fn arm_message(&self, due: DateTime<Utc>, inbox: Inbox, message: Message) -> TimerKey {
        let key = TimerKey {
            due,
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

async fn serve(
    mut requests: mpsc::UnboundedReceiver<Request>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
) {
    let mut timers: BTreeMap<TimerKey, (Inbox, Message)> = BTreeMap::new();
    loop {
        let now = clock.now();
        while let Some(entry) = timers.first_entry() {
            if entry.key().due > now {
                break;
            }
            let (inbox, message) = entry.remove();
            let _ = inbox.send(message);
        }
        metrics.set_timers_pending(timers.len());
        let earliest = timers.keys().next().map(|k| k.due);
        let request = tokio::select! {
            request = requests.recv() => request,
            () = until(&*clock, now, earliest) => continue,
        };
        match request {
            None => return,
            Some(Request::Arm {
                key,
                inbox,
                message,
            }) => {
                timers.insert(key, (inbox, message));
            }
            Some(Request::Cancel(key)) => {
                timers.remove(&key);
            }
        }
    }
}

/// Resolves when `due` may have come: on the wall clock after sleeping
/// the difference, on a manual clock when it moves past `now`. Never
/// without a `due`.
pub(crate) async fn until(clock: &dyn Clock, now: DateTime<Utc>, due: Option<DateTime<Utc>>) {
    let Some(due) = due else {
        return std::future::pending().await;
    };
    match clock.as_manual() {
        Some(manual) => moved(manual, now).await,
        None => tokio::time::sleep((due - now).to_std().unwrap_or(Duration::ZERO)).await,
    }
}

async fn moved(clock: &ManualClock, seen: DateTime<Utc>) {
    clock.moved_past(seen).await;
}
