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

    /// A token for the page after `cursor` (a store's listing cursor as
    /// text) of `scope`: the cursor and a signature over the scope and
    /// the cursor, so the token stays short (AWS bounds nextToken at 1024
    /// characters) and names its list without carrying it.
    pub fn issue_cursor(&self, scope: &str, cursor: &str) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(cursor.as_bytes()),
            self.signature(&cursor_payload(scope, cursor))
        )
    }

    /// The cursor a token of [`Tokens::issue_cursor`] names, if it is
    /// ours and for `scope`.
    pub fn check_cursor(&self, scope: &str, token: &str) -> Option<String> {
        let (cursor, signature) = token.split_once('.')?;
        let cursor = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        (self.signature(&cursor_payload(scope, &cursor)) == signature).then_some(cursor)
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

    /// The page of `items` that starts where `token` (if any) says, at
    /// most `size` long, and the token of the next page when there is
    /// one. `None` when the token is not one of ours for `scope`.
    pub fn page<T>(
        &self,
        scope: &str,
        token: Option<&str>,
        size: usize,
        items: Vec<T>,
    ) -> Option<(Vec<T>, Option<String>)> {
        let start = match token {
            None => 0,
            Some(token) => self.check(scope, token)?,
        };
        let total = items.len();
        let end = start.saturating_add(size).min(total);
        let next = (end < total).then(|| self.issue(scope, end));
        let page = items
            .into_iter()
            .skip(start)
            .take(end.saturating_sub(start))
            .collect();
        Some((page, next))
    }
}

/// What a cursor token signs; the `cursor` prefix keeps it apart from an
/// offset token's payload (`OFFSET:SCOPE`).
fn cursor_payload(scope: &str, cursor: &str) -> String {
    format!("cursor\0{scope}\0{cursor}")
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

    #[test]
    fn cursor_tokens_round_trip_and_refuse_tampering() {
        let tokens = Tokens::new([7; 32]);
        let cursor = "1767225600000000000 arn:aws:states:us-east-1:1:execution:m:e";
        let token = tokens.issue_cursor("list:m", cursor);
        assert_eq!(
            tokens.check_cursor("list:m", &token).as_deref(),
            Some(cursor)
        );
        assert_eq!(tokens.check_cursor("list:n", &token), None);
        let forged = Tokens::new([8; 32]).issue_cursor("list:m", cursor);
        assert_eq!(tokens.check_cursor("list:m", &forged), None);
        let other = tokens.issue_cursor("list:m", "1 arn:other");
        let (_, signature) = other.split_once('.').unwrap();
        let (cursor_part, _) = token.split_once('.').unwrap();
        let spliced = format!("{cursor_part}.{signature}");
        assert_eq!(tokens.check_cursor("list:m", &spliced), None);
        // Neither kind of token passes for the other.
        assert_eq!(tokens.check("list:m", &token), None);
        let offset = tokens.issue("list:m", 5);
        assert_eq!(tokens.check_cursor("list:m", &offset), None);
    }
}
