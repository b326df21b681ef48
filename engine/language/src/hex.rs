//! Hexadecimal digits as JSON, JavaScript and URIs read them: digits only.
//! `from_str_radix` also takes a leading `+`, which would let `"\u+041"`
//! or `%+1` through where every reference implementation refuses them.

/// The value of `digits` when each is a hexadecimal digit (and there is at
/// least one, at most eight).
pub(crate) fn hex_value(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::hex_value;

    #[test]
    fn only_digits_are_read() {
        assert_eq!(hex_value("002e"), Some(0x2e));
        assert_eq!(hex_value("FFFF"), Some(0xffff));
        assert_eq!(hex_value("+02e"), None);
        assert_eq!(hex_value("-02e"), None);
        assert_eq!(hex_value(""), None);
        assert_eq!(hex_value("00 2"), None);
    }
}
