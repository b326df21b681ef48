//! Intrinsic function calls such as `States.Format('Hello {}', $.name)`, as
//! written in the `"key.$"` fields of JSONPath payload templates.
//!
//! This module parses a call once, when a definition is validated, into an
//! [`IntrinsicCall`] tree, and checks everything that can be checked without
//! data: the function exists, it gets the number of arguments it takes, and
//! literal arguments have the right type (`States.ArrayRange(1, 'x', 1)` is
//! refused here, not when an execution reaches it). Evaluation belongs to the
//! interpreter.
//!
//! # Grammar
//!
//! ```text
//! call    = "States." name ws? "(" ws? [ arg ( ws? "," ws? arg )* ] ws? ")"
//! arg     = string | number | "true" | "false" | "null" | path | call
//! string  = "'" ( char | "\'" | "\{" | "\}" | "\\" )* "'"
//! number  = JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
//! path    = "$" ... up to the next ",", ")" or whitespace outside brackets
//! ```
//!
//! AWS reserves `'`, `{`, `}` and `\` in intrinsic strings: each is written
//! with a backslash, and "if an open escape backslash is found ... the
//! interpreter will throw a runtime error", so any other backslash sequence
//! is refused here. Any other character, a real newline included, stands for
//! itself. Unescaped `{` and `}` are accepted as text (AWS's own example
//! `States.StringToJson('{"a": 1}')` relies on it), except that in the
//! template of `States.Format` an unescaped `{}` is a placeholder: that
//! template is kept as a [`FormatString`], in which `\{}` stays text.
//!
//! # Limits
//!
//! AWS documents "You can nest up to 10 intrinsic functions within a field";
//! we allow calls at most [`MAX_NESTING`] deep, which any field within that
//! limit respects, and which bounds the parser's recursion. A call's text is
//! at most [`MAX_SOURCE_LEN`] bytes (AWS's limit on a whole definition).
//!
//! Nothing here does I/O.

use std::fmt;

use serde_json::Value;

use super::path::Path;

/// How deep calls may nest: `States.A(States.B(...))` is 2 deep.
pub const MAX_NESTING: usize = 10;

/// The longest call text accepted, in bytes: AWS's 1 MB definition size.
pub const MAX_SOURCE_LEN: usize = 1024 * 1024;

/// The longest string `States.Base64Encode`, `States.Base64Decode` and
/// `States.Hash` accept, in characters, as AWS documents.
const MAX_STRING_CHARS: usize = 10_000;

/// The most items `States.ArrayRange` may create, as AWS documents.
const MAX_RANGE_ITEMS: i128 = 1000;

/// The algorithms `States.Hash` supports.
const HASH_ALGORITHMS: [&str; 5] = ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"];

/// One of the 18 intrinsic functions AWS Step Functions provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `States.Format(template, values...)`: fills each `{}` with a value.
    Format,
    /// `States.StringToJson(string)`: parses JSON text.
    StringToJson,
    /// `States.JsonToString(path)`: serializes a value as JSON text.
    JsonToString,
    /// `States.Array(values...)`: an array of the arguments.
    Array,
    /// `States.ArrayPartition(array, size)`: chunks of `size` items.
    ArrayPartition,
    /// `States.ArrayContains(array, value)`: whether `value` is an item.
    ArrayContains,
    /// `States.ArrayRange(start, end, step)`: integers from start to end.
    ArrayRange,
    /// `States.ArrayGetItem(array, index)`: the item at `index`.
    ArrayGetItem,
    /// `States.ArrayLength(array)`: the number of items.
    ArrayLength,
    /// `States.ArrayUnique(array)`: the items without duplicates.
    ArrayUnique,
    /// `States.Base64Encode(string)`.
    Base64Encode,
    /// `States.Base64Decode(string)`.
    Base64Decode,
    /// `States.Hash(data, algorithm)`: a hex digest.
    Hash,
    /// `States.JsonMerge(object, object, false)`: a shallow merge.
    JsonMerge,
    /// `States.MathRandom(start, end[, seed])`: a random integer.
    MathRandom,
    /// `States.MathAdd(a, b)`: the sum of two integers.
    MathAdd,
    /// `States.StringSplit(string, delimiter)`: the parts of a string.
    StringSplit,
    /// `States.UUID()`: a random version 4 UUID.
    Uuid,
}

