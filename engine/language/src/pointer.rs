//! JSON pointers (RFC 6901): how a diagnostic, a template error or a
//! JSONata expression's place in a definition is named.

/// Splits a pointer into unescaped tokens.
pub fn pointer_tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
}

/// Appends one token to `pointer`, escaped (`~` as `~0`, `/` as `~1`).
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.reserve(token.len() + 1);
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `pointer` with one more token, escaped.
pub fn pointer_push(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    push_token(&mut out, token);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_escaped_and_read_back() {
        let pointer = pointer_push("/a", "b/c~d");
        assert_eq!(pointer, "/a/b~1c~0d");
        assert_eq!(pointer_tokens(&pointer).collect::<Vec<_>>(), ["a", "b/c~d"]);
    }
}
