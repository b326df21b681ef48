//! JSONPath paths as the Amazon States Language uses them: `InputPath`,
//! `OutputPath`, `ItemsPath`, Choice `Variable`, the `"key.$"` fields of
//! payload templates and the path arguments of intrinsic functions.
//!
//! A path is parsed once, when a definition is validated, into a [`Path`].
//! A *definite* path (only member names and array indexes, such as
//! `$.order.items[0].sku`) compiles into a list of [`Segment`]s that is
//! evaluated with direct map and vector lookups: this is the interpreter's hot
//! path. Any other path (wildcards, slices, unions, filters, `..`) is handed,
//! rewritten into RFC 9535 form, to `jsonpath-rust`, and selects a list.
//!
//! This module also owns the segment parser that [`crate::query::reference`]
//! shares, so that both kinds of path accept exactly the same spelling of a
//! name or an index.
//!
//! # Syntax accepted, and where it differs from RFC 9535
//!
//! AWS evaluates paths with Jayway JsonPath, which is more lenient than RFC
//! 9535. The AWS guide asks for bracket notation for any name outside the
//! RFC's `member-name-shorthand`, yet Step Functions accepts `$.detail-type`
//! in `Parameters` (EventBridge events depend on it). We therefore accept, after
//! a `.`, any run of characters except whitespace, control characters and
//! `. [ ] ( ) ' " , * ? @ \`: `$.my-key`, `$.1st`, `$.aws:SourceArn` all name
//! a member. Such names are re-quoted (`$['my-key']`) before an indefinite path
//! reaches `jsonpath-rust`. Also as Jayway: `.` may be followed by a bracket
//! (`$.abc.['def ghi']`, the form the AWS guide itself uses), names may be
//! quoted with `'` or `"`, and whitespace is allowed inside brackets.
//!
//! Rejected at definition time, with a message saying what to write instead:
//! - negative indexes (`$.a[-1]`): Jayway resolves them, but AWS Step
//!   Functions reports the path as not found at run time, so such a path can
//!   never work; a slice (`$.a[-1:]`) can;
//! - Jayway script expressions (`$.a[(@.length-1)]`), which RFC 9535 dropped.
//!
//! Filters (`[?(@.price < 10)]`) follow RFC 9535 semantics, as implemented by
//! `jsonpath-rust`; Jayway-only operators such as `=~` or `subsetof` are
//! rejected when the definition is validated. A multi-name union such as
//! `$['a','b']` selects a list of the values, as RFC 9535 says (Jayway builds
//! an object instead).
//!
//! Nothing here does I/O.

use std::borrow::Cow;
use std::fmt;

use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value;

/// The largest index or slice bound accepted: 2^53 - 1, the largest integer
/// that JSON numbers (and RFC 9535) represent exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Which value a path is evaluated against; the caller supplies that value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathRoot {
    /// `$`: the state input (or, inside a payload template, the effective
    /// input the template is applied to).
    Input,
    /// `$$`: the context object (`$$.Execution.Input`, `$$.Map.Item.Value`).
    Context,
    /// `$name`: the value of the workflow variable `name`.
    Variable(String),
}

/// One step of a definite path: a member name or an array index.
///
/// Definite [`Path`]s and every [`crate::query::ReferencePath`] are lists of
/// segments, evaluated by [`lookup`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// `.name` or `['name']`: the member of an object.
    Name(String),
    /// `[3]`: the element of an array at this zero-based position.
    Index(usize),
}

/// A parsed and compiled ASL path, such as `$.items[0].id`,
/// `$$.Execution.Input` or `$myVar.field`.
#[derive(Clone)]
pub struct Path {
    /// The text as written in the definition, for messages and history.
    source: String,
    root: PathRoot,
    compiled: Compiled,
}

/// How a path is evaluated.
#[derive(Clone)]
enum Compiled {
    /// Direct lookups: the fast path for the common case.
    Definite(Vec<Segment>),
    /// A query for `jsonpath-rust`, rooted at `$` whatever the ASL root was.
    /// Boxed because a `JpQuery` is much larger than a vector.
    Query(Box<JpQuery>),
}