/// What a function takes: used for arity and literal type checks.
struct Signature {
    min: usize,
    /// `None`: any number.
    max: Option<usize>,
    /// The name of each parameter, for messages.
    params: &'static [&'static str],
    /// The parameters in words, for arity messages.
    summary: &'static str,
}

impl Intrinsic {
    /// Every intrinsic, in the order of the AWS documentation's list.
    pub const ALL: [Intrinsic; 18] = [
        Intrinsic::Format,
        Intrinsic::StringToJson,
        Intrinsic::JsonToString,
        Intrinsic::Array,
        Intrinsic::ArrayPartition,
        Intrinsic::ArrayContains,
        Intrinsic::ArrayRange,
        Intrinsic::ArrayGetItem,
        Intrinsic::ArrayLength,
        Intrinsic::ArrayUnique,
        Intrinsic::Base64Encode,
        Intrinsic::Base64Decode,
        Intrinsic::Hash,
        Intrinsic::JsonMerge,
        Intrinsic::MathRandom,
        Intrinsic::MathAdd,
        Intrinsic::StringSplit,
        Intrinsic::Uuid,
    ];

    /// The full name as written in a definition, e.g. `"States.Format"`.
    pub fn name(&self) -> &'static str {
        match self {
            Intrinsic::Format => "States.Format",
            Intrinsic::StringToJson => "States.StringToJson",
            Intrinsic::JsonToString => "States.JsonToString",
            Intrinsic::Array => "States.Array",
            Intrinsic::ArrayPartition => "States.ArrayPartition",
            Intrinsic::ArrayContains => "States.ArrayContains",
            Intrinsic::ArrayRange => "States.ArrayRange",
            Intrinsic::ArrayGetItem => "States.ArrayGetItem",
            Intrinsic::ArrayLength => "States.ArrayLength",
            Intrinsic::ArrayUnique => "States.ArrayUnique",
            Intrinsic::Base64Encode => "States.Base64Encode",
            Intrinsic::Base64Decode => "States.Base64Decode",
            Intrinsic::Hash => "States.Hash",
            Intrinsic::JsonMerge => "States.JsonMerge",
            Intrinsic::MathRandom => "States.MathRandom",
            Intrinsic::MathAdd => "States.MathAdd",
            Intrinsic::StringSplit => "States.StringSplit",
            Intrinsic::Uuid => "States.UUID",
        }
    }

    /// The function with this full name (`"States.Format"`); names are
    /// case-sensitive, as in AWS.
    pub fn from_name(name: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|f| f.name() == name)
    }

    fn signature(&self) -> Signature {
        let exact = |params: &'static [&'static str], summary| Signature {
            min: params.len(),
            max: Some(params.len()),
            params,
            summary,
        };
        match self {
            Intrinsic::Format => Signature {
                min: 1,
                max: None,
                params: &["template"],
                summary: "a template string, then one value for each {}",
            },
            Intrinsic::StringToJson => exact(&["JSON text"], "the JSON text to parse"),
            Intrinsic::JsonToString => exact(&["value"], "the path of the value to serialize"),
            Intrinsic::Array => Signature {
                min: 0,
                max: None,
                params: &[],
                summary: "any values",
            },
            Intrinsic::ArrayPartition => exact(&["array", "chunk size"], "array, chunk size"),
            Intrinsic::ArrayContains => exact(&["array", "value"], "array, value to look for"),
            Intrinsic::ArrayRange => exact(&["start", "end", "step"], "start, end, step"),
            Intrinsic::ArrayGetItem => exact(&["array", "index"], "array, index"),
            Intrinsic::ArrayLength => exact(&["array"], "the array"),
            Intrinsic::ArrayUnique => exact(&["array"], "the array"),
            Intrinsic::Base64Encode => exact(&["string"], "the string to encode"),
            Intrinsic::Base64Decode => exact(&["string"], "the Base64 string to decode"),
            Intrinsic::Hash => exact(&["data", "algorithm"], "data, algorithm"),
            Intrinsic::JsonMerge => exact(
                &["first object", "second object", "deep merge"],
                "first object, second object, false",
            ),
            Intrinsic::MathRandom => Signature {
                min: 2,
                max: Some(3),
                params: &["start", "end", "seed"],
                summary: "start, end and an optional seed",
            },
            Intrinsic::MathAdd => exact(&["value", "value to add"], "value, value to add"),
            Intrinsic::StringSplit => exact(&["string", "delimiters"], "string, delimiters"),
            Intrinsic::Uuid => exact(&[], ""),
        }
    }

    /// What a literal in argument `index` must be; `None`: anything.
    fn expectation(&self, index: usize) -> Option<Expect> {
        use Expect::*;
        let per_position: &[Expect] = match self {
            Intrinsic::Format => &[String],
            Intrinsic::StringToJson => &[String],
            Intrinsic::JsonToString => &[NotLiteral],
            Intrinsic::Array => &[],
            Intrinsic::ArrayPartition => &[Array, PositiveInteger],
            Intrinsic::ArrayContains => &[Array],
            Intrinsic::ArrayRange => &[Integer, Integer, NonZeroInteger],
            Intrinsic::ArrayGetItem => &[Array, NonNegativeInteger],
            Intrinsic::ArrayLength | Intrinsic::ArrayUnique => &[Array],
            Intrinsic::Base64Encode | Intrinsic::Base64Decode => &[ShortString],
            Intrinsic::Hash => &[ShortString, HashAlgorithm],
            Intrinsic::JsonMerge => &[Object, Object, False],
            Intrinsic::MathRandom => &[Integer, Integer, Integer],
            Intrinsic::MathAdd => &[Integer, Integer],
            Intrinsic::StringSplit => &[String, String],
            Intrinsic::Uuid => &[],
        };
        per_position.get(index).copied()
    }
}

