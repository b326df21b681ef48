//! The function library: JSONata's built-ins and the ones AWS Step
//! Functions adds ($partition, $range, $hash, $random with a seed, $uuid,
//! $parse). `$eval` is absent, as on AWS.

use std::rc::Rc;

use serde_json::Value;

use super::error::JErr;
use super::eval::{ENTRY_BYTES, Evaluator, ITEM_BYTES, Res, cmp_utf16, merge_sort};
use super::format;
use super::parser::RegexDef;
use super::value::{Func, Obj, V, deep_equal, js_number, stringify, truthy};

/// Name, fewest arguments, most arguments, and the type the context value
/// must have to stand in for a missing first argument ('-' in the
/// reference signatures; ' ' for none).
const TABLE: &[(&str, usize, usize, char)] = &[
    ("string", 1, 2, 'x'),
    ("length", 1, 1, 's'),
    ("substring", 2, 3, 's'),
    ("substringBefore", 2, 2, 's'),
    ("substringAfter", 2, 2, 's'),
    ("uppercase", 1, 1, 's'),
    ("lowercase", 1, 1, 's'),
    ("trim", 1, 1, 's'),
    ("pad", 2, 3, 's'),
    ("contains", 2, 2, 's'),
    ("split", 2, 3, 's'),
    ("join", 1, 2, ' '),
    ("match", 2, 3, 's'),
    ("replace", 3, 4, 's'),
    ("base64encode", 1, 1, 's'),
    ("base64decode", 1, 1, 's'),
    ("encodeUrlComponent", 1, 1, 's'),
    ("encodeUrl", 1, 1, 's'),
    ("decodeUrlComponent", 1, 1, 's'),
    ("decodeUrl", 1, 1, 's'),
    ("number", 1, 1, 'x'),
    ("abs", 1, 1, 'n'),
    ("floor", 1, 1, 'n'),
    ("ceil", 1, 1, 'n'),
    ("round", 1, 2, 'n'),
    ("power", 2, 2, 'n'),
    ("sqrt", 1, 1, 'n'),
    ("formatNumber", 2, 3, 'n'),
    ("formatBase", 1, 2, 'n'),
    ("formatInteger", 2, 2, 'n'),
    ("parseInteger", 2, 2, 's'),
    ("sum", 1, 1, ' '),
    ("max", 1, 1, ' '),
    ("min", 1, 1, ' '),
    ("average", 1, 1, ' '),
    ("count", 1, 1, ' '),
    ("boolean", 1, 1, 'x'),
    ("not", 1, 1, 'x'),
    ("exists", 1, 1, ' '),
    ("type", 1, 1, ' '),
    ("append", 2, 2, ' '),
    ("reverse", 1, 1, ' '),
    ("sort", 1, 2, ' '),
    ("shuffle", 1, 1, ' '),
    ("distinct", 1, 1, ' '),
    ("zip", 0, usize::MAX, ' '),
    ("keys", 1, 1, 'x'),
    ("lookup", 2, 2, 'x'),
    ("spread", 1, 1, 'x'),
    ("merge", 1, 1, ' '),
    ("each", 2, 2, 'o'),
    ("sift", 2, 2, 'o'),
    ("error", 0, 1, ' '),
    ("assert", 1, 2, ' '),
    ("map", 2, 2, ' '),
    ("filter", 2, 2, ' '),
    ("single", 1, 2, ' '),
    ("reduce", 2, 3, ' '),
    ("now", 0, 2, ' '),
    ("millis", 0, 0, ' '),
    ("fromMillis", 1, 3, 'n'),
    ("toMillis", 1, 2, 's'),
    // AWS Step Functions.
    ("partition", 2, 2, ' '),
    ("range", 3, 3, ' '),
    ("hash", 2, 2, ' '),
    ("random", 0, 1, ' '),
    ("uuid", 0, 0, ' '),
    ("parse", 1, 1, ' '),
];

/// Each parameter's type, as the reference signatures have them: `n`
/// number, `s` string, `f` function, `S` string or function, `o` object,
/// `b` boolean, `x` anything (arrays and the rest).
fn param_types(name: &str) -> &'static str {
    match name {
        "string" => "xb",
        "substring" => "snn",
        "substringBefore" | "substringAfter" => "ss",
        "pad" => "sns",
        "contains" => "sS",
        "split" => "sSn",
        "join" => "xs",
        "match" => "sfn",
        "replace" => "sSSn",
        "round" | "power" | "formatBase" => "nn",
        "formatNumber" => "nso",
        "formatInteger" => "ns",
        "parseInteger" => "ss",
        "lookup" => "xs",
        "each" | "sift" => "of",
        "map" | "filter" | "single" | "sort" => "xf",
        "reduce" => "xfx",
        "fromMillis" => "nss",
        "toMillis" => "ss",
        "now" => "ss",
        "partition" => "xn",
        "range" => "nnn",
        "hash" => "xs",
        _ => "",
    }
}

fn entry(name: &str) -> Option<&'static (&'static str, usize, usize, char)> {
    TABLE.iter().find(|e| e.0 == name)
}

/// The built-in named `name` (without `$`), if there is one.
pub(super) fn builtin(name: &str) -> Option<V> {
    entry(name).map(|e| V::Func(Rc::new(Func::Builtin(e.0))))
}

/// How many arguments a function value takes (for the higher-order
/// functions, which pass value, index and array as far as it takes them).
pub(super) fn arity(f: &V) -> usize {
    match f {
        V::Func(func) => match func.as_ref() {
            Func::Lambda { def, .. } => def.params.len(),
            Func::Builtin(name) => entry(name).map_or(1, |e| e.1.clamp(1, 3)),
            Func::Partial { args, .. } => args.iter().filter(|a| a.is_none()).count(),
            _ => 1,
        },
        _ => 0,
    }
}

fn matches_type(v: Option<&V>, t: char) -> bool {
    matches!(
        (v, t),
        (_, 'x') | (Some(V::Str(_)), 's') | (Some(V::Num(_)), 'n') | (Some(V::Obj(_)), 'o')
    )
}

