//! The limits every payload obeys: state input and output, task results,
//! variables, an execution's input and output. The interpreter, the query
//! evaluators and the runtime all measure against these.

use serde_json::Value;

/// Largest payload (state input or output) in bytes, as AWS: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// How many arrays and objects deep a payload (an execution's input, a
/// state's input, output or result, assigned variables) may nest. AWS
/// documents no bound; stepline keeps one so that every payload it stores
/// can be read back (its JSON reader refuses more than 128 levels, and a
/// stored record wraps a payload in a few) and every walk over one stays
/// within the stack.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// The length of a number as JSON text, without formatting integers.
fn number_len(n: &serde_json::Number) -> usize {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => u.checked_ilog10().map_or(1, |d| d as usize + 1),
        (None, Some(i)) => {
            i.unsigned_abs()
                .checked_ilog10()
                .map_or(1, |d| d as usize + 1)
                + 1
        }
        _ => n.to_string().len(),
    }
}

/// The length of a string as JSON text: quoted, with serde_json's escapes.
fn string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Whether `value` nests arrays and objects more than `limit` levels
/// deep, looking no deeper than that (so the walk's own recursion is
/// bounded).
pub fn nests_deeper_than(value: &Value, limit: usize) -> bool {
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(|v| nests_deeper_than(v, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|v| nests_deeper_than(v, limit - 1)),
        _ => false,
    }
}

/// The size of `value` as compact JSON, counting no further than `limit`.
pub fn json_size(value: &Value, limit: usize) -> usize {
    fn walk(value: &Value, total: &mut usize, limit: usize) {
        if *total > limit {
            return;
        }
        match value {
            Value::Null => *total += 4,
            Value::Bool(b) => *total += if *b { 4 } else { 5 },
            Value::Number(n) => *total += number_len(n),
            Value::String(s) => *total += string_len(s),
            Value::Array(items) => {
                *total += 2 + items.len().saturating_sub(1);
                for item in items {
                    walk(item, total, limit);
                }
            }
            Value::Object(map) => {
                *total += 2 + map.len().saturating_sub(1);
                for (k, v) in map {
                    *total += string_len(k) + 1;
                    walk(v, total, limit);
                }
            }
        }
    }
    let mut total = 0;
    walk(value, &mut total, limit);
    total
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json_size;

    #[test]
    fn json_size_is_the_length_of_compact_json() {
        for value in [
            json!(null),
            json!(0),
            json!(9),
            json!(10),
            json!(-1),
            json!(-10),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!("é\"x"),
            json!("tab\t, line\n, bell\u{7}, back\\slash"),
            json!({"a\"b": "\u{1f}"}),
            json!([1, [2, {"a": true}], false]),
            json!({"k": {"nested": [null, "s"]}, "n": -42}),
            json!({}),
            json!([]),
        ] {
            let text = serde_json::to_string(&value).expect("serialise");
            assert_eq!(json_size(&value, usize::MAX), text.len(), "{text}");
        }
    }
}