impl fmt::Display for Intrinsic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed intrinsic function call, with its arguments parsed too.
#[derive(Debug, Clone, PartialEq)]
pub struct IntrinsicCall {
    /// Which function is called.
    pub function: Intrinsic,
    /// The arguments, in order; their number and literal types are checked.
    pub args: Vec<Arg>,
}

/// One argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string (escapes resolved), a number, `true`, `false` or `null`.
    Literal(Value),
    /// The template of `States.Format` when written as a string literal,
    /// already split at its `{}` placeholders. Only ever the first argument of
    /// a `States.Format` call; a template that comes from a path is split at
    /// run time with [`FormatString::from_runtime`].
    FormatTemplate(FormatString),
    /// A path, evaluated against the input, the context object or a variable.
    Path(Path),
    /// A nested call, evaluated first.
    Call(IntrinsicCall),
}

/// A `States.Format` template split at its placeholders: `"Hello {}, welcome
/// to {}!"` is the pieces `["Hello ", ", welcome to ", "!"]`. The result of the
/// call is the pieces with the values of the remaining arguments in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatString {
    /// The text around the placeholders: one more piece than placeholders.
    pieces: Vec<String>,
}

impl FormatString {
    /// Splits a template that arrived at run time (through a path): every
    /// `{}` is a placeholder and every other character, backslashes included,
    /// is text. Escapes only exist in the definition's literals.
    pub fn from_runtime(template: &str) -> FormatString {
        FormatString {
            pieces: template.split("{}").map(str::to_owned).collect(),
        }
    }