/// Why a string is not a valid path. Offsets are byte offsets into the path
/// text (into the whole intrinsic call when the path is one of its arguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The string is empty.
    #[error("a path must not be empty: write '$' for the whole input")]
    Empty,
    /// The string does not start with `$`.
    #[error("a path must start with '$', but this one starts with '{found}'")]
    MissingRoot {
        /// The first character of the string.
        found: char,
    },
    /// A character that cannot appear where it was found.
    #[error("unexpected character '{found}' at offset {offset}: {expected}")]
    Unexpected {
        /// Where the character is.
        offset: usize,
        /// The character.
        found: char,
        /// What could have been written there.
        expected: &'static str,
    },
    /// The text stops in the middle of a step.
    #[error("the path ends too early at offset {offset}: {expected}")]
    UnexpectedEnd {
        /// The length of the text.
        offset: usize,
        /// What is missing.
        expected: &'static str,
    },
    /// `$` is followed by something that is not a valid variable name.
    #[error("invalid variable name at offset {offset}: {reason}")]
    InvalidVariable {
        /// Where the name starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A quoted name without its closing quote.
    #[error("the quoted name starting at offset {offset} is never closed: add the closing quote")]
    UnterminatedString {
        /// Where the opening quote is.
        offset: usize,
    },
    /// A backslash sequence that a quoted name cannot contain.
    #[error("invalid escape sequence at offset {offset}: {reason}")]
    InvalidEscape {
        /// Where the backslash is.
        offset: usize,
        /// What is wrong with the sequence.
        reason: &'static str,
    },
    /// An index or slice bound too large to be exact.
    #[error("the number at offset {offset} is too large: indexes go up to {MAX_SAFE_INTEGER}")]
    NumberOutOfRange {
        /// Where the number starts.
        offset: usize,
    },
    /// `[-1]` and friends: AWS never resolves them.
    #[error(
        "negative index {index} at offset {offset}: AWS Step Functions never finds a value at a \
         negative index; to select the last element use a slice such as [-1:], which gives a \
         one-element list"
    )]
    NegativeIndex {
        /// Where the index starts.
        offset: usize,
        /// The index as written.
        index: i64,
    },
    /// A Jayway script expression such as `[(@.length-1)]`.
    #[error(
        "script expressions such as [(@.length-1)] are not supported (offset {offset}): use a \
         slice such as [-1:], or the intrinsic functions States.ArrayGetItem and \
         States.ArrayLength"
    )]
    ScriptExpression {
        /// Where the `(` is.
        offset: usize,
    },
    /// A filter that `jsonpath-rust` (RFC 9535) cannot parse.
    #[error("the filter at offset {offset} is not supported: {reason}")]
    UnsupportedFilter {
        /// Where the `?` is.
        offset: usize,
        /// The parser's explanation.
        reason: String,
    },
    /// A step that could select several values, in a reference path.
    #[error(
        "{what} at offset {offset} is not allowed in a reference path, which must name exactly \
         one value: use only .name, ['name'] and [index]"
    )]
    NotReference {
        /// Where the step starts.
        offset: usize,
        /// Which construct it is, e.g. "the wildcard '*'".
        what: &'static str,
    },
    /// A reference path rooted at `$$` or at a variable.
    #[error("a reference path must start with '$' (the state input): {what} cannot be used here")]
    ReferenceRoot {
        /// Which root was written, e.g. "the context object '$$'".
        what: &'static str,
    },
    /// The rewritten query was refused although every step was checked: a bug.
    #[error("the path could not be compiled (please report this): {reason}")]
    Compile {
        /// The query parser's explanation.
        reason: String,
    },
}

impl PathError {
    /// The byte offset the error points at, when there is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            PathError::Empty
            | PathError::MissingRoot { .. }
            | PathError::ReferenceRoot { .. }
            | PathError::Compile { .. } => None,
            PathError::Unexpected { offset, .. }
            | PathError::UnexpectedEnd { offset, .. }
            | PathError::InvalidVariable { offset, .. }
            | PathError::UnterminatedString { offset }
            | PathError::InvalidEscape { offset, .. }
            | PathError::NumberOutOfRange { offset }
            | PathError::NegativeIndex { offset, .. }
            | PathError::ScriptExpression { offset }
            | PathError::UnsupportedFilter { offset, .. }
            | PathError::NotReference { offset, .. } => Some(*offset),
        }
    }

    /// The same error with its offset moved by `delta`: used when the path is
    /// embedded in a larger text, such as an intrinsic function call.
    pub(crate) fn shifted(mut self, delta: usize) -> PathError {
        match &mut self {
            PathError::Empty
            | PathError::MissingRoot { .. }
            | PathError::ReferenceRoot { .. }
            | PathError::Compile { .. } => {}
            PathError::Unexpected { offset, .. }
            | PathError::UnexpectedEnd { offset, .. }
            | PathError::InvalidVariable { offset, .. }
            | PathError::UnterminatedString { offset }
            | PathError::InvalidEscape { offset, .. }
            | PathError::NumberOutOfRange { offset }
            | PathError::NegativeIndex { offset, .. }
            | PathError::ScriptExpression { offset }
            | PathError::UnsupportedFilter { offset, .. }
            | PathError::NotReference { offset, .. } => *offset += delta,
        }
        self
    }
}

impl Path {
    /// Parses and compiles a path. See the module documentation for the
    /// accepted syntax.
    pub fn parse(source: &str) -> Result<Path, PathError> {
        let (root, start) = parse_root(source)?;
        let steps = parse_steps(source, start)?;
        let compiled = if steps.iter().all(Step::is_definite) {
            Compiled::Definite(steps.into_iter().filter_map(Step::into_segment).collect())
        } else {
            Compiled::Query(Box::new(compile_query(&steps)?))
        };
        Ok(Path {
            source: source.to_owned(),
            root,
            compiled,
        })
    }

    /// The path as written in the definition.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Which value the path must be evaluated against.
    pub fn root(&self) -> &PathRoot {
        &self.root
    }

    /// True when the path can select at most one value: only names and
    /// indexes, no wildcard, slice, filter, union or `..`. AWS gives a definite
    /// path's value as it is and an indefinite path's matches as an array.
    pub fn is_definite(&self) -> bool {
        matches!(self.compiled, Compiled::Definite(_))
    }

    /// The steps of a definite path (empty for `$`), or `None` for an
    /// indefinite one.
    pub fn segments(&self) -> Option<&[Segment]> {
        match &self.compiled {
            Compiled::Definite(segments) => Some(segments),
            Compiled::Query(_) => None,
        }
    }

    /// Evaluates the path against the value of its root (the caller passes the
    /// input, the context object or the variable's value, see [`Path::root`]).
    ///
    /// A definite path borrows the value it names, or gives `None` when there
    /// is none. An indefinite path always gives an owned array of its matches,
    /// possibly empty.
    pub fn select<'v>(&self, root_value: &'v Value) -> Option<Cow<'v, Value>> {
        match &self.compiled {
            Compiled::Definite(segments) => lookup(segments, root_value).map(Cow::Borrowed),
            Compiled::Query(query) => {
                let matches = jsonpath_rust::query::js_path_process(query, root_value)
                    .map(|found| found.into_iter().map(|m| m.val.clone()).collect())
                    // Only a query whose result is a computed value (never the
                    // case for a path) can fail here; treat it as no match.
                    .unwrap_or_default();
                Some(Cow::Owned(Value::Array(matches)))
            }
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({:?})", self.source)
    }
}

