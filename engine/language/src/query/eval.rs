//! What evaluation needs from the interpreter, and how it fails.
//!
//! Paths, payload templates and intrinsic calls are evaluated against an
//! [`Env`]: the state's input (`$`), the context object (`$$`), the visible
//! variables (`$name`) and a source of randomness (States.UUID,
//! States.MathRandom) that the interpreter seeds and records, so replay is
//! deterministic. Failures are ASL errors as data ([`EvalError`]), never
//! panics.

use serde_json::Value;

/// Deterministic randomness, provided by the interpreter.
pub trait RandomSource {
    fn next_u64(&mut self) -> u64;
}

/// Variables visible to a state: its own scope, then enclosing ones.
pub trait Variables {
    fn get(&self, name: &str) -> Option<&Value>;
}

impl Variables for serde_json::Map<String, Value> {
    fn get(&self, name: &str) -> Option<&Value> {
        serde_json::Map::get(self, name)
    }
}

/// The roots a path can start from, and randomness for intrinsics.
pub struct Env<'a> {
    /// `$`: the value the field is evaluated against.
    pub input: &'a Value,
    /// `$$`: the context object.
    pub context: &'a Value,
    /// `$name`.
    pub variables: &'a dyn Variables,
    pub random: &'a mut dyn RandomSource,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("input", self.input)
            .field("context", self.context)
            .finish_non_exhaustive()
    }
}

/// An ASL error raised while evaluating: `error` is the ASL error name
/// (`States.Runtime`, `States.IntrinsicFailure`...), `cause` AWS's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct EvalError {
    pub error: String,
    pub cause: String,
}

impl EvalError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new("States.Runtime", cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self::new("States.IntrinsicFailure", cause)
    }
}

/// A small, fast, seedable generator (SplitMix64): enough for UUIDs and
/// MathRandom, and its whole state is one number to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// 128 random bits (`high`, then `low`) written as a version 4 UUID:
/// lowercase and hyphenated, with the version and variant bits set.
/// States.UUID, JSONata's `$uuid()`, Map Run ids and execution names all
/// come from here, so replay and every face write the same text.
pub fn uuid_v4(high: u64, low: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        ((low >> 48) & 0x3fff) | 0x8000,
        low & 0xffff_ffff_ffff
    )
}

/// The lowercase hex digest of `data`'s UTF-8 bytes with `algorithm`
/// (`MD5`, `SHA-1`, `SHA-256`, `SHA-384` or `SHA-512`): States.Hash and
/// JSONata's `$hash`. `None` for another algorithm.
pub fn hex_digest(data: &str, algorithm: &str) -> Option<String> {
    use sha2::Digest as _;
    let bytes = data.as_bytes();
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        _ => return None,
    };
    const HEX: &[u8; 16] = b"0123456789abcdef";
    Some(
        digest
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            .map(char::from)
            .collect(),
    )
}