    /// Splits the raw text of a string literal (between its quotes, escapes
    /// not yet resolved, already validated): an unescaped `{}` is a
    /// placeholder, `\{` and `\}` are braces.
    fn from_literal(raw: &str) -> FormatString {
        let mut pieces = vec![String::new()];
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            let current = pieces.last_mut();
            match (c, current) {
                ('\\', Some(piece)) => piece.extend(chars.next()),
                ('{', _) if chars.peek() == Some(&'}') => {
                    chars.next();
                    pieces.push(String::new());
                }
                (c, Some(piece)) => piece.push(c),
                (_, None) => {}
            }
        }
        FormatString { pieces }
    }

    /// The text around the placeholders, in order; never empty.
    pub fn pieces(&self) -> &[String] {
        &self.pieces
    }

    /// How many `{}` placeholders the template has.
    pub fn placeholders(&self) -> usize {
        self.pieces.len().saturating_sub(1)
    }
}

/// Why a string is not a valid intrinsic call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at offset {offset})")]
pub struct IntrinsicError {
    /// Byte offset into the call's text where the problem is.
    pub offset: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl IntrinsicError {
    fn new(offset: usize, message: impl Into<String>) -> IntrinsicError {
        IntrinsicError {
            offset,
            message: message.into(),
        }
    }
}

/// True when `s` is written as an intrinsic call: `States.`, a name, then
/// `(`. Used to tell a call from a path in a `"key.$"` field.
pub fn looks_like_call(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("States.") else {
        return false;
    };
    let name_len = rest.bytes().take_while(|b| is_ident_byte(*b)).count();
    name_len > 0 && rest[name_len..].trim_start().starts_with('(')
}

/// Parses an intrinsic call, such as `States.Format('{}', $.name)`, and
/// checks its arity and literal argument types.
pub fn parse(source: &str) -> Result<IntrinsicCall, IntrinsicError> {
    if source.len() > MAX_SOURCE_LEN {
        return Err(IntrinsicError::new(
            0,
            format!(
                "the intrinsic function call is {} bytes long; at most {MAX_SOURCE_LEN} are allowed",
                source.len()
            ),
        ));
    }
    if !source.starts_with("States.") {
        return Err(IntrinsicError::new(
            0,
            "an intrinsic function call starts with 'States.', as in States.Format('{}', $.name)",
        ));
    }
    let mut parser = Parser { source, pos: 0 };
    let call = parser.call(1)?;
    parser.skip_whitespace();
    if let Some(c) = parser.peek() {
        return Err(IntrinsicError::new(
            parser.pos,
            format!("unexpected '{c}' after the end of the call: nothing may follow its ')'"),
        ));
    }
    Ok(call)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The parser's position in the call text; always on a character boundary.
struct Parser<'s> {
    source: &'s str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.source[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn identifier(&mut self) -> &str {
        let start = self.pos;
        while self
            .source
            .as_bytes()
            .get(self.pos)
            .is_some_and(|b| is_ident_byte(*b))
        {
            self.pos += 1;
        }
        &self.source[start..self.pos]
    }

    /// At `States.`: a whole call. `depth` is 1 for the outermost call.
    fn call(&mut self, depth: usize) -> Result<IntrinsicCall, IntrinsicError> {
        let start = self.pos;
        if depth > MAX_NESTING {
            return Err(IntrinsicError::new(
                start,
                format!(
                    "intrinsic functions are nested more than {MAX_NESTING} deep here; AWS Step \
                     Functions allows at most {MAX_NESTING} nested intrinsic functions in a field"
                ),
            ));
        }
        self.pos += "States.".len();
        let short = self.identifier();
        let name = format!("States.{short}");
        let Some(function) = Intrinsic::from_name(&name) else {
            return Err(unknown_function(start, &name));
        };
        self.skip_whitespace();
        match self.peek() {
            Some('(') => {
                self.bump();
            }
            other => {
                return Err(IntrinsicError::new(
                    self.pos,
                    format!(
                        "expected '(' after {name}, but found {}",
                        describe_char(other)
                    ),
                ));
            }
        }
        let mut args = Vec::new();
        let mut offsets = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(')') {
            self.bump();
        } else {
            loop {
                self.skip_whitespace();
                offsets.push(self.pos);
                let is_template = function == Intrinsic::Format && args.is_empty();
                args.push(self.argument(depth, is_template)?);
                self.skip_whitespace();
                match self.bump() {
                    Some(',') => continue,
                    Some(')') => break,
                    other => {
                        let offset = self.pos - other.map_or(0, char::len_utf8);
                        return Err(IntrinsicError::new(
                            offset,
                            format!(
                                "expected ',' or ')' after an argument of {name}, but found {}",
                                describe_char(other)
                            ),
                        ));
                    }
                }
            }
        }
        let call = IntrinsicCall { function, args };
        check_call(&call, start, &offsets)?;
        Ok(call)
    }

