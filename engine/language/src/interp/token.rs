//! Task tokens: what a callback (`.waitForTaskToken`) or an activity worker
//! hands back to say which task it answers.
//!
//! A token is `SHA-256(secret / task id)` in unpadded base64url: 256 bits
//! nobody can guess without the execution's secret (drawn from the
//! operating system when the execution starts, stored with its record,
//! never shown). The interpreter mints it (a pure function of recorded
//! data, so replay gives the same token) and the store maps it back to its
//! execution and task for as long as the task can still be answered.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::interp::TaskId;

/// Length of every token stepline mints.
pub const TOKEN_LEN: usize = 43;

/// The token of `task` in the execution whose secret is `secret`.
pub fn mint(secret: &str, task: TaskId) -> String {
    let mut hash = Sha256::new();
    hash.update(secret.as_bytes());
    hash.update(b"/");
    hash.update(task.0.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// Whether `token` has the shape of a token stepline mints (an answer with
/// anything else is `InvalidToken`, not `TaskDoesNotExist`).
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_distinct_and_well_formed() {
        let a = mint("secret", TaskId(1));
        assert_eq!(a, mint("secret", TaskId(1)));
        assert_ne!(a, mint("secret", TaskId(2)));
        assert_ne!(a, mint("other", TaskId(1)));
        assert!(is_well_formed(&a), "{a}");
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&format!("{}!", &a[1..])));
    }
}