/// Two paths are equal when they are written the same way.
impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Path {}

/// Follows `segments` from `value`: the evaluation of a definite path.
/// `None` when a member or an index is missing, or when a step meets a value
/// of the wrong kind (a name applied to an array, for instance).
pub fn lookup<'v>(segments: &[Segment], value: &'v Value) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(value, |current, segment| match segment {
            Segment::Name(name) => current.as_object()?.get(name),
            Segment::Index(index) => current.as_array()?.get(*index),
        })
}

/// Writes `segments` the way a person would: `$.a.b[0]['my key']`. Used in
/// messages, so that they show where along a path something went wrong.
pub(crate) fn render_segments(segments: &[Segment]) -> String {
    let mut out = String::from("$");
    for segment in segments {
        match segment {
            Segment::Name(name) if is_plain_identifier(name) => {
                out.push('.');
                out.push_str(name);
            }
            Segment::Name(name) => {
                out.push('[');
                push_quoted(&mut out, name);
                out.push(']');
            }
            Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Reads the root (`$`, `$$` or `$name`); returns it and where the steps start.
fn parse_root(source: &str) -> Result<(PathRoot, usize), PathError> {
    let mut chars = source.chars();
    match chars.next() {
        None => return Err(PathError::Empty),
        Some('$') => {}
        Some(found) => return Err(PathError::MissingRoot { found }),
    }
    match chars.next() {
        Some('$') => Ok((PathRoot::Context, 2)),
        Some(c) if c.is_alphabetic() || c == '_' => {
            let len: usize = source[1..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .map(char::len_utf8)
                .sum();
            let name = &source[1..1 + len];
            Ok((PathRoot::Variable(name.to_owned()), 1 + len))
        }
        Some(c) if c.is_ascii_digit() => Err(PathError::InvalidVariable {
            offset: 1,
            reason: "a variable name must start with a letter or '_'",
        }),
        _ => Ok((PathRoot::Input, 1)),
    }
}

/// One step of a path, as parsed, before it is compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    /// Where the step starts in the source, for messages.
    pub(crate) offset: usize,
    /// Whether the step is `..x` (searches every depth) rather than `.x`.
    pub(crate) descendant: bool,
    pub(crate) selector: Selector,
}

/// What a step selects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selector {
    Name(String),
    Index(usize),
    Wildcard,
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
    /// `['a', 'b']`, `[0, 2]`: two or more names or indexes.
    Union(Vec<Segment>),
    /// The text of a filter from its `?` to just before the closing `]`.
    Filter(String),
}

impl Step {
    /// True for `.name`, `['name']` and `[index]`.
    pub(crate) fn is_definite(&self) -> bool {
        !self.descendant && matches!(self.selector, Selector::Name(_) | Selector::Index(_))
    }

    /// The segment of a definite step, `None` for any other step.
    pub(crate) fn into_segment(self) -> Option<Segment> {
        if self.descendant {
            return None;
        }
        match self.selector {
            Selector::Name(name) => Some(Segment::Name(name)),
            Selector::Index(index) => Some(Segment::Index(index)),
            _ => None,
        }
    }

    /// Names the construct, for "not allowed here" messages.
    pub(crate) fn describe(&self) -> &'static str {
        if self.descendant {
            return "the descendant operator '..'";
        }
        match self.selector {
            Selector::Name(_) => "a member name",
            Selector::Index(_) => "an index",
            Selector::Wildcard => "the wildcard '*'",
            Selector::Slice { .. } => "a slice",
            Selector::Union(_) => "a list of several names or indexes",
            Selector::Filter(_) => "a filter",
        }
    }
}

/// Parses the steps of a path, starting at byte `start` of `source` (just
/// after the root). Shared by [`Path`] and [`crate::query::ReferencePath`].
pub(crate) fn parse_steps(source: &str, start: usize) -> Result<Vec<Step>, PathError> {
    let mut cursor = Cursor { source, pos: start };
    let mut steps = Vec::new();
    while let Some(c) = cursor.peek() {
        let offset = cursor.pos;
        match c {
            '.' => {
                cursor.bump();
                match cursor.peek() {
                    Some('.') => {
                        cursor.bump();
                        let selector = descendant_selector(&mut cursor)?;
                        steps.push(Step {
                            offset,
                            descendant: true,
                            selector,
                        });
                    }
                    Some(_) => {
                        let selector = dot_selector(&mut cursor)?;
                        steps.push(Step {
                            offset,
                            descendant: false,
                            selector,
                        });
                    }
                    None => {
                        return Err(PathError::UnexpectedEnd {
                            offset: cursor.pos,
                            expected: "a member name must follow '.'",
                        });
                    }
                }
            }
            '[' => {
                cursor.bump();
                let selector = bracket_selector(&mut cursor)?;
                steps.push(Step {
                    offset,
                    descendant: false,
                    selector,
                });
            }
            found => {
                return Err(PathError::Unexpected {
                    offset,
                    found,
                    expected: "expected '.', '[' or the end of the path (names with spaces or \
                               punctuation go in brackets: ['my name'])",
                });
            }
        }
    }
    Ok(steps)
}

/// A position in the path text. `pos` is always on a character boundary.
struct Cursor<'s> {
    source: &'s str,
    pos: usize,
}

impl Cursor<'_> {
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

    /// Consumes `expected`, or fails saying what was expected instead.
    fn expect(&mut self, expected: char, what: &'static str) -> Result<(), PathError> {
        match self.peek() {
            Some(c) if c == expected => {
                self.bump();
                Ok(())
            }
            Some(found) => Err(PathError::Unexpected {
                offset: self.pos,
                found,
                expected: what,
            }),
            None => Err(PathError::UnexpectedEnd {
                offset: self.pos,
                expected: what,
            }),
        }
    }
}