    /// One argument. `is_template`: the first argument of `States.Format`.
    fn argument(&mut self, depth: usize, is_template: bool) -> Result<Arg, IntrinsicError> {
        let start = self.pos;
        match self.peek() {
            Some('\'') => {
                let raw = self.string_literal()?;
                Ok(if is_template {
                    Arg::FormatTemplate(FormatString::from_literal(raw))
                } else {
                    Arg::Literal(Value::String(unescape(raw)))
                })
            }
            Some('$') => {
                let text = self.path_text();
                Path::parse(text)
                    .map(Arg::Path)
                    .map_err(|e| IntrinsicError::new(start, e.shifted(start).to_string()))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.number().map(Arg::Literal),
            Some('"') => Err(IntrinsicError::new(
                start,
                "strings in intrinsic functions are written in single quotes: 'like this'",
            )),
            Some(')' | ',') => Err(IntrinsicError::new(
                start,
                "an argument is missing here: remove the extra ',' or write a value",
            )),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                if self.source[start..].starts_with("States.") {
                    return self.call(depth + 1).map(Arg::Call);
                }
                let word = self.identifier();
                match word {
                    "true" => Ok(Arg::Literal(Value::Bool(true))),
                    "false" => Ok(Arg::Literal(Value::Bool(false))),
                    "null" => Ok(Arg::Literal(Value::Null)),
                    _ => Err(IntrinsicError::new(
                        start,
                        format!("unexpected '{word}': {ARGUMENT_FORMS}"),
                    )),
                }
            }
            other => Err(IntrinsicError::new(
                start,
                format!("unexpected {}: {ARGUMENT_FORMS}", describe_char(other)),
            )),
        }
    }

    /// At `'`: the raw text between the quotes, with its escapes validated.
    fn string_literal(&mut self) -> Result<&str, IntrinsicError> {
        let open = self.pos;
        self.bump();
        let content_start = self.pos;
        loop {
            let at = self.pos;
            match self.bump() {
                None => {
                    return Err(IntrinsicError::new(
                        open,
                        "this string is never closed: add the closing ' (write \\' for a quote \
                         inside the string)",
                    ));
                }
                Some('\'') => return Ok(&self.source[content_start..at]),
                Some('\\') => match self.bump() {
                    Some('\'' | '{' | '}' | '\\') => {}
                    other => {
                        return Err(IntrinsicError::new(
                            at,
                            format!(
                                "'\\' followed by {} is not an escape sequence: in intrinsic \
                                 strings a backslash may only start \\', \\{{, \\}} or \\\\ \
                                 (write \\\\ for a backslash)",
                                describe_char(other)
                            ),
                        ));
                    }
                },
                Some(_) => {}
            }
        }
    }

    /// At `$`: the path's text, up to the first `,`, `)` or whitespace that
    /// is outside brackets and quotes.
    fn path_text(&mut self) -> &str {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                self.bump();
                if c == '\\' {
                    self.bump();
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '\'' | '"' if depth > 0 => quote = Some(c),
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' | ')' if depth == 0 => break,
                c if c.is_whitespace() && depth == 0 => break,
                _ => {}
            }
            self.bump();
        }
        &self.source[start..self.pos]
    }

    /// A JSON number.
    fn number(&mut self) -> Result<Value, IntrinsicError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.bump();
        }
        let text = &self.source[start..self.pos];
        match serde_json::from_str::<serde_json::Number>(text) {
            Ok(number) => Ok(Value::Number(number)),
            Err(_) => Err(IntrinsicError::new(
                start,
                format!("'{text}' is not a number: write an integer such as -1 or a decimal such as 2.5"),
            )),
        }
    }
}

