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

/// The call as a definition writes it, `States.Array($.a, 'b')`: how AWS
/// names a failing call in its cause ("The function '...' had the
/// following error"). Arguments are separated by `, `; string literals are
/// quoted with `'`, with `\` before `'`, `\`, `{` and `}`.
impl fmt::Display for IntrinsicCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.function.name())?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match arg {
                Arg::Literal(Value::String(s)) => write_quoted(f, s, false)?,
                Arg::Literal(other) => write!(f, "{other}")?,
                Arg::FormatTemplate(template) => {
                    f.write_str("'")?;
                    for (i, piece) in template.pieces().iter().enumerate() {
                        if i > 0 {
                            f.write_str("{}")?;
                        }
                        write_quoted(f, piece, true)?;
                    }
                    f.write_str("'")?;
                }
                Arg::Path(path) => write!(f, "{path}")?,
                Arg::Call(call) => write!(f, "{call}")?,
            }
        }
        f.write_str(")")
    }
}

/// A string literal's text with its escapes; `bare`: without the quotes
/// (a piece of a `States.Format` template).
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str, bare: bool) -> fmt::Result {
    use fmt::Write as _;
    if !bare {
        f.write_char('\'')?;
    }
    for c in s.chars() {
        if matches!(c, '\'' | '\\' | '{' | '}') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    if !bare {
        f.write_char('\'')?;
    }
    Ok(())
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
        let mut pieces = Vec::new();
        let mut current = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                '{' if chars.peek() == Some(&'}') => {
                    chars.next();
                    pieces.push(std::mem::take(&mut current));
                }
                c => current.push(c),
            }
        }
        pieces.push(current);
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
#[error("{message}")]
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
                Path::parse(text).map(Arg::Path).map_err(|e| {
                    let e = e.shifted(start);
                    IntrinsicError::new(e.offset().unwrap_or(start), e.to_string())
                })
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
                format!(
                    "'{text}' is not a number: write an integer such as -1 or a decimal such as 2.5"
                ),
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
            Expect::False => "false (AWS Step Functions only supports shallow merging)".to_owned(),
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
            format!(
                "{name} takes {min} argument{} ({summary}), but {given}",
                plural(min)
            )
        }
        (min, Some(max)) => {
            format!("{name} takes {min} or {max} arguments ({summary}), but {given}")
        }
        (min, None) => format!(
            "{name} takes at least {min} argument{} ({summary}), but {given}",
            plural(min)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::PathRoot;
    use serde_json::json;

    fn call(source: &str) -> IntrinsicCall {
        match parse(source) {
            Ok(call) => call,
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    fn error(source: &str) -> IntrinsicError {
        match parse(source) {
            Ok(call) => panic!("{source:?} should not parse, but gave {call:?}"),
            Err(e) => e,
        }
    }

    fn path(source: &str) -> Arg {
        match Path::parse(source) {
            Ok(path) => Arg::Path(path),
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    fn literal(value: Value) -> Arg {
        Arg::Literal(value)
    }

    fn nested(function: Intrinsic, args: Vec<Arg>) -> Arg {
        Arg::Call(IntrinsicCall { function, args })
    }

    /// The calls recorded from AWS test definitions, as written there.
    const AWS_RECORDED: [&str; 8] = [
        "States.Array($.FunctionInput.fst, $.FunctionInput.snd)",
        "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
        "States.Format('Hello {}, welcome to {}!', $name, $place)",
        "States.JsonMerge(States.StringToJson('{\"constant_in_literal\": \"false\"}'), $$.Execution.Input.input_field, false)",
        "States.StringSplit('Hello\nWorld', '\n')",
        "States.UUID()",
        "States.MathAdd($.Iterations, -1)",
        "States.Hash($.inputString, 'SHA-256')",
    ];

    #[test]
    fn aws_recorded_calls_parse() {
        for source in AWS_RECORDED {
            call(source);
        }
        assert_eq!(
            call(AWS_RECORDED[0]),
            IntrinsicCall {
                function: Intrinsic::Array,
                args: vec![path("$.FunctionInput.fst"), path("$.FunctionInput.snd")],
            }
        );
        let split = || {
            nested(
                Intrinsic::StringSplit,
                vec![path("$$.StateMachine.Name"), literal(json!("-"))],
            )
        };
        assert_eq!(
            call(AWS_RECORDED[1]),
            IntrinsicCall {
                function: Intrinsic::ArrayGetItem,
                args: vec![
                    split(),
                    nested(
                        Intrinsic::MathAdd,
                        vec![
                            nested(Intrinsic::ArrayLength, vec![split()]),
                            literal(json!(-1))
                        ]
                    ),
                ],
            }
        );
        let format = call(AWS_RECORDED[2]);
        assert_eq!(format.function, Intrinsic::Format);
        let Arg::FormatTemplate(template) = &format.args[0] else {
            panic!("the template is kept split: {format:?}");
        };
        assert_eq!(template.pieces(), ["Hello ", ", welcome to ", "!"]);
        assert_eq!(template.placeholders(), 2);
        assert_eq!(&format.args[1..], [path("$name"), path("$place")]);
        let Arg::Path(name) = &format.args[1] else {
            panic!("a path");
        };
        assert_eq!(name.root(), &PathRoot::Variable("name".to_owned()));
        assert_eq!(
            call(AWS_RECORDED[3]),
            IntrinsicCall {
                function: Intrinsic::JsonMerge,
                args: vec![
                    nested(
                        Intrinsic::StringToJson,
                        vec![literal(json!("{\"constant_in_literal\": \"false\"}"))]
                    ),
                    path("$$.Execution.Input.input_field"),
                    literal(json!(false)),
                ],
            }
        );
        assert_eq!(
            call(AWS_RECORDED[4]).args,
            [literal(json!("Hello\nWorld")), literal(json!("\n"))]
        );
        assert_eq!(
            call(AWS_RECORDED[5]),
            IntrinsicCall {
                function: Intrinsic::Uuid,
                args: vec![]
            }
        );
        assert_eq!(
            call(AWS_RECORDED[6]).args,
            [path("$.Iterations"), literal(json!(-1))]
        );
        assert_eq!(
            call(AWS_RECORDED[7]).args,
            [path("$.inputString"), literal(json!("SHA-256"))]
        );
    }

    #[test]
    fn aws_documentation_examples_parse() {
        for source in [
            "States.Format('Hello, my name is {}.', $.name)",
            "States.Format($.template, $.name)",
            "States.Format('Your name is {}, we are in the year {}', $.name, 2020)",
            "States.StringToJson($.escapedJsonString)",
            "States.JsonToString($.unescapedJson)",
            "States.Array($.Id)",
            "States.Array('Foo', 2020, $.someJson, null)",
            "States.Array()",
            "States.ArrayPartition($.inputArray,4)",
            "States.ArrayContains($.inputArray, $.lookingFor)",
            "States.ArrayRange(1, 9, 2)",
            "States.ArrayGetItem($.inputArray, $.index)",
            "States.ArrayLength($.inputArray)",
            "States.ArrayUnique($.inputArray)",
            "States.Base64Encode($.input)",
            "States.Base64Decode($.base64)",
            "States.Hash($.Data, $.Algorithm)",
            "States.JsonMerge($.json1, $.json2, false)",
            "States.MathRandom($.start, $.end)",
            "States.MathRandom(1, 999, 1234)",
            "States.MathAdd($.value1, $.step)",
            "States.StringSplit($.inputString, $.splitter)",
            "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))",
        ] {
            call(source);
        }
        // The guide's "nine nested intrinsic functions" example has three {}
        // but two values, which AWS's own rule ("as many remaining arguments
        // as there are occurrences of {}") forbids: refused with the reason.
        let e = error(
            "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))",
        );
        assert!(
            e.message
                .contains("has 3 placeholders {} but 2 values follow it"),
            "{e}"
        );
    }

    #[test]
    fn every_intrinsic_checks_its_arity() {
        let cases = [
            (
                "States.Format()",
                "States.Format takes at least 1 argument (a template string, then one value for each {}), but none were given",
            ),
            (
                "States.StringToJson()",
                "States.StringToJson takes 1 argument (the JSON text to parse), but none were given",
            ),
            (
                "States.JsonToString($.a, $.b)",
                "States.JsonToString takes 1 argument (the path of the value to serialize), but 2 were given",
            ),
            (
                "States.ArrayPartition($.a)",
                "States.ArrayPartition takes 2 arguments (array, chunk size), but 1 was given",
            ),
            (
                "States.ArrayContains($.a)",
                "States.ArrayContains takes 2 arguments (array, value to look for), but 1 was given",
            ),
            (
                "States.ArrayRange(1, 9)",
                "States.ArrayRange takes 3 arguments (start, end, step), but 2 were given",
            ),
            (
                "States.ArrayGetItem($.a)",
                "States.ArrayGetItem takes 2 arguments (array, index), but 1 was given",
            ),
            (
                "States.ArrayLength($.a, $.b)",
                "States.ArrayLength takes 1 argument (the array), but 2 were given",
            ),
            (
                "States.ArrayUnique()",
                "States.ArrayUnique takes 1 argument (the array), but none were given",
            ),
            (
                "States.Base64Encode('a', 'b')",
                "States.Base64Encode takes 1 argument (the string to encode), but 2 were given",
            ),
            (
                "States.Base64Decode()",
                "States.Base64Decode takes 1 argument (the Base64 string to decode), but none were given",
            ),
            (
                "States.Hash($.a)",
                "States.Hash takes 2 arguments (data, algorithm), but 1 was given",
            ),
            (
                "States.JsonMerge($.a, $.b)",
                "States.JsonMerge takes 3 arguments (first object, second object, false), but 2 were given",
            ),
            (
                "States.MathRandom(1)",
                "States.MathRandom takes 2 or 3 arguments (start, end and an optional seed), but 1 was given",
            ),
            (
                "States.MathRandom(1, 2, 3, 4)",
                "States.MathRandom takes 2 or 3 arguments (start, end and an optional seed), but 4 were given",
            ),
            (
                "States.MathAdd(1)",
                "States.MathAdd takes 2 arguments (value, value to add), but 1 was given",
            ),
            (
                "States.StringSplit('a')",
                "States.StringSplit takes 2 arguments (string, delimiters), but 1 was given",
            ),
            (
                "States.UUID(1)",
                "States.UUID takes no arguments, but 1 was given",
            ),
        ];
        for (source, message) in cases {
            assert_eq!(
                error(source),
                IntrinsicError {
                    offset: 0,
                    message: message.to_owned()
                },
                "{source}"
            );
        }
        // States.Array takes any number of arguments.
        assert_eq!(call("States.Array()").args.len(), 0);
        assert_eq!(call("States.Array(1, 2, 3, 4, 5, 6, 7)").args.len(), 7);
        // A nested call's error points at the nested call.
        let e = error("States.Array(States.MathAdd(1))");
        assert_eq!(e.offset, 13);
        assert_eq!(
            e.to_string(),
            "States.MathAdd takes 2 arguments (value, value to add), but 1 was given"
        );
    }

    #[test]
    fn literal_argument_types_are_checked() {
        let cases = [
            (
                "States.ArrayRange(1, 'x', 1)",
                21,
                "the second argument of States.ArrayRange (end) must be an integer, but the string 'x' was given",
            ),
            (
                "States.ArrayRange(1, 9, 0)",
                24,
                "the third argument of States.ArrayRange (step) must be a non-zero integer, but the number 0 was given",
            ),
            (
                "States.ArrayRange(1.5, 9, 1)",
                18,
                "the first argument of States.ArrayRange (start) must be an integer, but the number 1.5 was given",
            ),
            (
                "States.ArrayPartition($.a, 0)",
                27,
                "the second argument of States.ArrayPartition (chunk size) must be an integer greater than 0, but the number 0 was given",
            ),
            (
                "States.ArrayGetItem($.a, -1)",
                25,
                "the second argument of States.ArrayGetItem (index) must be an integer of 0 or more, but the number -1 was given",
            ),
            (
                "States.ArrayLength('abc')",
                19,
                "the first argument of States.ArrayLength (array) must be an array, given by a path or a call such as States.Array(...) (there are no array literals), but the string 'abc' was given",
            ),
            (
                "States.Hash($.a, 'SHA256')",
                17,
                "the second argument of States.Hash (algorithm) must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, but the string 'SHA256' was given",
            ),
            (
                "States.JsonMerge($.a, $.b, true)",
                27,
                "the third argument of States.JsonMerge (deep merge) must be false (AWS Step Functions only supports shallow merging), but true was given",
            ),
            (
                "States.JsonMerge(null, $.b, false)",
                17,
                "the first argument of States.JsonMerge (first object) must be an object, given by a path or a call such as States.StringToJson(...) (there are no object literals), but null was given",
            ),
            (
                "States.MathAdd('1', 2)",
                15,
                "the first argument of States.MathAdd (value) must be an integer, but the string '1' was given",
            ),
            (
                "States.MathRandom(1, 10, 'seed')",
                25,
                "the third argument of States.MathRandom (seed) must be an integer, but the string 'seed' was given",
            ),
            (
                "States.StringSplit(1, ',')",
                19,
                "the first argument of States.StringSplit (string) must be a string, but the number 1 was given",
            ),
            (
                "States.StringToJson(true)",
                20,
                "the first argument of States.StringToJson (JSON text) must be a string, but true was given",
            ),
            (
                "States.JsonToString('x')",
                20,
                "the first argument of States.JsonToString (value) must be a path to the value (or a call), not a literal, but the string 'x' was given",
            ),
            (
                "States.Format(1)",
                14,
                "the first argument of States.Format (template) must be a string, but the number 1 was given",
            ),
            (
                "States.Format(States.Array())",
                14,
                "the first argument of States.Format (template) must be a string in single quotes or a path, not a call",
            ),
        ];
        for (source, offset, message) in cases {
            assert_eq!(
                error(source),
                IntrinsicError {
                    offset,
                    message: message.to_owned()
                },
                "{source}"
            );
        }
        let long = format!("States.Base64Encode('{}')", "a".repeat(10_001));
        assert!(error(&long).message.contains("at most 10000 characters"));
        call(&format!("States.Base64Encode('{}')", "é".repeat(10_000)));
        for algorithm in HASH_ALGORITHMS {
            call(&format!("States.Hash('data', '{algorithm}')"));
        }
        // Paths and calls are checked at run time, not here.
        call("States.ArrayRange($.a, States.MathAdd($.b, 1), $.c)");
        call("States.JsonMerge($.a, $.b, $.deep)");
    }

    #[test]
    fn array_range_is_limited_to_1000_items() {
        call("States.ArrayRange(1, 1000, 1)");
        call("States.ArrayRange(1000, 1, -1)");
        call("States.ArrayRange(1, 9, -1)");
        let e = error("States.ArrayRange(0, 1000, 1)");
        assert_eq!(
            e.message,
            "States.ArrayRange(0, 1000, 1) would create 1001 items; AWS Step Functions allows at most 1000"
        );
        let e = error("States.ArrayRange(-9223372036854775808, 9223372036854775807, 1)");
        assert!(e.message.contains("18446744073709551616 items"), "{e}");
    }

    #[test]
    fn string_literals_and_their_escapes() {
        assert_eq!(
            call(r"States.Array('It\'s')").args,
            [literal(json!("It's"))]
        );
        assert_eq!(call(r"States.Array('a\\b')").args, [literal(json!("a\\b"))]);
        assert_eq!(call(r"States.Array('\{\}')").args, [literal(json!("{}"))]);
        assert_eq!(call(r"States.Array('')").args, [literal(json!(""))]);
        assert_eq!(call("States.Array('a,b)')").args, [literal(json!("a,b)"))]);
        assert_eq!(
            call("States.Array('tab\there é😀')").args,
            [literal(json!("tab\there é😀"))]
        );
        let e = error(r"States.Array('a\nb')");
        assert_eq!(e.offset, 15);
        assert!(
            e.message
                .contains("a backslash may only start \\', \\{, \\} or \\\\"),
            "{e}"
        );
        assert_eq!(error(r#"States.Array('a\")"#).offset, 15);
        let e = error("States.Array('abc");
        assert_eq!(e.offset, 13);
        assert!(e.message.starts_with("this string is never closed"), "{e}");
        let e = error("States.Array(\"abc\")");
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("single quotes"), "{e}");
    }

    #[test]
    fn format_templates_keep_escaped_braces_as_text() {
        let template = |source: &str| match call(source).args.first() {
            Some(Arg::FormatTemplate(t)) => t.clone(),
            other => panic!("{source}: expected a template, got {other:?}"),
        };
        let t = template(r"States.Format('\{\} {} \\ \'', $.a)");
        assert_eq!(t.pieces(), ["{} ", " \\ '"]);
        assert_eq!(t.placeholders(), 1);
        assert_eq!(template(r"States.Format('\{}')").pieces(), ["{}"]);
        assert_eq!(template(r"States.Format('{\}')").pieces(), ["{}"]);
        assert_eq!(
            template("States.Format('{}{}', 1, 2)").pieces(),
            ["", "", ""]
        );
        // Lone braces are text.
        assert_eq!(template("States.Format('{ } {')").placeholders(), 0);
        assert_eq!(
            template("States.Format('{\"a\": {}}', 1)").pieces(),
            ["{\"a\": ", "}"]
        );
        let e = error("States.Format('{} and {}', $.a)");
        assert_eq!(e.offset, 0);
        assert!(
            e.message.starts_with(
                "the template of States.Format has 2 placeholders {} but 1 value follows it"
            ),
            "{e}"
        );
        let e = error("States.Format('no placeholder', $.a)");
        assert!(
            e.message
                .contains("has 0 placeholders {} but 1 value follows"),
            "{e}"
        );
        // A template from a path is split at run time; only {} counts.
        let t = FormatString::from_runtime(r"Hello \{}, {}");
        assert_eq!(t.pieces(), ["Hello \\", ", ", ""]);
        assert_eq!(FormatString::from_runtime("none").placeholders(), 0);
    }

    #[test]
    fn numbers_and_keywords() {
        assert_eq!(
            call("States.Array(0, -1, 2.5, -0.5, 1e3, 12345678901234567890, true, false, null)")
                .args,
            [
                literal(json!(0)),
                literal(json!(-1)),
                literal(json!(2.5)),
                literal(json!(-0.5)),
                literal(json!(1000.0)),
                literal(json!(12345678901234567890u64)),
                literal(json!(true)),
                literal(json!(false)),
                literal(Value::Null),
            ]
        );
        for (source, offset) in [
            ("States.Array(01)", 13),
            ("States.Array(1.2.3)", 13),
            ("States.Array(-)", 13),
            ("States.Array(1.)", 13),
            ("States.Array(+1)", 13),
            ("States.Array(truex)", 13),
            ("States.Array(True)", 13),
        ] {
            assert_eq!(error(source).offset, offset, "{source}");
        }
        assert!(
            error("States.Array(1.2.3)")
                .message
                .contains("'1.2.3' is not a number")
        );
        assert!(
            error("States.Array(True)")
                .message
                .starts_with("unexpected 'True'")
        );
    }

    #[test]
    fn path_arguments_end_at_a_comma_or_parenthesis_outside_brackets() {
        assert_eq!(
            call("States.Array($['a, b'], $.a[?(@.b == 1)], $$.x, $var.y[0], $)").args,
            [
                path("$['a, b']"),
                path("$.a[?(@.b == 1)]"),
                path("$$.x"),
                path("$var.y[0]"),
                path("$"),
            ]
        );
        assert_eq!(
            call("States.Array($['it\\'s)'])").args,
            [path("$['it\\'s)']")]
        );
        // Path errors point into the whole call.
        let e = error("States.Array($.a[-1])");
        assert_eq!(e.offset, 17);
        assert!(
            e.message.starts_with("negative index -1 at offset 17"),
            "{e}"
        );
        let e = error("States.Array($.a b)");
        assert_eq!(e.offset, 17);
        // The ')' is inside the unclosed bracket, so it belongs to the path.
        let e = error("States.Array($.a[)");
        assert_eq!(e.offset, 17);
        assert!(
            e.message
                .starts_with("unexpected character ')' at offset 17"),
            "{e}"
        );
    }

    #[test]
    fn whitespace_between_tokens_is_allowed() {
        let expected = call("States.Array(1,'a',$.x)");
        for source in [
            "States.Array( 1 , 'a' ,$.x )",
            "States.Array (1, 'a', $.x)",
            "States.Array(\n\t1,\n\t'a',\n\t$.x\n)",
        ] {
            assert_eq!(call(source), expected, "{source}");
        }
        call("States.UUID( )");
    }

    #[test]
    fn syntax_errors_are_explained() {
        let cases = [
            ("States.Array(1,)", 15, "an argument is missing here"),
            ("States.Array(,1)", 13, "an argument is missing here"),
            (
                "States.Array(1 2)",
                15,
                "expected ',' or ')' after an argument of States.Array, but found '2'",
            ),
            (
                "States.Array(1",
                14,
                "expected ',' or ')' after an argument of States.Array, but found the end of the text",
            ),
            (
                "States.Array",
                12,
                "expected '(' after States.Array, but found the end of the text",
            ),
            (
                "States.Array[1]",
                12,
                "expected '(' after States.Array, but found '['",
            ),
            (
                "States.Array(1))",
                15,
                "unexpected ')' after the end of the call",
            ),
            (
                "States.Array() x",
                15,
                "unexpected 'x' after the end of the call",
            ),
            (
                "States.Array(foo)",
                13,
                "unexpected 'foo': an argument is a string in single quotes",
            ),
            ("States.Array(@)", 13, "unexpected '@': an argument is"),
            (
                "Array(1)",
                0,
                "an intrinsic function call starts with 'States.'",
            ),
            (
                " States.Array()",
                0,
                "an intrinsic function call starts with 'States.'",
            ),
            ("States.(1)", 0, "unknown intrinsic function 'States.'"),
        ];
        for (source, offset, start) in cases {
            let e = error(source);
            assert_eq!(e.offset, offset, "{source}: {e}");
            assert!(e.message.starts_with(start), "{source}: {e}");
        }
    }

    #[test]
    fn unknown_functions_list_the_valid_names() {
        let e = error("States.Foo(1)");
        assert_eq!(e.offset, 0);
        assert!(e.message.starts_with("unknown intrinsic function 'States.Foo'; the intrinsic functions are States.Format, States.StringToJson"), "{e}");
        assert!(
            e.message.ends_with("States.StringSplit, States.UUID"),
            "{e}"
        );
        let e = error("States.Array(States.format('x'))");
        assert_eq!(e.offset, 13);
        assert!(
            e.message
                .contains("(did you mean States.Format? names are case-sensitive)"),
            "{e}"
        );
        assert!(
            error("States.Uuid()")
                .message
                .contains("did you mean States.UUID?")
        );
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(Intrinsic::ALL.len(), 18);
        for function in Intrinsic::ALL {
            assert_eq!(Intrinsic::from_name(function.name()), Some(function));
            assert_eq!(function.to_string(), function.name());
        }
        assert_eq!(Intrinsic::from_name("States.format"), None);
        assert_eq!(Intrinsic::from_name("Format"), None);
    }

    #[test]
    fn looks_like_call_tells_calls_from_paths() {
        for s in [
            "States.Format('x')",
            "States.UUID()",
            "States.Foo(",
            "States.Format ('x')",
        ] {
            assert!(looks_like_call(s), "{s}");
        }
        for s in [
            "$.a",
            "States.",
            "States.(",
            "States.Format",
            "states.Format()",
            "MyStates.Format()",
            "",
        ] {
            assert!(!looks_like_call(s), "{s}");
        }
    }

    #[test]
    fn nesting_and_length_are_bounded() {
        let nest = |depth: usize| format!("{}{}", "States.Array(".repeat(depth), ")".repeat(depth));
        call(&nest(MAX_NESTING));
        let e = error(&nest(MAX_NESTING + 1));
        assert_eq!(e.offset, 13 * MAX_NESTING);
        assert!(
            e.message.contains("at most 10 nested intrinsic functions"),
            "{e}"
        );
        // Deep input is refused without exhausting the stack.
        assert_eq!(error(&nest(50_000)).offset, 13 * MAX_NESTING);
        let long = format!("States.Array('{}')", "a".repeat(MAX_SOURCE_LEN));
        let e = error(&long);
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("bytes long"), "{e}");
    }

    #[test]
    fn no_prefix_or_suffix_of_a_call_panics() {
        for source in AWS_RECORDED
            .iter()
            .copied()
            .chain([r"States.Format('\{é😀\} {}', $['x\'y'][?(@.a == ')')], -1.5e3)"])
        {
            for (end, _) in source.char_indices() {
                let _ = parse(&source[..end]);
                let _ = parse(&source[end..]);
                let _ = looks_like_call(&source[..end]);
            }
        }
    }

    #[test]
    fn calls_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IntrinsicCall>();
        assert_send_sync::<IntrinsicError>();
    }
}