/// A character allowed in a name written after `.` (see the module docs).
fn is_name_char(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(
            c,
            '.' | '[' | ']' | '(' | ')' | '\'' | '"' | ',' | '*' | '?' | '@' | '\\'
        )
}

/// After `.`: a name, `*`, or a bracket (`$.abc.['def ghi']`).
fn dot_selector(cursor: &mut Cursor<'_>) -> Result<Selector, PathError> {
    match cursor.peek() {
        Some('*') => {
            cursor.bump();
            Ok(Selector::Wildcard)
        }
        Some('[') => {
            cursor.bump();
            bracket_selector(cursor)
        }
        Some(c) if is_name_char(c) => Ok(Selector::Name(dot_name(cursor))),
        Some(found) => Err(PathError::Unexpected {
            offset: cursor.pos,
            found,
            expected: "expected a member name, '*' or '[' after '.' (names with spaces or \
                       punctuation go in brackets: ['my name'])",
        }),
        None => Err(PathError::UnexpectedEnd {
            offset: cursor.pos,
            expected: "a member name must follow '.'",
        }),
    }
}

/// After `..`: a name, `*` or a bracket.
fn descendant_selector(cursor: &mut Cursor<'_>) -> Result<Selector, PathError> {
    match cursor.peek() {
        Some('.') => Err(PathError::Unexpected {
            offset: cursor.pos,
            found: '.',
            expected: "expected a member name, '*' or '[' after '..'",
        }),
        _ => dot_selector(cursor),
    }
}

fn dot_name(cursor: &mut Cursor<'_>) -> String {
    let start = cursor.pos;
    while cursor.peek().is_some_and(is_name_char) {
        cursor.bump();
    }
    cursor.source[start..cursor.pos].to_owned()
}

/// After `[`: everything up to and including the matching `]`.
fn bracket_selector(cursor: &mut Cursor<'_>) -> Result<Selector, PathError> {
    const CLOSE: &str = "expected ']' to close the bracket, or ',' to add another name or index";
    cursor.skip_whitespace();
    let selector = match cursor.peek() {
        Some('?') => return filter_selector(cursor),
        Some('(') => {
            return Err(PathError::ScriptExpression { offset: cursor.pos });
        }
        Some('*') => {
            cursor.bump();
            cursor.skip_whitespace();
            cursor.expect(']', "expected ']' after '*'")?;
            return Ok(Selector::Wildcard);
        }
        Some('\'' | '"') => Segment::Name(quoted_name(cursor)?),
        Some(c) if c == '-' || c == ':' || c.is_ascii_digit() => {
            let offset = cursor.pos;
            let start = optional_integer(cursor)?;
            cursor.skip_whitespace();
            if cursor.peek() == Some(':') {
                return slice_rest(cursor, start);
            }
            match start {
                Some(index) => Segment::Index(non_negative(index, offset)?),
                None => {
                    // Only a lone '-' gets here.
                    return Err(PathError::Unexpected {
                        offset,
                        found: '-',
                        expected: "expected digits after '-'",
                    });
                }
            }
        }
        Some(found) => {
            return Err(PathError::Unexpected {
                offset: cursor.pos,
                found,
                expected: "expected a quoted name, an index, '*', a slice such as 1:3, or a \
                           filter such as ?(@.price < 10) after '['",
            });
        }
        None => {
            return Err(PathError::UnexpectedEnd {
                offset: cursor.pos,
                expected: "the bracket is never closed with ']'",
            });
        }
    };
    cursor.skip_whitespace();
    if cursor.peek() != Some(',') {
        cursor.expect(']', CLOSE)?;
        return Ok(match selector {
            Segment::Name(name) => Selector::Name(name),
            Segment::Index(index) => Selector::Index(index),
        });
    }
    let mut members = vec![selector];
    while cursor.peek() == Some(',') {
        cursor.bump();
        cursor.skip_whitespace();
        let offset = cursor.pos;
        let member = match cursor.peek() {
            Some('\'' | '"') => Segment::Name(quoted_name(cursor)?),
            Some(c) if c == '-' || c.is_ascii_digit() => match optional_integer(cursor)? {
                Some(index) => Segment::Index(non_negative(index, offset)?),
                None => {
                    return Err(PathError::Unexpected {
                        offset,
                        found: '-',
                        expected: "expected digits after '-'",
                    });
                }
            },
            Some(found) => {
                return Err(PathError::Unexpected {
                    offset,
                    found,
                    expected: "expected a quoted name or an index after ','",
                });
            }
            None => {
                return Err(PathError::UnexpectedEnd {
                    offset,
                    expected: "a quoted name or an index must follow ','",
                });
            }
        };
        members.push(member);
        cursor.skip_whitespace();
    }
    cursor.expect(']', CLOSE)?;
    Ok(Selector::Union(members))
}

fn non_negative(index: i64, offset: usize) -> Result<usize, PathError> {
    usize::try_from(index).map_err(|_| PathError::NegativeIndex { offset, index })
}

/// After the start of a slice, at the first `:`.
fn slice_rest(cursor: &mut Cursor<'_>, start: Option<i64>) -> Result<Selector, PathError> {
    cursor.bump(); // ':'
    cursor.skip_whitespace();
    let end = optional_integer(cursor)?;
    cursor.skip_whitespace();
    let mut step = None;
    if cursor.peek() == Some(':') {
        cursor.bump();
        cursor.skip_whitespace();
        step = optional_integer(cursor)?;
        cursor.skip_whitespace();
    }
    cursor.expect(']', "expected ']' to close the slice")?;
    Ok(Selector::Slice { start, end, step })
}