const ARGUMENT_FORMS: &str = "an argument is a string in single quotes, a number, true, false, \
                              null, a path starting with '$', or a call such as States.Array(...)";

fn describe_char(c: Option<char>) -> String {
    match c {
        Some(c) => format!("'{c}'"),
        None => "the end of the text".to_owned(),
    }
}

fn unknown_function(offset: usize, name: &str) -> IntrinsicError {
    let suggestion = Intrinsic::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .map(|f| format!(" (did you mean {f}? names are case-sensitive)"))
        .unwrap_or_default();
    let all: Vec<&str> = Intrinsic::ALL.iter().map(Intrinsic::name).collect();
    IntrinsicError::new(
        offset,
        format!(
            "unknown intrinsic function '{name}'{suggestion}; the intrinsic functions are {}",
            all.join(", ")
        ),
    )
}

/// Resolves the escapes of a validated string literal's raw text.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a literal argument must be, when that can be checked statically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    String,
    /// A string of at most [`MAX_STRING_CHARS`] characters.
    ShortString,
    Integer,
    PositiveInteger,
    NonNegativeInteger,
    NonZeroInteger,
    /// An array: no literal is one.
    Array,
    /// An object: no literal is one.
    Object,
    /// The literal `false`.
    False,
    HashAlgorithm,
    /// A path or a call, not a literal.
    NotLiteral,
}

impl Expect {
    /// What the argument must be, in words, completing "must be ...".
    fn describe(self) -> String {
        match self {
            Expect::String => "a string".to_owned(),
            Expect::ShortString => format!("a string of at most {MAX_STRING_CHARS} characters"),
            Expect::Integer => "an integer".to_owned(),
            Expect::PositiveInteger => "an integer greater than 0".to_owned(),
            Expect::NonNegativeInteger => "an integer of 0 or more".to_owned(),
            Expect::NonZeroInteger => "a non-zero integer".to_owned(),
            Expect::Array => "an array, given by a path or a call such as States.Array(...) \
                              (there are no array literals)"
                .to_owned(),
            Expect::Object => "an object, given by a path or a call such as \
                               States.StringToJson(...) (there are no object literals)"
                .to_owned(),
            Expect::False => {
                "false (AWS Step Functions only supports shallow merging)".to_owned()
            }
            Expect::HashAlgorithm => format!("one of {}", HASH_ALGORITHMS.join(", ")),
            Expect::NotLiteral => "a path to the value (or a call), not a literal".to_owned(),
        }
    }

    fn accepts(self, literal: &Value) -> bool {
        let integer = literal.as_i64();
        match self {
            Expect::String => literal.is_string(),
            Expect::ShortString => literal
                .as_str()
                .is_some_and(|s| s.chars().count() <= MAX_STRING_CHARS),
            Expect::Integer => integer.is_some(),
            Expect::PositiveInteger => integer.is_some_and(|i| i > 0),
            Expect::NonNegativeInteger => integer.is_some_and(|i| i >= 0),
            Expect::NonZeroInteger => integer.is_some_and(|i| i != 0),
            Expect::Array | Expect::Object | Expect::NotLiteral => false,
            Expect::False => *literal == Value::Bool(false),
            Expect::HashAlgorithm => literal
                .as_str()
                .is_some_and(|s| HASH_ALGORITHMS.contains(&s)),
        }
    }
}

/// A literal, for messages: `the string 'abc'`, `the number 2.5`, `true`.
fn describe_literal(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("the string '{head}...' ({} characters)", s.chars().count())
        }
        Value::String(s) => format!("the string '{s}'"),
        Value::Number(n) => format!("the number {n}"),
        other => other.to_string(),
    }
}

