//! Evaluation of payload templates and of the 18 intrinsic functions, the way
//! AWS Step Functions evaluates them.
//!
//! [`Template`]s and [`IntrinsicCall`]s are parsed and checked once, when a
//! definition is validated (see [`super::template`] and [`super::intrinsic`]);
//! this module runs them against an [`Env`]. Every failure is an ASL error as
//! data ([`EvalError`]), never a panic:
//!
//! - a path that selects nothing is `States.Runtime`, with AWS's cause
//!   `The JSONPath '$.x' specified for the field 'name.$' could not be found in
//!   the input '{"a":1}'` (the interpreter prefixes the state's name);
//! - a function that cannot work on the values it gets (a wrong type, an index
//!   out of range, invalid Base64, a path argument that selects nothing...) is
//!   `States.Runtime` too, as AWS raises it: `The function 'States.X(...)' had
//!   the following error: ...`, the detail naming the argument.
//!
//! The causes are worded in [`crate::cause`]; the details of a failing
//! function (the sentence after "had the following error:") are this
//! module's.
//!
//! AWS Step Functions is a Java service, and where its output shows it we do
//! what its Java libraries do:
//! - JSON text (`States.JsonToString`, the input quoted in messages) is
//!   compact, as Jackson writes it: `{"a":1,"b":[1,2]}`, decimals as Java's
//!   `Double.toString` writes them (`1.1`, `1.0E20`);
//! - `States.Format` writes a string as it is and any other value as Java's
//!   `toString` does: `{Arg1=1, Arg2=[]}` for an object, `[1, a]` for an array;
//! - `States.MathAdd` and `States.MathRandom` round decimals as Java's
//!   `Math.round` does (half up: `-1.5` gives `-1`, `2.5` gives `3`);
//! - `States.StringSplit` splits like Java's `StringTokenizer`: on any of the
//!   delimiter's characters, dropping empty parts;
//! - lengths are counted in UTF-16 units, as Java's `String.length()`.
//!
//! Every value they build is bounded before it is built: no function's
//! result may be larger than the payload limit (`States.Runtime`), the
//! values one field's calls build may not add up to more than
//! [`MAX_BUILT_BYTES`] (`States.Runtime`), and a payload template
//! may not copy more than the payload limit (`States.DataLimitExceeded`),
//! however many paths and calls it has.
//!
//! Nothing here does I/O; randomness comes from the [`Env`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::eval::{Env, EvalError, Variables, hex_digest, uuid_v4};
use super::intrinsic::{Arg, FormatString, Intrinsic, IntrinsicCall};
use super::path::{Path, PathRoot};
use super::template::Template;
use crate::cause;

/// The longest string `States.Base64Encode`, `States.Base64Decode` and
/// `States.Hash` accept, as AWS documents.
const MAX_STRING_CHARS: usize = 10_000;

/// The most items `States.ArrayRange` may create, as AWS documents.
const MAX_RANGE_ITEMS: i128 = 1000;

/// The largest value an intrinsic function or a payload template may
/// build, as compact JSON: the payload limit, which the state's result
/// may not pass anyway.
const MAX_VALUE_BYTES: usize = crate::payload::MAX_PAYLOAD_BYTES;

/// What the calls of one field may build in all (nested calls' results
/// are alive together until the outer call ends): 16 payloads.
pub const MAX_BUILT_BYTES: usize = 16 * MAX_VALUE_BYTES;

/// The size of `value` as compact JSON, counted no further than just past
/// `limit`.
fn size_upto(value: &Value, limit: usize) -> usize {
    crate::payload::json_size(value, limit.saturating_add(1))
}

/// Resolves `path` against the root it names: `$` the input, `$$` the context
/// object, `$name` the variable `name`. `None` when nothing matches (an
/// indefinite path always matches, possibly an empty list).
pub fn resolve_path<'v>(path: &Path, env: &'v Env<'_>) -> Option<Cow<'v, Value>> {
    Roots::of(env).select(path)
}

/// `value` as compact JSON text, exactly as AWS (Jackson) writes it:
/// no spaces, decimals as Java's `Double.toString` (`1.0E20`, `-0.0`).
pub fn compact_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value, false);
    out
}

impl IntrinsicCall {
    /// Evaluates the call against `env`.
    pub fn evaluate(&self, env: &mut Env<'_>) -> Result<Value, EvalError> {
        Evaluator { env, built: 0 }.call(self)
    }
}

/// Evaluates a payload template: the body of [`Template::evaluate`].
pub(super) fn evaluate_template(
    template: &Template,
    env: &mut Env<'_>,
) -> Result<Value, EvalError> {
    let mut copied = 0;
    node(template, env, None, &mut copied)
}

/// A payload template that copies more than the payload limit: each path
/// may select the whole input, and a template may have thousands of them.
fn template_too_large() -> EvalError {
    cause::TEMPLATE_TOO_LARGE.eval(&[("limit", &MAX_VALUE_BYTES)])
}

/// Evaluates one node; `field` is the name of the `"name.$"` member whose value
/// it is, when it is one. `copied`: the bytes (as compact JSON) the
/// template's paths and calls have given so far.
fn node(
    template: &Template,
    env: &mut Env<'_>,
    field: Option<&str>,
    copied: &mut usize,
) -> Result<Value, EvalError> {
    match template {
        Template::Static(value) => Ok(value.clone()),
        Template::Object(members) => {
            let mut out = Map::with_capacity(members.len());
            for (name, member) in members {
                let value = match member {
                    Template::Path(_) | Template::Call(_) => {
                        node(member, env, Some(&format!("{name}.$")), copied)?
                    }
                    other => node(other, env, None, copied)?,
                };
                out.insert(name.clone(), value);
            }
            Ok(Value::Object(out))
        }
        Template::Array(items) => items
            .iter()
            .map(|item| node(item, env, None, copied))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Template::Path(path) => {
            let roots = Roots::of(env);
            match roots.select(path) {
                Some(value) => {
                    // Measured before it is copied.
                    *copied += size_upto(&value, MAX_VALUE_BYTES);
                    if *copied > MAX_VALUE_BYTES {
                        return Err(template_too_large());
                    }
                    Ok(value.into_owned())
                }
                None => Err(roots.not_found(path, field)),
            }
        }
        Template::Call(call) => {
            let value = Evaluator { env, built: 0 }.call(call)?;
            *copied += size_upto(&value, MAX_VALUE_BYTES);
            if *copied > MAX_VALUE_BYTES {
                return Err(template_too_large());
            }
            Ok(value)
        }
    }
}

/// The values paths start from, borrowed for as long as the [`Env`] lives, so
/// that selecting does not hold a borrow of the `Env` (whose randomness a
/// nested call may need at the same time).
#[derive(Clone, Copy)]
struct Roots<'a> {
    input: &'a Value,
    context: &'a Value,
    variables: &'a dyn Variables,
}

impl<'a> Roots<'a> {
    fn of(env: &Env<'a>) -> Roots<'a> {
        Roots {
            input: env.input,
            context: env.context,
            variables: env.variables,
        }
    }

    fn select(self, path: &Path) -> Option<Cow<'a, Value>> {
        let root = match path.root() {
            PathRoot::Input => self.input,
            PathRoot::Context => self.context,
            PathRoot::Variable(name) => self.variables.get(name)?,
        };
        path.select(root)
    }

    /// AWS's `States.Runtime` cause for a template's path (the member
    /// `field`) that selects nothing. AWS quotes the input whatever the
    /// path's root is.
    fn not_found(self, path: &Path, field: Option<&str>) -> EvalError {
        let input = compact_json(self.input);
        match field {
            Some(field) => cause::JSONPATH_NOT_FOUND.eval(&[
                ("path", path),
                ("field", &field),
                ("input", &input),
            ]),
            None => cause::JSONPATH_NOT_FOUND_BARE.eval(&[("path", path), ("input", &input)]),
        }
    }
}

/// Evaluates calls.
struct Evaluator<'e, 'a> {
    env: &'e mut Env<'a>,
    /// Bytes (as compact JSON) of every value the calls built so far.
    built: usize,
}

/// Why a function could not compute its result: the detail completing
/// "The function 'States.X(...)' had the following error: ".
type Failure = String;

/// A call's own failure (its detail), or one a nested call already raised.
enum CallError {
    Detail(Failure),
    Raised(EvalError),
}

impl From<EvalError> for CallError {
    fn from(e: EvalError) -> Self {
        CallError::Raised(e)
    }
}