fn sig_err(name: &str, i: usize, pos: usize) -> JErr {
    JErr::at(
        "T0410",
        format!(
            "Argument {} of function \"{name}\" does not match function signature",
            i + 1
        ),
        pos,
    )
}

/// A value as an error message quotes it: short values whole, long ones
/// only named (a message must not be where memory goes).
pub(super) fn show(v: &V) -> String {
    const LONGEST: usize = 4096;
    if super::value::text_size(v, false, LONGEST + 1) > LONGEST {
        return format!("(a {} too long to show)", v.type_name());
    }
    stringify(v, false).unwrap_or_default()
}

pub(super) fn call(
    ev: &mut Evaluator<'_>,
    name: &'static str,
    mut args: Vec<Option<V>>,
    input: Option<&V>,
    pos: usize,
) -> Res {
    let Some(&(_, min, max, ctx)) = entry(name) else {
        return Err(JErr::at("T1006", "Attempted to invoke a non-function", pos));
    };
    if ctx != ' ' {
        let short = args.len() < min;
        let mismatched = args.len() < max
            && ctx != 'x'
            && !args.is_empty()
            && !matches_type(args[0].as_ref(), ctx)
            && args[0].is_some();
        if short || mismatched {
            let context = match input {
                Some(V::Arr(a, f)) if f & super::value::WRAP != 0 => a.first().cloned(),
                other => other.cloned(),
            };
            if context.is_some() && !matches_type(context.as_ref(), ctx) {
                return Err(JErr::at(
                    "T0411",
                    format!(
                        "Context value is not a compatible type with argument 1 of function \"{name}\""
                    ),
                    pos,
                ));
            }
            args.insert(0, context);
        }
    }
    if args.len() > max {
        return Err(JErr::at(
            "T0410",
            format!(
                "Argument {} of function \"{name}\" does not match function signature",
                max + 1
            ),
            pos,
        ));
    }
    // The reference checks every supplied argument against the signature
    // before the function runs, even when an earlier one is undefined.
    for (i, (arg, t)) in args.iter().zip(param_types(name).chars()).enumerate() {
        if let Some(v) = arg {
            let fits = match t {
                'n' => matches!(v, V::Num(_)),
                's' => matches!(v, V::Str(_)),
                'f' => v.is_func(),
                'S' => matches!(v, V::Str(_)) || v.is_func(),
                'o' => matches!(v, V::Obj(_)),
                'b' => matches!(v, V::Bool(_)),
                _ => true,
            };
            if !fits {
                return Err(sig_err(name, i, pos));
            }
        }
    }
    while args.len() < min {
        args.push(None);
    }
    let a = Args { name, args, pos };
    dispatch(ev, a, input)
}

struct Args {
    name: &'static str,
    args: Vec<Option<V>>,
    pos: usize,
}

