//! Where time comes from. Nothing in stepline reads the system clock
//! except [`WallClock`]: the engine's timers, its dates, the triggers and
//! the in-process driver all ask a [`Clock`], so a [`ManualClock`] drives
//! a whole engine through hours of Waits in no time at all.

use std::future::Future;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// The clock as a [`ManualClock`], if it is one. Time on such a clock
    /// moves only when it is advanced, so a waiter waits for that instead
    /// of for real time to pass.
    fn as_manual(&self) -> Option<&ManualClock> {
        None
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: Wait states and retry intervals
/// take no real time in tests.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<Manual>,
}

#[derive(Debug)]
struct Manual {
    now: DateTime<Utc>,
    /// Who waits for the clock to move.
    waiting: Vec<Waker>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(Manual {
                now: start,
                waiting: Vec::new(),
            }),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now() + by;
        self.advance_to(now);
    }

    /// Moves the clock to `to` (never back) and wakes whoever waits on it.
    pub fn advance_to(&self, to: DateTime<Utc>) {
        let waiting = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if to <= state.now {
                return;
            }
            state.now = to;
            std::mem::take(&mut state.waiting)
        };
        for waker in waiting {
            waker.wake();
        }
    }

    /// Resolves once the clock shows a time after `seen`.
    pub fn moved_past(&self, seen: DateTime<Utc>) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(move |cx| {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.now > seen {
                return Poll::Ready(());
            }
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).now
    }

    fn as_manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}

/// Waits, blocking the thread, until `clock` shows `due`: a manual clock
/// is moved there at once. For the in-process driver, which runs one
/// execution on a thread of its own.
pub fn block_until(clock: &dyn Clock, due: DateTime<Utc>) {
    match clock.as_manual() {
        Some(manual) => manual.advance_to(due),
        None => {
            if let Ok(wait) = (due - clock.now()).to_std() {
                std::thread::sleep(wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake};

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_manual_clock_wakes_its_waiters_when_it_moves_forward() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = ManualClock::new(start);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let mut moved = pin!(clock.moved_past(start));
        assert!(moved.as_mut().poll(&mut cx).is_pending());
        clock.advance_to(start);
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "not moved: nobody woken");
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(moved.as_mut().poll(&mut cx).is_ready());
        block_until(&clock, start + chrono::Duration::hours(1));
        assert_eq!(clock.now(), start + chrono::Duration::hours(1));
    }
}
