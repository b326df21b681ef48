//! HMAC-SHA256 (RFC 2104) over sha2, for webhook signatures, and a
//! comparison that takes the same time whatever the bytes.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `signature` (`sha256=HEX` as GitHub sends it, or bare `HEX`, any
/// case) is the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let given = signature.trim();
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let expected = hex(&hmac_sha256(secret, body));
    constant_time_eq(given.to_ascii_lowercase().as_bytes(), expected.as_bytes())
}

/// Whether `a` and `b` are equal, in a time that depends only on their
/// lengths: every byte is compared whatever the first mismatch, so
/// secrets and signatures cannot be guessed byte by byte from timings.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test vectors 1, 2 and 6 (a key longer than a block).
    #[test]
    fn rfc_4231_vectors() {
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signatures_are_checked() {
        let sig = hex(&hmac_sha256(b"s3cret", b"{\"a\":1}"));
        assert!(verify(b"s3cret", b"{\"a\":1}", &sig));
        assert!(verify(b"s3cret", b"{\"a\":1}", &format!("sha256={sig}")));
        assert!(verify(b"s3cret", b"{\"a\":1}", &sig.to_uppercase()));
        assert!(!verify(b"s3cret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"s3cret", b"{\"a\":1}", &sig[..63]));
        assert!(!verify(b"s3cret", b"{\"a\":1}", ""));
    }
}
