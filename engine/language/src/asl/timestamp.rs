//! ASL timestamps: RFC 3339 with an uppercase `T` and `Z`, as AWS requires
//! (for example `2016-03-14T01:59:00Z` or `2016-03-14T01:59:00.123+01:00`).

use chrono::{DateTime, FixedOffset};

/// Parses an ASL timestamp. chrono alone would also take a lowercase `t` or
/// `z` and a space between date and time, which AWS rejects.
pub fn parse(s: &str) -> Option<DateTime<FixedOffset>> {
    let bytes = s.as_bytes();
    if bytes.len() < 20 || bytes.get(10) != Some(&b'T') || s.contains(['t', 'z', ' ']) {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// Why `s` is not an ASL timestamp, in words a person can act on.
pub fn problem(s: &str) -> String {
    let fix = "write it as RFC 3339 with an uppercase T and a time zone, for example 2026-01-31T09:30:00Z";
    let upper = s.replacen(' ', "T", 1).to_uppercase();
    if parse(&upper).is_some() {
        return format!(
            "'{s}' is not a timestamp as ASL requires: {fix} (uppercase T and Z, no space)"
        );
    }
    if parse(&format!("{upper}Z")).is_some() {
        return format!("'{s}' has no time zone: add Z (UTC) or an offset such as +01:00");
    }
    format!("'{s}' is not a timestamp: {fix}")
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_what_aws_accepts() {
        for ok in [
            "2016-03-14T01:59:00Z",
            "2016-03-14T01:59:00.123Z",
            "2016-03-14T01:59:00+01:00",
            "2016-03-14T01:59:00.5-07:30",
        ] {
            assert!(parse(ok).is_some(), "{ok}");
        }
    }

    #[test]
    fn problems_say_what_to_change() {
        assert!(super::problem("2026-03-14T01:59:00").contains("no time zone"));
        assert!(super::problem("2026-03-14 01:59:00Z").contains("no space"));
        assert!(super::problem("soon").starts_with("'soon' is not a timestamp: write"));
    }

    #[test]
    fn rejects_lowercase_spaces_and_partial_forms() {
        for bad in [
            "2016-03-14t01:59:00Z",
            "2016-03-14T01:59:00z",
            "2016-03-14 01:59:00Z",
            "2016-03-14T01:59:00",
            "2016-03-14",
            "2016-13-14T01:59:00Z",
            "yesterday",
            "",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