/// An optional `-?[0-9]+`. A lone `-` gives `None` with the `-` consumed.
fn optional_integer(cursor: &mut Cursor<'_>) -> Result<Option<i64>, PathError> {
    let offset = cursor.pos;
    let negative = cursor.peek() == Some('-');
    if negative {
        cursor.bump();
    }
    let digits_start = cursor.pos;
    while cursor.peek().is_some_and(|c| c.is_ascii_digit()) {
        cursor.bump();
    }
    let digits = &cursor.source[digits_start..cursor.pos];
    if digits.is_empty() {
        if negative {
            return match cursor.peek() {
                Some(found) => Err(PathError::Unexpected {
                    offset: cursor.pos,
                    found,
                    expected: "expected digits after '-'",
                }),
                None => Err(PathError::UnexpectedEnd {
                    offset: cursor.pos,
                    expected: "digits must follow '-'",
                }),
            };
        }
        return Ok(None);
    }
    let value = digits
        .parse::<i64>()
        .ok()
        .filter(|v| *v <= MAX_SAFE_INTEGER)
        .ok_or(PathError::NumberOutOfRange { offset })?;
    Ok(Some(if negative { -value } else { value }))
}

/// A name in single or double quotes, with the escapes of RFC 9535
/// (`\'`, `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX`).
fn quoted_name(cursor: &mut Cursor<'_>) -> Result<String, PathError> {
    let open = cursor.pos;
    let Some(quote) = cursor.bump() else {
        return Err(PathError::UnterminatedString { offset: open });
    };
    let mut name = String::new();
    loop {
        let escape_at = cursor.pos;
        match cursor.bump() {
            None => return Err(PathError::UnterminatedString { offset: open }),
            Some(c) if c == quote => return Ok(name),
            Some('\\') => {
                let escaped = match cursor.bump() {
                    Some(c @ ('\'' | '"' | '\\' | '/')) => c,
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('u') => unicode_escape(cursor, escape_at)?,
                    Some(_) => {
                        return Err(PathError::InvalidEscape {
                            offset: escape_at,
                            reason: "a backslash in a quoted name must start one of \\', \\\", \
                                     \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\uXXXX",
                        });
                    }
                    None => return Err(PathError::UnterminatedString { offset: open }),
                };
                name.push(escaped);
            }
            Some(c) => name.push(c),
        }
    }
}

/// After `\u`: four hex digits, and a second `\uXXXX` for a surrogate pair.
fn unicode_escape(cursor: &mut Cursor<'_>, escape_at: usize) -> Result<char, PathError> {
    const BAD: &str = "\\u must be followed by four hexadecimal digits naming a character \
                       (a surrogate pair as two escapes: \\uD83D\\uDE00)";
    let bad = || PathError::InvalidEscape {
        offset: escape_at,
        reason: BAD,
    };
    let high = hex4(cursor).ok_or_else(bad)?;
    if (0xD800..0xDC00).contains(&high) {
        if cursor.bump() != Some('\\') || cursor.bump() != Some('u') {
            return Err(bad());
        }
        let low = hex4(cursor).ok_or_else(bad)?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(bad());
        }
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        return char::from_u32(code).ok_or_else(bad);
    }
    char::from_u32(high).ok_or_else(bad)
}

fn hex4(cursor: &mut Cursor<'_>) -> Option<u32> {
    let mut value = 0;
    for _ in 0..4 {
        value = value * 16 + cursor.bump()?.to_digit(16)?;
    }
    Some(value)
}

