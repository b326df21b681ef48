//! JSONata values: JSON plus functions and regular expressions, with the
//! sequence flags the reference implementation keeps on its arrays.
//! "Undefined" (no value) is `Option::None` throughout.

use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use super::error::JErr;
use super::eval::Frame;
use super::parser::{LambdaDef, RegexDef, TransformDef};

/// How deeply a value built during one evaluation may nest. Every
/// walk over a value (converting it to JSON, comparing, dropping it)
/// recurses once per level, so a value built a level at a time by a
/// `$reduce` or a recursive function could otherwise outgrow the stack;
/// the evaluator refuses a deeper value as soon as it is made (U1005).
/// Far above what a payload may nest (`interp::MAX_PAYLOAD_DEPTH`).
pub(super) const MAX_VALUE_DEPTH: u32 = 500;

/// An array's items, with how deeply they nest (kept so that checking a
/// new value's depth costs nothing).
#[derive(Debug, Clone, Default)]
pub(super) struct Items {
    items: Vec<V>,
    depth: u32,
}

impl Items {
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

impl From<Vec<V>> for Items {
    fn from(items: Vec<V>) -> Self {
        let depth = items
            .iter()
            .map(V::depth)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        Self { items, depth }
    }
}

impl FromIterator<V> for Items {
    fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<V>>())
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = &'a V;
    type IntoIter = std::slice::Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl std::ops::Deref for Items {
    type Target = Vec<V>;

    fn deref(&self) -> &Vec<V> {
        &self.items
    }
}

/// An object's entries in insertion order, with how deeply they nest.
/// Entries change only through `insert`, which keeps the depth (never
/// less than the truth: a replaced or removed deeper entry leaves it).
#[derive(Debug, Clone)]
pub(super) struct Obj {
    entries: IndexMap<String, V, FastHash>,
    depth: u32,
}

impl Default for Obj {
    fn default() -> Self {
        Self {
            entries: IndexMap::default(),
            depth: 1,
        }
    }
}

impl Obj {
    pub fn depth(&self) -> u32 {
        self.depth
    }

    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.depth = self.depth.max(value.depth().saturating_add(1));
        self.entries.insert(key, value)
    }

    pub fn shift_remove(&mut self, key: &str) -> Option<V> {
        self.entries.shift_remove(key)
    }
}

impl FromIterator<(String, V)> for Obj {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut obj = Obj::default();
        for (key, value) in iter {
            obj.insert(key, value);
        }
        obj
    }
}

impl Extend<(String, V)> for Obj {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<'a> IntoIterator for &'a Obj {
    type Item = (&'a String, &'a V);
    type IntoIter = indexmap::map::Iter<'a, String, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl IntoIterator for Obj {
    type Item = (String, V);
    type IntoIter = indexmap::map::IntoIter<String, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl std::ops::Deref for Obj {
    type Target = IndexMap<String, V, FastHash>;

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

/// FNV-1a: objects are small and keys are not attacker-chosen hash-flooding
/// material worth SipHash's cost (the fuel bounds the work anyway).
pub(super) type FastHash = std::hash::BuildHasherDefault<Fnv>;

#[derive(Debug, Clone, Copy)]
pub(super) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Array flags: how the reference implementation marks its arrays.
pub(super) const SEQ: u8 = 1;
pub(super) const KEEP: u8 = 2;
pub(super) const CONS: u8 = 4;
pub(super) const WRAP: u8 = 8;
pub(super) const TUPLE: u8 = 16;

#[derive(Clone, Debug)]
pub(super) enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(Rc<str>),
    Arr(Rc<Items>, u8),
    Obj(Rc<Obj>),
    Func(Rc<Func>),
}

#[derive(Debug)]
pub(super) enum Func {
    Lambda {
        def: Arc<LambdaDef>,
        input: Option<V>,
        frame: Rc<Frame>,
    },
    Builtin(&'static str),
    /// A builtin or lambda with some arguments fixed (`$f(?, 2)`).
    Partial {
        func: V,
        /// `None` is a hole to fill; `Some(argument)` is fixed (and may be
        /// undefined).
        args: Vec<Option<Option<V>>>,
        /// See [`V::depth`]: partials of partials nest too.
        depth: u32,
    },
    Regex(Arc<RegexDef>),
    Transform {
        def: Arc<TransformDef>,
        frame: Rc<Frame>,
    },
    /// `$f ~> $g`: apply f, then g.
    Chain(V, V, u32),
}

impl Func {
    pub fn partial(func: V, args: Vec<Option<Option<V>>>) -> Func {
        let fixed = args.iter().flatten().flatten().map(V::depth);
        let depth = fixed
            .chain([func.depth()])
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        Func::Partial { func, args, depth }
    }

    pub fn chain(first: V, second: V) -> Func {
        let depth = first.depth().max(second.depth()).saturating_add(1);
        Func::Chain(first, second, depth)
    }

