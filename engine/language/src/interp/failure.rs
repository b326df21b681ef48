//! ASL errors as values: what failed, whether a Retry or Catch matches it,
//! and how long a retrier waits.

use serde_json::{Value, json};

use crate::asl::model::{JitterStrategy, Retrier};
use crate::query::eval::{EvalError, RandomSource};

/// An ASL error: a name (`States.Timeout`, `MyError`) and an optional cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            cause: Some(cause.into()),
        }
    }

    /// The error name used for matching; an unnamed failure matches only
    /// States.ALL.
    pub fn name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// `{"Error": ..., "Cause": ...}`, the value a Catch passes on.
    pub fn to_output(&self) -> Value {
        let mut out = serde_json::Map::new();
        if let Some(error) = &self.error {
            out.insert("Error".into(), json!(error));
        }
        if let Some(cause) = &self.cause {
            out.insert("Cause".into(), json!(cause));
        }
        Value::Object(out)
    }

    /// Errors no Retry or Catch can handle: the execution fails at once.
    pub fn is_terminal(&self) -> bool {
        matches!(self.name(), "States.Runtime" | "States.DataLimitExceeded")
    }
}

impl From<EvalError> for Failure {
    fn from(e: EvalError) -> Self {
        Failure {
            error: Some(e.error),
            cause: Some(e.cause),
        }
    }
}

/// Whether an ErrorEquals list matches `failure`, with AWS's wildcards:
/// States.ALL matches everything but the terminal errors, States.TaskFailed
/// everything but States.Timeout and the terminal errors.
pub fn matches(error_equals: &[String], failure: &Failure) -> bool {
    let name = failure.name();
    error_equals.iter().any(|e| match e.as_str() {
        "States.ALL" => !failure.is_terminal(),
        "States.TaskFailed" => {
            name == "States.TaskFailed" || (!failure.is_terminal() && name != "States.Timeout")
        }
        other => other == name,
    })
}

/// The wait before retry number `attempt` (0-based) in milliseconds:
/// IntervalSeconds x BackoffRate^attempt, capped by MaxDelaySeconds, and
/// with FULL jitter a uniform draw between 0 and that.
pub fn retry_delay_ms(retrier: &Retrier, attempt: u32, random: &mut dyn RandomSource) -> u64 {
    let base = retrier.interval_seconds as f64 * retrier.backoff_rate.powi(attempt as i32);
    let capped = match retrier.max_delay_seconds {
        Some(max) => base.min(max as f64),
        None => base,
    };
    let ms = (capped * 1000.0).min(u64::MAX as f64 / 2.0);
    let ms = ms as u64;
    match retrier.jitter_strategy {
        JitterStrategy::None => ms,
        JitterStrategy::Full if ms == 0 => 0,
        JitterStrategy::Full => random.next_u64() % (ms + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::eval::SplitMix64;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_follow_the_aws_rules() {
        let timeout = Failure::new("States.Timeout", "");
        let custom = Failure::new("MyError", "");
        let runtime = Failure::new("States.Runtime", "");
        let limit = Failure::new("States.DataLimitExceeded", "");
        assert!(matches(&names(&["States.ALL"]), &timeout));
        assert!(matches(&names(&["States.ALL"]), &custom));
        assert!(!matches(&names(&["States.ALL"]), &runtime));
        assert!(!matches(&names(&["States.ALL"]), &limit));
        assert!(matches(&names(&["States.TaskFailed"]), &custom));
        assert!(!matches(&names(&["States.TaskFailed"]), &timeout));
        assert!(matches(&names(&["Other", "MyError"]), &custom));
        assert!(!matches(&names(&["myerror"]), &custom));
        assert!(matches(
            &names(&["States.ALL"]),
            &Failure {
                error: None,
                cause: None
            }
        ));
    }

    fn retrier(
        interval: u64,
        rate: f64,
        max_delay: Option<u64>,
        jitter: JitterStrategy,
    ) -> Retrier {
        Retrier {
            error_equals: names(&["States.ALL"]),
            interval_seconds: interval,
            max_attempts: 5,
            backoff_rate: rate,
            max_delay_seconds: max_delay,
            jitter_strategy: jitter,
        }
    }

    #[test]
    fn delays_grow_by_the_backoff_rate_and_stop_at_the_cap() {
        let mut random = SplitMix64(1);
        let r = retrier(3, 2.0, None, JitterStrategy::None);
        let delays: Vec<u64> = (0..4).map(|a| retry_delay_ms(&r, a, &mut random)).collect();
        assert_eq!(delays, [3000, 6000, 12000, 24000]);
        let capped = retrier(3, 2.0, Some(10), JitterStrategy::None);
        assert_eq!(retry_delay_ms(&capped, 3, &mut random), 10_000);
        let half = retrier(1, 1.5, None, JitterStrategy::None);
        assert_eq!(retry_delay_ms(&half, 1, &mut random), 1500);
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_delay() {
        let mut random = SplitMix64(7);
        let r = retrier(2, 2.0, None, JitterStrategy::Full);
        for attempt in 0..5 {
            let d = retry_delay_ms(&r, attempt, &mut random);
            assert!(d <= 2000 * 2u64.pow(attempt));
        }
    }
}