impl Args {
    fn get(&self, i: usize) -> Option<&V> {
        self.args.get(i).and_then(Option::as_ref)
    }
    fn err(&self, i: usize) -> JErr {
        sig_err(self.name, i, self.pos)
    }
    fn str(&self, i: usize) -> Result<Option<Rc<str>>, JErr> {
        match self.get(i) {
            None => Ok(None),
            Some(V::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(i)),
        }
    }
    fn num(&self, i: usize) -> Result<Option<f64>, JErr> {
        match self.get(i) {
            None => Ok(None),
            Some(V::Num(n)) => Ok(Some(*n)),
            Some(_) => Err(self.err(i)),
        }
    }
    fn boolean(&self, i: usize) -> Result<Option<bool>, JErr> {
        match self.get(i) {
            None => Ok(None),
            Some(V::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.err(i)),
        }
    }
    fn func(&self, i: usize) -> Result<Option<V>, JErr> {
        match self.get(i) {
            None => Ok(None),
            Some(f @ V::Func(_)) => Ok(Some(f.clone())),
            Some(_) => Err(self.err(i)),
        }
    }
    /// An array argument, copied (and charged): a single value is a
    /// one-item array.
    fn array(&self, ev: &mut Evaluator<'_>, i: usize) -> Result<Option<Vec<V>>, JErr> {
        Ok(match self.get(i) {
            None => None,
            Some(V::Arr(a, _)) => {
                ev.charge_items(a.len())?;
                Some(a.to_vec())
            }
            Some(other) => {
                ev.charge_items(1)?;
                Some(vec![other.clone()])
            }
        })
    }
    fn numbers(&self, ev: &mut Evaluator<'_>, i: usize) -> Result<Option<Vec<f64>>, JErr> {
        let Some(items) = self.array(ev, i)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                V::Num(n) => Ok(*n),
                _ => Err(JErr::at(
                    "T0412",
                    format!(
                        "Argument {} of function \"{}\" must be an array of numbers",
                        i + 1,
                        self.name
                    ),
                    self.pos,
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
    fn pattern(&self, i: usize) -> Result<Option<Pattern>, JErr> {
        match self.get(i) {
            None => Ok(None),
            Some(V::Str(s)) => Ok(Some(Pattern::Text(s.clone()))),
            Some(V::Func(f)) => match f.as_ref() {
                Func::Regex(def) => Ok(Some(Pattern::Regex(def.clone()))),
                _ => Err(self.err(i)),
            },
            Some(_) => Err(self.err(i)),
        }
    }
}

enum Pattern {
    Text(Rc<str>),
    Regex(std::sync::Arc<RegexDef>),
}

fn s(v: impl AsRef<str>) -> Res {
    Ok(Some(V::str(v.as_ref())))
}

fn n(v: f64) -> Res {
    Ok(Some(V::Num(v)))
}

fn b(v: bool) -> Res {
    Ok(Some(V::Bool(v)))
}

/// The reference `$append`: undefined on either side gives the other.
pub(super) fn append(a: Option<V>, b: Option<V>) -> Option<V> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => {
            let mut out = match a {
                V::Arr(x, _) => x.to_vec(),
                other => vec![other],
            };
            match b {
                V::Arr(y, _) => out.extend(y.iter().cloned()),
                other => out.push(other),
            }
            Some(V::arr(out))
        }
    }
}

fn chars_of(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// JavaScript string length counts UTF-16 units; we count characters, as
/// the reference does for `$length` (it uses Array.from).
fn dispatch(ev: &mut Evaluator<'_>, a: Args, input: Option<&V>) -> Res {
    let pos = a.pos;
    match a.name {
        "string" => {
            let Some(v) = a.get(0) else { return Ok(None) };
            let pretty = a.boolean(1)?.unwrap_or(false);
            if v.is_func() {
                return s("");
            }
            s(ev.stringify(v, pretty)?)
        }
        "length" => match a.str(0)? {
            Some(t) => n(t.chars().count() as f64),
            None => Ok(None),
        },
        "substring" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let start = a.num(1)?.ok_or_else(|| a.err(1))?;
            let len = a.num(2)?;
            // The characters, then the part taken.
            ev.charge(t.len().saturating_mul(5))?;
            let chars = chars_of(&t);
            let count = chars.len() as f64;
            let mut start = start.trunc();
            if start < 0.0 {
                start = (count + start).max(0.0);
            }
            let end = match len {
                None => count,
                Some(l) if l <= 0.0 => start,
                Some(l) => (start + l.trunc()).min(count),
            };
            if start >= count || end <= start {
                return s("");
            }
            s(chars[start as usize..end as usize]
                .iter()
                .collect::<String>())
        }
        "substringBefore" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let chars = a.str(1)?.ok_or_else(|| a.err(1))?;
            ev.charge_str(t.len())?;
            s(t.find(chars.as_ref()).map_or(t.as_ref(), |i| &t[..i]))
        }
        "substringAfter" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let chars = a.str(1)?.ok_or_else(|| a.err(1))?;
            ev.charge_str(t.len())?;
            s(t.find(chars.as_ref())
                .map_or(t.as_ref(), |i| &t[i + chars.len()..]))
        }
        "uppercase" | "lowercase" | "trim" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            // The new text and its copy into a value (a case change can
            // lengthen a character: `ß` is `SS`).
            ev.charge_str(t.len().saturating_mul(4))?;
            s(match a.name {
                "uppercase" => t.to_uppercase(),
                "lowercase" => t.to_lowercase(),
                _ => t.split_whitespace().collect::<Vec<_>>().join(" "),
            })
        }
        "pad" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let width = a.num(1)?.ok_or_else(|| a.err(1))?;
            let fill = a
                .str(2)?
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| Rc::from(" "));
            let len = t.chars().count() as f64;
            let missing = width.abs().trunc() - len;
            if missing <= 0.0 {
                return s(t);
            }
            ev.spend(missing as u64 / 8)?;
            if missing > 10_000_000.0 {
                return Err(JErr::at("U1002", "The padding is too large", pos));
            }
            let widest = fill.chars().map(char::len_utf8).max().unwrap_or(1);
            // The padding, the padded text, and its copy into a value.
            let padding_bytes = (missing as usize).saturating_mul(widest);
            ev.charge_str(padding_bytes.saturating_add(t.len()).saturating_mul(3))?;
            let padding: String = fill.chars().cycle().take(missing as usize).collect();
            s(if width > 0.0 {
                format!("{t}{padding}")
            } else {
                format!("{padding}{t}")
            })
        }
        "contains" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            match a.pattern(1)?.ok_or_else(|| a.err(1))? {
                Pattern::Text(p) => b(t.contains(p.as_ref())),
                Pattern::Regex(r) => b(!regex_matches(ev, &r, &t, Some(1))?.is_empty()),
            }
        }
        "split" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let limit = a.num(2)?;
            if limit.is_some_and(|l| l < 0.0) {
                return Err(JErr::at(
                    "D3020",
                    "Third argument of split function must evaluate to a positive number",
                    pos,
                ));
            }
            // Each part is a string of its own, in a slot of the array.
            let part_bytes = ITEM_BYTES + super::eval::STR_BYTES;
            let mut parts: Vec<V> = match a.pattern(1)?.ok_or_else(|| a.err(1))? {
                Pattern::Text(p) if p.is_empty() => {
                    ev.charge(t.len().saturating_mul(part_bytes + 4))?;
                    t.chars().map(|c| V::str(&c.to_string())).collect()
                }
                Pattern::Text(p) => {
                    let count = t.matches(p.as_ref()).count() + 1;
                    ev.charge(count.saturating_mul(part_bytes).saturating_add(t.len()))?;
                    t.split(p.as_ref()).map(V::str).collect()
                }
                Pattern::Regex(r) => {
                    let spans = regex_spans(ev, &r, &t, None)?;
                    ev.charge(
                        (spans.len() + 1)
                            .saturating_mul(part_bytes)
                            .saturating_add(t.len()),
                    )?;
                    let mut out = Vec::new();
                    let mut last = 0;
                    for m in spans {
                        out.push(V::str(&t[last..m.0]));
                        last = m.1;
                    }
                    out.push(V::str(&t[last..]));
                    out
                }
            };
            if let Some(l) = limit {
                parts.truncate(l as usize);
            }
            Ok(Some(V::arr(parts)))
        }
        "join" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            let sep = a.str(1)?.unwrap_or_else(|| Rc::from(""));
            let mut total = sep.len().saturating_mul(items.len().saturating_sub(1));
            for item in &items {
                match item {
                    V::Str(x) => total = total.saturating_add(x.len()),
                    _ => return Err(a.err(0)),
                }
            }
            // The joined text and its copy into a value.
            ev.charge_str(total.saturating_mul(2))?;
            let mut joined = String::with_capacity(total);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    joined.push_str(&sep);
                }
                if let V::Str(x) = item {
                    joined.push_str(x);
                }
            }
            s(joined)
        }
        "match" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let Some(Pattern::Regex(r)) = a.pattern(1)? else {
                return Err(a.err(1));
            };
            let limit = a.num(2)?.map(|l| l.max(0.0) as usize);
            let found = regex_matches(ev, &r, &t, limit)?;
            ev.charge_items(found.len())?;
            Ok(Some(V::seq(found)))
        }
        "replace" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let pattern = a.pattern(1)?.ok_or_else(|| a.err(1))?;
            let replacement = a.get(2).cloned().ok_or_else(|| a.err(2))?;
            if !matches!(replacement, V::Str(_) | V::Func(_)) {
                return Err(a.err(2));
            }
            let limit = a.num(3)?;
            if limit.is_some_and(|l| l < 0.0) {
                return Err(JErr::at(
                    "D3011",
                    "Fourth argument of replace function must evaluate to a positive number",
                    pos,
                ));
            }
            let limit = limit.map(|l| l as usize);
            replace(ev, &t, pattern, &replacement, limit, pos)
        }
        "base64encode" => {
            use base64::Engine;
            let Some(t) = a.str(0)? else { return Ok(None) };
            ev.charge_str((t.len() / 3 + 1).saturating_mul(8))?;
            s(base64::engine::general_purpose::STANDARD.encode(t.as_bytes()))
        }
        "base64decode" => {
            use base64::Engine;
            let Some(t) = a.str(0)? else { return Ok(None) };
            // The bytes, the text (an invalid byte becomes three), its copy.
            ev.charge_str(t.len().saturating_mul(7))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(t.as_bytes())
                .map_err(|_| JErr::at("D3137", "Invalid base64 string", pos))?;
            s(String::from_utf8_lossy(&bytes))
        }
        "encodeUrlComponent" | "encodeUrl" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            // Each byte may become `%XX`; the text and its copy.
            ev.charge_str(t.len().saturating_mul(6))?;
            let keep = if a.name == "encodeUrl" {
                "-_.!~*'();/?:@&=+$,#"
            } else {
                "-_.!~*'()"
            };
            s(percent_encode(&t, keep))
        }
        "decodeUrlComponent" | "decodeUrl" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            ev.charge_str(t.len().saturating_mul(2))?;
            match percent_decode(&t, a.name == "decodeUrl") {
                Some(d) => s(d),
                None => Err(JErr::at(
                    "D3140",
                    format!("Malformed URL passed to ${}(): \"{t}\"", a.name),
                    pos,
                )),
            }
        }
        "number" => match a.get(0) {
            None => Ok(None),
            Some(V::Num(x)) => n(*x),
            Some(V::Bool(x)) => n(if *x { 1.0 } else { 0.0 }),
            Some(V::Str(t)) => match parse_number(t) {
                Some(x) => n(x),
                None => Err(JErr::at(
                    "D3030",
                    format!("Unable to cast value to a number: \"{t}\""),
                    pos,
                )),
            },
            Some(other) => Err(JErr::at(
                "D3030",
                format!("Unable to cast value to a number: {}", show(other)),
                pos,
            )),
        },
        "abs" => Ok(a.num(0)?.map(|x| V::Num(x.abs()))),
        "floor" => Ok(a.num(0)?.map(|x| V::Num(x.floor()))),
        "ceil" => Ok(a.num(0)?.map(|x| V::Num(x.ceil()))),
        "round" => {
            let Some(x) = a.num(0)? else { return Ok(None) };
            let precision = a.num(1)?.unwrap_or(0.0);
            n(round_half_even(x, precision as i32))
        }
        "power" => {
            let Some(x) = a.num(0)? else { return Ok(None) };
            let y = a.num(1)?.ok_or_else(|| a.err(1))?;
            let r = x.powf(y);
            if !r.is_finite() {
                return Err(JErr::at(
                    "D3061",
                    format!(
                        "The power function has resulted in a value that cannot be represented as a JSON number: base={x}, exponent={y}"
                    ),
                    pos,
                ));
            }
            n(r)
        }
        "sqrt" => {
            let Some(x) = a.num(0)? else { return Ok(None) };
            if x < 0.0 {
                return Err(JErr::at(
                    "D3060",
                    format!(
                        "The sqrt function cannot be applied to a negative number: {}",
                        js_number(x)
                    ),
                    pos,
                ));
            }
            n(x.sqrt())
        }
        "formatNumber" => {
            let Some(x) = a.num(0)? else { return Ok(None) };
            let picture = a.str(1)?.ok_or_else(|| a.err(1))?;
            // The picture's own text and padding, and up to 309 digits
            // (and as many separators) of the number.
            ev.charge_str(picture.len().saturating_mul(4).saturating_add(1024))?;
            s(format::format_number(x, &picture).map_err(|e| e.or_at(pos))?)
        }
        "formatBase" => {
            let Some(x) = a.num(0)? else { return Ok(None) };
            let radix = a.num(1)?.unwrap_or(10.0);
            if !(2.0..=36.0).contains(&radix) {
                return Err(JErr::at(
                    "D3100",
                    format!(
                        "The radix of the formatBase function must be between 2 and 36.  It was given {radix}"
                    ),
                    pos,
                ));
            }
            let v = round_half_even(x, 0);
            // Base 2 of the largest number: 1024 digits, held as chars too.
            ev.charge_str(6 * 1030)?;
            s(format::to_radix(v, radix as u32))
        }
        "formatInteger" => {
            let Some(x) = a.num(0)? else { return Ok(None) };
            let picture = a.str(1)?.ok_or_else(|| a.err(1))?;
            // Digits and separators as the picture has them, words, or a
            // Roman numeral (checked against what is left by itself).
            ev.charge_str(picture.len().saturating_mul(8).saturating_add(1024))?;
            let text =
                format::format_integer(round_half_even(x, 0), &picture, ev.memory_left() / 2)
                    .map_err(|e| e.or_at(pos))?;
            ev.charge_str(text.len().saturating_mul(2))?;
            s(text)
        }
        "parseInteger" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let picture = a.str(1)?.ok_or_else(|| a.err(1))?;
            Ok(format::parse_integer(&t, &picture).map(V::Num))
        }
        "sum" => Ok(a.numbers(ev, 0)?.map(|xs| V::Num(xs.iter().sum()))),
        "max" => Ok(a
            .numbers(ev, 0)?
            .and_then(|xs| xs.into_iter().reduce(f64::max))
            .map(V::Num)),
        "min" => Ok(a
            .numbers(ev, 0)?
            .and_then(|xs| xs.into_iter().reduce(f64::min))
            .map(V::Num)),
        "average" => Ok(a
            .numbers(ev, 0)?
            .filter(|xs| !xs.is_empty())
            .map(|xs| V::Num(xs.iter().sum::<f64>() / xs.len() as f64))),
        "count" => n(match a.get(0) {
            None => 0.0,
            Some(V::Arr(items, _)) => items.len() as f64,
            Some(_) => 1.0,
        }),
        "boolean" => match a.get(0) {
            None => Ok(None),
            Some(v) => b(truthy(Some(v))),
        },
        "not" => match a.get(0) {
            None => Ok(None),
            Some(v) => b(!truthy(Some(v))),
        },
        "exists" => b(a.get(0).is_some()),
        "type" => Ok(a.get(0).map(|v| V::str(v.type_name()))),
        "append" => {
            let len = |v: Option<&V>| match v {
                Some(V::Arr(items, _)) => items.len(),
                Some(_) => 1,
                None => 0,
            };
            ev.charge_items(len(a.get(0)) + len(a.get(1)))?;
            let joined = append(
                a.args.first().cloned().flatten(),
                a.args.get(1).cloned().flatten(),
            );
            if let Some(V::Arr(items, _)) = &joined {
                // Each item is copied: charge it (doubling runs out of fuel).
                ev.spend(4 * items.len() as u64)?;
            }
            Ok(joined)
        }
        "reverse" => Ok(a.array(ev, 0)?.map(|mut x| {
            x.reverse();
            V::arr(x)
        })),
        "sort" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            if items.len() <= 1 {
                return Ok(Some(V::arr(items)));
            }
            // The merge sort's halves and merged runs.
            ev.charge_items(items.len().saturating_mul(2))?;
            let f = a.func(1)?;
            let sorted = match f {
                None => {
                    let all_num = items.iter().all(|v| matches!(v, V::Num(_)));
                    let all_str = items.iter().all(|v| matches!(v, V::Str(_)));
                    if !all_num && !all_str {
                        return Err(JErr::at(
                            "D3070",
                            "The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function",
                            pos,
                        ));
                    }
                    merge_sort(items, &mut |x, y| match (x, y) {
                        (V::Num(p), V::Num(q)) => p > q,
                        (V::Str(p), V::Str(q)) => cmp_utf16(p, q) == std::cmp::Ordering::Greater,
                        _ => false,
                    })
                }
                Some(f) => {
                    let mut error = None;
                    let sorted = merge_sort(items, &mut |x, y| {
                        if error.is_some() {
                            return false;
                        }
                        match ev.apply(&f, vec![Some(x.clone()), Some(y.clone())], input, pos) {
                            Ok(r) => truthy(r.as_ref()),
                            Err(e) => {
                                error = Some(e);
                                false
                            }
                        }
                    });
                    if let Some(e) = error {
                        return Err(e);
                    }
                    sorted
                }
            };
            Ok(Some(V::arr(sorted)))
        }
        "shuffle" => {
            let Some(mut items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            for i in (1..items.len()).rev() {
                let j = (ev.host.random() * (i + 1) as f64) as usize;
                items.swap(i, j.min(i));
            }
            Ok(Some(V::arr(items)))
        }
        "distinct" => {
            let Some(v) = a.get(0) else { return Ok(None) };
            let V::Arr(items, _) = v else {
                return Ok(Some(v.clone()));
            };
            let mut out: Vec<V> = Vec::new();
            for item in items.iter() {
                ev.spend(out.len() as u64 / 4 + 1)?;
                ev.charge_items(1)?;
                if !out.iter().any(|o| deep_equal(o, item)) {
                    out.push(item.clone());
                }
            }
            Ok(Some(V::arr(out)))
        }
        "zip" => {
            let mut arrays: Vec<Vec<V>> = Vec::with_capacity(a.args.len());
            for i in 0..a.args.len() {
                arrays.push(a.array(ev, i)?.unwrap_or_default());
            }
            let len = arrays.iter().map(Vec::len).min().unwrap_or(0);
            ev.charge_items(len.saturating_mul(arrays.len() + 1))?;
            Ok(Some(V::arr(
                (0..len)
                    .map(|i| V::arr(arrays.iter().map(|x| x[i].clone()).collect()))
                    .collect(),
            )))
        }
        "keys" => {
            let Some(v) = a.get(0) else { return Ok(None) };
            let mut keys: Vec<String> = Vec::new();
            let mut add = |ev: &mut Evaluator<'_>, o: &Obj| -> Result<(), JErr> {
                for k in o.keys() {
                    if !keys.contains(k) {
                        // The key, its copy into a value, and a slot.
                        ev.charge(k.len().saturating_mul(2).saturating_add(ENTRY_BYTES))?;
                        keys.push(k.clone());
                    }
                }
                Ok(())
            };
            match v {
                V::Obj(o) => add(ev, o)?,
                V::Arr(items, _) => {
                    for i in items.iter() {
                        if let V::Obj(o) = i {
                            add(ev, o)?;
                        }
                    }
                }
                _ => {}
            }
            Ok(Some(V::seq(keys.iter().map(|k| V::str(k)).collect())))
        }
        "lookup" => {
            let Some(key) = a.str(1)? else {
                return Ok(None);
            };
            ev.charged_seq(super::eval::lookup(a.get(0), &key))
        }
        "spread" => {
            let Some(v) = a.get(0) else { return Ok(None) };
            let mut out = Vec::new();
            let mut one = |ev: &mut Evaluator<'_>, v: &V| -> Result<(), JErr> {
                match v {
                    V::Obj(o) => {
                        for (k, x) in o.iter() {
                            // A one-entry object of its own, in a slot.
                            ev.charge(k.len() + ENTRY_BYTES + ITEM_BYTES + 64)?;
                            let mut single = Obj::default();
                            single.insert(k.clone(), x.clone());
                            out.push(V::Obj(Rc::new(single)));
                        }
                    }
                    other => {
                        ev.charge_items(1)?;
                        out.push(other.clone());
                    }
                }
                Ok(())
            };
            match v {
                V::Arr(items, _) => {
                    for item in items.iter() {
                        one(ev, item)?;
                    }
                }
                other => one(ev, other)?,
            }
            Ok(Some(V::seq(out)))
        }
        "merge" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            let mut out = Obj::default();
            for item in &items {
                match item {
                    V::Obj(o) => {
                        let keys: usize = o.keys().map(String::len).sum();
                        ev.charge(o.len().saturating_mul(ENTRY_BYTES).saturating_add(keys))?;
                        out.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    _ => return Err(a.err(0)),
                }
            }
            Ok(Some(V::Obj(Rc::new(out))))
        }
        "each" => {
            let Some(v) = a.get(0) else { return Ok(None) };
            let V::Obj(o) = v else { return Err(a.err(0)) };
            let f = a.func(1)?.ok_or_else(|| a.err(1))?;
            let k = arity(&f);
            let mut out = Vec::new();
            for (key, value) in o.iter() {
                let mut args = vec![Some(value.clone())];
                if k >= 2 {
                    args.push(Some(V::str(key)));
                }
                if k >= 3 {
                    args.push(Some(v.clone()));
                }
                if let Some(r) = ev.apply(&f, args, input, pos)? {
                    ev.charge_items(1)?;
                    out.push(r);
                }
            }
            Ok(Some(V::seq(out)))
        }
        "sift" => {
            let Some(v) = a.get(0) else { return Ok(None) };
            let V::Obj(o) = v else { return Err(a.err(0)) };
            let f = a.func(1)?.ok_or_else(|| a.err(1))?;
            let k = arity(&f);
            let mut out = Obj::default();
            for (key, value) in o.iter() {
                let mut args = vec![Some(value.clone())];
                if k >= 2 {
                    args.push(Some(V::str(key)));
                }
                if k >= 3 {
                    args.push(Some(v.clone()));
                }
                if truthy(ev.apply(&f, args, input, pos)?.as_ref()) {
                    ev.charge(ENTRY_BYTES + key.len())?;
                    out.insert(key.clone(), value.clone());
                }
            }
            Ok(if out.is_empty() {
                None
            } else {
                Some(V::Obj(Rc::new(out)))
            })
        }
        "error" => {
            let message = a.str(0)?.map_or_else(
                || "$error() function evaluated".to_owned(),
                |m| m.to_string(),
            );
            Err(JErr::at("D3137", message, pos))
        }
        "assert" => {
            let cond = match a.get(0) {
                Some(V::Bool(c)) => *c,
                _ => return Err(a.err(0)),
            };
            if !cond {
                let message = a.str(1)?.map_or_else(
                    || "$assert() statement failed".to_owned(),
                    |m| m.to_string(),
                );
                return Err(JErr::at("D3141", message, pos));
            }
            Ok(None)
        }
        "map" | "filter" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            let f = a.func(1)?.ok_or_else(|| a.err(1))?;
            let k = arity(&f);
            let whole = whole_array(ev, &items, k >= 3)?;
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let mut args = vec![Some(item.clone())];
                if k >= 2 {
                    args.push(Some(V::Num(i as f64)));
                }
                if k >= 3 {
                    args.push(Some(whole.clone()));
                }
                let r = ev.apply(&f, args, input, pos)?;
                if a.name == "map" {
                    if let Some(r) = r {
                        ev.charge_items(1)?;
                        out.push(r);
                    }
                } else if truthy(r.as_ref()) {
                    ev.charge_items(1)?;
                    out.push(item.clone());
                }
            }
            Ok(Some(V::seq(out)))
        }
        "single" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            let f = a.func(1)?;
            let whole = whole_array(ev, &items, f.as_ref().is_some_and(|f| arity(f) >= 3))?;
            let mut found = None;
            for (i, item) in items.iter().enumerate() {
                let keep = match &f {
                    None => true,
                    Some(f) => {
                        let k = arity(f);
                        let mut args = vec![Some(item.clone())];
                        if k >= 2 {
                            args.push(Some(V::Num(i as f64)));
                        }
                        if k >= 3 {
                            args.push(Some(whole.clone()));
                        }
                        truthy(ev.apply(f, args, input, pos)?.as_ref())
                    }
                };
                if keep {
                    if found.is_some() {
                        return Err(JErr::at(
                            "D3138",
                            "The $single() function expected exactly 1 matching result.  Instead it matched more.",
                            pos,
                        ));
                    }
                    found = Some(item.clone());
                }
            }
            match found {
                Some(v) => Ok(Some(v)),
                None => Err(JErr::at(
                    "D3139",
                    "The $single() function expected exactly 1 matching result.  Instead it matched 0.",
                    pos,
                )),
            }
        }
        "reduce" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            let f = a.func(1)?.ok_or_else(|| a.err(1))?;
            let k = arity(&f);
            if k < 2 {
                return Err(JErr::at(
                    "D3050",
                    "The second argument of reduce function must be a function with at least two arguments",
                    pos,
                ));
            }
            let mut iter = items.iter().enumerate();
            let mut acc = match a.args.get(2).cloned().flatten() {
                Some(init) => Some(init),
                None => iter.next().map(|(_, v)| v.clone()),
            };
            let whole = whole_array(ev, &items, k >= 4)?;
            for (i, item) in iter {
                let mut args = vec![acc, Some(item.clone())];
                if k >= 3 {
                    args.push(Some(V::Num(i as f64)));
                }
                if k >= 4 {
                    args.push(Some(whole.clone()));
                }
                acc = ev.apply(&f, args, input, pos)?;
            }
            Ok(acc)
        }
        "now" => {
            let millis = ev.host.now_millis();
            let picture = a.str(0)?;
            let tz = a.str(1)?;
            date_text(ev, millis as f64, picture.as_deref(), tz.as_deref(), pos)
        }
        "millis" => n(ev.host.now_millis() as f64),
        "fromMillis" => {
            let Some(ms) = a.num(0)? else { return Ok(None) };
            let picture = a.str(1)?;
            let tz = a.str(2)?;
            date_text(ev, ms, picture.as_deref(), tz.as_deref(), pos)
        }
        "toMillis" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            let picture = a.str(1)?;
            format::to_millis(&t, picture.as_deref())
                .map(|o| o.map(V::Num))
                .map_err(|e| e.or_at(pos))
        }
        "partition" => {
            let Some(items) = a.array(ev, 0)? else {
                return Ok(None);
            };
            let size = a.num(1)?.ok_or_else(|| a.err(1))?;
            if size < 1.0 || size.fract() != 0.0 {
                return Err(JErr::at(
                    "D3137",
                    "The chunk size of $partition must be a positive integer",
                    pos,
                ));
            }
            ev.charge_items(items.len().saturating_mul(2))?;
            Ok(Some(V::arr(
                items
                    .chunks(size.min(1e9) as usize)
                    .map(|c| V::arr(c.to_vec()))
                    .collect(),
            )))
        }
        "range" => {
            let start = a.num(0)?.ok_or_else(|| a.err(0))?;
            let end = a.num(1)?.ok_or_else(|| a.err(1))?;
            let step = a.num(2)?.ok_or_else(|| a.err(2))?;
            if step == 0.0 || !step.is_finite() {
                return Err(JErr::at(
                    "D3137",
                    "The step of $range must not be zero",
                    pos,
                ));
            }
            let count = ((end - start) / step).floor() + 1.0;
            if count > 1000.0 {
                return Err(JErr::at(
                    "D3137",
                    "The $range function can produce at most 1000 items",
                    pos,
                ));
            }
            ev.charge_items(count.max(0.0) as usize)?;
            let mut out = Vec::new();
            let mut i = 0.0;
            while i < count {
                out.push(V::Num(start + i * step));
                i += 1.0;
            }
            // A sequence, as AWS returns it: one item is the item itself.
            Ok(Some(V::seq(out)))
        }
        "hash" => {
            let data = match a.get(0) {
                None => return Ok(None),
                Some(V::Str(t)) => t.to_string(),
                Some(other) => ev.stringify(other, false)?,
            };
            let algorithm = a.str(1)?.ok_or_else(|| a.err(1))?;
            match crate::query::eval::hex_digest(&data, &algorithm) {
                Some(h) => s(h),
                None => Err(JErr::at(
                    "D3137",
                    format!(
                        "The hash algorithm '{algorithm}' is not supported: use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
                    ),
                    pos,
                )),
            }
        }
        "random" => match a.get(0) {
            None => n(ev.host.random()),
            Some(V::Num(seed)) => {
                let mut rng = crate::query::eval::SplitMix64(seed.to_bits());
                use crate::query::eval::RandomSource;
                n((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
            }
            Some(_) => Err(a.err(0)),
        },
        "uuid" => s(ev.host.uuid()),
        "parse" => {
            let Some(t) = a.str(0)? else { return Ok(None) };
            // At most one value per structural character: each is a JSON
            // node, then a value of ours in a slot or an entry.
            let nodes = 1 + t
                .bytes()
                .filter(|b| matches!(b, b',' | b'[' | b'{' | b':'))
                .count();
            ev.charge(
                nodes
                    .saturating_mul(32 + ENTRY_BYTES)
                    .saturating_add(t.len().saturating_mul(2)),
            )?;
            match serde_json::from_str::<Value>(&t) {
                Ok(v) => Ok(Some(V::from_json(&v))),
                Err(_) => Err(JErr::at(
                    "D3137",
                    format!("The $parse function could not parse the string as JSON: {t}"),
                    pos,
                )),
            }
        }
        _ => Err(JErr::at("T1006", "Attempted to invoke a non-function", pos)),
    }
}