    /// How deeply the values it holds nest (see [`V::depth`]).
    fn depth(&self) -> u32 {
        match self {
            Func::Lambda { input, .. } => input.as_ref().map_or(0, V::depth).saturating_add(1),
            Func::Partial { depth, .. } | Func::Chain(_, _, depth) => *depth,
            Func::Builtin(_) | Func::Regex(_) | Func::Transform { .. } => 0,
        }
    }
}

impl V {
    pub fn str(s: &str) -> V {
        V::Str(Rc::from(s))
    }

    pub fn seq(items: Vec<V>) -> V {
        V::Arr(Rc::new(items.into()), SEQ)
    }

    pub fn arr(items: Vec<V>) -> V {
        V::Arr(Rc::new(items.into()), 0)
    }

    /// How many arrays and objects deep `self` nests: 0 for a scalar.
    pub fn depth(&self) -> u32 {
        match self {
            V::Arr(a, _) => a.depth(),
            V::Obj(o) => o.depth(),
            V::Func(f) => f.depth(),
            V::Null | V::Bool(_) | V::Num(_) | V::Str(_) => 0,
        }
    }

    pub fn as_array(&self) -> Option<&Rc<Items>> {
        match self {
            V::Arr(a, _) => Some(a),
            _ => None,
        }
    }

    pub fn is_func(&self) -> bool {
        matches!(self, V::Func(_))
    }

    pub fn num(&self) -> Option<f64> {
        match self {
            V::Num(n) => Some(*n),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            V::Null => "null",
            V::Bool(_) => "boolean",
            V::Num(_) => "number",
            V::Str(_) => "string",
            V::Arr(..) => "array",
            V::Obj(_) => "object",
            V::Func(_) => "function",
        }
    }

