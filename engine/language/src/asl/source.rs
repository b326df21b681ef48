//! The text of a definition as a person wrote it: a JSON parser that keeps
//! where every key and value came from.
//!
//! `serde_json` forgets positions and silently keeps the last of two equal
//! keys. A validator for hand-written files needs both: a line and column for
//! every diagnostic, and an error for `{"Type": "Pass", "Type": "Task"}`. This
//! parser is small, strict (RFC 8259), bounded in depth, and never panics.

use std::fmt;

use crate::pointer::{pointer_push, pointer_tokens};

/// Deepest nesting of arrays and objects accepted. ASL needs far less; the
/// bound keeps recursion (here and in every later pass) off the stack limit.
pub const MAX_DEPTH: usize = 512;

/// A 1-based line and column; the column counts Unicode scalar values, as
/// editors and compilers report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A JSON value with the byte offset where it starts in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub offset: usize,
    pub value: NodeValue,
}

/// The JSON value kinds; objects keep members in source order, duplicates
/// included, so that later passes can see them.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

/// One `"key": value` pair of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    /// Byte offset of the key's opening quote.
    pub key_offset: usize,
    pub value: Node,
}

/// A key that appears twice in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// JSON pointer of the second occurrence.
    pub pointer: String,
    pub key: String,
    pub offset: usize,
    pub first_offset: usize,
}

/// Why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// A parsed definition text: the tree, the duplicates found, and what is
/// needed to turn offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct Document {
    text: String,
    lines: LineIndex,
    pub root: Node,
    pub duplicates: Vec<DuplicateKey>,
}

impl Document {
    /// Parses bytes as UTF-8 JSON. A leading byte-order mark is skipped.
    pub fn parse(bytes: &[u8]) -> Result<Document, (SyntaxError, Option<Position>)> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.valid_up_to();
                // The valid prefix is UTF-8, so it can be indexed for a position.
                let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
                let position = LineIndex::new(prefix).position(prefix, valid);
                let message = format!(
                    "the file is not valid UTF-8 (byte 0x{:02X}); save it as UTF-8",
                    bytes[valid]
                );
                return Err((
                    SyntaxError {
                        offset: valid,
                        message,
                    },
                    Some(position),
                ));
            }
        };
        let index = LineIndex::new(text);
        let mut parser = Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            duplicates: Vec::new(),
            path: Vec::new(),
        };
        let result = parser.parse_document();
        match result {
            Ok(root) => {
                let duplicates = parser.duplicates;
                Ok(Document {
                    text: text.to_owned(),
                    lines: index,
                    root,
                    duplicates,
                })
            }
            Err(e) => {
                let position = index.position(text, e.offset);
                Err((e, Some(position)))
            }
        }
    }

    /// The line and column of a byte offset.
    pub fn position(&self, offset: usize) -> Position {
        self.lines.position(&self.text, offset)
    }

    /// The node a JSON pointer designates, if it exists.
    pub fn node(&self, pointer: &str) -> Option<&Node> {
        self.walk(pointer).map(|(node, _)| node)
    }

    /// Where a diagnostic about `pointer` should point: the value it
    /// designates or, when the pointer goes further than the document, the
    /// deepest existing ancestor (a missing field is reported at its object).
    pub fn value_position(&self, pointer: &str) -> Position {
        let node = self.deepest(pointer);
        self.position(node.offset)
    }

    /// Where the `chars`-th character of the string value at `pointer`
    /// sits in the text (escapes in the text are read, so the position is
    /// the real one). The value's own position when it is not a string.
    pub fn string_char_position(&self, pointer: &str, chars: usize) -> Position {
        let node = self.deepest(pointer);
        let raw = &self.text[node.offset..];
        if !raw.starts_with('"') {
            return self.position(node.offset);
        }
        let mut seen = 0;
        let mut iter = raw.char_indices().skip(1);
        while let Some((i, c)) = iter.next() {
            if c == '"' {
                return self.position(node.offset + i);
            }
            if seen == chars {
                return self.position(node.offset + i);
            }
            if c == '\\' {
                // \uXXXX is one character (a surrogate pair two, counted
                // as the JavaScript-like engine counts them: close enough).
                if let Some((_, 'u')) = iter.next() {
                    for _ in 0..4 {
                        iter.next();
                    }
                }
            }
            seen += 1;
        }
        self.position(node.offset)
    }

    /// Where the key of the member `pointer` designates starts; the value's
    /// position when the pointer ends in an array index or at the root.
    pub fn key_position(&self, pointer: &str) -> Position {
        match self.walk(pointer) {
            Some((_, Some(key_offset))) => self.position(key_offset),
            _ => self.value_position(pointer),
        }
    }

    fn deepest(&self, pointer: &str) -> &Node {
        let mut node = &self.root;
        for token in pointer_tokens(pointer) {
            match child(node, &token) {
                Some((next, _)) => node = next,
                None => break,
            }
        }
        node
    }

    fn walk(&self, pointer: &str) -> Option<(&Node, Option<usize>)> {
        let mut node = &self.root;
        let mut key_offset = None;
        for token in pointer_tokens(pointer) {
            let (next, key) = child(node, &token)?;
            node = next;
            key_offset = key;
        }
        Some((node, key_offset))
    }
}