/// At `?`: the filter text up to the `]` that closes the bracket, skipping
/// brackets, parentheses and quotes inside the filter.
fn filter_selector(cursor: &mut Cursor<'_>) -> Result<Selector, PathError> {
    let start = cursor.pos;
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    while let Some(c) = cursor.bump() {
        if let Some(q) = quote {
            if c == '\\' {
                cursor.bump();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' | '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ']' if depth > 0 => depth -= 1,
            ']' => {
                let text = cursor.source[start..cursor.pos - 1].trim_end();
                if text.len() == 1 {
                    return Err(PathError::UnsupportedFilter {
                        offset: start,
                        reason: "the filter is empty; write a condition such as ?(@.price < 10)"
                            .to_owned(),
                    });
                }
                return Ok(Selector::Filter(text.to_owned()));
            }
            _ => {}
        }
    }
    Err(PathError::UnexpectedEnd {
        offset: cursor.pos,
        expected: "the filter's bracket is never closed with ']'",
    })
}

/// Rewrites the steps as an RFC 9535 query rooted at `$` and parses it.
fn compile_query(steps: &[Step]) -> Result<JpQuery, PathError> {
    let mut query = String::from("$");
    for step in steps {
        if step.descendant {
            query.push_str("..");
        }
        query.push('[');
        match &step.selector {
            Selector::Name(name) => push_quoted(&mut query, name),
            Selector::Index(index) => query.push_str(&index.to_string()),
            Selector::Wildcard => query.push('*'),
            Selector::Slice { start, end, step } => {
                let bound = |b: &Option<i64>| b.map(|v| v.to_string()).unwrap_or_default();
                query.push_str(&bound(start));
                query.push(':');
                query.push_str(&bound(end));
                if step.is_some() {
                    query.push(':');
                    query.push_str(&bound(step));
                }
            }
            Selector::Union(members) => {
                for (i, member) in members.iter().enumerate() {
                    if i > 0 {
                        query.push(',');
                    }
                    match member {
                        Segment::Name(name) => push_quoted(&mut query, name),
                        Segment::Index(index) => query.push_str(&index.to_string()),
                    }
                }
            }
            Selector::Filter(text) => query.push_str(text),
        }
        query.push(']');
    }
    jsonpath_rust::parser::parse_json_path(&query).map_err(|error| {
        let reason = error.to_string();
        match steps
            .iter()
            .find(|s| matches!(s.selector, Selector::Filter(_)))
        {
            Some(filter) => PathError::UnsupportedFilter {
                offset: filter.offset,
                reason: first_line(&reason),
            },
            None => PathError::Compile { reason },
        }
    })
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Appends `name` as an RFC 9535 single-quoted string.
fn push_quoted(out: &mut String, name: &str) {
    out.push('\'');
    for c in name.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(source: &str) -> Path {
        match Path::parse(source) {
            Ok(path) => path,
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    fn select(source: &str, value: &Value) -> Option<Value> {
        parse(source).select(value).map(Cow::into_owned)
    }

    #[test]
    fn paths_from_the_brief_and_the_aws_guide_parse() {
        for source in [
            "$",
            "$.a.b",
            "$['a b']",
            "$.a[0]",
            "$.items[*]",
            "$.items[1:]",
            "$.item.items[1:5]",
            "$..x",
            "$.users[?(@.status == 0)]",
            "$$.Execution.Input",
            "$$.Map.Item.Value",
            "$myVar",
            "$myVar.field[2]",
            // AWS guide: "$.abc.['def ghi']" and the flatten example "$[*][*]".
            "$.abc.['def ghi']",
            "$[*][*]",
            "$.a[0:2]",
            "$.jar[?(@.a >= 5)]",
            "$.store.book[*].author",
            "$['a','b']",
            "$[0, 2]",
            "$[\"double quoted\"]",
            "$[ 'spaced' ]",
            "$.a.*",
            "$..*",
            "$..['x']",
            "$.a[::2]",
            "$.a[-2:]",
            "$.a[:2]",
        ] {
            let path = parse(source);
            assert_eq!(path.as_str(), source);
            assert_eq!(path.to_string(), source);
        }
    }

    #[test]
    fn roots() {
        assert_eq!(parse("$").root(), &PathRoot::Input);
        assert_eq!(parse("$.a").root(), &PathRoot::Input);
        assert_eq!(parse("$['a']").root(), &PathRoot::Input);
        assert_eq!(parse("$$").root(), &PathRoot::Context);
        assert_eq!(parse("$$.Execution.Input").root(), &PathRoot::Context);
        assert_eq!(
            parse("$myVar").root(),
            &PathRoot::Variable("myVar".to_owned())
        );
        assert_eq!(
            parse("$_x1.field[2]").root(),
            &PathRoot::Variable("_x1".to_owned())
        );
        assert_eq!(
            parse("$café.a").root(),
            &PathRoot::Variable("café".to_owned())
        );
    }

    #[test]
    fn definite_and_indefinite() {
        for source in [
            "$",
            "$.a.b",
            "$['a b']",
            "$.a[0]",
            "$$.Execution.Input",
            "$myVar.field[2]",
            "$.abc.['def ghi']",
            "$.detail-type",
        ] {
            assert!(parse(source).is_definite(), "{source} is definite");
        }
        for source in [
            "$.items[*]",
            "$.a.*",
            "$.items[1:]",
            "$.item.items[1:5]",
            "$..x",
            "$.users[?(@.status == 0)]",
            "$['a','b']",
            "$[0,1]",
        ] {
            let path = parse(source);
            assert!(!path.is_definite(), "{source} is indefinite");
            assert_eq!(path.segments(), None);
        }
        assert_eq!(
            parse("$.a['b c'][3]").segments(),
            Some(
                &[
                    Segment::Name("a".to_owned()),
                    Segment::Name("b c".to_owned()),
                    Segment::Index(3)
                ][..]
            )
        );
        assert_eq!(parse("$").segments(), Some(&[][..]));
    }

    #[test]
    fn names_after_a_dot_are_lenient_like_jayway() {
        let input = json!({"detail-type": "Scheduled Event", "1st": 1, "aws:arn": "x", "é": 2});
        assert_eq!(
            select("$.detail-type", &input),
            Some(json!("Scheduled Event"))
        );
        assert_eq!(select("$.1st", &input), Some(json!(1)));
        assert_eq!(select("$.aws:arn", &input), Some(json!("x")));
        assert_eq!(select("$.é", &input), Some(json!(2)));
        // Re-quoted before reaching jsonpath-rust, which would refuse `my-key`.
        let items = json!({"my-key": [{"v": 1}, {"v": 2}]});
        assert_eq!(select("$.my-key[*].v", &items), Some(json!([1, 2])));
    }

    #[test]
    fn definite_select_borrows_or_is_none() {
        // The AWS guide's reference path examples.
        let input = json!({"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": true}, "n": null});
        let path = parse("$.bar");
        assert!(matches!(path.select(&input), Some(Cow::Borrowed(_))));
        assert_eq!(select("$.foo", &input), Some(json!(123)));
        assert_eq!(select("$.bar", &input), Some(json!(["a", "b", "c"])));
        assert_eq!(select("$.car.cdr", &input), Some(json!(true)));
        assert_eq!(select("$.bar[2]", &input), Some(json!("c")));
        assert_eq!(select("$['car']['cdr']", &input), Some(json!(true)));
        assert_eq!(select("$", &input), Some(input.clone()));
        assert_eq!(select("$.n", &input), Some(Value::Null));
        assert_eq!(select("$.missing", &input), None);
        assert_eq!(select("$.bar[3]", &input), None);
        assert_eq!(select("$.foo.x", &input), None);
        assert_eq!(select("$.bar.x", &input), None);
        assert_eq!(select("$.car[0]", &input), None);
    }

    #[test]
    fn context_and_variable_paths_select_from_the_value_given() {
        let context = json!({"Execution": {"Input": {"k": "v"}}, "Map": {"Item": {"Value": 7}}});
        assert_eq!(select("$$.Execution.Input.k", &context), Some(json!("v")));
        assert_eq!(select("$$.Map.Item.Value", &context), Some(json!(7)));
        let variable = json!({"field": [0, 1, 2]});
        assert_eq!(select("$myVar.field[2]", &variable), Some(json!(2)));
        assert_eq!(select("$myVar", &variable), Some(variable.clone()));
        assert_eq!(select("$$.Map.Item[*]", &context), Some(json!([7])));
        assert_eq!(
            select("$$.Execution.*", &context),
            Some(json!([{"k": "v"}]))
        );
    }

    #[test]
    fn indefinite_select_gives_an_array_of_matches() {
        // AWS guide: "$.a[0:2]" on {"a": [1, 2, 3, 4]} gives [1, 2].
        assert_eq!(
            select("$.a[0:2]", &json!({"a": [1, 2, 3, 4]})),
            Some(json!([1, 2]))
        );
        // AWS guide: "flattenArray.$": "$[*][*]".
        assert_eq!(
            select("$[*][*]", &json!([[1, 2], [3], []])),
            Some(json!([1, 2, 3]))
        );
        let input = json!({
            "items": [10, 20, 30],
            "item": {"items": [0, 1, 2, 3, 4, 5, 6]},
            "users": [{"name": "a", "status": 0}, {"name": "b", "status": 1}],
            "jar": [{"a": 1}, {"a": 5}, {"a": 2}, {"a": 7}, {"a": 3}],
        });
        assert_eq!(select("$.items[*]", &input), Some(json!([10, 20, 30])));
        assert_eq!(select("$.items[1:]", &input), Some(json!([20, 30])));
        assert_eq!(select("$.items[-1:]", &input), Some(json!([30])));
        assert_eq!(select("$.items[::2]", &input), Some(json!([10, 30])));
        assert_eq!(
            select("$.item.items[1:5]", &input),
            Some(json!([1, 2, 3, 4]))
        );
        assert_eq!(
            select("$.users[?(@.status == 0)]", &input),
            Some(json!([{"name": "a", "status": 0}]))
        );
        assert_eq!(
            select("$.users[?(@.status == 0)].name", &input),
            Some(json!(["a"]))
        );
        // AWS guide: "$.jar[?(@.a >= 5)]" gives [{"a": 5}, {"a": 7}].
        assert_eq!(
            select("$.jar[?(@.a >= 5)]", &input),
            Some(json!([{"a": 5}, {"a": 7}]))
        );
        assert_eq!(select("$.items[0, 2]", &input), Some(json!([10, 30])));
        assert_eq!(
            select("$..x", &json!({"x": 1, "a": {"x": 2, "b": [{"x": 3}]}})),
            Some(json!([1, 2, 3]))
        );
        assert_eq!(
            select("$['a','b']", &json!({"a": 1, "b": 2, "c": 3})),
            Some(json!([1, 2]))
        );
        assert_eq!(
            select("$.a.*", &json!({"a": {"x": 1, "y": 2}})),
            Some(json!([1, 2]))
        );
        // No match is an empty list, not None.
        assert_eq!(select("$.nothing[*]", &input), Some(json!([])));
        assert_eq!(select("$.items[?(@ > 100)]", &input), Some(json!([])));
    }

    #[test]
    fn quoted_names_resolve_escapes() {
        let input =
            json!({"it's": 1, "a\"b": 2, "é": 3, "😀": 4, "back\\slash": 5, "new\nline": 6});
        assert_eq!(select("$['it\\'s']", &input), Some(json!(1)));
        assert_eq!(select("$[\"it's\"]", &input), Some(json!(1)));
        assert_eq!(select("$[\"a\\\"b\"]", &input), Some(json!(2)));
        assert_eq!(select("$['\\u00e9']", &input), Some(json!(3)));
        assert_eq!(select("$['\\uD83D\\uDE00']", &input), Some(json!(4)));
        assert_eq!(select("$['back\\\\slash']", &input), Some(json!(5)));
        assert_eq!(select("$['new\\nline']", &input), Some(json!(6)));
        // Also through jsonpath-rust, where the name is re-quoted.
        assert_eq!(select("$[\"it's\", 'é']", &input), Some(json!([1, 3])));
        assert_eq!(
            select("$['new\\nline', 'back\\\\slash']", &input),
            Some(json!([6, 5]))
        );
    }

    fn error(source: &str) -> PathError {
        match Path::parse(source) {
            Ok(path) => panic!("{source:?} should not parse, but gave {path:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn invalid_paths_are_explained() {
        assert_eq!(error(""), PathError::Empty);
        assert_eq!(error("a.b"), PathError::MissingRoot { found: 'a' });
        assert_eq!(
            error("States.Foo").to_string(),
            "a path must start with '$', but this one starts with 'S'"
        );
        let e = error("$.a.b.c]");
        assert_eq!(e.offset(), Some(7));
        assert!(
            e.to_string()
                .starts_with("unexpected character ']' at offset 7"),
            "{e}"
        );
        assert!(matches!(
            error("$."),
            PathError::UnexpectedEnd { offset: 2, .. }
        ));
        assert!(matches!(
            error("$.a."),
            PathError::UnexpectedEnd { offset: 4, .. }
        ));
        assert!(matches!(
            error("$.a["),
            PathError::UnexpectedEnd { offset: 4, .. }
        ));
        assert!(matches!(
            error("$.a[0"),
            PathError::UnexpectedEnd { offset: 5, .. }
        ));
        assert!(matches!(
            error("$.a b"),
            PathError::Unexpected {
                offset: 3,
                found: ' ',
                ..
            }
        ));
        assert!(matches!(
            error("$ .a"),
            PathError::Unexpected {
                offset: 1,
                found: ' ',
                ..
            }
        ));
        assert!(matches!(
            error("$.a[x]"),
            PathError::Unexpected {
                offset: 4,
                found: 'x',
                ..
            }
        ));
        assert!(matches!(
            error("$...a"),
            PathError::Unexpected {
                offset: 3,
                found: '.',
                ..
            }
        ));
        assert!(matches!(
            error("$.[?]"),
            PathError::UnsupportedFilter { .. }
        ));
        assert!(matches!(
            error("$['a'"),
            PathError::UnexpectedEnd { offset: 5, .. }
        ));
        assert!(matches!(
            error("$['a"),
            PathError::UnterminatedString { offset: 2 }
        ));
        assert!(matches!(
            error("$['a\\q']"),
            PathError::InvalidEscape { offset: 4, .. }
        ));
        assert!(matches!(
            error("$['\\u12']"),
            PathError::InvalidEscape { offset: 3, .. }
        ));
        assert!(matches!(
            error("$['\\uD83D']"),
            PathError::InvalidEscape { offset: 3, .. }
        ));
        assert!(matches!(
            error("$[1 2]"),
            PathError::Unexpected {
                offset: 4,
                found: '2',
                ..
            }
        ));
        assert!(matches!(
            error("$['a',]"),
            PathError::Unexpected {
                offset: 6,
                found: ']',
                ..
            }
        ));
        assert!(matches!(
            error("$[-]"),
            PathError::Unexpected {
                offset: 3,
                found: ']',
                ..
            }
        ));
        assert!(matches!(
            error("$[*"),
            PathError::UnexpectedEnd { offset: 3, .. }
        ));
        assert!(matches!(error("$.a[1:2"), PathError::UnexpectedEnd { .. }));
        assert_eq!(
            error("$[99999999999999999999]"),
            PathError::NumberOutOfRange { offset: 2 }
        );
        assert_eq!(
            error("$[9007199254740992]"),
            PathError::NumberOutOfRange { offset: 2 }
        );
        assert!(Path::parse("$[9007199254740991]").is_ok());
        assert_eq!(error("$1abc"), error("$1"));
        assert!(matches!(
            error("$1abc"),
            PathError::InvalidVariable { offset: 1, .. }
        ));
        assert!(matches!(
            error("$my-var"),
            PathError::Unexpected {
                offset: 3,
                found: '-',
                ..
            }
        ));
        assert!(matches!(
            error("$$$"),
            PathError::Unexpected {
                offset: 2,
                found: '$',
                ..
            }
        ));
    }

    #[test]
    fn negative_indexes_and_scripts_are_refused_with_an_alternative() {
        // AWS finds nothing at "$.array[-1]" at run time; say so at once.
        let e = error("$.array[-1].name");
        assert_eq!(
            e,
            PathError::NegativeIndex {
                offset: 8,
                index: -1
            }
        );
        assert!(e.to_string().contains("[-1:]"), "{e}");
        assert!(matches!(
            error("$[0, -1]"),
            PathError::NegativeIndex {
                offset: 5,
                index: -1
            }
        ));
        let e = error("$.array[(@.length-1)]");
        assert_eq!(e, PathError::ScriptExpression { offset: 8 });
        assert!(e.to_string().contains("States.ArrayGetItem"), "{e}");
    }

    #[test]
    fn filters_that_rfc_9535_lacks_are_refused_at_definition_time() {
        let e = error("$.a[?(@.name =~ /x.*/)]");
        assert!(
            matches!(e, PathError::UnsupportedFilter { offset: 3, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("the filter at offset 3 is not supported")
        );
        assert!(matches!(
            error("$.a[?(@.x == 1]"),
            PathError::UnexpectedEnd { .. } | PathError::UnsupportedFilter { .. }
        ));
        assert!(matches!(
            error("$.a[?(@.x == ']')"),
            PathError::UnexpectedEnd { .. }
        ));
        // A ']' inside a quoted string does not close the filter.
        let input = json!({"a": [{"x": "]"}, {"x": "y"}]});
        assert_eq!(
            select("$.a[?(@.x == ']')]", &input),
            Some(json!([{"x": "]"}]))
        );
        assert_eq!(select("$.a[?(@.x == \"y\")].x", &input), Some(json!(["y"])));
    }

    #[test]
    fn errors_can_be_shifted_into_a_larger_text() {
        let e = error("$.a b").shifted(10);
        assert_eq!(e.offset(), Some(13));
        assert!(e.to_string().contains("offset 13"));
        assert_eq!(PathError::Empty.shifted(3), PathError::Empty);
    }

    #[test]
    fn lookup_and_render_segments() {
        let segments = vec![
            Segment::Name("a".to_owned()),
            Segment::Index(1),
            Segment::Name("b c".to_owned()),
            Segment::Name("it's".to_owned()),
        ];
        assert_eq!(render_segments(&segments), "$.a[1]['b c']['it\\'s']");
        assert_eq!(render_segments(&[]), "$");
        let value = json!({"a": [0, {"b c": {"it's": true}}]});
        assert_eq!(lookup(&segments, &value), Some(&json!(true)));
        assert_eq!(lookup(&segments[..1], &json!([1])), None);
    }

    #[test]
    fn no_prefix_of_a_path_panics() {
        let sources = [
            "$.users[?(@.status == 0 && @.name == 'a]b')].name",
            "$['it\\'s', \"x\\u00e9\\uD83D\\uDE00\"]..[1:-1:2]",
            "$myVar.field[2]['é😀']",
            "$$.Execution.Input[*].a-b",
        ];
        for source in sources {
            for (end, _) in source.char_indices() {
                let _ = Path::parse(&source[..end]);
                let _ = Path::parse(&source[end..]);
            }
        }
    }

    #[test]
    fn paths_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Path>();
        assert_send_sync::<PathError>();
    }
}