    pub fn from_json(v: &Value) -> V {
        match v {
            Value::Null => V::Null,
            Value::Bool(b) => V::Bool(*b),
            Value::Number(n) => V::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => V::str(s),
            Value::Array(a) => V::arr(a.iter().map(V::from_json).collect()),
            Value::Object(o) => V::Obj(Rc::new(
                o.iter()
                    .map(|(k, v)| (k.clone(), V::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// JSON for the outside world. Functions become `{}` inside structures
    /// (as JSON.stringify drops them) and are an error at the top.
    pub fn to_json(&self) -> Result<Value, JErr> {
        Ok(match self {
            V::Null => Value::Null,
            V::Bool(b) => Value::Bool(*b),
            V::Num(n) => number_json(*n)?,
            V::Str(s) => Value::String(s.to_string()),
            V::Arr(a, _) => Value::Array(
                a.iter()
                    .filter(|v| !v.is_func())
                    .map(V::to_json)
                    .collect::<Result<_, _>>()?,
            ),
            V::Obj(o) => Value::Object(
                o.iter()
                    .filter(|(_, v)| !v.is_func())
                    .map(|(k, v)| Ok((k.clone(), v.to_json()?)))
                    .collect::<Result<_, JErr>>()?,
            ),
            V::Func(_) => Value::Object(serde_json::Map::new()),
        })
    }
}

/// A finite number as JSON: integers as integers.
pub(super) fn number_json(n: f64) -> Result<Value, JErr> {
    if !n.is_finite() {
        return Err(JErr::new(
            "D1001",
            format!("Number out of range: {}", js_number(n)),
        ));
    }
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return Ok(Value::from(n as i64));
    }
    Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
}

/// JavaScript's `Boolean`-like cast, as `$boolean` defines it.
pub(super) fn truthy(v: Option<&V>) -> bool {
    match v {
        None | Some(V::Null) => false,
        Some(V::Bool(b)) => *b,
        Some(V::Num(n)) => *n != 0.0,
        Some(V::Str(s)) => !s.is_empty(),
        Some(V::Arr(a, _)) => match a.len() {
            0 => false,
            1 => truthy(a.first()),
            _ => a.iter().any(|v| truthy(Some(v))),
        },
        Some(V::Obj(o)) => !o.is_empty(),
        Some(V::Func(_)) => false,
    }
}

pub(super) fn deep_equal(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Arr(x, _), V::Arr(y, _)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (V::Obj(x), V::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        (V::Func(x), V::Func(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// A number as JavaScript prints it (`String(n)`).
pub(super) fn js_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if n == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits and exponent, then JavaScript's layout.
    let e = format!("{n:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    let point = exp + 1; // position of the decimal point after the first digit
    let body = if (-6 < point && point <= 21) || (k == 0) {
        if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= k {
            format!("{}{}", digits, "0".repeat((point - k) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{sign}{}", exp.abs())
        } else {
            format!("{}.{}e{sign}{}", &digits[..1], &digits[1..], exp.abs())
        }
    };
    if negative { format!("-{body}") } else { body }
}

/// `Number(n.toPrecision(15))`: how `$string` rounds non-integers.
pub(super) fn precision15(n: f64) -> f64 {
    if !n.is_finite() || n == 0.0 {
        return n;
    }
    format!("{n:.14e}").parse().unwrap_or(n)
}

/// `$string` of a value (undefined stays undefined at the caller).
pub(super) fn stringify(v: &V, pretty: bool) -> Result<String, JErr> {
    match v {
        V::Str(s) => Ok(s.to_string()),
        V::Func(_) => Ok(String::new()),
        V::Num(n) => {
            if !n.is_finite() {
                return Err(JErr::new(
                    "D3001",
                    "Attempting to invoke string function on Infinity or NaN",
                ));
            }
            Ok(js_number(precision15(*n)))
        }
        other => {
            let json = json_for_string(other)?;
            Ok(if pretty {
                serde_json::to_string_pretty(&json).unwrap_or_default()
            } else {
                json.to_string()
            })
        }
    }
}

/// What a JSON tree node (`serde_json::Value`, with its share of a map
/// entry) takes while a value is written as text from it.
const TREE_NODE_BYTES: usize = 48;

/// An upper bound of the length of `v` as JSON text, compact or pretty
/// (as `$string(v, true)` writes it), and of the tree it is written
/// from. Stops counting once past `limit`, so measuring a value made of
/// one large part shared many times costs no more than `limit` allows.
pub(super) fn text_size(v: &V, pretty: bool, limit: usize) -> usize {
    let (text, nodes) = measure(v, pretty, TREE_NODE_BYTES, limit);
    text.saturating_add(nodes.saturating_mul(TREE_NODE_BYTES))
}

/// The length of `v` as compact JSON, an upper bound (numbers count as
/// their longest form), counted no further than `limit`.
pub(super) fn json_text_size(v: &V, limit: usize) -> usize {
    measure(v, false, 0, limit).0
}

/// How long `n` prints as JSON, or a little more: integers exactly,
/// other numbers by their shortest exponent form (no longer than
/// the JSON writer's, give or take the two bytes added), all without
/// writing them anywhere.
fn number_len(n: f64) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    if n.fract() == 0.0 && n.abs() < 1e21 {
        let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{n}"));
    } else {
        let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{n:e}"));
        count.0 += 2;
    }
    count.0
}

/// (text bytes, tree nodes) of `v`, counting no further than
/// `text + node_bytes * nodes` passes `limit`.
fn measure(v: &V, pretty: bool, node_bytes: usize, limit: usize) -> (usize, usize) {
    fn string_len(s: &str) -> usize {
        2 + s
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' => 2,
                0..=0x1f => 6,
                _ => 1,
            })
            .sum::<usize>()
    }
    struct Walk {
        pretty: bool,
        node_bytes: usize,
        limit: usize,
        text: usize,
        nodes: usize,
    }
    fn walk(w: &mut Walk, v: &V, depth: usize) {
        if w.text.saturating_add(w.nodes.saturating_mul(w.node_bytes)) > w.limit {
            return;
        }
        w.nodes += 1;
        if w.pretty {
            // A line of its own, indented.
            w.text += 2 * depth + 1;
        }
        match v {
            V::Null | V::Bool(_) | V::Func(_) => w.text += 5,
            V::Num(n) => w.text += number_len(*n),
            V::Str(s) => w.text += string_len(s),
            V::Arr(items, _) => {
                w.text += 2 + items.len();
                for item in items.iter() {
                    walk(w, item, depth + 1);
                }
            }
            V::Obj(o) => {
                w.text += 2 + o.len();
                for (k, item) in o.iter() {
                    w.text += string_len(k) + 2;
                    walk(w, item, depth + 1);
                }
            }
        }
    }
    let mut w = Walk {
        pretty,
        node_bytes,
        limit,
        text: 0,
        nodes: 0,
    };
    walk(&mut w, v, 0);
    (w.text, w.nodes)
}

/// JSON as `$string` writes it: numbers to 15 significant digits, functions
/// as empty strings.
fn json_for_string(v: &V) -> Result<Value, JErr> {
    Ok(match v {
        V::Num(n) => {
            if !n.is_finite() {
                return Err(JErr::new(
                    "D3001",
                    "Attempting to invoke string function on Infinity or NaN",
                ));
            }
            number_json(precision15(*n))?
        }
        V::Func(_) => Value::String(String::new()),
        V::Arr(a, _) => Value::Array(a.iter().map(json_for_string).collect::<Result<_, _>>()?),
        V::Obj(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), json_for_string(v)?)))
                .collect::<Result<_, JErr>>()?,
        ),
        other => other.to_json()?,
    })
}

#[cfg(test)]
mod tests {
    use super::js_number;

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (n, s) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "0"),
        ] {
            assert_eq!(js_number(n), s, "{n}");
        }
    }
}
