//! JSONata tokens. The lexer is driven by the parser, which says whether a
//! prefix is expected: only then does `/` start a regular expression.

use super::error::JErr;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An operator or punctuation: `.`, `[`, `:=`, `~>`, `and`...
    Op(&'static str),
    Str(String),
    Num(f64),
    /// `true`, `false`, `null`.
    Value(Lit),
    /// A field name (plain or in backquotes).
    Name(String),
    /// `$name` (the text after `$`; empty for `$`, `$` for `$$`).
    Var(String),
    Regex {
        pattern: String,
        flags: String,
    },
    End,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Lit {
    True,
    False,
    Null,
}

const OPERATORS: &[&str] = &[
    "..", ":=", "!=", "<=", ">=", "~>", "**", ".", "[", "]", "{", "}", "(", ")", ",", "@", "#",
    ";", ":", "?", "+", "-", "*", "/", "%", "|", "=", "<", ">", "^", "&",
];

pub(super) struct Lexer<'s> {
    src: &'s str,
    pub pos: usize,
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Self {
        Self { src, pos: 0 }
    }

    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn skip_space(&mut self) -> Result<(), JErr> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if let Some(comment) = trimmed.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(end) => self.pos += end + 4,
                    None => return Err(JErr::at("S0106", "Comment has no closing tag", self.pos)),
                }
            } else {
                return Ok(());
            }
        }
    }

    /// The next token and where it starts.
    pub fn next(&mut self, prefix: bool) -> Result<(Tok, usize), JErr> {
        self.skip_space()?;
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok((Tok::End, start));
        };
        if prefix && c == '/' {
            return self.regex(start);
        }
        if c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit()) {
            // JSONata has no leading-dot numbers: `.5` is a path step.
        }
        if c == '"' || c == '\'' {
            return self.string(c, start);
        }
        if c.is_ascii_digit() {
            return self.number(start);
        }
        if c == '`' {
            let body = &rest[1..];
            return match body.find('`') {
                Some(end) => {
                    self.pos += end + 2;
                    Ok((Tok::Name(body[..end].to_owned()), start))
                }
                None => Err(JErr::at(
                    "S0105",
                    "Quoted property name must be terminated with a backquote (`)",
                    start,
                )),
            };
        }
        for op in OPERATORS {
            if rest.starts_with(op) {
                // `..` before a digit is still the range operator.
                self.pos += op.len();
                return Ok((Tok::Op(op), start));
            }
        }
        if c == '$' {
            let name_len = name_length(&rest[1..]);
            let name = &rest[1..1 + name_len];
            if name_len == 0 && rest[1..].starts_with('$') {
                self.pos += 2;
                return Ok((Tok::Var("$".into()), start));
            }
            self.pos += 1 + name_len;
            return Ok((Tok::Var(name.to_owned()), start));
        }
        if c == '!' {
            return Err(JErr::at("S0204", "Unknown operator: \"!\"", start));
        }
        let len = name_length(rest);
        if len == 0 {
            return Err(JErr::at(
                "S0204",
                format!("Unknown operator: \"{c}\""),
                start,
            ));
        }
        let word = &rest[..len];
        self.pos += len;
        let tok = match word {
            "and" => Tok::Op("and"),
            "or" => Tok::Op("or"),
            "in" => Tok::Op("in"),
            "true" => Tok::Value(Lit::True),
            "false" => Tok::Value(Lit::False),
            "null" => Tok::Value(Lit::Null),
            _ => Tok::Name(word.to_owned()),
        };
        Ok((tok, start))
    }

    fn regex(&mut self, start: usize) -> Result<(Tok, usize), JErr> {
        let body = &self.rest()[1..];
        let mut depth = 0i32;
        let mut escaped = false;
        let mut end = None;
        for (i, ch) in body.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match ch {
                '\\' => escaped = true,
                '[' => depth += 1,
                ']' if depth > 0 => depth -= 1,
                '/' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return Err(JErr::at(
                "S0302",
                "No terminating / in regular expression",
                start,
            ));
        };
        let pattern = body[..end].to_owned();
        if pattern.is_empty() {
            return Err(JErr::at(
                "S0301",
                "Empty regular expressions are not allowed",
                start,
            ));
        }
        let after = &body[end + 1..];
        let flags_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let flags = after[..flags_len].to_owned();
        self.pos += 1 + end + 1 + flags_len;
        Ok((Tok::Regex { pattern, flags }, start))
    }

    fn string(&mut self, quote: char, start: usize) -> Result<(Tok, usize), JErr> {
        let body = &self.rest()[1..];
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, ch)) = chars.next() {
            if ch == quote {
                self.pos += 1 + i + 1;
                return Ok((Tok::Str(out), start));
            }
            if ch != '\\' {
                out.push(ch);
                continue;
            }
            let Some((_, esc)) = chars.next() else { break };
            match esc {
                '"' | '\\' | '/' | '\'' => out.push(esc),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let Some(unit) = crate::hex::hex_value(&hex)
                        .filter(|_| hex.len() == 4)
                        .and_then(|u| u16::try_from(u).ok())
                    else {
                        return Err(JErr::at(
                            "S0104",
                            "The escape sequence \\u must be followed by 4 hex digits",
                            start + 1 + i,
                        ));
                    };
                    // A surrogate pair is two escapes.
                    if (0xD800..0xDC00).contains(&unit) {
                        let save = chars.clone();
                        let low = if let (Some((_, '\\')), Some((_, 'u'))) =
                            (chars.next(), chars.next())
                        {
                            let hex: String = (0..4)
                                .filter_map(|_| chars.next().map(|(_, c)| c))
                                .collect();
                            crate::hex::hex_value(&hex)
                                .filter(|_| hex.len() == 4)
                                .and_then(|u| u16::try_from(u).ok())
                        } else {
                            None
                        };
                        match low.and_then(|low| char::decode_utf16([unit, low]).next()?.ok()) {
                            Some(c) => out.push(c),
                            None => {
                                chars = save;
                                out.push('\u{FFFD}');
                            }
                        }
                    } else {
                        out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
                    }
                }
                other => {
                    return Err(JErr::at(
                        "S0103",
                        format!("Unsupported escape sequence: \\{other}"),
                        start + 1 + i,
                    ));
                }
            }
        }
        Err(JErr::at(
            "S0101",
            "String literal must be terminated by a matching quote",
            start,
        ))
    }

    fn number(&mut self, start: usize) -> Result<(Tok, usize), JErr> {
        let b = self.rest().as_bytes();
        let mut i = 0;
        let digits = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i > s
        };
        if b[0] == b'0' {
            i = 1;
        } else {
            digits(&mut i);
        }
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            i += 1;
            digits(&mut i);
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                j += 1;
            }
            if digits(&mut j) {
                i = j;
            }
        }
        let text = &self.rest()[..i];
        let n: f64 = text.parse().unwrap_or(f64::NAN);
        if !n.is_finite() {
            return Err(JErr::at(
                "S0102",
                format!("Number out of range: {text}"),
                start,
            ));
        }
        self.pos += i;
        Ok((Tok::Num(n), start))
    }
}

/// How many bytes of `s` form a name: up to whitespace or an operator character.
fn name_length(s: &str) -> usize {
    s.find(|c: char| c.is_whitespace() || "()[]{},.;:?+-*/%|=<>^&!~@#\"'`$".contains(c))
        .unwrap_or(s.len())
}