impl<'a> Evaluator<'_, 'a> {
    fn call(&mut self, call: &IntrinsicCall) -> Result<Value, EvalError> {
        self.apply_call(call).map_err(|e| match e {
            CallError::Raised(e) => e,
            CallError::Detail(detail) => {
                cause::INTRINSIC_FAILED.eval(&[("call", call), ("detail", &detail)])
            }
        })
    }

    fn apply_call(&mut self, call: &IntrinsicCall) -> Result<Value, CallError> {
        let function = call.function;
        let result = match function {
            Intrinsic::Format => self.format(&call.args)?,
            _ => {
                let values = self.args(&call.args)?;
                check_inputs(function, &values).and_then(|()| apply(function, &values, self.env))
            }
        };
        result
            .and_then(|value| self.count_built(value))
            .map_err(CallError::Detail)
    }

    /// Counts a result against the payload limit and what the field's
    /// calls may build in all.
    fn count_built(&mut self, value: Value) -> Result<Value, Failure> {
        let size = size_upto(&value, MAX_VALUE_BYTES);
        if size > MAX_VALUE_BYTES {
            return Err(too_large());
        }
        self.built += size;
        if self.built > MAX_BUILT_BYTES {
            return Err(format!(
                "the intrinsic functions of this field build more than {MAX_BUILT_BYTES} bytes \
                 in all"
            ));
        }
        Ok(value)
    }

    /// The values of `args`, in order; nested calls are evaluated first. A
    /// value a path selects is borrowed from the `Env`, a literal from the call.
    fn args<'c>(&mut self, args: &'c [Arg]) -> Result<Vec<Cow<'c, Value>>, CallError>
    where
        'a: 'c,
    {
        args.iter().map(|arg| self.arg(arg)).collect()
    }

    /// An argument's value; a path that selects nothing is the call's
    /// failure, as AWS words it.
    fn arg<'c>(&mut self, arg: &'c Arg) -> Result<Cow<'c, Value>, CallError>
    where
        'a: 'c,
    {
        match arg {
            Arg::Literal(value) => Ok(Cow::Borrowed(value)),
            Arg::FormatTemplate(template) => {
                Ok(Cow::Owned(Value::String(template.pieces().join("{}"))))
            }
            Arg::Path(path) => {
                let roots = Roots::of(self.env);
                roots.select(path).ok_or_else(|| {
                    let input = compact_json(roots.input);
                    CallError::Detail(
                        cause::INTRINSIC_PATH_NOT_FOUND
                            .render(&[("path", path), ("input", &input)]),
                    )
                })
            }
            Arg::Call(call) => Ok(Cow::Owned(self.call(call)?)),
        }
    }

    /// `States.Format(template, values...)`.
    fn format(&mut self, args: &[Arg]) -> Result<Result<Value, Failure>, CallError> {
        let Some((first, rest)) = args.split_first() else {
            return Ok(Err(arity(Intrinsic::Format, 0)));
        };
        let runtime;
        let template = match first {
            Arg::FormatTemplate(template) => template,
            other => {
                let value = self.arg(other)?;
                let Some(text) = value.as_str() else {
                    return Ok(Err(format!(
                        "the template (first argument) must be a string, but it is {}",
                        describe(&value)
                    )));
                };
                runtime = FormatString::from_runtime(text);
                &runtime
            }
        };
        let values = self.args(rest)?;
        if template.placeholders() != values.len() {
            let (placeholders, given) = (template.placeholders(), values.len());
            return Ok(Err(format!(
                "the template has {placeholders} placeholder{} {{}} but {given} value{} {} it",
                plural(placeholders),
                plural(given),
                if given == 1 { "follows" } else { "follow" },
            )));
        }
        // Measured before it is written: Java's text is the compact JSON
        // with `, ` and `=` for `,` and `:`, so at most twice as long.
        let mut size: usize = template.pieces().iter().map(String::len).sum();
        for value in &values {
            size = size.saturating_add(2 * size_upto(value, MAX_VALUE_BYTES));
            if size > 2 * MAX_VALUE_BYTES {
                return Ok(Err(too_large()));
            }
        }
        let mut out = String::new();
        for (i, piece) in template.pieces().iter().enumerate() {
            out.push_str(piece);
            if let Some(value) = values.get(i) {
                write_java_string(&mut out, value);
            }
        }
        Ok(Ok(Value::String(out)))
    }
}

/// The failure of a function whose result would pass the payload limit.
fn too_large() -> Failure {
    format!("its result would be larger than the payload limit of {MAX_VALUE_BYTES} bytes")
}

/// Refuses, before anything is built, the calls whose result can be
/// many times the size of their arguments: `States.Array` copies every
/// argument (a path may select the whole input, and there may be
/// hundreds), `States.StringSplit` makes a string of every part.
fn check_inputs(function: Intrinsic, values: &[Cow<'_, Value>]) -> Result<(), Failure> {
    let size = match function {
        Intrinsic::Array => {
            let mut size = 2usize;
            for value in values {
                size = size.saturating_add(size_upto(value, MAX_VALUE_BYTES) + 1);
                if size > MAX_VALUE_BYTES {
                    break;
                }
            }
            size
        }
        Intrinsic::StringSplit => match (
            values.first().map(|v| v.as_ref()),
            values.get(1).map(|v| v.as_ref()),
        ) {
            // Each part as a JSON string: its text and `"",` around it.
            (Some(Value::String(text)), Some(Value::String(delimiters))) => text
                .split(|c: char| delimiters.contains(c))
                .filter(|part| !part.is_empty())
                .fold(2usize, |size, part| size.saturating_add(part.len() + 3)),
            _ => 0,
        },
        _ => 0,
    };
    if size > MAX_VALUE_BYTES {
        return Err(too_large());
    }
    Ok(())
}

/// Applies every function but `States.Format` to its evaluated arguments.
fn apply(
    function: Intrinsic,
    values: &[Cow<'_, Value>],
    env: &mut Env<'_>,
) -> Result<Value, Failure> {
    match function {
        // Not reached: `Evaluator::call` evaluates States.Format itself.
        Intrinsic::Format => Err("its template could not be read".to_owned()),
        Intrinsic::StringToJson => {
            let [text] = take(function, values)?;
            let text = string(text, "the argument")?;
            string_to_json(text)
        }
        Intrinsic::JsonToString => {
            let [value] = take(function, values)?;
            Ok(Value::String(compact_json(value)))
        }
        Intrinsic::Array => Ok(Value::Array(
            values.iter().map(|value| value.as_ref().clone()).collect(),
        )),
        Intrinsic::ArrayPartition => {
            let [array, size] = take(function, values)?;
            let array = array_arg(array, "the array (first argument)")?;
            let size = integer(size, "the chunk size (second argument)")?;
            let size = usize::try_from(size)
                .ok()
                .filter(|size| *size > 0)
                .ok_or_else(|| {
                    format!(
                        "the chunk size (second argument) must be greater than 0, but it is {size}"
                    )
                })?;
            Ok(Value::Array(
                array
                    .chunks(size)
                    .map(|chunk| Value::Array(chunk.to_vec()))
                    .collect(),
            ))
        }
        Intrinsic::ArrayContains => {
            let [array, wanted] = take(function, values)?;
            let array = array_arg(array, "the array (first argument)")?;
            Ok(Value::Bool(array.contains(wanted)))
        }
        Intrinsic::ArrayRange => {
            let [start, end, step] = take(function, values)?;
            let start = integer(start, "the start (first argument)")?;
            let end = integer(end, "the end (second argument)")?;
            let step = integer(step, "the step (third argument)")?;
            array_range(start, end, step)
        }
        Intrinsic::ArrayGetItem => {
            let [array, index] = take(function, values)?;
            let array = array_arg(array, "the array (first argument)")?;
            let index = integer(index, "the index (second argument)")?;
            usize::try_from(index)
                .ok()
                .and_then(|i| array.get(i))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "the index (second argument) is {index}, but the array has {} item{}: \
                         indexes go from 0 to the length minus 1",
                        array.len(),
                        plural(array.len())
                    )
                })
        }
        Intrinsic::ArrayLength => {
            let [array] = take(function, values)?;
            let array = array_arg(array, "the argument")?;
            Ok(Value::from(array.len()))
        }
        Intrinsic::ArrayUnique => {
            let [array] = take(function, values)?;
            let array = array_arg(array, "the argument")?;
            let mut seen = HashSet::with_capacity(array.len());
            Ok(Value::Array(
                array
                    .iter()
                    .filter(|item| seen.insert(canonical_json(item)))
                    .cloned()
                    .collect(),
            ))
        }
        Intrinsic::Base64Encode => {
            let [text] = take(function, values)?;
            let text = short_string(text, "the argument")?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            ))
        }
        Intrinsic::Base64Decode => {
            let [text] = take(function, values)?;
            let text = short_string(text, "the argument")?;
            base64_decode(text)
        }
        Intrinsic::Hash => {
            let [data, algorithm] = take(function, values)?;
            let data = short_string(data, "the data (first argument)")?;
            let algorithm = string(algorithm, "the algorithm (second argument)")?;
            hash(data, algorithm).map(Value::String)
        }
        Intrinsic::JsonMerge => {
            let [first, second, deep] = take(function, values)?;
            let first = object(first, "the first object (first argument)")?;
            let second = object(second, "the second object (second argument)")?;
            match deep {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err("the third argument is true, but AWS Step Functions only \
                                supports shallow merging: it must be false"
                        .to_owned());
                }
                other => {
                    return Err(format!(
                        "the third argument must be the boolean false (shallow merging), but it \
                         is {}",
                        describe(other)
                    ));
                }
            }
            let mut merged = first.clone();
            for (key, value) in second {
                merged.insert(key.clone(), value.clone());
            }
            Ok(Value::Object(merged))
        }
        Intrinsic::MathRandom => {
            let (start, end, seed) = match values {
                [start, end] => (start, end, None),
                [start, end, seed] => (start, end, Some(seed)),
                _ => return Err(arity(function, values.len())),
            };
            let start = rounded(start, "the start (first argument)")?;
            let end = rounded(end, "the end (second argument)")?;
            let seed = seed
                .map(|seed| rounded(seed, "the seed (third argument)"))
                .transpose()?;
            math_random(start, end, seed, env)
        }
        Intrinsic::MathAdd => {
            let [a, b] = take(function, values)?;
            let a = rounded(a, "the first argument")?;
            let b = rounded(b, "the second argument")?;
            a.checked_add(b)
                .map(Value::from)
                .ok_or_else(|| format!("the sum of {a} and {b} is too large for a 64-bit integer"))
        }
        Intrinsic::StringSplit => {
            let [text, delimiters] = take(function, values)?;
            let text = string(text, "the string (first argument)")?;
            let delimiters = string(delimiters, "the delimiters (second argument)")?;
            Ok(Value::Array(
                text.split(|c: char| delimiters.contains(c))
                    .filter(|part| !part.is_empty())
                    .map(|part| Value::String(part.to_owned()))
                    .collect(),
            ))
        }
        Intrinsic::Uuid => {
            let [] = take(function, values)?;
            Ok(Value::String(uuid_v4(
                env.random.next_u64(),
                env.random.next_u64(),
            )))
        }
    }
}