/// The child of `node` named by one pointer token, with its key's offset. For
/// duplicated keys the last occurrence wins, as in `to_value`.
fn child<'a>(node: &'a Node, token: &str) -> Option<(&'a Node, Option<usize>)> {
    match &node.value {
        NodeValue::Object(members) => members
            .iter()
            .rev()
            .find(|m| m.key == token)
            .map(|m| (&m.value, Some(m.key_offset))),
        NodeValue::Array(items) => {
            let index: usize = token.parse().ok()?;
            items.get(index).map(|n| (n, None))
        }
        _ => None,
    }
}

impl Node {
    /// Converts to a `serde_json::Value`; for duplicated keys the last wins.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeValue::Object(members) => {
                let mut map = serde_json::Map::with_capacity(members.len());
                for m in members {
                    map.insert(m.key.clone(), m.value.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The object's member named `key` (the last one if duplicated).
    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.value {
            NodeValue::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    /// The members of an object; empty for any other kind.
    pub fn members(&self) -> &[Member] {
        match &self.value {
            NodeValue::Object(members) => members,
            _ => &[],
        }
    }

    /// The items of an array; empty for any other kind.
    pub fn items(&self) -> &[Node] {
        match &self.value {
            NodeValue::Array(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's JSON kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Array(_) => "an array",
            NodeValue::Object(_) => "an object",
        }
    }
}

/// Start offsets of every line, to turn byte offsets into positions.
#[derive(Debug, Clone)]
struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { line_starts }
    }

    fn position(&self, text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Position {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    duplicates: Vec<DuplicateKey>,
    /// Keys and indexes from the root to the value being parsed, to name
    /// duplicates by pointer.
    path: Vec<String>,
}

type ParseResult<T> = Result<T, SyntaxError>;

impl Parser<'_> {
    fn error<T>(&self, offset: usize, message: impl Into<String>) -> ParseResult<T> {
        Err(SyntaxError {
            offset,
            message: message.into(),
        })
    }

    fn parse_document(&mut self) -> ParseResult<Node> {
        self.skip_whitespace();
        if self.pos == self.bytes.len() {
            return self.error(self.pos, "the file is empty; expected a JSON object");
        }
        let node = self.parse_value()?;
        self.skip_whitespace();
        if self.pos != self.bytes.len() {
            return self.error(
                self.pos,
                format!(
                    "unexpected {} after the end of the JSON value",
                    self.describe_here()
                ),
            );
        }
        Ok(node)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Names what is at the cursor, for messages.
    fn describe_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of file".to_owned(),
            Some(c) if c.is_control() => format!("control character U+{:04X}", c as u32),
            Some(c) => format!("character '{c}'"),
        }
    }

    fn parse_value(&mut self) -> ParseResult<Node> {
        let offset = self.pos;
        let value = match self.bytes.get(self.pos) {
            None => return self.error(offset, "unexpected end of file; expected a value"),
            Some(b'{') => self.nested(Self::parse_object)?,
            Some(b'[') => self.nested(Self::parse_array)?,
            Some(b'"') => NodeValue::String(self.parse_string()?),
            Some(b't') => self.parse_literal("true", NodeValue::Bool(true))?,
            Some(b'f') => self.parse_literal("false", NodeValue::Bool(false))?,
            Some(b'n') => self.parse_literal("null", NodeValue::Null)?,
            Some(b'-' | b'0'..=b'9') => self.parse_number()?,
            Some(b'\'') => {
                return self.error(
                    offset,
                    "strings must use double quotes (\"), not single quotes",
                );
            }
            Some(_) => {
                return self.error(
                    offset,
                    format!("unexpected {}; expected a value", self.describe_here()),
                );
            }
        };
        Ok(Node { offset, value })
    }

    fn nested(&mut self, f: fn(&mut Self) -> ParseResult<NodeValue>) -> ParseResult<NodeValue> {
        if self.depth >= MAX_DEPTH {
            return self.error(
                self.pos,
                format!("the JSON is nested more than {MAX_DEPTH} levels deep"),
            );
        }
        self.depth += 1;
        let value = f(self);
        self.depth -= 1;
        value
    }

    fn parse_literal(&mut self, word: &str, value: NodeValue) -> ParseResult<NodeValue> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            self.error(
                self.pos,
                format!("unexpected {}; expected a value", self.describe_here()),
            )
        }
    }

