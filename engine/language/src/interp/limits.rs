//! The bounds an execution keeps (DESIGN.md, principle 7): how large and
//! how deep a payload may be, how long a history may grow. A bound
//! exceeded is an ASL error as data (States.DataLimitExceeded,
//! States.Runtime), never a crash and never a silent truncation.

use serde_json::Value;

use super::failure::Failure;
use crate::payload::{MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, json_size, nests_deeper_than};

/// The most events an execution's history holds, as AWS. The check runs
/// between two steps of a branch, so a history can pass it by the few
/// events of one step before the execution fails.
pub const MAX_HISTORY_EVENTS: usize = 25_000;

/// States.DataLimitExceeded when `value` is larger than 256 KiB as
/// compact JSON, or nests too deep (see [`check_depth`]). `what` names it, and is only formatted on failure.
pub(super) fn check_size(value: &Value, what: impl std::fmt::Display) -> Result<(), Failure> {
    let size = json_size(value, MAX_PAYLOAD_BYTES + 1);
    if size > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            "States.DataLimitExceeded",
            format!(
                "The state/task returned a result with a size exceeding the maximum number of bytes service limit: {what} is larger than {MAX_PAYLOAD_BYTES} bytes."
            ),
        ));
    }
    check_depth(value, what)
}

/// States.DataLimitExceeded when `value` nests deeper than
/// [`MAX_PAYLOAD_DEPTH`].
pub(super) fn check_depth(value: &Value, what: impl std::fmt::Display) -> Result<(), Failure> {
    if nests_deeper_than(value, MAX_PAYLOAD_DEPTH) {
        return Err(Failure::new(
            "States.DataLimitExceeded",
            format!(
                "The state/task returned a result nested deeper than the service limit: {what} nests arrays and objects more than {MAX_PAYLOAD_DEPTH} levels deep."
            ),
        ));
    }
    Ok(())
}

/// Names a state's payload in a message without formatting it up front.
pub(super) struct PayloadOf<'a>(pub &'static str, pub &'a str);

impl std::fmt::Display for PayloadOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} of the state '{}'", self.0, self.1)
    }
}
