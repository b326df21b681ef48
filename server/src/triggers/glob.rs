//! A small glob for file names: `*` (any run of characters), `?` (one
//! character), `[abc]`, `[a-z]` and `[!abc]` (one character of a set or not
//! of it); anything else matches itself. Matched against a file's name only,
//! never a path, so `*` cannot cross a `/`.

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point for the last `*`: linear
    // in practice, never exponential.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
                continue;
            }
            Some('[') => {
                if let Some((hit, next)) = class(&p, pi, n[ni]) {
                    if hit {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                } else if n[ni] == '[' {
                    // An unclosed `[` is itself.
                    pi += 1;
                    ni += 1;
                    continue;
                }
            }
            Some(&c) if c == n[ni] => {
                pi += 1;
                ni += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The class starting at `p[start] == '['`: whether `c` is in it and the
/// index after its `]`; `None` when it is not closed.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = matches!(p.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while let Some(&x) = p.get(i) {
        if x == ']' && !first {
            return Some((hit != negated, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&y| y != ']') {
            let y = p[i + 2];
            hit |= x <= c && c <= y;
            i += 3;
        } else {
            hit |= x == c;
            i += 1;
        }
    }
    None
}

/// Whether `pattern` is usable: not empty, no path separator.
pub fn check(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.contains('/') || pattern.len() > 255 {
        return Err(format!(
            "the glob '{pattern}' must be a file name pattern (1 to 255 characters, no '/')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        for (pattern, name, expected) in [
            ("*.csv", "orders.csv", true),
            ("*.csv", "orders.csv.part", false),
            ("*.csv", ".csv", true),
            ("*", "anything", true),
            ("order-??.csv", "order-12.csv", true),
            ("order-??.csv", "order-1.csv", false),
            ("[abc]*", "beta", true),
            ("[abc]*", "delta", false),
            ("[!.]*", ".hidden", false),
            ("[!.]*", "shown", true),
            ("data-[0-9][0-9].json", "data-42.json", true),
            ("data-[0-9][0-9].json", "data-4x.json", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*a*a*a*a*a*b", &"a".repeat(60), false),
            ("[", "[", true),
            ("exact.txt", "exact.txt", true),
            ("exact.txt", "exact.txt2", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(matches(pattern, name), expected, "{pattern} vs {name}");
        }
    }
}
