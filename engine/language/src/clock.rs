//! Where time comes from. Nothing in the engine reads the system clock
//! except [`WallClock`].

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// A source of the current time that can also wait.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Blocks until `due` (a manual clock jumps there at once).
    fn sleep_until(&self, due: DateTime<Utc>);
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, due: DateTime<Utc>) {
        if let Ok(wait) = (due - Utc::now()).to_std() {
            std::thread::sleep(wait);
        }
    }
}

/// A clock that only moves when told to, or when someone sleeps on it:
/// Wait states and retry intervals take no real time in tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, due: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if due > *now {
            *now = due;
        }
    }
}
