//! Randomness from the operating system, for what must never repeat, even
//! across restarts: task-token secrets and EXPRESS execution ids. (What the
//! interpreter draws is seeded and recorded instead, so replay repeats it.)

/// The operating system gave no random bytes.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system")]
pub struct NoEntropy(#[source] getrandom::Error);

/// Two random 64-bit words.
pub fn random_words() -> Result<[u64; 2], NoEntropy> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(NoEntropy)?;
    let (high, low) = bytes.split_at(8);
    Ok([high, low].map(|half| u64::from_be_bytes(half.try_into().unwrap_or_default())))
}

/// A fresh secret for a new execution's task tokens: 256 bits, as hex.
pub fn token_secret() -> Result<String, NoEntropy> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NoEntropy)?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Not `format!` per byte: this runs for every execution started.
    Ok(bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ() {
        let (a, b) = (token_secret().unwrap(), token_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