/// The `N` arguments of a function that takes exactly `N`. The parser checks
/// arity; this keeps a hand-built call from panicking.
fn take<'v, const N: usize>(
    function: Intrinsic,
    values: &'v [Cow<'_, Value>],
) -> Result<[&'v Value; N], Failure> {
    if values.len() != N {
        return Err(arity(function, values.len()));
    }
    Ok(std::array::from_fn(|i| values[i].as_ref()))
}

fn arity(function: Intrinsic, given: usize) -> Failure {
    format!(
        "{} was given {given} argument{}, which it does not take",
        function.name(),
        plural(given)
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `States.StringToJson`: as Jackson reads it, an empty or blank text is null.
fn string_to_json(text: &str) -> Result<Value, Failure> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        format!(
            "the argument is not valid JSON ({e}): {}",
            describe(&Value::String(text.to_owned()))
        )
    })
}

/// `States.ArrayRange(start, end, step)`: from `start` towards `end`
/// (included when reached), `step` apart; a step pointing away from `end`
/// gives an empty array.
fn array_range(start: i64, end: i64, step: i64) -> Result<Value, Failure> {
    if step == 0 {
        return Err("the step (third argument) must not be 0".to_owned());
    }
    let (first, last, by) = (i128::from(start), i128::from(end), i128::from(step));
    let count = if (by > 0 && last >= first) || (by < 0 && first >= last) {
        (last - first) / by + 1
    } else {
        0
    };
    if count > MAX_RANGE_ITEMS {
        return Err(format!(
            "the range from {start} to {end} by {step} would have {count} items, but an array \
             made by States.ArrayRange can have at most {MAX_RANGE_ITEMS}"
        ));
    }
    // `count` is at most 1000 and every item lies between start and end.
    Ok(Value::Array(
        (0..count)
            .map(|i| Value::from((first + i * by) as i64))
            .collect(),
    ))
}

/// `States.Base64Decode`: standard Base64, padding optional, line breaks and
/// spaces ignored (as MIME decoders do); the bytes are read as UTF-8, an
/// invalid sequence becoming U+FFFD (as Java's `new String(bytes, UTF_8)`).
fn base64_decode(text: &str) -> Result<Value, Failure> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = LENIENT.decode(compact.as_bytes()).map_err(|e| {
        format!(
            "the argument is not valid Base64 ({e}): {}",
            describe(&Value::String(text.to_owned()))
        )
    })?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

/// `States.Hash`: the lowercase hex digest of the UTF-8 bytes of `data`.
fn hash(data: &str, algorithm: &str) -> Result<String, Failure> {
    hex_digest(data, algorithm).ok_or_else(|| {
        format!(
            "the algorithm (second argument) must be one of MD5, SHA-1, SHA-256, SHA-384, \
             SHA-512, but it is {}",
            describe(&Value::String(algorithm.to_owned()))
        )
    })
}

/// `States.MathRandom(start, end[, seed])`: an integer from `start` (included)
/// to `end` (excluded), the bounds of Java's `Random.nextInt`. With a seed,
/// the number is that of Java's `new Random(seed)`, so the same seed always
/// gives the same number; without one it comes from the `Env`.
fn math_random(
    start: i64,
    end: i64,
    seed: Option<i64>,
    env: &mut Env<'_>,
) -> Result<Value, Failure> {
    if start >= end {
        return Err(format!(
            "the start (first argument) must be less than the end (second argument), but they \
             are {start} and {end}"
        ));
    }
    // Fits: end - start is at most 2^64 - 1.
    let span = (i128::from(end) - i128::from(start)) as u64;
    let offset = match seed {
        Some(seed) => JavaRandom::new(seed).below(span),
        None => ((u128::from(env.random.next_u64()) * u128::from(span)) >> 64) as u64,
    };
    Ok(Value::from((i128::from(start) + i128::from(offset)) as i64))
}

/// `java.util.Random`: a 48-bit linear congruential generator.
struct JavaRandom(u64);

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom((seed as u64 ^ Self::MULTIPLIER) & Self::MASK)
    }

    fn next(&mut self, bits: u32) -> u32 {
        self.0 = (self.0.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> (48 - bits)) as u32
    }

    /// A number below `bound`: `nextInt(bound)` when `bound` fits an `int`,
    /// else the high bits of `nextLong()` scaled to `bound`.
    fn below(&mut self, bound: u64) -> u64 {
        if let Ok(bound) = i32::try_from(bound) {
            let bound = i64::from(bound);
            if bound & -bound == bound {
                return ((bound * i64::from(self.next(31))) >> 31) as u64;
            }
            loop {
                let bits = i64::from(self.next(31));
                let value = bits % bound;
                // Java rejects the values for which `bits - value + (bound - 1)`
                // overflows an int, so that every result is equally likely.
                if bits - value + (bound - 1) <= i64::from(i32::MAX) {
                    return value as u64;
                }
            }
        }
        let long = (u64::from(self.next(32)) << 32).wrapping_add(u64::from(self.next(32)));
        ((u128::from(long) * u128::from(bound)) >> 64) as u64
    }
}

// --- Arguments -------------------------------------------------------------

fn string<'v>(value: &'v Value, what: &str) -> Result<&'v str, Failure> {
    value
        .as_str()
        .ok_or_else(|| format!("{what} must be a string, but it is {}", describe(value)))
}

/// A string of at most [`MAX_STRING_CHARS`] characters, counted as Java does.
fn short_string<'v>(value: &'v Value, what: &str) -> Result<&'v str, Failure> {
    let text = string(value, what)?;
    let length = text.encode_utf16().count();
    if length > MAX_STRING_CHARS {
        return Err(format!(
            "{what} is {length} characters long, but at most {MAX_STRING_CHARS} are allowed"
        ));
    }
    Ok(text)
}

fn array_arg<'v>(value: &'v Value, what: &str) -> Result<&'v Vec<Value>, Failure> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} must be an array, but it is {}", describe(value)))
}

fn object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, Failure> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} must be an object, but it is {}", describe(value)))
}

/// An integer: a JSON integer, or a decimal with no fractional part (`2.0`).
fn integer(value: &Value, what: &str) -> Result<i64, Failure> {
    let not_integer = || format!("{what} must be an integer, but it is {}", describe(value));
    let Value::Number(number) = value else {
        return Err(not_integer());
    };
    if let Some(i) = number.as_i64() {
        return Ok(i);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        Some(f) if f.fract() == 0.0 => Err(format!(
            "{what} is {}, which is out of range",
            java_number(number)
        )),
        _ => Err(not_integer()),
    }
}

/// A number rounded to an integer as Java's `Math.round` does: to the nearest,
/// halves up (`-1.5` gives `-1`). AWS rounds the arguments of
/// `States.MathAdd` and `States.MathRandom` this way.
fn rounded(value: &Value, what: &str) -> Result<i64, Failure> {
    let Value::Number(number) = value else {
        return Err(format!(
            "{what} must be a number, but it is {}",
            describe(value)
        ));
    };
    if let Some(i) = number.as_i64() {
        return Ok(i);
    }
    let f = number.as_f64().unwrap_or(f64::NAN);
    let floor = f.floor();
    let r = if f - floor >= 0.5 { floor + 1.0 } else { floor };
    if r.is_finite() && r.abs() < 9.2e18 {
        Ok(r as i64)
    } else {
        Err(format!(
            "{what} is {}, which is out of range",
            java_number(number)
        ))
    }
}

/// A value for messages: `the string "abc"`, `the number 1.5`, `an object`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {}", java_number(n)),
        Value::String(s) => {
            let length = s.chars().count();
            if length > 40 {
                let head: String = s.chars().take(40).collect();
                format!(
                    "the string {}... ({length} characters)",
                    compact_json(&Value::String(head))
                )
            } else {
                format!("the string {}", compact_json(value))
            }
        }
        Value::Array(items) => format!("an array of {} item{}", items.len(), plural(items.len())),
        Value::Object(_) => "an object".to_owned(),
    }
}

// --- Text as Java writes it ---------------------------------------------------

