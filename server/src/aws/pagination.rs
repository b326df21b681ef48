//! Pagination tokens: opaque to clients and tamper-safe. A token carries the
//! offset of the next page and what it pages through, signed with a secret
//! drawn when the server starts (so tokens end with the process, as AWS's
//! expire).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Signs and checks tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    secret: [u8; 32],
}

/// The page size when a request gives no maxResults (AWS: 100 for
/// histories and lists), and the largest accepted (AWS: 1000).
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

impl Tokens {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    fn signature(&self, payload: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(payload.as_bytes());
        let digest = hasher.finalize();
        URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    /// A token for the page starting at `offset` of `scope` (the action and
    /// the resource it lists).
    pub fn issue(&self, scope: &str, offset: usize) -> String {
        let payload = format!("{offset}:{scope}");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            self.signature(&payload)
        )
    }

    /// The offset a token names, if it is ours and for `scope`.
    pub fn check(&self, scope: &str, token: &str) -> Option<usize> {
        let (payload, signature) = token.split_once('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if self.signature(&payload) != signature {
            return None;
        }
        let (offset, token_scope) = payload.split_once(':')?;
        (token_scope == scope).then_some(offset.parse().ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::Tokens;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let tokens = Tokens::new([7; 32]);
        let token = tokens.issue("history:arn", 200);
        assert_eq!(tokens.check("history:arn", &token), Some(200));
        assert_eq!(tokens.check("history:other", &token), None);
        let forged = Tokens::new([8; 32]).issue("history:arn", 0);
        assert_eq!(tokens.check("history:arn", &forged), None);
        let mut altered = token.clone();
        altered.replace_range(0..1, if token.starts_with('M') { "N" } else { "M" });
        assert_eq!(tokens.check("history:arn", &altered), None);
        assert_eq!(tokens.check("history:arn", "garbage"), None);
        assert_eq!(tokens.check("history:arn", ""), None);
    }
}