/// The array a higher-order function passes as its callback's last
/// argument: copied (and charged) only when the callback takes it.
fn whole_array(ev: &mut Evaluator<'_>, items: &[V], taken: bool) -> Result<V, JErr> {
    if !taken {
        return Ok(V::Null);
    }
    ev.charge_items(items.len())?;
    Ok(V::arr(items.to_vec()))
}

/// `$now` and `$fromMillis`: a date-time as text, its widths checked
/// against the memory left and the text charged.
fn date_text(
    ev: &mut Evaluator<'_>,
    ms: f64,
    picture: Option<&str>,
    tz: Option<&str>,
    pos: usize,
) -> Res {
    ev.charge_str(
        picture
            .map_or(0, str::len)
            .saturating_mul(4)
            .saturating_add(64),
    )?;
    let text =
        format::from_millis(ms, picture, tz, ev.memory_left() / 2).map_err(|e| e.or_at(pos))?;
    ev.charge_str(text.len().saturating_mul(2))?;
    s(text)
}

/// JSON number syntax, plus the reference's hex, octal and binary forms.
fn parse_number(t: &str) -> Option<f64> {
    let radix = |p: &str, r: u32| i64::from_str_radix(p, r).ok().map(|x| x as f64);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return radix(h, 16);
    }
    if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        return radix(o, 8);
    }
    if let Some(bn) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        return radix(bn, 2);
    }
    match serde_json::from_str::<Value>(t.trim()) {
        Ok(Value::Number(x)) => x.as_f64().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// The reference `$round`: half to even, at `precision` decimal places.
pub(super) fn round_half_even(x: f64, precision: i32) -> f64 {
    let shift = |v: f64, p: i32| -> f64 {
        let text = js_number(v);
        let (m, e) = text
            .split_once('e')
            .map_or((text.as_str(), 0), |(m, e)| (m, e.parse().unwrap_or(0)));
        format!("{m}e{}", e + p).parse().unwrap_or(v)
    };
    let scaled = if precision != 0 {
        shift(x, precision)
    } else {
        x
    };
    let mut result = (scaled + 0.5).floor();
    let diff = result - scaled;
    if diff.abs() == 0.5 && (result % 2.0).abs() == 1.0 {
        result -= 1.0;
    }
    if precision != 0 {
        result = shift(result, -precision);
    }
    if result == 0.0 { 0.0 } else { result }
}

fn percent_encode(t: &str, keep: &str) -> String {
    let mut out = String::new();
    for c in t.chars() {
        if c.is_ascii_alphanumeric() || keep.contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn percent_decode(t: &str, keep_reserved: bool) -> Option<String> {
    let bytes = t.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = t.get(i + 1..i + 3)?;
            let byte = u8::try_from(crate::hex::hex_value(hex)?).ok()?;
            if keep_reserved && byte < 0x80 && ";/?:@&=+$,#".contains(byte as char) {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(byte);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A match: byte start and end, and the capture groups.
type Span = (usize, usize, Vec<Option<String>>);

/// Byte spans of every match (at most `limit`), with capture groups.
fn regex_spans(
    ev: &mut Evaluator<'_>,
    r: &RegexDef,
    t: &str,
    limit: Option<usize>,
) -> Result<Vec<Span>, JErr> {
    let mut out = Vec::new();
    let mut at = 0;
    while at <= t.len() {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        ev.spend(1)?;
        let caps = match r.regex.captures_from_pos(t, at) {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(JErr::new(
                    "D1004",
                    format!("Regular expression failed: {e}"),
                ));
            }
        };
        let Some(m) = caps.get(0) else { break };
        if m.end() == m.start() {
            return Err(JErr::new(
                "D1004",
                "Regular expression matches zero length string",
            ));
        }
        let group_bytes: usize = (1..caps.len())
            .filter_map(|i| caps.get(i).map(|g| g.as_str().len()))
            .sum();
        ev.charge(
            group_bytes
                .saturating_add(caps.len().saturating_mul(ITEM_BYTES + 16))
                .saturating_add(32),
        )?;
        let groups = (1..caps.len())
            .map(|i| caps.get(i).map(|g| g.as_str().to_owned()))
            .collect();
        out.push((m.start(), m.end(), groups));
        at = m.end();
    }
    Ok(out)
}

/// `$match` results: `{match, index, groups}` with character indexes.
pub(super) fn regex_matches(
    ev: &mut Evaluator<'_>,
    r: &RegexDef,
    t: &str,
    limit: Option<usize>,
) -> Result<Vec<V>, JErr> {
    let spans = regex_spans(ev, r, t, limit)?;
    for (start, end, groups) in &spans {
        // `{match, index, groups}`: three entries, the text, the groups.
        let group_bytes: usize = groups.iter().flatten().map(String::len).sum();
        ev.charge(
            (end - start)
                .saturating_add(group_bytes)
                .saturating_add(groups.len().saturating_mul(ITEM_BYTES + 16))
                .saturating_add(3 * ENTRY_BYTES + 64),
        )?;
    }
    Ok(spans
        .into_iter()
        .map(|(start, end, groups)| {
            let mut o = Obj::default();
            o.insert("match".into(), V::str(&t[start..end]));
            o.insert(
                "index".into(),
                V::Num(t[..start].encode_utf16().count() as f64),
            );
            o.insert(
                "groups".into(),
                V::arr(
                    groups
                        .into_iter()
                        .map(|g| V::str(g.as_deref().unwrap_or("")))
                        .collect(),
                ),
            );
            V::Obj(Rc::new(o))
        })
        .collect())
}

fn replace(
    ev: &mut Evaluator<'_>,
    t: &str,
    pattern: Pattern,
    replacement: &V,
    limit: Option<usize>,
    pos: usize,
) -> Res {
    let spans: Vec<Span> = match &pattern {
        Pattern::Text(p) => {
            if p.is_empty() {
                return Err(JErr::at(
                    "D3010",
                    "Second argument of replace function cannot be an empty string",
                    pos,
                ));
            }
            t.match_indices(p.as_ref())
                .take(limit.unwrap_or(usize::MAX))
                .map(|(i, m)| (i, i + m.len(), vec![]))
                .collect()
        }
        Pattern::Regex(r) => regex_spans(ev, r, t, limit)?,
    };
    let mut out = String::new();
    let mut last = 0;
    for (start, end, groups) in spans {
        push_charged(ev, &mut out, &t[last..start])?;
        let matched = &t[start..end];
        match replacement {
            V::Str(rep) if matches!(pattern, Pattern::Text(_)) => push_charged(ev, &mut out, rep)?,
            V::Str(rep) => substitute(ev, &mut out, rep, matched, &groups)?,
            f => {
                let mut o = Obj::default();
                o.insert("match".into(), V::str(matched));
                o.insert(
                    "index".into(),
                    V::Num(t[..start].encode_utf16().count() as f64),
                );
                o.insert(
                    "groups".into(),
                    V::arr(
                        groups
                            .iter()
                            .map(|g| V::str(g.as_deref().unwrap_or("")))
                            .collect(),
                    ),
                );
                match ev.apply(f, vec![Some(V::Obj(Rc::new(o)))], None, pos)? {
                    Some(V::Str(r)) => push_charged(ev, &mut out, &r)?,
                    _ => {
                        return Err(JErr::at(
                            "D3012",
                            "Attempted to replace a matched string with a non-string value",
                            pos,
                        ));
                    }
                }
            }
        }
        last = end;
    }
    push_charged(ev, &mut out, &t[last..])?;
    ev.spend(out.len() as u64 / 8)?;
    // Its copy into a value.
    ev.charge_str(out.len())?;
    s(out)
}

/// Appends `piece` to `out`, charged first.
fn push_charged(ev: &mut Evaluator<'_>, out: &mut String, piece: &str) -> Result<(), JErr> {
    ev.charge(piece.len())?;
    out.push_str(piece);
    Ok(())
}

/// `$0`, `$1`... and `$$` in a replacement string, as the reference reads
/// them, appended to `out`. Every reference copies a match or a group, so
/// each copy is charged: a replacement of many `$0` multiplies the text.
fn substitute(
    ev: &mut Evaluator<'_>,
    out: &mut String,
    rep: &str,
    matched: &str,
    groups: &[Option<String>],
) -> Result<(), JErr> {
    ev.charge(rep.len().saturating_mul(5))?;
    let chars: Vec<char> = rep.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && i + 1 < chars.len() {
            if chars[i + 1] == '$' {
                out.push('$');
                i += 2;
                continue;
            }
            if chars[i + 1].is_ascii_digit() {
                // The longest group number that exists.
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let digits: String = chars[i + 1..j].iter().collect();
                let mut len = digits.len();
                loop {
                    let index: usize = digits[..len].parse().unwrap_or(0);
                    if index == 0 {
                        push_charged(ev, out, matched)?;
                        break;
                    }
                    if index <= groups.len() {
                        push_charged(ev, out, groups[index - 1].as_deref().unwrap_or(""))?;
                        break;
                    }
                    len -= 1;
                    if len == 0 {
                        break;
                    }
                }
                i += 1 + len.max(1);
                if len == 0 {
                    // No such group: the reference drops the reference.
                    i = j;
                }
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    Ok(())
}