fn ordinal(index: usize) -> String {
    match index {
        0 => "first".to_owned(),
        1 => "second".to_owned(),
        2 => "third".to_owned(),
        n => format!("argument {}", n + 1),
    }
}

/// Checks the number of arguments and the type of literal arguments.
/// `start` is where the call starts; `offsets` where each argument starts.
fn check_call(call: &IntrinsicCall, start: usize, offsets: &[usize]) -> Result<(), IntrinsicError> {
    let function = call.function;
    let name = function.name();
    let signature = function.signature();
    let given = call.args.len();
    if given < signature.min || signature.max.is_some_and(|max| given > max) {
        return Err(IntrinsicError::new(start, arity_message(function, given)));
    }
    for (index, arg) in call.args.iter().enumerate() {
        let offset = offsets.get(index).copied().unwrap_or(start);
        let param = signature.params.get(index).copied().unwrap_or("value");
        let what = if index < 3 {
            format!("the {} argument of {name} ({param})", ordinal(index))
        } else {
            format!("{} of {name} ({param})", ordinal(index))
        };
        let Some(expect) = function.expectation(index) else {
            continue;
        };
        match arg {
            Arg::Literal(literal) if !expect.accepts(literal) => {
                return Err(IntrinsicError::new(
                    offset,
                    format!(
                        "{what} must be {}, but {} was given",
                        expect.describe(),
                        describe_literal(literal)
                    ),
                ));
            }
            Arg::Call(_) if function == Intrinsic::Format && index == 0 => {
                return Err(IntrinsicError::new(
                    offset,
                    format!("{what} must be a string in single quotes or a path, not a call"),
                ));
            }
            _ => {}
        }
    }
    match (function, call.args.as_slice()) {
        (Intrinsic::Format, [Arg::FormatTemplate(template), values @ ..]) => {
            let placeholders = template.placeholders();
            if placeholders != values.len() {
                return Err(IntrinsicError::new(
                    start,
                    format!(
                        "the template of {name} has {placeholders} placeholder{} {{}} but {} \
                         value{} follow{} it: give one value for each {{}} (write \\{{ and \\}} \
                         for braces that are text)",
                        plural(placeholders),
                        values.len(),
                        plural(values.len()),
                        if values.len() == 1 { "s" } else { "" },
                    ),
                ));
            }
        }
        (Intrinsic::ArrayRange, [Arg::Literal(s), Arg::Literal(e), Arg::Literal(st)]) => {
            if let (Some(s), Some(e), Some(st)) = (s.as_i64(), e.as_i64(), st.as_i64()) {
                let count = range_len(s, e, st);
                if count > MAX_RANGE_ITEMS {
                    return Err(IntrinsicError::new(
                        start,
                        format!(
                            "{name}({s}, {e}, {st}) would create {count} items; AWS Step \
                             Functions allows at most {MAX_RANGE_ITEMS}"
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// How many items `States.ArrayRange(start, end, step)` gives.
fn range_len(start: i64, end: i64, step: i64) -> i128 {
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    if step > 0 && end >= start {
        (end - start) / step + 1
    } else if step < 0 && start >= end {
        (start - end) / -step + 1
    } else {
        0
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn arity_message(function: Intrinsic, given: usize) -> String {
    let name = function.name();
    let signature = function.signature();
    let given = match given {
        0 => "none were given".to_owned(),
        1 => "1 was given".to_owned(),
        n => format!("{n} were given"),
    };
    let summary = signature.summary;
    match (signature.min, signature.max) {
        (0, Some(0)) => format!("{name} takes no arguments, but {given}"),
        (min, Some(max)) if min == max => {
            format!("{name} takes {min} argument{} ({summary}), but {given}", plural(min))
        }
        (min, Some(max)) => format!("{name} takes {min} or {max} arguments ({summary}), but {given}"),
        (min, None) => format!(
            "{name} takes at least {min} argument{} ({summary}), but {given}",
            plural(min)
        ),
    }
}