    fn parse_object(&mut self) -> ParseResult<NodeValue> {
        self.pos += 1; // '{'
        let mut members: Vec<Member> = Vec::new();
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(NodeValue::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_offset = self.pos;
            match self.bytes.get(self.pos) {
                Some(b'"') => {}
                Some(b'}') => return self.error(self.pos, "trailing comma before '}'"),
                None => return self.error(self.pos, "unexpected end of file inside an object"),
                Some(_) => {
                    return self.error(
                        self.pos,
                        format!(
                            "unexpected {}; expected a key in double quotes",
                            self.describe_here()
                        ),
                    );
                }
            }
            let key = self.parse_string()?;
            self.skip_whitespace();
            if self.bytes.get(self.pos) != Some(&b':') {
                return self.error(
                    self.pos,
                    format!(
                        "unexpected {}; expected ':' after the key \"{key}\"",
                        self.describe_here()
                    ),
                );
            }
            self.pos += 1;
            self.skip_whitespace();
            self.path.push(key.clone());
            let value = self.parse_value();
            self.path.pop();
            let value = value?;
            if let Some(first) = members.iter().find(|m| m.key == key) {
                let mut pointer = String::new();
                for token in &self.path {
                    pointer = pointer_push(&pointer, token);
                }
                self.duplicates.push(DuplicateKey {
                    pointer: pointer_push(&pointer, &key),
                    key: key.clone(),
                    offset: key_offset,
                    first_offset: first.key_offset,
                });
            }
            members.push(Member {
                key,
                key_offset,
                value,
            });
            self.skip_whitespace();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(NodeValue::Object(members));
                }
                None => return self.error(self.pos, "unexpected end of file; expected ',' or '}'"),
                Some(_) => {
                    return self.error(
                        self.pos,
                        format!(
                            "unexpected {}; expected ',' or '}}' (is a comma missing?)",
                            self.describe_here()
                        ),
                    );
                }
            }
        }
    }

    fn parse_array(&mut self) -> ParseResult<NodeValue> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(NodeValue::Array(items));
        }
        loop {
            self.skip_whitespace();
            if self.bytes.get(self.pos) == Some(&b']') {
                return self.error(self.pos, "trailing comma before ']'");
            }
            self.path.push(items.len().to_string());
            let item = self.parse_value();
            self.path.pop();
            items.push(item?);
            self.skip_whitespace();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(NodeValue::Array(items));
                }
                None => return self.error(self.pos, "unexpected end of file; expected ',' or ']'"),
                Some(_) => {
                    return self.error(
                        self.pos,
                        format!(
                            "unexpected {}; expected ',' or ']' (is a comma missing?)",
                            self.describe_here()
                        ),
                    );
                }
            }
        }
    }

    fn parse_string(&mut self) -> ParseResult<String> {
        let start = self.pos;
        self.pos += 1; // '"'
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let run_start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.bytes.get(self.pos) {
                None => return self.error(start, "this string is never closed (missing '\"')"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.parse_escape(&mut out)?,
                Some(b'\n' | b'\r') => {
                    return self.error(
                        start,
                        "this string is never closed (missing '\"' before the end of the line)",
                    );
                }
                Some(_) => {
                    return self.error(
                        self.pos,
                        format!(
                            "{} inside a string; write it escaped (\\n, \\t, \\u00XX)",
                            self.describe_here()
                        ),
                    );
                }
            }
        }
    }

    fn parse_escape(&mut self, out: &mut String) -> ParseResult<()> {
        let at = self.pos;
        self.pos += 1; // '\'
        let c = match self.bytes.get(self.pos) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4(at)?;
                let c = if (0xD800..0xDC00).contains(&high) {
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return self.error(at, "unpaired UTF-16 surrogate in a \\u escape");
                    }
                    self.pos += 2;
                    let low = self.hex4(at)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return self.error(at, "unpaired UTF-16 surrogate in a \\u escape");
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                } else {
                    char::from_u32(high)
                };
                match c {
                    Some(c) => {
                        out.push(c);
                        return Ok(());
                    }
                    None => return self.error(at, "unpaired UTF-16 surrogate in a \\u escape"),
                }
            }
            _ => {
                return self.error(
                    at,
                    "invalid escape; a backslash in a JSON string must be followed by one of \" \\ / b f n r t u (write \\\\ for a backslash)",
                );
            }
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self, at: usize) -> ParseResult<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4);
        let value = digits
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(crate::hex::hex_value);
        match value {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => self.error(at, "a \\u escape needs four hexadecimal digits"),
        }
    }

    fn parse_number(&mut self) -> ParseResult<NodeValue> {
        let start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.error(start, "invalid number: expected a digit"),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return self.error(start, "invalid number: expected a digit after '.'");
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return self.error(start, "invalid number: expected a digit in the exponent");
            }
            self.digits();
        }
        if matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
            return self.error(start, "invalid number: leading zeros are not allowed");
        }
        let literal = &self.text[start..self.pos];
        match serde_json::from_str::<serde_json::Number>(literal) {
            Ok(n) => Ok(NodeValue::Number(n)),
            Err(_) => self.error(start, format!("the number {literal} is out of range")),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Document {
        Document::parse(text.as_bytes()).unwrap()
    }

    fn error(text: &[u8]) -> (String, Position) {
        let (e, pos) = Document::parse(text).unwrap_err();
        (e.message, pos.unwrap())
    }

    #[test]
    fn values_round_trip_to_serde() {
        let text = r#"{"a": [1, -2.5, 3e2, true, false, null, "x\n\u00e9\ud83d\ude00"], "b": {}}"#;
        let doc = parse(text);
        let expected: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(doc.root.to_value(), expected);
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let doc = parse("{\n  \"é\": 1,\n  \"b\": [true, \"x\"]\n}");
        assert_eq!(
            doc.value_position("/b/1"),
            Position {
                line: 3,
                column: 15
            }
        );
        assert_eq!(doc.key_position("/b"), Position { line: 3, column: 3 });
        assert_eq!(doc.value_position("/é"), Position { line: 2, column: 8 });
        // A pointer past the document points at its deepest existing part.
        assert_eq!(
            doc.value_position("/b/7/c"),
            Position { line: 3, column: 8 }
        );
    }

    #[test]
    fn duplicate_keys_are_recorded_with_pointers() {
        let doc = parse(r#"{"States": {"A": {"Type": "Pass", "Type": "Task"}}}"#);
        assert_eq!(doc.duplicates.len(), 1);
        assert_eq!(doc.duplicates[0].pointer, "/States/A/Type");
        assert_eq!(doc.position(doc.duplicates[0].offset).column, 35);
        // The last one wins, as in every JSON library that accepts them.
        assert_eq!(doc.root.to_value()["States"]["A"]["Type"], "Task");
    }

    #[test]
    fn pointer_escaping() {
        assert_eq!(pointer_push("/a", "b/c~d"), "/a/b~1c~0d");
        let doc = parse(r#"{"b/c~d": 1}"#);
        assert!(doc.node("/b~1c~0d").is_some());
    }

    #[test]
    fn syntax_errors_name_the_place() {
        assert_eq!(
            error(b"{\n  \"a\": 1\n  \"b\": 2\n}"),
            (
                "unexpected character '\"'; expected ',' or '}' (is a comma missing?)".to_owned(),
                Position { line: 3, column: 3 }
            )
        );
        assert_eq!(error(b"").1, Position { line: 1, column: 1 });
        assert_eq!(error(b"[1,]").0, "trailing comma before ']'");
        assert_eq!(
            error(b"{'a': 1}").0,
            "unexpected character '''; expected a key in double quotes"
        );
        assert_eq!(
            error(b"\"abc").0,
            "this string is never closed (missing '\"')"
        );
        assert_eq!(
            error(b"01").0,
            "invalid number: leading zeros are not allowed"
        );
        assert_eq!(error(b"1e999").0, "the number 1e999 is out of range");
        assert_eq!(error(b"{} x").1, Position { line: 1, column: 4 });
        assert!(error(b"\"\\x\"").0.starts_with("invalid escape"));
        assert!(error(b"\"\\ud800\"").0.contains("surrogate"));
        // A sign is not a digit (found by fuzzing: `u32::from_str_radix`
        // takes a leading `+`).
        assert!(error(b"\"\\u+02e\"").0.contains("four hexadecimal digits"));
    }

    #[test]
    fn non_utf8_is_reported_with_its_position() {
        let (message, pos) = error(b"{\"a\":\n \"\xff\"}");
        assert!(message.contains("0xFF"), "{message}");
        assert_eq!(pos, Position { line: 2, column: 3 });
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        let text = "[".repeat(100_000);
        let (message, _) = error(text.as_bytes());
        assert!(message.contains("nested more than 512"), "{message}");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(Document::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert!(Document::parse(b"\xEF\xBB\xBF{}").is_ok());
    }
}