/// Writes `value` as compact JSON; `sorted`: object members in key order, for
/// a key that is the same for equal values.
fn write_json(out: &mut String, value: &Value, sorted: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, sorted);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut entries: Vec<(&String, &Value)> = members.iter().collect();
            if sorted {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, member)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, member, sorted);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Jackson escapes it: `"` and `\`, the short escapes for
/// backspace, tab, newline, form feed and carriage return, `\u00XX` (uppercase
/// hex) for other control characters, everything else as it is.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Two values are equal, as `States.ArrayUnique` and `States.ArrayContains`
/// compare them (member order aside, `1` and `1.0` differ, as in Jackson),
/// exactly when their canonical texts are.
fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value, true);
    out
}

/// A value inserted by `States.Format`: a string as it is, anything else as
/// Java's `toString` writes it (`{a=1, b=[x, null]}`).
fn write_java_string(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java_string(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push('=');
                write_java_string(out, member);
            }
            out.push('}');
        }
    }
}

/// A number as Java writes it: integers as they are, decimals as
/// `Double.toString` (shortest digits; plain from 10^-3 up to 10^7,
/// otherwise `d.dddE±n`; always a fractional part).
fn java_number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) => java_double(f),
        (None, None, None) => n.to_string(),
    }
}

fn java_double(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let abs = x.abs();
    // Rust's `{:e}` gives the shortest digits that read back as `abs`. When
    // one digit is enough, Java picks the closest of the two-digit decimals
    // instead (so the smallest double is 4.9E-324, not 5.0E-324).
    let mut scientific = format!("{abs:e}");
    if !scientific.contains('.') {
        scientific = format!("{abs:.1e}");
    }
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if (1e-3..1e7).contains(&abs) {
        if exponent >= 0 {
            let whole = exponent as usize + 1;
            if digits.len() > whole {
                format!("{sign}{}.{}", &digits[..whole], &digits[whole..])
            } else {
                format!("{sign}{digits}{}.0", "0".repeat(whole - digits.len()))
            }
        } else {
            let zeros = "0".repeat((-exponent - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::eval::SplitMix64;
    use crate::query::intrinsic;
    use serde_json::json;

    /// The roots of an evaluation, owned, so tests can build them inline.
    struct Data {
        input: Value,
        context: Value,
        variables: Map<String, Value>,
    }

    impl Data {
        fn input(input: Value) -> Data {
            Data {
                input,
                context: json!({}),
                variables: Map::new(),
            }
        }

        fn with_context(mut self, context: Value) -> Data {
            self.context = context;
            self
        }

        fn with_variables(mut self, variables: Value) -> Data {
            let Value::Object(variables) = variables else {
                panic!("variables are an object");
            };
            self.variables = variables;
            self
        }

        fn eval_seeded(&self, source: &str, seed: u64) -> Result<Value, EvalError> {
            let call = match intrinsic::parse(source) {
                Ok(call) => call,
                Err(e) => panic!("{source:?} should parse: {e}"),
            };
            let mut random = SplitMix64(seed);
            let mut env = Env {
                input: &self.input,
                context: &self.context,
                variables: &self.variables,
                random: &mut random,
            };
            call.evaluate(&mut env)
        }

        fn eval(&self, source: &str) -> Result<Value, EvalError> {
            self.eval_seeded(source, 1)
        }

        /// Evaluates `source` and checks its result.
        fn check(&self, source: &str, expected: Value) {
            match self.eval(source) {
                Ok(value) => assert_eq!(value, expected, "{source}"),
                Err(e) => panic!("{source} should give {expected}, but failed: {e}"),
            }
        }

        /// Evaluates `source`, which must fail as AWS fails an intrinsic
        /// function (`States.Runtime`, "The function '...' had the
        /// following error: ..."); gives the detail after that sentence.
        fn failure(&self, source: &str) -> String {
            match self.eval(source) {
                Ok(value) => panic!("{source} should fail, but gave {value}"),
                Err(e) => {
                    assert_eq!(e.error, "States.Runtime", "{source}: {e}");
                    assert!(e.cause.starts_with("The function 'States."), "{e}");
                    let (_, detail) = e
                        .cause
                        .split_once("' had the following error: ")
                        .unwrap_or_else(|| panic!("{source}: {e}"));
                    detail.to_owned()
                }
            }
        }
    }

    fn empty() -> Data {
        Data::input(json!({}))
    }

    // --- The AWS documentation's examples --------------------------------

    #[test]
    fn aws_documentation_examples() {
        let data = Data::input(json!({
            "name": "Arnav",
            "template": "Hello, my name is {}.",
            "escapedJsonString": "{\"foo\": \"bar\"}",
            "unescapedJson": {"foo": "bar"},
            "someJson": {"name": "Foo", "year": 2020},
            "Id": 123456,
            "inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9],
            "lookingFor": 5,
            "index": 5,
            "duplicates": [1, 2, 3, 3, 3, 3, 3, 3, 4],
            "input": "Data to encode",
            "base64": "RGF0YSB0byBlbmNvZGU=",
            "Data": "input data",
            "Algorithm": "SHA-1",
            "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
            "json2": {"a": {"a3": 1, "a4": 2}, "c": 3},
            "value1": 111,
            "step": -1,
            "inputString": "1,2,3,4,5",
            "splitter": ",",
        }));
        data.check(
            "States.Format('Hello, my name is {}.', $.name)",
            json!("Hello, my name is Arnav."),
        );
        data.check(
            "States.Format($.template, $.name)",
            json!("Hello, my name is Arnav."),
        );
        data.check(
            "States.Format('Your name is {}, we are in the year {}', $.someJson.name, 2020)",
            json!("Your name is Foo, we are in the year 2020"),
        );
        data.check(
            "States.StringToJson($.escapedJsonString)",
            json!({"foo": "bar"}),
        );
        data.check(
            "States.JsonToString($.unescapedJson)",
            json!("{\"foo\":\"bar\"}"),
        );
        data.check(
            "States.JsonToString($.someJson)",
            json!("{\"name\":\"Foo\",\"year\":2020}"),
        );
        data.check("States.Array($.Id)", json!([123456]));
        data.check(
            "States.Array('Foo', 2020, $.someJson, null)",
            json!(["Foo", 2020, {"name": "Foo", "year": 2020}, null]),
        );
        data.check(
            "States.ArrayPartition($.inputArray,4)",
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
        );
        data.check(
            "States.ArrayContains($.inputArray, $.lookingFor)",
            json!(true),
        );
        data.check("States.ArrayRange(1, 9, 2)", json!([1, 3, 5, 7, 9]));
        data.check("States.ArrayGetItem($.inputArray, $.index)", json!(6));
        data.check("States.ArrayLength($.inputArray)", json!(9));
        data.check("States.ArrayUnique($.duplicates)", json!([1, 2, 3, 4]));
        data.check(
            "States.Base64Encode($.input)",
            json!("RGF0YSB0byBlbmNvZGU="),
        );
        // The guide shows "Decoded data" here, a slip: this is the encoding
        // of "Data to encode" just above.
        data.check("States.Base64Decode($.base64)", json!("Data to encode"));
        // The guide prints this digest with a character missing
        // ("...d18d7485e8..."); this is SHA-1 of "input data".
        data.check(
            "States.Hash($.Data, $.Algorithm)",
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
        );
        data.check(
            "States.JsonMerge($.json1, $.json2, false)",
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
        );
        data.check("States.MathAdd($.value1, $.step)", json!(110));
        data.check(
            "States.StringSplit($.inputString, $.splitter)",
            json!(["1", "2", "3", "4", "5"]),
        );
        let random = data.eval("States.MathRandom(1, 999)").unwrap();
        assert!((1..999).contains(&random.as_i64().unwrap()), "{random}");
        let uuid = data.eval("States.UUID()").unwrap();
        assert!(is_v4_uuid(uuid.as_str().unwrap()), "{uuid}");
    }

    // --- Every intrinsic recorded in the conformance cases ------------------

    /// One recorded AWS execution: the call, the data it ran on, the result.
    fn recorded(case: &str, data: &Data, source: &str, expected: Value) {
        match data.eval(source) {
            Ok(value) => assert_eq!(value, expected, "{case}: {source}"),
            Err(e) => panic!("{case}: {source} failed: {e}"),
        }
    }

    fn function_input(value: Value) -> Data {
        Data::input(json!({ "FunctionInput": value }))
    }

    #[test]
    fn conformance_cases_of_the_intrinsic_functions_suite() {
        let two = |fst: Value, snd: Value| function_input(json!({"fst": fst, "snd": snd}));
        let array_2 = "States.Array($.FunctionInput.fst, $.FunctionInput.snd)";
        recorded(
            "test_array_2#2",
            &two(json!("HelloWorld"), json!("HelloWorld")),
            array_2,
            json!(["HelloWorld", "HelloWorld"]),
        );
        recorded(
            "test_array_2#4",
            &two(json!(1), json!(1)),
            array_2,
            json!([1, 1]),
        );

        let contains = "States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)";
        for (case, fst, snd, expected) in [
            ("test_array_contains#0", json!([]), json!(null), false),
            (
                "test_array_contains#5",
                json!([{"1": 2, "2": []}]),
                json!([]),
                false,
            ),
            (
                "test_array_contains#6",
                json!([{"1": 2, "2": []}]),
                json!({"1": 2, "2": []}),
                true,
            ),
            (
                "test_array_contains#8",
                json!([true, false]),
                json!(false),
                true,
            ),
        ] {
            recorded(case, &two(fst, snd), contains, json!(expected));
        }

        recorded(
            "test_array_get_item#0",
            &two(json!([1, 2, 3, 4, 5, 6, 7, 8, 9]), json!(5)),
            "States.ArrayGetItem($.FunctionInput.fst, $.FunctionInput.snd)",
            json!(6),
        );

        let partition = "States.ArrayPartition($.FunctionInput.fst, $.FunctionInput.snd)";
        for (case, fst, snd, expected) in [
            (
                "test_array_partition#10",
                json!([0, 1]),
                1,
                json!([[0], [1]]),
            ),
            ("test_array_partition#13", json!([0, 1]), 4, json!([[0, 1]])),
            (
                "test_array_partition#17",
                json!([0, 1, 2]),
                3,
                json!([[0, 1, 2]]),
            ),
            (
                "test_array_partition#19",
                json!([0, 1, 2]),
                5,
                json!([[0, 1, 2]]),
            ),
            (
                "test_array_partition#21",
                json!([0, 1, 2, 3]),
                2,
                json!([[0, 1], [2, 3]]),
            ),
            ("test_array_partition#2", json!([]), 3, json!([])),
            ("test_array_partition#3", json!([]), 4, json!([])),
            ("test_array_partition#6", json!([0]), 2, json!([[0]])),
        ] {
            recorded(case, &two(fst, json!(snd)), partition, expected);
        }

        let range =
            "States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)";
        recorded(
            "test_array_range#2",
            &function_input(json!({"fst": 1, "snd": 9, "trd": 9})),
            range,
            json!([1]),
        );
        recorded(
            "test_array_range#3",
            &function_input(json!({"fst": 1, "snd": 9, "trd": 2})),
            range,
            json!([1, 3, 5, 7, 9]),
        );

        recorded(
            "test_base_64_encode#1",
            &function_input(json!("Data to encode")),
            "States.Base64Encode($.FunctionInput)",
            json!("RGF0YSB0byBlbmNvZGU="),
        );

        recorded(
            "test_escape_sequence#0",
            &function_input(json!(null)),
            "States.StringSplit('Hello\nWorld', '\n')",
            json!(["Hello", "World"]),
        );
        recorded(
            "test_format_1#5",
            &function_input(json!(1.1)),
            "States.Format('Formatting argument {}.', $.FunctionInput)",
            json!("Formatting argument 1.1."),
        );
        let format_2 = "States.Format('Formatting arguments fst={} and snd={}.', \
                        $.FunctionInput.fst, $.FunctionInput.snd)";
        recorded(
            "test_format_2#1",
            &two(json!(" "), json!(" ")),
            format_2,
            json!("Formatting arguments fst=  and snd= ."),
        );
        recorded(
            "test_format_2#6",
            &two(
                json!("{\"Arg1\": 1, \"Arg2\": []}"),
                json!("{\"Arg1\": 1, \"Arg2\": []}"),
            ),
            format_2,
            json!(
                "Formatting arguments fst={\"Arg1\": 1, \"Arg2\": []} and snd={\"Arg1\": 1, \
                 \"Arg2\": []}."
            ),
        );

        // The state machine's name was recorded as a placeholder; the result
        // was that name, so it has no '-' in it.
        let named = function_input(json!(null))
            .with_context(json!({"StateMachine": {"Name": "statemachine_3f9a2c"}}));
        recorded(
            "test_nested_calls_1#0",
            &named,
            "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)",
            json!("statemachine_3f9a2c"),
        );
        recorded(
            "test_nested_calls_2#0",
            &named,
            "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), \
             States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
            json!("statemachine_3f9a2c"),
        );
        let dashed = function_input(json!(null))
            .with_context(json!({"StateMachine": {"Name": "orders-eu-west-1"}}));
        dashed.check(
            "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), \
             States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
            json!("1"),
        );

        let hash = "States.Hash($.FunctionInput.fst, $.FunctionInput.snd)";
        recorded(
            "test_hash#3",
            &two(json!("input data"), json!("SHA-384")),
            hash,
            json!(
                "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562"
            ),
        );
        recorded(
            "test_hash#4",
            &two(json!("input data"), json!("SHA-512")),
            hash,
            json!(
                "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4"
            ),
        );

        recorded(
            "test_json_merge_escaped_argument",
            &Data::input(json!({"input_field": {"constant_input_field": "constant_value"}}))
                .with_context(json!({"Execution": {"Input": {
                    "input_field": {"constant_input_field": "constant_value"}
                }}})),
            "States.JsonMerge(States.StringToJson('{\"constant_in_literal\": \"false\"}'), \
             $$.Execution.Input.input_field, false)",
            json!({"constant_input_field": "constant_value", "constant_in_literal": "false"}),
        );

        let to_string = "States.JsonToString($.FunctionInput)";
        for (case, input, expected) in [
            ("test_json_to_string#2", json!(1), "1"),
            (
                "test_json_to_string#5",
                json!("HelloWorld"),
                "\"HelloWorld\"",
            ),
            (
                "test_json_to_string#6",
                json!([1, 2, "HelloWorld"]),
                "[1,2,\"HelloWorld\"]",
            ),
        ] {
            recorded(case, &function_input(input), to_string, json!(expected));
        }

        let to_json = "States.StringToJson($.FunctionInput)";
        for (case, input, expected) in [
            ("test_string_to_json#0", "", json!(null)),
            ("test_string_to_json#2", "null", json!(null)),
            (
                "test_string_to_json#7",
                "\"HelloWorld\"",
                json!("HelloWorld"),
            ),
            (
                "test_string_to_json#9",
                "{\"Arg1\": 1, \"Arg2\": []}",
                json!({"Arg1": 1, "Arg2": []}),
            ),
        ] {
            recorded(case, &function_input(json!(input)), to_json, expected);
        }

        // AWS rounds each decimal argument half up, as Java's Math.round.
        let add = "States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)";
        for (case, fst, snd, expected) in [
            ("test_math_add#0", json!(-9), json!(3), -6),
            ("test_math_add#1", json!(1.49), json!(1.5), 3),
            ("test_math_add#4", json!(-1.5), json!(-1.51), -3),
            ("test_math_add#5", json!(1.49), json!(0), 1),
            ("test_math_add#8", json!(1.51), json!(0), 2),
            ("test_math_add#11", json!(-1.51), json!(0), -2),
            ("test_math_add#16", json!(-0.5), json!(0.5), 1),
            ("test_math_add#18", json!(-1.5), json!(0), -1),
            ("test_math_add#19", json!(-2.5), json!(0), -2),
        ] {
            recorded(case, &two(fst, snd), add, json!(expected));
        }

        recorded(
            "test_string_split#4",
            &two(json!("1,2,3,4,5"), json!(",")),
            "States.StringSplit($.FunctionInput.fst, $.FunctionInput.snd)",
            json!(["1", "2", "3", "4", "5"]),
        );
    }

    #[test]
    fn conformance_cases_of_other_suites() {
        // base/test_state_fail_intrinsic: ErrorPath and CausePath.
        let data = Data::input(json!({"Error": "error string", "Cause": "cause string"}));
        recorded(
            "test_state_fail_intrinsic",
            &data,
            "States.Format('{}', $.Error)",
            json!("error string"),
        );
        recorded(
            "test_state_fail_intrinsic",
            &data,
            "States.Format('This is a custom error message for {}, caused by {}.', $.Error, \
             $.Cause)",
            json!("This is a custom error message for error string, caused by cause string."),
        );

        // scenarios/test_map_state_legacy_reentrant.
        recorded(
            "test_map_state_legacy_reentrant",
            &empty(),
            "States.ArrayRange(0, 3, 1)",
            json!([0, 1, 2, 3]),
        );
        for (iterations, expected) in [(3, 2), (2, 1), (1, 0)] {
            recorded(
                "test_map_state_legacy_reentrant",
                &Data::input(json!({"Iterations": iterations, "Values": [0, 1, 2, 3]})),
                "States.MathAdd($.Iterations, -1)",
                json!(expected),
            );
        }

        // assign/BASE_REFERENCE_IN_ITERATOR_OUTER_SCOPE: $bias is 4.3, rounded.
        let sum = "States.MathAdd(States.MathAdd(States.MathAdd($yCurrent, $xCurrent), \
                   $zCurrent), $bias)";
        for ([x, y, z], expected) in [([9, 44, 6], 63), ([82, 25, 76], 187), ([18, 42, 2], 66)] {
            let data = Data::input(json!(x))
                .with_variables(json!({"bias": 4.3, "xCurrent": x, "yCurrent": y, "zCurrent": z}));
            recorded(
                "BASE_REFERENCE_IN_ITERATOR_OUTER_SCOPE",
                &data,
                sum,
                json!(expected),
            );
        }

        // assign/MAP_STATE_REFERENCE_IN_ITEMS_PATH: a template from a path.
        for (item, expected) in [
            ("Charizard", "It's Charizard!"),
            ("Pikachu", "It's Pikachu!"),
            ("Squirtle", "It's Squirtle!"),
        ] {
            let data = Data::input(json!({"AnswerTemplate": "It's {}!"}))
                .with_context(json!({"Map": {"Item": {"Index": 0, "Value": item}}}));
            recorded(
                "MAP_STATE_REFERENCE_IN_ITEMS_PATH",
                &data,
                "States.Format($.AnswerTemplate, $$.Map.Item.Value)",
                json!(expected),
            );
        }
    }

    // --- Each function, its edges and its failures --------------------------

    #[test]
    fn format_writes_strings_raw_and_other_values_as_java_does() {
        let data = Data::input(json!({
            "s": "x",
            "empty": "",
            "n": null,
            "t": true,
            "i": -7,
            "big": 1e20,
            "small": 0.0001,
            "whole": 2.0,
            "obj": {"Arg1": 1, "Arg2": []},
            "nested": {"a": [1, "two", null, {"b": false}], "c": "d e"},
            "arr": [1, "a", [2.5]],
            "braces": "{}",
        }));
        data.check(
            "States.Format('{}|{}|{}|{}|{}', $.s, $.empty, $.n, $.t, $.i)",
            json!("x||null|true|-7"),
        );
        data.check(
            "States.Format('{} {} {}', $.big, $.small, $.whole)",
            json!("1.0E20 1.0E-4 2.0"),
        );
        // Recorded on AWS (LocalStack snapshot test_format_2, response 7).
        data.check(
            "States.Format('fst={} and snd={}.', $.obj, $.obj)",
            json!("fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}."),
        );
        data.check(
            "States.Format('{}', $.nested)",
            json!("{a=[1, two, null, {b=false}], c=d e}"),
        );
        data.check("States.Format('{}', $.arr)", json!("[1, a, [2.5]]"));
        // A value's braces are text; escaped braces in the template too.
        data.check("States.Format('\\{{}\\}', $.braces)", json!("{{}}"));
        data.check("States.Format('no placeholders')", json!("no placeholders"));
        data.check("States.Format('{}', States.Array(1, 'a'))", json!("[1, a]"));
    }

    #[test]
    fn format_with_a_template_from_a_path_checks_it_at_run_time() {
        let data = Data::input(json!({"one": "a {} b", "two": "{}{}", "number": 5}));
        data.check("States.Format($.one, 'x')", json!("a x b"));
        let cause = data.failure("States.Format($.two, 'x')");
        assert_eq!(
            cause,
            "the template has 2 placeholders {} \
             but 1 value follows it"
        );
        let cause = data.failure("States.Format($.number)");
        assert!(
            cause.ends_with(
                "the template (first argument) must be a string, but it is the number 5"
            ),
            "{cause}"
        );
    }

    #[test]
    fn string_to_json_parses_and_refuses_invalid_json() {
        let data = Data::input(json!({
            "blank": " \n ",
            "number": "1.1",
            "integer": "-12",
            "bool": "true",
            "array": "[1, 2, \"HelloWorld\"]",
            "bad": "{\"a\": ",
            "two": "1 2",
            "not_a_string": 5,
        }));
        // Recorded on AWS: a blank text gives null.
        data.check("States.StringToJson($.blank)", json!(null));
        data.check("States.StringToJson($.number)", json!(1.1));
        data.check("States.StringToJson($.integer)", json!(-12));
        data.check("States.StringToJson($.bool)", json!(true));
        data.check("States.StringToJson($.array)", json!([1, 2, "HelloWorld"]));
        data.check("States.StringToJson('{\"a\": 1}')", json!({"a": 1}));
        let cause = data.failure("States.StringToJson($.bad)");
        assert!(
            cause.starts_with("the argument is not valid JSON ("),
            "{cause}"
        );
        assert!(cause.ends_with("): the string \"{\\\"a\\\": \""), "{cause}");
        data.failure("States.StringToJson($.two)");
        let cause = data.failure("States.StringToJson($.not_a_string)");
        assert!(
            cause.ends_with("the argument must be a string, but it is the number 5"),
            "{cause}"
        );
    }

    #[test]
    fn json_to_string_writes_compact_json_as_jackson() {
        let data = Data::input(json!({
            "obj": {"Arg1": 1, "Arg2": []},
            "nested": {"a": {"b": [true, null, 1.5]}, "s": "q\"uote\\ \n\t\u{1}é😀/"},
            "null": null,
            "decimal": 1.1,
            "whole": 3.0,
            "huge": 1e300,
            "tiny": -2.5e-7,
            "int": -9007199254740993i64,
        }));
        // Recorded on AWS (LocalStack snapshot test_json_to_string).
        data.check(
            "States.JsonToString($.obj)",
            json!("{\"Arg1\":1,\"Arg2\":[]}"),
        );
        data.check("States.JsonToString($.null)", json!("null"));
        data.check("States.JsonToString($.decimal)", json!("1.1"));
        data.check(
            "States.JsonToString($.nested)",
            json!("{\"a\":{\"b\":[true,null,1.5]},\"s\":\"q\\\"uote\\\\ \\n\\t\\u0001é😀/\"}"),
        );
        data.check("States.JsonToString($.whole)", json!("3.0"));
        data.check("States.JsonToString($.huge)", json!("1.0E300"));
        data.check("States.JsonToString($.tiny)", json!("-2.5E-7"));
        data.check("States.JsonToString($.int)", json!("-9007199254740993"));
        data.check("States.JsonToString($)", json!(compact_json(&data.input)));
        data.check(
            "States.JsonToString(States.Array(1, 'a'))",
            json!("[1,\"a\"]"),
        );
    }

    #[test]
    fn java_double_to_string() {
        for (x, expected) in [
            (1.1, "1.1"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (0.000_999, "9.99E-4"),
            (1234567.5, "1234567.5"),
            (9_999_999.0, "9999999.0"),
            (10_000_000.0, "1.0E7"),
            (12_345_678.9, "1.23456789E7"),
            (1e23, "1.0E23"),
            (-1.5e-10, "-1.5E-10"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
            (5e-324, "4.9E-324"),
            (1e-323, "9.9E-324"),
            (2e-3, "0.002"),
            (9e22, "9.0E22"),
        ] {
            assert_eq!(java_double(x), expected, "{x}");
        }
    }

    #[test]
    fn array_builds_an_array_of_any_values() {
        let data = Data::input(json!({"a": {"x": 1}}));
        data.check("States.Array()", json!([]));
        data.check(
            "States.Array('s', 1, 2.5, true, null, $.a, States.Array())",
            json!(["s", 1, 2.5, true, null, {"x": 1}, []]),
        );
    }

    #[test]
    fn array_partition_checks_its_arguments() {
        let data = Data::input(json!({"a": [1, 2, 3], "s": "abc", "two": 2.0, "half": 1.5}));
        data.check("States.ArrayPartition($.a, 2)", json!([[1, 2], [3]]));
        data.check("States.ArrayPartition($.a, $.two)", json!([[1, 2], [3]]));
        data.check("States.ArrayPartition($.a, 3)", json!([[1, 2, 3]]));
        let cause = data.failure("States.ArrayPartition($.s, 2)");
        assert_eq!(
            cause,
            "the array (first argument) \
             must be an array, but it is the string \"abc\""
        );
        let cause = data.failure("States.ArrayPartition($.a, $.half)");
        assert!(
            cause.ends_with(
                "the chunk size (second argument) must be an integer, but it is the number 1.5"
            ),
            "{cause}"
        );
        let zero = Data::input(json!({"a": [1], "n": 0, "m": -1}));
        let cause = zero.failure("States.ArrayPartition($.a, $.n)");
        assert!(
            cause.ends_with("the chunk size (second argument) must be greater than 0, but it is 0"),
            "{cause}"
        );
        zero.failure("States.ArrayPartition($.a, $.m)");
    }

    #[test]
    fn array_contains_compares_deeply() {
        let data = Data::input(json!({
            "a": [1, "x", null, [1, 2], {"k": {"l": 1}, "m": 2}],
            "obj": {"m": 2, "k": {"l": 1}},
            "float": 1.0,
            "not": {"a": 1},
        }));
        data.check("States.ArrayContains($.a, 1)", json!(true));
        data.check("States.ArrayContains($.a, 'x')", json!(true));
        data.check("States.ArrayContains($.a, null)", json!(true));
        data.check("States.ArrayContains($.a, States.Array(1, 2))", json!(true));
        data.check(
            "States.ArrayContains($.a, States.Array(2, 1))",
            json!(false),
        );
        // Member order does not matter; 1 and 1.0 differ, as in Jackson.
        data.check("States.ArrayContains($.a, $.obj)", json!(true));
        data.check("States.ArrayContains($.a, $.float)", json!(false));
        data.check("States.ArrayContains($.a, 'y')", json!(false));
        let cause = data.failure("States.ArrayContains($.not, 1)");
        assert!(
            cause.ends_with("the array (first argument) must be an array, but it is an object"),
            "{cause}"
        );
    }

    #[test]
    fn array_range_counts_both_ways_and_is_bounded() {
        let data = Data::input(json!({
            "zero": 0, "thousand": 999, "over": 1000, "neg": -3, "half": 0.5, "s": "1",
        }));
        data.check("States.ArrayRange(0, 9, 3)", json!([0, 3, 6, 9]));
        data.check("States.ArrayRange(0, 10, 3)", json!([0, 3, 6, 9]));
        data.check("States.ArrayRange(5, 5, 1)", json!([5]));
        data.check("States.ArrayRange(5, 1, -2)", json!([5, 3, 1]));
        data.check("States.ArrayRange(1, 5, -1)", json!([]));
        data.check("States.ArrayRange(5, 1, 1)", json!([]));
        data.check("States.ArrayRange(-3, 3, 3)", json!([-3, 0, 3]));
        let thousand = data
            .eval("States.ArrayRange($.zero, $.thousand, 1)")
            .unwrap();
        assert_eq!(thousand.as_array().map(Vec::len), Some(1000));
        let cause = data.failure("States.ArrayRange($.zero, $.over, 1)");
        assert_eq!(
            cause,
            "the range from 0 to 1000 by 1 \
             would have 1001 items, but an array made by States.ArrayRange can have at most 1000"
        );
        let cause = data.failure("States.ArrayRange(1, 2, $.zero)");
        assert!(
            cause.ends_with("the step (third argument) must not be 0"),
            "{cause}"
        );
        let cause = data.failure("States.ArrayRange($.half, 2, 1)");
        assert!(
            cause.ends_with(
                "the start (first argument) must be an integer, but it is the number 0.5"
            ),
            "{cause}"
        );
        let cause = data.failure("States.ArrayRange(1, $.s, 1)");
        assert!(
            cause.ends_with(
                "the end (second argument) must be an integer, but it is the string \"1\""
            ),
            "{cause}"
        );
        data.check("States.ArrayRange(0, 4, $.neg)", json!([]));
    }

    #[test]
    fn array_get_item_checks_the_index() {
        let data = Data::input(json!({"a": ["x", "y", "z"], "three": 3, "neg": -1, "one": 1.0}));
        data.check("States.ArrayGetItem($.a, 0)", json!("x"));
        data.check("States.ArrayGetItem($.a, 2)", json!("z"));
        data.check("States.ArrayGetItem($.a, $.one)", json!("y"));
        let cause = data.failure("States.ArrayGetItem($.a, $.three)");
        assert_eq!(
            cause,
            "the index (second argument) is \
             3, but the array has 3 items: indexes go from 0 to the length minus 1"
        );
        let cause = data.failure("States.ArrayGetItem($.a, $.neg)");
        assert!(
            cause.contains("the index (second argument) is -1"),
            "{cause}"
        );
        let cause = data.failure("States.ArrayGetItem($.three, 0)");
        assert!(
            cause.ends_with("the array (first argument) must be an array, but it is the number 3"),
            "{cause}"
        );
        let cause = Data::input(json!({"a": []})).failure("States.ArrayGetItem($.a, 0)");
        assert!(cause.contains("but the array has 0 items"), "{cause}");
    }

    #[test]
    fn array_length_and_unique() {
        let data = Data::input(json!({
            "a": [null, null, true, true, false, false, 1, 1, 1.1, 0, 1.0,
                  "HelloWorld", "HelloWorld", [], [], [null], [null],
                  {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 1}],
            "s": "abc",
        }));
        data.check("States.ArrayLength($.a)", json!(20));
        data.check("States.ArrayLength(States.Array())", json!(0));
        data.check(
            "States.ArrayUnique($.a)",
            json!([null, true, false, 1, 1.1, 0, 1.0, "HelloWorld", [], [null],
                   {"a": 1, "b": 2}, {"a": 1, "b": 1}]),
        );
        let cause = data.failure("States.ArrayLength($.s)");
        assert_eq!(
            cause,
            "the argument must be an array, \
             but it is the string \"abc\""
        );
        data.failure("States.ArrayUnique($.s)");
    }

    #[test]
    fn base64_round_trips_and_refuses_bad_input() {
        let long = "a".repeat(10_001);
        let data = Data::input(json!({
            "text": "Hello World",
            "unicode": "héllo 😀",
            "encoded": "SGVsbG8gV29ybGQ=",
            "unpadded": "SGVsbG8gV29ybGQ",
            "wrapped": "SGVsbG8g\r\nV29ybGQ=",
            "bad": "SGVsbG8*",
            "latin1": "/w==",
            "long": long,
            "max": "a".repeat(10_000),
            "astral": "😀".repeat(5_001),
            "number": 12,
        }));
        data.check("States.Base64Encode($.text)", json!("SGVsbG8gV29ybGQ="));
        data.check("States.Base64Encode('')", json!(""));
        data.check("States.Base64Decode($.encoded)", json!("Hello World"));
        data.check("States.Base64Decode($.unpadded)", json!("Hello World"));
        data.check("States.Base64Decode($.wrapped)", json!("Hello World"));
        data.check(
            "States.Base64Decode(States.Base64Encode($.unicode))",
            json!("héllo 😀"),
        );
        data.check("States.Base64Decode($.latin1)", json!("\u{fffd}"));
        let encoded = data.eval("States.Base64Encode($.max)").unwrap();
        assert_eq!(encoded.as_str().map(str::len), Some(13_336));
        let cause = data.failure("States.Base64Decode($.bad)");
        assert!(
            cause.starts_with("the argument is not valid Base64 ("),
            "{cause}"
        );
        let cause = data.failure("States.Base64Encode($.long)");
        assert_eq!(
            cause,
            "the argument is 10001 \
             characters long, but at most 10000 are allowed"
        );
        // Counted as Java counts: each emoji is two UTF-16 units.
        data.failure("States.Base64Encode($.astral)");
        data.failure("States.Base64Decode($.long)");
        let cause = data.failure("States.Base64Encode($.number)");
        assert!(
            cause.ends_with("the argument must be a string, but it is the number 12"),
            "{cause}"
        );
    }

    #[test]
    fn hash_supports_the_five_algorithms() {
        let data = Data::input(json!({"d": "input data", "bad": "sha-256", "n": 1}));
        for (algorithm, expected) in [
            ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
            ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
            (
                "SHA-256",
                "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
            ),
        ] {
            data.check(&format!("States.Hash($.d, '{algorithm}')"), json!(expected));
        }
        data.check(
            "States.Hash('Hash this string', 'SHA-256')",
            json!("1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e"),
        );
        data.check(
            "States.Hash('', 'MD5')",
            json!("d41d8cd98f00b204e9800998ecf8427e"),
        );
        let cause = data.failure("States.Hash($.d, $.bad)");
        assert_eq!(
            cause,
            "the algorithm (second argument) must be \
             one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, but it is the string \"sha-256\""
        );
        let cause = data.failure("States.Hash($.n, 'MD5')");
        assert!(
            cause.ends_with("the data (first argument) must be a string, but it is the number 1"),
            "{cause}"
        );
        let long = Data::input(json!({"s": "x".repeat(10_001)}));
        let cause = long.failure("States.Hash($.s, 'MD5')");
        assert!(cause.contains("is 10001 characters long"), "{cause}");
    }

    #[test]
    fn json_merge_is_shallow_and_keeps_the_first_objects_order() {
        let data = Data::input(json!({
            "fst": {"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3},
            "snd": {"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4},
            "yes": true,
            "text": "false",
            "list": [1],
        }));
        let merged = data.eval("States.JsonMerge($.fst, $.snd, false)").unwrap();
        assert_eq!(
            merged,
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "d": 4, "c": 3})
        );
        let keys: Vec<&String> = merged.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "b", "d", "c"]);
        let cause = data.failure("States.JsonMerge($.fst, $.snd, $.yes)");
        assert_eq!(
            cause,
            "the third argument is true, but AWS \
             Step Functions only supports shallow merging: it must be false"
        );
        let cause = data.failure("States.JsonMerge($.fst, $.snd, $.text)");
        assert!(
            cause.ends_with(
                "must be the boolean false (shallow merging), but it is the string \"false\""
            ),
            "{cause}"
        );
        let cause = data.failure("States.JsonMerge($.list, $.snd, false)");
        assert!(
            cause.ends_with(
                "the first object (first argument) must be an object, but it is an array of 1 item"
            ),
            "{cause}"
        );
        data.failure("States.JsonMerge($.fst, $.list, false)");
    }

    #[test]
    fn math_add_rounds_as_java_and_checks_overflow() {
        let data = Data::input(json!({
            "max": i64::MAX, "min": i64::MIN, "s": "1", "b": true,
            "half": 0.5, "m_half": -0.5, "two_half": 2.5, "m_three_half": -3.5,
            "almost": 0.49999999999999994, "big": 1e30,
        }));
        data.check("States.MathAdd(1, 2)", json!(3));
        // Recorded on AWS (LocalStack snapshot test_math_add).
        data.check("States.MathAdd($.half, 0)", json!(1));
        data.check("States.MathAdd($.m_half, 0)", json!(0));
        data.check("States.MathAdd($.two_half, 0)", json!(3));
        data.check("States.MathAdd($.m_three_half, 0)", json!(-3));
        data.check("States.MathAdd($.almost, 0)", json!(0));
        data.check("States.MathAdd($.max, -1)", json!(i64::MAX - 1));
        assert!(data.eval("States.MathAdd(1, 2)").unwrap().is_i64());
        let cause = data.failure("States.MathAdd($.max, 1)");
        assert_eq!(
            cause,
            format!(
                "the sum of {} and 1 is too large \
                 for a 64-bit integer",
                i64::MAX
            )
        );
        data.failure("States.MathAdd($.min, -1)");
        let cause = data.failure("States.MathAdd($.s, 1)");
        assert!(
            cause.ends_with("the first argument must be a number, but it is the string \"1\""),
            "{cause}"
        );
        let cause = data.failure("States.MathAdd(1, $.b)");
        assert!(
            cause.ends_with("the second argument must be a number, but it is the boolean true"),
            "{cause}"
        );
        let cause = data.failure("States.MathAdd($.big, 1)");
        assert!(
            cause.ends_with("the first argument is 1.0E30, which is out of range"),
            "{cause}"
        );
    }

    #[test]
    fn math_random_is_in_range_and_deterministic_with_a_seed() {
        let data = Data::input(json!({"start": 12.5, "end": 44.51, "s": "x"}));
        for seed in 0..200 {
            let value = data.eval_seeded("States.MathRandom(-5, 5)", seed).unwrap();
            let value = value.as_i64().unwrap();
            assert!((-5..5).contains(&value), "{value}");
            // Rounded as Java: 13 to 45.
            let value = data
                .eval_seeded("States.MathRandom($.start, $.end)", seed)
                .unwrap();
            assert!((13..45).contains(&value.as_i64().unwrap()), "{value}");
        }
        // Every value of a small range comes up.
        let seen: HashSet<i64> = (0..100)
            .map(|seed| {
                data.eval_seeded("States.MathRandom(0, 4)", seed)
                    .unwrap()
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seen.len(), 4);
        // Without a seed the Env's randomness decides; with one, only the seed.
        assert_eq!(
            data.eval_seeded("States.MathRandom(0, 1000000)", 5),
            data.eval_seeded("States.MathRandom(0, 1000000)", 5)
        );
        let seeded: HashSet<Value> = (0..20)
            .map(|env_seed| {
                data.eval_seeded("States.MathRandom(0, 999, 3)", env_seed)
                    .unwrap()
            })
            .collect();
        assert_eq!(seeded.len(), 1);
        assert_ne!(
            data.eval("States.MathRandom(0, 1000000, 1)"),
            data.eval("States.MathRandom(0, 1000000, 2)")
        );
        // The whole range of 64-bit integers works.
        let wide = Data::input(json!({"min": i64::MIN, "max": i64::MAX}));
        for seed in 0..20 {
            wide.eval_seeded("States.MathRandom($.min, $.max)", seed)
                .unwrap();
            wide.eval_seeded("States.MathRandom($.min, $.max, 7)", seed)
                .unwrap();
        }
        let cause = data.failure("States.MathRandom(5, 5)");
        assert_eq!(
            cause,
            "the start (first argument) must be \
             less than the end (second argument), but they are 5 and 5"
        );
        data.failure("States.MathRandom(6, 5)");
        let cause = data.failure("States.MathRandom($.s, 5)");
        assert!(
            cause.ends_with(
                "the start (first argument) must be a number, but it is the string \"x\""
            ),
            "{cause}"
        );
        let cause = data.failure("States.MathRandom(1, 5, $.s)");
        assert!(
            cause.ends_with(
                "the seed (third argument) must be a number, but it is the string \"x\""
            ),
            "{cause}"
        );
    }

    #[test]
    fn java_random_matches_java() {
        // new java.util.Random(42).nextInt(10) is 0; nextInt(1000) is 130 then 763;
        // new Random(0).nextInt(100) is 60; new Random(1).nextInt(16) is 11.
        assert_eq!(JavaRandom::new(42).below(10), 0);
        let mut random = JavaRandom::new(42);
        assert_eq!([random.below(1000), random.below(1000)], [130, 763]);
        assert_eq!(JavaRandom::new(0).below(100), 60);
        assert_eq!(JavaRandom::new(1).below(16), 11);
    }

    #[test]
    fn string_split_splits_on_any_delimiter_character_and_drops_empty_parts() {
        let data = Data::input(json!({
            "s": "This.is+a,test=string", "d": ".+,=", "n": 5,
        }));
        // Recorded on AWS (LocalStack snapshot test_string_split).
        data.check(
            "States.StringSplit($.s, $.d)",
            json!(["This", "is", "a", "test", "string"]),
        );
        data.check("States.StringSplit(' ', ',')", json!([" "]));
        data.check("States.StringSplit(' , ', ',')", json!([" ", " "]));
        data.check("States.StringSplit(', , ,', ',')", json!([" ", " "]));
        data.check("States.StringSplit(',,,,', ',')", json!([]));
        data.check(
            "States.StringSplit('split on T and \nnew line', 'T\n')",
            json!(["split on ", " and ", "new line"]),
        );
        data.check("States.StringSplit('abc', '')", json!(["abc"]));
        data.check("States.StringSplit('', ',')", json!([]));
        data.check("States.StringSplit('a😀b😀', '😀')", json!(["a", "b"]));
        let cause = data.failure("States.StringSplit($.n, ',')");
        assert!(
            cause.ends_with("the string (first argument) must be a string, but it is the number 5"),
            "{cause}"
        );
        let cause = data.failure("States.StringSplit('a', $.n)");
        assert!(
            cause.ends_with(
                "the delimiters (second argument) must be a string, but it is the number 5"
            ),
            "{cause}"
        );
    }

    fn is_v4_uuid(s: &str) -> bool {
        let parts: Vec<&str> = s.split('-').collect();
        parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && s.chars()
                .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f'))
            && parts[2].starts_with('4')
            && matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b'))
    }

    #[test]
    fn uuid_is_a_random_version_4_uuid() {
        let data = empty();
        let uuids: HashSet<String> = (0..100)
            .map(|seed| {
                let uuid = data.eval_seeded("States.UUID()", seed).unwrap();
                let uuid = uuid.as_str().unwrap().to_owned();
                assert!(is_v4_uuid(&uuid), "{uuid}");
                uuid
            })
            .collect();
        assert_eq!(uuids.len(), 100);
        // Deterministic from the Env's randomness.
        assert_eq!(
            data.eval_seeded("States.UUID()", 9),
            data.eval_seeded("States.UUID()", 9)
        );
        assert_eq!(uuid_v4(0, 0), "00000000-0000-4000-8000-000000000000");
        assert_eq!(
            uuid_v4(u64::MAX, u64::MAX),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            uuid_v4(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            "01234567-89ab-4def-bedc-ba9876543210"
        );
    }

    // --- Paths, nesting, randomness ---------------------------------------

    #[test]
    fn paths_resolve_against_input_context_and_variables() {
        let data = Data::input(json!({"a": [1, 2, 3]}))
            .with_context(json!({"Execution": {"Name": "run-1"}}))
            .with_variables(json!({"v": {"w": "x"}}));
        let path = |s: &str| Path::parse(s).unwrap();
        let mut random = SplitMix64(0);
        let env = Env {
            input: &data.input,
            context: &data.context,
            variables: &data.variables,
            random: &mut random,
        };
        assert_eq!(
            resolve_path(&path("$.a[1]"), &env).as_deref(),
            Some(&json!(2))
        );
        assert_eq!(
            resolve_path(&path("$$.Execution.Name"), &env).as_deref(),
            Some(&json!("run-1"))
        );
        assert_eq!(
            resolve_path(&path("$v.w"), &env).as_deref(),
            Some(&json!("x"))
        );
        assert_eq!(
            resolve_path(&path("$v"), &env).as_deref(),
            Some(&json!({"w": "x"}))
        );
        assert_eq!(
            resolve_path(&path("$.a[*]"), &env).as_deref(),
            Some(&json!([1, 2, 3]))
        );
        assert_eq!(
            resolve_path(&path("$.b[*]"), &env).as_deref(),
            Some(&json!([]))
        );
        assert_eq!(resolve_path(&path("$.b"), &env), None);
        assert_eq!(resolve_path(&path("$unknown"), &env), None);
        assert_eq!(resolve_path(&path("$$.Nope"), &env), None);
        assert!(matches!(
            resolve_path(&path("$.a"), &env),
            Some(Cow::Borrowed(_))
        ));
    }

    /// AWS's words for a path argument that selects nothing, as a
    /// failed execution shows them: "The function 'States.Array($.x)' had
    /// the following error: The JsonPath argument for the field '$.x'
    /// could not be found in the input '...'".
    #[test]
    fn a_path_argument_that_selects_nothing_is_a_runtime_error() {
        let data = Data::input(json!({"a": 1, "s": "x y"}));
        let e = data.eval("States.Format('{}', $.missing)").unwrap_err();
        assert_eq!(e.error, "States.Runtime");
        assert_eq!(
            e.cause,
            "The function 'States.Format('{}', $.missing)' had the following error: The JsonPath \
             argument for the field '$.missing' could not be found in the input \
             '{\"a\":1,\"s\":\"x y\"}'"
        );
        let e = data.eval("States.Array(States.Array($nope))").unwrap_err();
        assert_eq!(e.error, "States.Runtime");
        assert!(
            e.cause.starts_with(
                "The function 'States.Array($nope)' had the following error: The JsonPath \
                 argument for the field '$nope' could not"
            ),
            "{e}"
        );
        let e = data
            .eval("States.ArrayLength($$.Map.Item.Value)")
            .unwrap_err();
        assert!(
            e.cause
                .contains("for the field '$$.Map.Item.Value' could not be found"),
            "{e}"
        );
    }

    #[test]
    fn failures_name_the_innermost_call_as_written() {
        let data = Data::input(json!({"a": [1]}));
        let e = data
            .eval("States.Array(States.ArrayGetItem($.a, 5))")
            .unwrap_err();
        assert_eq!(e.error, "States.Runtime");
        assert_eq!(
            e.cause,
            "The function 'States.ArrayGetItem($.a, 5)' had the following error: the index \
             (second argument) is 5, but the array has 1 item: indexes go from 0 to the length \
             minus 1"
        );
    }

    #[test]
    fn hand_built_calls_with_a_wrong_arity_fail_without_panicking() {
        let data = empty();
        let mut random = SplitMix64(0);
        let mut env = Env {
            input: &data.input,
            context: &data.context,
            variables: &data.variables,
            random: &mut random,
        };
        for function in Intrinsic::ALL {
            for count in [0, 4] {
                let call = IntrinsicCall {
                    function,
                    args: vec![Arg::Literal(json!(1)); count],
                };
                let _ = call.evaluate(&mut env);
            }
        }
        let call = IntrinsicCall {
            function: Intrinsic::ArrayLength,
            args: vec![],
        };
        assert_eq!(
            call.evaluate(&mut env).unwrap_err().cause,
            "The function 'States.ArrayLength()' had the following error: States.ArrayLength was given 0 \
             arguments, which it does not take"
        );
    }

    #[test]
    fn the_nine_nested_calls_of_the_aws_guide() {
        // From the AWS guide: "myArn.$" with nine nested intrinsic functions.
        let data = Data::input(json!({
            "ImageRecipe": {
                "Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/my-recipe/1.0.2"
            }
        }));
        data.check(
            "States.Format('{}.{}.{}', \
             States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), \
             States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1), \
             States.MathAdd(States.StringToJson(States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 2)), 1))",
            json!("1.0.3"),
        );
    }

    #[test]
    fn compact_json_is_jacksons() {
        assert_eq!(
            compact_json(&json!({"a": 1, "b": [1, 2], "c": {"d": null, "e": "f"}})),
            r#"{"a":1,"b":[1,2],"c":{"d":null,"e":"f"}}"#
        );
        assert_eq!(
            compact_json(&json!({"int-literal": 0})),
            r#"{"int-literal":0}"#
        );
        assert_eq!(compact_json(&json!("\u{1f}\u{7f}")), "\"\\u001F\u{7f}\"");
        assert_eq!(compact_json(&json!(u64::MAX)), u64::MAX.to_string());
        assert_eq!(canonical_json(&json!({"b": 1, "a": 2})), r#"{"a":2,"b":1}"#);
    }

    // --- Bounds on what the functions build ------------------------------

    /// An input with a string of 200 KB: within the payload limit alone,
    /// not when copied twice.
    fn big() -> Data {
        Data::input(json!({"big": "x".repeat(200_000), "small": "y"}))
    }

    #[test]
    fn array_of_many_large_arguments_is_refused_before_it_is_built() {
        let data = big();
        let many = vec!["$.big"; 1000].join(", ");
        let cause = data.failure(&format!("States.Array({many})"));
        assert!(cause.contains("payload limit of 262144 bytes"), "{cause}");
        assert!(cause.starts_with("its result would be larger"), "{cause}");
        data.check("States.ArrayLength(States.Array($.big))", json!(1));
    }

    #[test]
    fn format_of_many_large_values_is_refused_before_it_is_written() {
        let data = big();
        let template = vec!["{}"; 500].concat();
        let many = vec!["$.big"; 500].join(", ");
        let cause = data.failure(&format!("States.Format('{template}', {many})"));
        assert!(cause.contains("payload limit"), "{cause}");
        data.check("States.Format('{}', $.small)", json!("y"));
    }

    #[test]
    fn nested_results_past_the_payload_limit_fail() {
        let data = big();
        let cause = data.failure("States.JsonToString(States.Array($.big, $.big))");
        assert!(cause.contains("payload limit"), "{cause}");
        let cause = data.failure(
            "States.ArrayPartition(States.StringSplit(States.Format('{}{}', $.big, $.big), 'q'), 1)",
        );
        assert!(cause.contains("payload limit"), "{cause}");
    }

    #[test]
    fn string_split_into_many_parts_is_refused_before_it_is_built() {
        let data = Data::input(json!({"text": "a,".repeat(100_000)}));
        let cause = data.failure("States.StringSplit($.text, ',')");
        assert!(cause.contains("payload limit"), "{cause}");
        let data = Data::input(json!({"text": "a,".repeat(1000)}));
        data.check(
            "States.ArrayLength(States.StringSplit($.text, ','))",
            json!(1000),
        );
    }

    #[test]
    fn the_calls_of_one_field_build_a_bounded_amount_in_all() {
        // Each JsonToString is 200 KB, within the limit; twenty of them,
        // alive together as arguments, are not.
        let data = big();
        let many = vec!["States.JsonToString($.big)"; 100].join(", ");
        let cause = data.failure(&format!("States.ArrayContains(States.Array({many}), 1)"));
        assert!(cause.contains("in all"), "{cause}");
    }
}
