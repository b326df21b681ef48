//! The bounds an execution keeps (DESIGN.md, principle 7): how large and
//! how deep a payload may be, how long a history may grow. A bound
//! exceeded is an ASL error as data (States.DataLimitExceeded,
//! States.Runtime), never a crash and never a silent truncation.

use serde_json::Value;

use super::failure::Failure;
use crate::cause;
use crate::payload::{MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, json_size, nests_deeper_than};

/// The most events an execution's history holds, as AWS. The check runs
/// between two steps of a branch, so a history can pass it by the few
/// events of one step before the execution fails.
pub const MAX_HISTORY_EVENTS: usize = 25_000;

/// States.DataLimitExceeded when `value` is larger than 256 KiB as
/// compact JSON, or nests too deep (see [`check_depth`]). `name` is what
/// AWS names in the cause: the state, or the resource of a task's result.
pub(super) fn check_size(value: &Value, name: &dyn std::fmt::Display) -> Result<(), Failure> {
    let size = json_size(value, MAX_PAYLOAD_BYTES + 1);
    if size > MAX_PAYLOAD_BYTES {
        return Err(cause::DATA_LIMIT.failure(&[("name", name)]));
    }
    check_depth(value, name)
}

/// States.DataLimitExceeded when `value` nests deeper than
/// [`MAX_PAYLOAD_DEPTH`].
pub(super) fn check_depth(value: &Value, name: &dyn std::fmt::Display) -> Result<(), Failure> {
    if nests_deeper_than(value, MAX_PAYLOAD_DEPTH) {
        return Err(cause::DEPTH_LIMIT.failure(&[("name", name), ("depth", &MAX_PAYLOAD_DEPTH)]));
    }
    Ok(())
}
