//! The evaluator: the reference implementation's `evaluate` over our
//! values, with sequences flattened and singletons unwrapped as it does.
//! Every call costs fuel and nests one level deeper, so a runaway
//! expression fails with U1001/U1002 instead of exhausting the stack or
//! the time; every string, array, object and frame it builds is charged
//! to a memory budget before it is made, so it fails with U1003 instead
//! of exhausting the memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::Host;
use super::error::JErr;
use super::functions;
use super::lexer::Lit;
use super::parser::{Kind, Node, Stage};
use super::value::{
    CONS, Func, Items, KEEP, MAX_VALUE_DEPTH, Obj, SEQ, TUPLE, V, WRAP, deep_equal, truthy,
};

pub(super) type Res = Result<Option<V>, JErr>;

/// How deep evaluation may nest (each level is one `eval` call on the
/// stack; a lambda call costs a few).
pub(super) const MAX_DEPTH: usize = 400;
/// Work units one evaluation may spend: one per node evaluated, plus the
/// size of every array and string it builds in bulk.
pub(super) const MAX_FUEL: u64 = 5_000_000;
/// Stack one evaluation may use, measured from where it started: deep
/// recursion fails with U1001 well before a 2 MiB thread (a tokio
/// worker's) would overflow, in debug builds too.
pub(super) const STACK_BUDGET: usize = 1024 * 1024;
/// Bytes one evaluation may allocate, in all: every string, array slot,
/// object entry and frame it makes, counted when made and never given
/// back. 128 payloads (32 MiB): an expression may build many values as
/// large as its result (one per item of a `$map`, one per step of a
/// `$reduce` that grows a string) while a handful of evaluations at once,
/// one per worker thread, stay far below a small server's memory.
pub(super) const MEMORY_BUDGET: usize = 128 * crate::payload::MAX_PAYLOAD_BYTES;
/// What an array slot costs.
pub(super) const ITEM_BYTES: usize = std::mem::size_of::<V>();
/// What an object entry or a variable binding costs besides its key's
/// text: the value, the key's `String` and the index's slot.
pub(super) const ENTRY_BYTES: usize = std::mem::size_of::<V>() + std::mem::size_of::<String>() + 16;
/// What a string costs besides its text: the `Rc`'s counts.
pub(super) const STR_BYTES: usize = 16;
/// What a frame (a block's or a lambda call's scope) costs.
const FRAME_BYTES: usize = std::mem::size_of::<Frame>() + 32;

#[derive(Debug, Default)]
pub(super) struct Frame {
    vars: RefCell<HashMap<String, V>>,
    parent: Option<Rc<Frame>>,
}

impl Frame {
    pub fn lookup(&self, name: &str) -> Option<V> {
        if let Some(v) = self.vars.borrow().get(name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.lookup(name))
    }

    pub fn bind(&self, name: &str, v: V) {
        self.vars.borrow_mut().insert(name.to_owned(), v);
    }
}

pub(super) struct Evaluator<'h> {
    pub host: &'h mut dyn Host,
    depth: usize,
    fuel: u64,
    /// Bytes left to allocate (see [`MEMORY_BUDGET`]).
    memory: usize,
    /// The address of a local in the caller's frame: stack use is the
    /// distance from it (no unsafe: the address is only compared).
    stack_base: usize,
    /// Every frame made, so the cycles closures make (a frame holding a
    /// lambda that holds the frame) are broken when evaluation ends.
    frames: Vec<Rc<Frame>>,
}

impl Drop for Evaluator<'_> {
    fn drop(&mut self) {
        for f in &self.frames {
            f.vars.borrow_mut().clear();
        }
    }
}

impl<'h> Evaluator<'h> {
    /// An evaluator that may allocate `memory` bytes: [`MEMORY_BUDGET`],
    /// or a small budget in tests that see each construct charged.
    pub fn with_memory(host: &'h mut dyn Host, memory: usize) -> Self {
        Self {
            host,
            depth: 0,
            fuel: MAX_FUEL,
            memory,
            stack_base: stack_address(),
            frames: Vec::new(),
        }
    }

    /// A new scope under `parent`. Every frame is kept until evaluation
    /// ends (see `frames`), so each one is charged.
    pub fn frame(&mut self, parent: Option<&Rc<Frame>>) -> Result<Rc<Frame>, JErr> {
        self.charge(FRAME_BYTES)?;
        let f = Rc::new(Frame {
            vars: RefCell::default(),
            parent: parent.cloned(),
        });
        self.frames.push(Rc::clone(&f));
        Ok(f)
    }

    /// Binds `name` in `frame`, charging the binding.
    pub fn bind(&mut self, frame: &Frame, name: &str, v: V) -> Result<(), JErr> {
        self.charge(ENTRY_BYTES + name.len())?;
        frame.bind(name, v);
        Ok(())
    }

    /// Charges `bytes` about to be allocated against the memory budget.
    #[inline]
    pub fn charge(&mut self, bytes: usize) -> Result<(), JErr> {
        if bytes > self.memory {
            self.memory = 0;
            return Err(budget_exceeded());
        }
        self.memory -= bytes;
        Ok(())
    }

    /// Charges `n` array slots.
    #[inline]
    pub fn charge_items(&mut self, n: usize) -> Result<(), JErr> {
        self.charge(n.saturating_mul(ITEM_BYTES))
    }

    /// Charges a string of `len` bytes.
    #[inline]
    pub fn charge_str(&mut self, len: usize) -> Result<(), JErr> {
        self.charge(len.saturating_add(STR_BYTES))
    }

    /// Bytes left to allocate: what a function that writes text (a
    /// picture string) may write at most.
    pub fn memory_left(&self) -> usize {
        self.memory
    }

    /// `$string` of `v`, charged before it is written.
    pub fn stringify(&mut self, v: &V, pretty: bool) -> Result<String, JErr> {
        match v {
            V::Str(s) => self.charge_str(s.len())?,
            V::Num(_) | V::Null | V::Bool(_) | V::Func(_) => self.charge_str(32)?,
            _ => {
                // The text, and the JSON tree it is written from.
                let size = super::value::text_size(v, pretty, self.memory.saturating_add(1));
                self.charge(size.saturating_mul(2))?;
            }
        }
        super::value::stringify(v, pretty)
    }

    /// Spends `units` of fuel.
    pub fn spend(&mut self, units: u64) -> Result<(), JErr> {
        if self.fuel < units {
            self.fuel = 0;
            return Err(JErr::new(
                "U1002",
                "The expression took too many steps or built too much data: evaluation stopped",
            ));
        }
        self.fuel -= units;
        Ok(())
    }

    pub fn eval(&mut self, node: &Node, input: Option<&V>, env: &Rc<Frame>) -> Res {
        self.depth += 1;
        let result =
            if self.depth > MAX_DEPTH || self.stack_base.abs_diff(stack_address()) > STACK_BUDGET {
                Err(JErr::at(
                    "U1001",
                    "Stack overflow error: the expression nests or recurses too deeply",
                    node.pos,
                ))
            } else {
                self.spend(1)
                    .and_then(|()| self.eval_inner(node, input, env))
                    .and_then(nested_no_deeper)
            };
        self.depth -= 1;
        result.map_err(|e| e.or_at(node.pos))
    }

    /// The hot kinds here, the rest in `eval_other`: this frame is on the
    /// stack once per nesting level, so it stays small (debug builds too).
    fn eval_inner(&mut self, node: &Node, input: Option<&V>, env: &Rc<Frame>) -> Res {
        let result = match &node.kind {
            Kind::Path { .. } => self.path(node, input, env)?,
            Kind::Binary { op, lhs, rhs } => self.binary(op, lhs, rhs, input, env)?,
            Kind::Call {
                procedure,
                args,
                partial,
            } => self.call(node, procedure, args, *partial, input, env, None)?,
            Kind::Condition {
                cond,
                then,
                otherwise,
            } => {
                let c = self.eval(cond, input, env)?;
                if truthy(c.as_ref()) {
                    self.eval(then, input, env)?
                } else if let Some(e) = otherwise {
                    self.eval(e, input, env)?
                } else {
                    None
                }
            }
            Kind::Block(items) => {
                let frame = self.frame(Some(env))?;
                let mut last = None;
                for item in items {
                    last = self.eval(item, input, &frame)?;
                }
                last
            }
            _ => self.eval_other(node, input, env)?,
        };
        if node.ann.predicate.is_empty() && node.ann.group.is_none() {
            return Ok(finish_sequence(result, node.ann.keep_array));
        }
        self.post(node, result, env)
    }

    /// Predicates and grouping on a non-path expression.
    #[inline(never)]
    fn post(&mut self, node: &Node, mut result: Option<V>, env: &Rc<Frame>) -> Res {
        for stage in &node.ann.predicate {
            if let Stage::Filter(f) = stage {
                result = self.filter(f, result, env)?;
            }
        }
        if !matches!(node.kind, Kind::Path { .. }) {
            if let Some(pairs) = &node.ann.group {
                result = Some(self.group(pairs, result.as_ref(), env)?);
            }
        }
        Ok(finish_sequence(result, node.ann.keep_array))
    }

    #[inline(never)]
    fn eval_other(&mut self, node: &Node, input: Option<&V>, env: &Rc<Frame>) -> Res {
        Ok(match &node.kind {
            Kind::Path { .. } => self.path(node, input, env)?,
            Kind::Name(name) => {
                let found = lookup(input, name);
                if let Some(V::Arr(a, _)) = &found {
                    // Gathered from every item of an array input.
                    if !matches!(input, Some(V::Obj(_))) {
                        self.charge_items(a.len())?;
                    }
                }
                found
            }
            Kind::Str(s) => {
                self.charge_str(s.len())?;
                Some(V::Str(s.as_ref().into()))
            }
            Kind::Num(n) => Some(V::Num(*n)),
            Kind::Value(Lit::True) => Some(V::Bool(true)),
            Kind::Value(Lit::False) => Some(V::Bool(false)),
            Kind::Value(Lit::Null) => Some(V::Null),
            Kind::Wildcard => self.charged_seq(wildcard(input))?,
            Kind::Descendant => self.charged_seq(descendants(input))?,
            Kind::Parent => {
                return Err(JErr::at(
                    "S0217",
                    "The parent operator % is not supported",
                    node.pos,
                ));
            }
            Kind::Var(name) => {
                if name.is_empty() {
                    match input {
                        Some(V::Arr(a, f)) if f & WRAP != 0 => a.first().cloned(),
                        other => other.cloned(),
                    }
                } else {
                    env.lookup(name)
                }
            }
            Kind::Regex(def) => Some(V::Func(Rc::new(Func::Regex(def.clone())))),
            Kind::Binary { op, lhs, rhs } => self.binary(op, lhs, rhs, input, env)?,
            Kind::Neg(inner) => match self.eval(inner, input, env)? {
                None => None,
                Some(V::Num(n)) => Some(V::Num(-n)),
                Some(_) => {
                    return Err(JErr::at(
                        "D1002",
                        "Cannot negate a non-numeric value",
                        node.pos,
                    ));
                }
            },
            Kind::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(v) = self.eval(item, input, env)? {
                        if matches!(item.kind, Kind::Array(_)) {
                            self.charge_items(1)?;
                            out.push(v);
                        } else {
                            self.charge_items(match &v {
                                V::Arr(a, _) => a.len(),
                                _ => 1,
                            })?;
                            append_into(&mut out, v);
                        }
                    }
                }
                self.spend(out.len() as u64)?;
                let flags = if node.ann.consarray { CONS } else { 0 };
                Some(V::Arr(Rc::new(Items::from(out)), flags))
            }
            Kind::Object(pairs) => Some(self.group(pairs, input, env)?),
            Kind::Condition {
                cond,
                then,
                otherwise,
            } => {
                let c = self.eval(cond, input, env)?;
                if truthy(c.as_ref()) {
                    self.eval(then, input, env)?
                } else if let Some(e) = otherwise {
                    self.eval(e, input, env)?
                } else {
                    None
                }
            }
            Kind::Block(items) => {
                let frame = self.frame(Some(env))?;
                let mut last = None;
                for item in items {
                    last = self.eval(item, input, &frame)?;
                }
                last
            }
            Kind::Bind { name, value } => {
                let v = self.eval(value, input, env)?;
                match &v {
                    Some(v) => self.bind(env, name, v.clone())?,
                    None => {
                        env.vars.borrow_mut().remove(name);
                    }
                }
                v
            }
            Kind::Lambda(def) => {
                self.charge(FRAME_BYTES)?;
                Some(V::Func(Rc::new(Func::Lambda {
                    def: def.clone(),
                    input: input.cloned(),
                    frame: Rc::clone(env),
                })))
            }
            Kind::Call {
                procedure,
                args,
                partial,
            } => self.call(node, procedure, args, *partial, input, env, None)?,
            Kind::Placeholder => return Err(JErr::at("S0201", "Syntax error: ?", node.pos)),
            Kind::Apply { lhs, rhs } => self.apply_chain(lhs, rhs, input, env)?,
            Kind::Transform(def) => {
                self.charge(FRAME_BYTES)?;
                Some(V::Func(Rc::new(Func::Transform {
                    def: def.clone(),
                    frame: Rc::clone(env),
                })))
            }
            Kind::Sort(_) => {
                let seq = match input {
                    Some(V::Arr(..)) => input.cloned(),
                    Some(v) => {
                        self.charge_items(1)?;
                        Some(V::seq(vec![v.clone()]))
                    }
                    None => None,
                };
                match seq {
                    Some(v) => Some(self.sort(node, &v, env)?),
                    None => None,
                }
            }
        })
    }

    fn path(&mut self, node: &Node, input: Option<&V>, env: &Rc<Frame>) -> Res {
        let Kind::Path {
            steps,
            keep_singleton,
        } = &node.kind
        else {
            return Ok(None);
        };
        let first_is_var = steps
            .first()
            .is_some_and(|s| matches!(s.kind, Kind::Var(_)));
        // An undefined input is still one item (the reference's
        // `createSequence(undefined)`): variables and literals evaluate.
        let mut input_seq: Vec<Option<V>> = match input {
            Some(V::Arr(a, _)) if !first_is_var => {
                self.charge_items(a.len())?;
                a.iter().cloned().map(Some).collect()
            }
            other => vec![other.cloned()],
        };
        let mut result: Option<V> = None;
        let mut tuples: Option<Vec<Obj>> = None;
        let mut is_tuple = false;
        for (i, step) in steps.iter().enumerate() {
            if step.ann.tuple {
                is_tuple = true;
            }
            if i == 0 && step.ann.consarray {
                let whole = match input {
                    Some(V::Arr(a, f)) if !first_is_var => Some(V::Arr(a.clone(), *f)),
                    other => other.cloned(),
                };
                result = self.eval(step, whole.as_ref(), env)?;
            } else if is_tuple {
                tuples = Some(self.tuple_step(step, &input_seq, tuples.take(), env)?);
            } else {
                result = self.step(step, &input_seq, env, i == steps.len() - 1)?;
            }
            if !is_tuple {
                match &result {
                    None => break,
                    Some(V::Arr(a, _)) if a.is_empty() => break,
                    _ => {}
                }
            }
            if step.ann.focus.is_none() {
                input_seq = match &result {
                    Some(V::Arr(a, _)) => {
                        self.charge_items(a.len())?;
                        a.iter().cloned().map(Some).collect()
                    }
                    Some(v) => vec![Some(v.clone())],
                    None => vec![],
                };
            }
        }
        if is_tuple {
            let t = tuples.unwrap_or_default();
            self.charge_items(t.len())?;
            if node.ann.group.is_some() {
                let items: Vec<V> = t.into_iter().map(|o| V::Obj(Rc::new(o))).collect();
                let seq = V::Arr(Rc::new(Items::from(items)), SEQ | TUPLE);
                let pairs = node.ann.group.as_ref().map_or(&[][..], |g| g.as_slice());
                return Ok(Some(self.group(pairs, Some(&seq), env)?));
            }
            result = Some(V::seq(
                t.into_iter()
                    .filter_map(|mut o| o.shift_remove("@"))
                    .collect(),
            ));
        }
        if *keep_singleton {
            self.charge_items(1)?;
            result = result.map(|r| match r {
                V::Arr(a, f) if f & CONS != 0 && f & SEQ == 0 => {
                    V::Arr(Rc::new(Items::from(vec![V::Arr(a, f)])), SEQ | KEEP)
                }
                V::Arr(a, f) => V::Arr(a, f | KEEP),
                other => V::Arr(Rc::new(Items::from(vec![other])), SEQ | KEEP),
            });
        }
        if let Some(pairs) = &node.ann.group {
            return Ok(Some(self.group(pairs, result.as_ref(), env)?));
        }
        Ok(result)
    }

    fn step(&mut self, step: &Node, input: &[Option<V>], env: &Rc<Frame>, last: bool) -> Res {
        if let Kind::Sort(_) = step.kind {
            self.charge_items(input.len())?;
            let seq = V::seq(input.iter().flatten().cloned().collect());
            let mut result = Some(self.sort(step, &seq, env)?);
            for stage in &step.ann.stages {
                if let Stage::Filter(f) = stage {
                    result = self.filter(f, result, env)?;
                }
            }
            return Ok(result);
        }
        let mut results = Vec::new();
        for item in input {
            let mut r = self.eval(step, item.as_ref(), env)?;
            for stage in &step.ann.stages {
                if let Stage::Filter(f) = stage {
                    r = self.filter(f, r, env)?;
                }
            }
            if let Some(r) = r {
                self.charge_items(1)?;
                results.push(r);
            }
        }
        if last && results.len() == 1 {
            if let V::Arr(_, f) = &results[0] {
                if f & SEQ == 0 {
                    return Ok(results.pop());
                }
            }
        }
        let mut out = Vec::new();
        for r in results {
            match r {
                V::Arr(a, f) if f & CONS == 0 => {
                    self.charge_items(a.len())?;
                    out.extend(a.iter().cloned());
                }
                other => {
                    self.charge_items(1)?;
                    out.push(other);
                }
            }
        }
        self.spend(out.len() as u64 / 8)?;
        Ok(Some(V::seq(out)))
    }

    fn tuple_env(&mut self, env: &Rc<Frame>, tuple: &Obj) -> Result<Rc<Frame>, JErr> {
        let frame = self.frame(Some(env))?;
        for (k, v) in tuple {
            self.bind(&frame, k, v.clone())?;
        }
        Ok(frame)
    }

    /// A sequence gathered from existing values, charged once made (it
    /// is no larger than what it was gathered from).
    pub(super) fn charged_seq(&mut self, v: Option<V>) -> Res {
        if let Some(V::Arr(a, _)) = &v {
            self.charge_items(a.len())?;
        }
        Ok(v)
    }

    /// Charges a copy of the object `o`.
    fn charge_obj(&mut self, o: &Obj) -> Result<(), JErr> {
        let keys: usize = o.keys().map(String::len).sum();
        self.charge(o.len().saturating_mul(ENTRY_BYTES).saturating_add(keys))
    }

    /// One side of `&` as text (undefined is empty), charged.
    fn concat_part(&mut self, v: Option<&V>) -> Result<std::borrow::Cow<'static, str>, JErr> {
        Ok(match v {
            None => std::borrow::Cow::Borrowed(""),
            Some(v) => std::borrow::Cow::Owned(self.stringify(v, false)?),
        })
    }

    fn tuple_step(
        &mut self,
        step: &Node,
        input: &[Option<V>],
        tuples: Option<Vec<Obj>>,
        env: &Rc<Frame>,
    ) -> Result<Vec<Obj>, JErr> {
        if let Kind::Sort(_) = step.kind {
            let result = match tuples {
                Some(t) => {
                    self.charge_items(t.len())?;
                    let seq = V::Arr(
                        Rc::new(t.into_iter().map(|o| V::Obj(Rc::new(o))).collect()),
                        SEQ | TUPLE,
                    );
                    let sorted = self.sort(step, &seq, env)?;
                    objs(sorted)
                }
                None => {
                    self.charge_items(input.len())?;
                    let sorted = self.sort(
                        step,
                        &V::seq(input.iter().flatten().cloned().collect()),
                        env,
                    )?;
                    let items = sorted.as_array().map(|a| a.to_vec()).unwrap_or_default();
                    self.charge(items.len().saturating_mul(2 * ENTRY_BYTES + ITEM_BYTES))?;
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let mut o = Obj::default();
                            o.insert("@".into(), v);
                            if let Some(index) = &step.ann.index {
                                o.insert(index.clone(), V::Num(i as f64));
                            }
                            o
                        })
                        .collect()
                }
            };
            return self.tuple_stages(step, result, env);
        }
        let tuples = match tuples {
            Some(t) => t,
            None => {
                self.charge(input.len().saturating_mul(ENTRY_BYTES + 1))?;
                input
                    .iter()
                    .map(|v| {
                        let mut o = Obj::default();
                        if let Some(v) = v {
                            o.insert("@".into(), v.clone());
                        }
                        o
                    })
                    .collect()
            }
        };
        let mut result = Vec::new();
        for tuple in &tuples {
            let frame = self.tuple_env(env, tuple)?;
            let context = tuple.get("@").cloned();
            let Some(res) = self.eval(step, context.as_ref(), &frame)? else {
                continue;
            };
            let (items, is_tuple_stream) = match res {
                V::Arr(a, f) => {
                    self.charge_items(a.len())?;
                    (a.to_vec(), f & TUPLE != 0)
                }
                other => (vec![other], false),
            };
            for (bb, item) in items.into_iter().enumerate() {
                // The tuple, one more binding, and its slot in the stream.
                self.charge_obj(tuple)?;
                self.charge(2 * ENTRY_BYTES + ITEM_BYTES)?;
                let mut t = tuple.clone();
                if is_tuple_stream {
                    if let V::Obj(o) = item {
                        self.charge_obj(&o)?;
                        t.extend(o.as_ref().clone());
                    }
                } else {
                    if let Some(focus) = &step.ann.focus {
                        t.insert(focus.clone(), item);
                        t.insert("@".into(), tuple.get("@").cloned().unwrap_or(V::Null));
                    } else {
                        t.insert("@".into(), item);
                    }
                    if let Some(index) = &step.ann.index {
                        t.insert(index.clone(), V::Num(bb as f64));
                    }
                }
                result.push(t);
            }
        }
        self.tuple_stages(step, result, env)
    }

    fn tuple_stages(
        &mut self,
        step: &Node,
        mut tuples: Vec<Obj>,
        env: &Rc<Frame>,
    ) -> Result<Vec<Obj>, JErr> {
        for stage in &step.ann.stages {
            match stage {
                Stage::Filter(f) => {
                    self.charge_items(tuples.len())?;
                    let seq = V::Arr(
                        Rc::new(tuples.into_iter().map(|o| V::Obj(Rc::new(o))).collect()),
                        SEQ | TUPLE,
                    );
                    tuples = objs(
                        self.filter(f, Some(seq), env)?
                            .unwrap_or_else(|| V::seq(vec![])),
                    );
                }
                Stage::Index(name) => {
                    for (i, t) in tuples.iter_mut().enumerate() {
                        t.insert(name.clone(), V::Num(i as f64));
                    }
                }
            }
        }
        Ok(tuples)
    }

    pub fn filter(&mut self, predicate: &Node, input: Option<V>, env: &Rc<Frame>) -> Res {
        let (items, flags) = match input {
            None => (Rc::new(Items::default()), 0),
            Some(V::Arr(a, f)) => (a, f),
            Some(other) => (Rc::new(Items::from(vec![other])), 0),
        };
        let tuple = flags & TUPLE != 0;
        let mut out = Vec::new();
        if let Kind::Num(n) = predicate.kind {
            if predicate.ann.predicate.is_empty() {
                let mut index = n.floor();
                if index < 0.0 {
                    index += items.len() as f64;
                }
                if index >= 0.0 {
                    if let Some(item) = items.get(index as usize) {
                        match item {
                            V::Arr(..) => return Ok(Some(item.clone())),
                            other => out.push(other.clone()),
                        }
                    }
                }
                return Ok(Some(V::Arr(
                    Rc::new(Items::from(out)),
                    SEQ | (flags & TUPLE),
                )));
            }
        }
        let len = items.len() as f64;
        for (index, item) in items.iter().enumerate() {
            let (context, frame) = match (tuple, item) {
                (true, V::Obj(o)) => {
                    let f = self.tuple_env(env, o)?;
                    (o.get("@").cloned(), f)
                }
                _ => (Some(item.clone()), Rc::clone(env)),
            };
            let res = self.eval(predicate, context.as_ref(), &frame)?;
            let numbers: Option<Vec<f64>> = match &res {
                Some(V::Num(n)) => Some(vec![*n]),
                Some(V::Arr(a, _)) if !a.is_empty() && a.iter().all(|v| matches!(v, V::Num(_))) => {
                    Some(a.iter().filter_map(V::num).collect())
                }
                _ => None,
            };
            match numbers {
                Some(ns) => {
                    for n in ns {
                        let mut i = n.floor();
                        if i < 0.0 {
                            i += len;
                        }
                        if i == index as f64 {
                            self.charge_items(1)?;
                            out.push(item.clone());
                        }
                    }
                }
                None => {
                    if truthy(res.as_ref()) {
                        self.charge_items(1)?;
                        out.push(item.clone());
                    }
                }
            }
        }
        Ok(Some(V::Arr(
            Rc::new(Items::from(out)),
            SEQ | (flags & TUPLE),
        )))
    }

    pub fn group(
        &mut self,
        pairs: &[(Node, Node)],
        input: Option<&V>,
        env: &Rc<Frame>,
    ) -> Result<V, JErr> {
        let (items, reduce): (Vec<Option<V>>, bool) = match input {
            Some(V::Arr(a, f)) => {
                self.charge_items(a.len())?;
                (a.iter().cloned().map(Some).collect(), f & TUPLE != 0)
            }
            Some(v) => (vec![Some(v.clone())], false),
            None => (vec![], false),
        };
        let items = if items.is_empty() { vec![None] } else { items };
        let mut groups: indexmap::IndexMap<String, (Option<V>, usize), super::value::FastHash> =
            indexmap::IndexMap::default();
        for item in &items {
            let (context, frame) = match (reduce, item) {
                (true, Some(V::Obj(o))) => {
                    let f = self.tuple_env(env, o)?;
                    (o.get("@").cloned(), f)
                }
                _ => (item.clone(), Rc::clone(env)),
            };
            for (index, (key_node, _)) in pairs.iter().enumerate() {
                let key = self.eval(key_node, context.as_ref(), &frame)?;
                let key = match key {
                    None => continue,
                    Some(V::Str(s)) => s.to_string(),
                    Some(other) => {
                        return Err(JErr::at(
                            "T1003",
                            format!(
                                "Key in object structure must evaluate to a string; got: {}",
                                super::functions::show(&other)
                            ),
                            key_node.pos,
                        ));
                    }
                };
                match groups.get_mut(&key) {
                    Some((data, i)) => {
                        // Appending copies what the group holds so far.
                        self.charge_items(match data {
                            Some(V::Arr(a, _)) => a.len() + 1,
                            _ => 2,
                        })?;
                        if *i != index {
                            return Err(JErr::at(
                                "D1009",
                                format!("Multiple key definitions evaluate to same key: {key}"),
                                key_node.pos,
                            ));
                        }
                        *data = functions::append(data.take(), item.clone());
                    }
                    None => {
                        self.charge(ENTRY_BYTES + key.len())?;
                        groups.insert(key, (item.clone(), index));
                    }
                }
            }
        }
        let mut result = Obj::default();
        for (key, (data, index)) in groups {
            let (context, frame) = if reduce {
                if let Some(V::Arr(a, _)) = &data {
                    // Each tuple's bindings are merged into one object.
                    for item in a.iter() {
                        if let V::Obj(o) = item {
                            self.charge_obj(o)?;
                        }
                    }
                }
                let tuple = reduce_tuples(data);
                let mut t = tuple;
                let context = t.shift_remove("@");
                let f = self.tuple_env(env, &t)?;
                (context, f)
            } else {
                (data, Rc::clone(env))
            };
            if let Some(v) = self.eval(&pairs[index].1, context.as_ref(), &frame)? {
                self.charge(ENTRY_BYTES + key.len())?;
                result.insert(key, v);
            }
        }
        Ok(V::Obj(Rc::new(result)))
    }

    fn sort(&mut self, node: &Node, input: &V, env: &Rc<Frame>) -> Result<V, JErr> {
        let Kind::Sort(terms) = &node.kind else {
            return Ok(input.clone());
        };
        let (items, flags) = match input {
            V::Arr(a, f) => {
                // The copy, the keyed pairs and the merge sort's halves.
                self.charge(a.len().saturating_mul(4 * ITEM_BYTES + 32))?;
                (a.to_vec(), *f)
            }
            other => (vec![other.clone()], SEQ),
        };
        let tuple = flags & TUPLE != 0;
        // Each item's keys, computed once.
        let mut keyed = Vec::with_capacity(items.len());
        for item in items {
            let (context, frame) = match (tuple, &item) {
                (true, V::Obj(o)) => {
                    let f = self.tuple_env(env, o)?;
                    (o.get("@").cloned(), f)
                }
                _ => (Some(item.clone()), Rc::clone(env)),
            };
            self.charge_items(terms.len())?;
            let mut keys = Vec::with_capacity(terms.len());
            for (_, term) in terms {
                keys.push(self.eval(term, context.as_ref(), &frame)?);
            }
            keyed.push((keys, item));
        }
        let mut error = None;
        let sorted = merge_sort(keyed, &mut |a, b| {
            let mut comp = std::cmp::Ordering::Equal;
            for (i, (descending, _)) in terms.iter().enumerate() {
                let (x, y) = (&a.0[i], &b.0[i]);
                comp = match (x, y) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, _) => std::cmp::Ordering::Greater,
                    (_, None) => std::cmp::Ordering::Less,
                    (Some(V::Num(p)), Some(V::Num(q))) => {
                        p.partial_cmp(q).unwrap_or(std::cmp::Ordering::Equal)
                    }
                    (Some(V::Str(p)), Some(V::Str(q))) => cmp_utf16(p, q),
                    (Some(p @ (V::Num(_) | V::Str(_))), Some(q @ (V::Num(_) | V::Str(_)))) => {
                        let _ = (p, q);
                        error.get_or_insert(JErr::at(
                            "T2007",
                            "Type mismatch when comparing values in order-by clause",
                            node.pos,
                        ));
                        std::cmp::Ordering::Equal
                    }
                    _ => {
                        error.get_or_insert(JErr::at("T2008", "The expressions within an order-by clause must evaluate to numeric or string values", node.pos));
                        std::cmp::Ordering::Equal
                    }
                };
                if *descending && x.is_some() && y.is_some() {
                    comp = comp.reverse();
                }
                if comp != std::cmp::Ordering::Equal {
                    break;
                }
            }
            comp == std::cmp::Ordering::Greater
        });
        if let Some(e) = error {
            return Err(e);
        }
        Ok(V::Arr(
            Rc::new(sorted.into_iter().map(|(_, v)| v).collect()),
            SEQ | (flags & TUPLE),
        ))
    }

    fn binary(
        &mut self,
        op: &str,
        lhs: &Node,
        rhs: &Node,
        input: Option<&V>,
        env: &Rc<Frame>,
    ) -> Res {
        let l = self.eval(lhs, input, env)?;
        if op == "and" {
            return Ok(Some(V::Bool(
                truthy(l.as_ref()) && truthy(self.eval(rhs, input, env)?.as_ref()),
            )));
        }
        if op == "or" {
            return Ok(Some(V::Bool(
                truthy(l.as_ref()) || truthy(self.eval(rhs, input, env)?.as_ref()),
            )));
        }
        let r = self.eval(rhs, input, env)?;
        self.binary_values(op, l, r, lhs, rhs)
    }

    #[inline(never)]
    fn binary_values(
        &mut self,
        op: &str,
        l: Option<V>,
        r: Option<V>,
        lhs: &Node,
        rhs: &Node,
    ) -> Res {
        Ok(match op {
            "+" | "-" | "*" | "/" | "%" => {
                let ln = match &l {
                    None => None,
                    Some(V::Num(n)) => Some(*n),
                    Some(_) => {
                        return Err(JErr::at(
                            "T2001",
                            format!("The left side of the {op} operator must evaluate to a number"),
                            lhs.pos,
                        ));
                    }
                };
                let rn = match &r {
                    None => None,
                    Some(V::Num(n)) => Some(*n),
                    Some(_) => {
                        return Err(JErr::at(
                            "T2002",
                            format!(
                                "The right side of the {op} operator must evaluate to a number"
                            ),
                            rhs.pos,
                        ));
                    }
                };
                match (ln, rn) {
                    (Some(a), Some(b)) => Some(V::Num(match op {
                        "+" => a + b,
                        "-" => a - b,
                        "*" => a * b,
                        "/" => a / b,
                        _ => a % b,
                    })),
                    _ => None,
                }
            }
            "=" | "!=" => {
                let eq = match (&l, &r) {
                    (Some(a), Some(b)) => deep_equal(a, b),
                    _ => return Ok(Some(V::Bool(false))),
                };
                Some(V::Bool(if op == "=" { eq } else { !eq }))
            }
            "<" | "<=" | ">" | ">=" => {
                let comparable = |v: &Option<V>| matches!(v, None | Some(V::Num(_) | V::Str(_)));
                if !comparable(&l) || !comparable(&r) {
                    return Err(JErr::at(
                        "T2010",
                        format!(
                            "The expressions either side of operator \"{op}\" must evaluate to numeric or string values"
                        ),
                        lhs.pos,
                    ));
                }
                let ord = match (&l, &r) {
                    (None, _) | (_, None) => return Ok(None),
                    (Some(V::Num(a)), Some(V::Num(b))) => a.partial_cmp(b),
                    (Some(V::Str(a)), Some(V::Str(b))) => Some(cmp_utf16(a, b)),
                    _ => {
                        return Err(JErr::at(
                            "T2009",
                            format!(
                                "The values either side of operator \"{op}\" must be of the same data type"
                            ),
                            lhs.pos,
                        ));
                    }
                };
                use std::cmp::Ordering::*;
                Some(V::Bool(match (op, ord) {
                    (_, None) => false,
                    ("<", Some(o)) => o == Less,
                    ("<=", Some(o)) => o != Greater,
                    (">", Some(o)) => o == Greater,
                    (_, Some(o)) => o != Less,
                }))
            }
            "&" => {
                let a = self.concat_part(l.as_ref())?;
                let b = self.concat_part(r.as_ref())?;
                self.spend((a.len() + b.len()) as u64 / 8)?;
                self.charge_str(a.len() + b.len())?;
                let mut joined = String::with_capacity(a.len() + b.len());
                joined.push_str(&a);
                joined.push_str(&b);
                Some(V::Str(joined.into()))
            }
            ".." => {
                let check = |v: &Option<V>, code: &'static str, side: &str, pos: usize| match v {
                    None => Ok(None),
                    Some(V::Num(n)) if n.fract() == 0.0 => Ok(Some(*n)),
                    Some(_) => Err(JErr::at(
                        code,
                        format!(
                            "The {side} side of the range operator (..) must evaluate to an integer"
                        ),
                        pos,
                    )),
                };
                let a = check(&l, "T2003", "left", lhs.pos)?;
                let b = check(&r, "T2004", "right", rhs.pos)?;
                match (a, b) {
                    (Some(a), Some(b)) if a <= b => {
                        let size = b - a + 1.0;
                        if size > 10_000_000.0 {
                            return Err(JErr::at(
                                "D2014",
                                format!(
                                    "The size of the sequence allocated by the range operator (..) must not exceed 1e7.  Attempted to allocate {size}."
                                ),
                                lhs.pos,
                            ));
                        }
                        self.spend(size as u64)?;
                        self.charge_items(size as usize)?;
                        let mut out = Vec::with_capacity(size as usize);
                        let mut x = a;
                        while x <= b {
                            out.push(V::Num(x));
                            x += 1.0;
                        }
                        Some(V::seq(out))
                    }
                    _ => None,
                }
            }
            "in" => {
                let (Some(l), Some(r)) = (&l, &r) else {
                    return Ok(Some(V::Bool(false)));
                };
                let found = match r {
                    V::Arr(a, _) => {
                        self.spend(a.len() as u64 / 8)?;
                        a.iter().any(|x| deep_equal(x, l))
                    }
                    other => deep_equal(other, l),
                };
                Some(V::Bool(found))
            }
            _ => return Err(JErr::at("S0201", format!("Unknown operator {op}"), lhs.pos)),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        node: &Node,
        procedure: &Node,
        args: &[Node],
        partial: bool,
        input: Option<&V>,
        env: &Rc<Frame>,
        applyto: Option<Option<V>>,
    ) -> Res {
        let proc = self.eval(procedure, input, env)?;
        let Some(proc) = proc else {
            return Err(JErr::at(
                "T1006",
                "Attempted to invoke a non-function",
                node.pos,
            ));
        };
        if !proc.is_func() {
            return Err(JErr::at(
                "T1006",
                "Attempted to invoke a non-function",
                node.pos,
            ));
        }
        if partial {
            // `None` is a hole (`?`); `Some(value)` a fixed argument,
            // which may itself be undefined.
            let mut fixed = Vec::new();
            if let Some(a) = applyto {
                fixed.push(Some(a));
            }
            self.charge(FRAME_BYTES + args.len().saturating_mul(ITEM_BYTES))?;
            for a in args {
                if matches!(a.kind, Kind::Placeholder) {
                    fixed.push(None);
                } else {
                    fixed.push(Some(self.eval(a, input, env)?));
                }
            }
            return Ok(Some(V::Func(Rc::new(Func::partial(proc, fixed)))));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        if let Some(a) = applyto {
            values.push(a);
        }
        for a in args {
            values.push(self.eval(a, input, env)?);
        }
        self.apply(&proc, values, input, node.pos)
    }

    /// Applies a function value to arguments (undefined arguments are `None`).
    pub fn apply(&mut self, f: &V, args: Vec<Option<V>>, input: Option<&V>, pos: usize) -> Res {
        let V::Func(func) = f else {
            return Err(JErr::at("T1006", "Attempted to invoke a non-function", pos));
        };
        self.depth += 1;
        let result =
            if self.depth > MAX_DEPTH || self.stack_base.abs_diff(stack_address()) > STACK_BUDGET {
                Err(JErr::at(
                    "U1001",
                    "Stack overflow error: the expression nests or recurses too deeply",
                    pos,
                ))
            } else {
                self.apply_inner(func, args, input, pos)
            };
        self.depth -= 1;
        result
    }

    fn apply_inner(
        &mut self,
        func: &Rc<Func>,
        args: Vec<Option<V>>,
        input: Option<&V>,
        pos: usize,
    ) -> Res {
        match func.as_ref() {
            Func::Lambda {
                def,
                input: captured,
                frame,
            } => {
                let frame = self.frame(Some(frame))?;
                for (i, p) in def.params.iter().enumerate() {
                    if let Some(Some(v)) = args.get(i) {
                        self.bind(&frame, p, v.clone())?;
                    }
                }
                self.eval(&def.body, captured.as_ref(), &frame)
            }
            _ => self.apply_other(func, args, input, pos),
        }
    }

    #[inline(never)]
    fn apply_other(
        &mut self,
        func: &Rc<Func>,
        args: Vec<Option<V>>,
        input: Option<&V>,
        pos: usize,
    ) -> Res {
        match func.as_ref() {
            Func::Lambda { .. } => Ok(None),
            Func::Builtin(name) => functions::call(self, name, args, input, pos),
            Func::Partial {
                func, args: fixed, ..
            } => {
                let mut supplied = args.into_iter();
                let full: Vec<Option<V>> = fixed
                    .iter()
                    .map(|a| match a {
                        Some(v) => v.clone(),
                        None => supplied.next().flatten(),
                    })
                    .collect();
                self.apply(func, full, input, pos)
            }
            Func::Regex(def) => {
                let text = match args.into_iter().next().flatten() {
                    Some(V::Str(s)) => s,
                    None => return Ok(None),
                    Some(_) => {
                        return Err(JErr::at(
                            "T0410",
                            "Argument 1 of function regex does not match function signature",
                            pos,
                        ));
                    }
                };
                Ok(functions::regex_matches(self, def, &text, Some(1))?
                    .into_iter()
                    .next())
            }
            Func::Transform { def, frame } => {
                let target = args.into_iter().next().flatten();
                self.transform(def, target, frame, pos)
            }
            Func::Chain(first, second, _) => {
                let mid = self.apply(first, args, input, pos)?;
                self.apply(second, vec![mid], input, pos)
            }
        }
    }

    fn apply_chain(&mut self, lhs: &Node, rhs: &Node, input: Option<&V>, env: &Rc<Frame>) -> Res {
        let l = self.eval(lhs, input, env)?;
        // `x ~> $f(a)` is `$f(x, a)`; a partial `x ~> $f(?, a)` is a
        // function, applied to x below.
        if let Kind::Call {
            procedure,
            args,
            partial: false,
        } = &rhs.kind
        {
            return self.call(rhs, procedure, args, false, input, env, Some(l));
        }
        let r = self.eval(rhs, input, env)?;
        match (r, l) {
            (Some(r @ V::Func(_)), Some(l @ V::Func(_))) => {
                self.charge(FRAME_BYTES)?;
                Ok(Some(V::Func(Rc::new(Func::chain(l, r)))))
            }
            (Some(r @ V::Func(_)), l) => self.apply(&r, vec![l], input, rhs.pos),
            _ => Err(JErr::at(
                "T2006",
                "The right side of the function application operator ~> must be a function",
                rhs.pos,
            )),
        }
    }

    fn transform(
        &mut self,
        def: &super::parser::TransformDef,
        target: Option<V>,
        env: &Rc<Frame>,
        pos: usize,
    ) -> Res {
        let Some(target) = target else {
            return Ok(None);
        };
        if !matches!(target, V::Obj(_) | V::Arr(..)) {
            return Err(JErr::at(
                "T0410",
                "Argument 1 of function transform does not match function signature",
                pos,
            ));
        }
        // Work on a deep, mutable copy; matches are addressed by their path
        // from the root, found by identity within the copy. The copy, its
        // snapshot and the result are three trees of the target's size.
        let size = super::value::text_size(&target, false, self.memory.saturating_add(1));
        self.charge(size.saturating_mul(3))?;
        let mut root = to_mutable(&target);
        let snapshot = from_mutable(&root);
        let matches = self.eval(&def.pattern, Some(&snapshot), env)?;
        let matched: Vec<V> = match matches {
            None => vec![],
            Some(V::Arr(a, _)) => a.to_vec(),
            Some(v) => vec![v],
        };
        self.charge_items(matched.len())?;
        let mut paths = Vec::new();
        for m in &matched {
            if let V::Obj(o) = m {
                find_paths(&snapshot, o, &mut Vec::new(), &mut paths);
            } else {
                return Err(JErr::at(
                    "T2011",
                    "The insert/update clause of the transform expression must evaluate to an object",
                    pos,
                ));
            }
        }
        paths.dedup();
        for path in paths {
            let Some(current) = get_path(&root, &path) else {
                continue;
            };
            let current_v = from_mutable(current);
            self.charge(super::value::text_size(
                &current_v,
                false,
                self.memory.saturating_add(1),
            ))?;
            let update = self.eval(&def.update, Some(&current_v), env)?;
            let deletions = match &def.delete {
                Some(d) => self.eval(d, Some(&current_v), env)?,
                None => None,
            };
            if let Some(u @ V::Obj(_)) = &update {
                // Its fields are copied into the tree.
                let size = super::value::text_size(u, false, self.memory.saturating_add(1));
                self.charge(size)?;
            }
            let Some(Mutable::Obj(target_obj)) = get_path_mut(&mut root, &path) else {
                continue;
            };
            match update {
                None => {}
                Some(V::Obj(u)) => {
                    for (k, v) in u.iter() {
                        target_obj.insert(k.clone(), to_mutable(v));
                    }
                }
                Some(_) => {
                    return Err(JErr::at(
                        "T2011",
                        "The insert/update clause of the transform expression must evaluate to an object",
                        def.update.pos,
                    ));
                }
            }
            match deletions {
                None => {}
                Some(V::Str(s)) => {
                    target_obj.shift_remove(s.as_ref());
                }
                Some(V::Arr(a, _)) => {
                    for k in a.iter() {
                        match k {
                            V::Str(s) => {
                                target_obj.shift_remove(s.as_ref());
                            }
                            _ => {
                                return Err(JErr::at(
                                    "T2012",
                                    "The delete clause of the transform expression must evaluate to a string or array of strings",
                                    pos,
                                ));
                            }
                        }
                    }
                }
                Some(_) => {
                    return Err(JErr::at(
                        "T2012",
                        "The delete clause of the transform expression must evaluate to a string or array of strings",
                        pos,
                    ));
                }
            }
        }
        Ok(Some(from_mutable(&root)))
    }
}

/// The error of an evaluation that would pass its memory budget.
pub(super) fn budget_exceeded() -> JErr {
    JErr::new(
        "U1003",
        format!(
            "The expression builds more data than one evaluation may ({} MiB in all): evaluation stopped",
            MEMORY_BUDGET >> 20
        ),
    )
}

/// Where the stack is now (an address in the current frame).
#[inline(never)]
pub(super) fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// A plain tree for the transform operator to edit in place.
#[derive(Debug, Clone)]
enum Mutable {
    Leaf(V),
    Arr(Vec<Mutable>),
    Obj(indexmap::IndexMap<String, Mutable, super::value::FastHash>),
}

/// Every node's value is checked as it is made: a value grows by a level
/// or two per node at most, so none ever nests much deeper than
/// [`MAX_VALUE_DEPTH`], and every walk over one stays within the stack.
fn nested_no_deeper(value: Option<V>) -> Res {
    match &value {
        Some(v) if v.depth() > MAX_VALUE_DEPTH => Err(JErr::new(
            "U1005",
            format!(
                "The expression builds a value nested more than {MAX_VALUE_DEPTH} levels deep: evaluation stopped"
            ),
        )),
        _ => Ok(value),
    }
}

fn to_mutable(v: &V) -> Mutable {
    match v {
        V::Arr(a, _) => Mutable::Arr(a.iter().map(to_mutable).collect()),
        V::Obj(o) => Mutable::Obj(o.iter().map(|(k, v)| (k.clone(), to_mutable(v))).collect()),
        other => Mutable::Leaf(other.clone()),
    }
}

fn from_mutable(m: &Mutable) -> V {
    match m {
        Mutable::Leaf(v) => v.clone(),
        Mutable::Arr(a) => V::arr(a.iter().map(from_mutable).collect()),
        Mutable::Obj(o) => V::Obj(Rc::new(
            o.iter()
                .map(|(k, v)| (k.clone(), from_mutable(v)))
                .collect(),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum PathPart {
    Key(String),
    Index(usize),
}

/// Where in `root` the object `target` (by identity) sits.
fn find_paths(
    root: &V,
    target: &Rc<Obj>,
    current: &mut Vec<PathPart>,
    out: &mut Vec<Vec<PathPart>>,
) {
    match root {
        V::Obj(o) => {
            if Rc::ptr_eq(o, target) {
                out.push(current.clone());
            }
            for (k, v) in o.iter() {
                current.push(PathPart::Key(k.clone()));
                find_paths(v, target, current, out);
                current.pop();
            }
        }
        V::Arr(a, _) => {
            for (i, v) in a.iter().enumerate() {
                current.push(PathPart::Index(i));
                find_paths(v, target, current, out);
                current.pop();
            }
        }
        _ => {}
    }
}

fn get_path<'m>(root: &'m Mutable, path: &[PathPart]) -> Option<&'m Mutable> {
    let mut at = root;
    for part in path {
        at = match (at, part) {
            (Mutable::Obj(o), PathPart::Key(k)) => o.get(k)?,
            (Mutable::Arr(a), PathPart::Index(i)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

fn get_path_mut<'m>(root: &'m mut Mutable, path: &[PathPart]) -> Option<&'m mut Mutable> {
    let mut at = root;
    for part in path {
        at = match (at, part) {
            (Mutable::Obj(o), PathPart::Key(k)) => o.get_mut(k)?,
            (Mutable::Arr(a), PathPart::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

fn objs(v: V) -> Vec<Obj> {
    match v {
        V::Arr(a, _) => a
            .iter()
            .filter_map(|x| match x {
                V::Obj(o) => Some(o.as_ref().clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// Merges a group's tuples: each binding's values appended.
fn reduce_tuples(data: Option<V>) -> Obj {
    let items: Vec<V> = match data {
        Some(V::Arr(a, _)) => a.to_vec(),
        Some(v) => vec![v],
        None => vec![],
    };
    let mut result = Obj::default();
    let mut first = true;
    for item in items {
        let V::Obj(o) = item else { continue };
        if first {
            result = o.as_ref().clone();
            first = false;
            continue;
        }
        for (k, v) in o.iter() {
            let merged = functions::append(result.shift_remove(k), Some(v.clone()));
            if let Some(m) = merged {
                result.insert(k.clone(), m);
            }
        }
    }
    result
}

/// The reference implementation's stable merge sort: `greater(a, b)` true
/// puts b first. Never panics, whatever the comparator says.
pub(super) fn merge_sort<T: Clone>(
    items: Vec<T>,
    greater: &mut dyn FnMut(&T, &T) -> bool,
) -> Vec<T> {
    if items.len() <= 1 {
        return items;
    }
    let mut left = items;
    let right = left.split_off(left.len() / 2);
    let left = merge_sort(left, greater);
    let right = merge_sort(right, greater);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if greater(&left[i], &right[j]) {
            out.push(right[j].clone());
            j += 1;
        } else {
            out.push(left[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&left[i..]);
    out.extend_from_slice(&right[j..]);
    out
}

/// JavaScript compares strings by UTF-16 code units.
pub(super) fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Field lookup, flattening over arrays as the reference `lookup` does.
pub(super) fn lookup(input: Option<&V>, key: &str) -> Option<V> {
    match input? {
        V::Arr(a, _) => {
            let mut out = Vec::new();
            for item in a.iter() {
                match lookup(Some(item), key) {
                    Some(V::Arr(x, _)) => out.extend(x.iter().cloned()),
                    Some(v) => out.push(v),
                    None => {}
                }
            }
            Some(V::seq(out))
        }
        V::Obj(o) => o.get(key).cloned(),
        _ => None,
    }
}

fn flatten_into(v: &V, out: &mut Vec<V>) {
    match v {
        V::Arr(a, _) => a.iter().for_each(|x| flatten_into(x, out)),
        other => out.push(other.clone()),
    }
}

fn wildcard(input: Option<&V>) -> Option<V> {
    let input = match input? {
        V::Arr(a, f) if f & WRAP != 0 && !a.is_empty() => a.first()?,
        other => other,
    };
    let mut out = Vec::new();
    if let V::Arr(..) = input {
        // JavaScript's Object.keys of an array: its items.
        flatten_into(input, &mut out);
    }
    if let V::Obj(o) = input {
        for v in o.values() {
            match v {
                V::Arr(..) => flatten_into(v, &mut out),
                other => out.push(other.clone()),
            }
        }
    }
    Some(V::seq(out))
}

fn descendants(input: Option<&V>) -> Option<V> {
    fn walk(v: &V, out: &mut Vec<V>) {
        match v {
            V::Arr(a, _) => a.iter().for_each(|x| walk(x, out)),
            V::Obj(o) => {
                out.push(v.clone());
                o.values().for_each(|x| walk(x, out));
            }
            other => out.push(other.clone()),
        }
    }
    let input = input?;
    let mut out = Vec::new();
    walk(input, &mut out);
    if out.len() == 1 {
        out.pop()
    } else {
        Some(V::seq(out))
    }
}

/// `$append`-style: arrays are spliced in, other values pushed.
fn append_into(out: &mut Vec<V>, v: V) {
    match v {
        V::Arr(a, _) => out.extend(a.iter().cloned()),
        other => out.push(other),
    }
}

/// The end of `evaluate`: an empty sequence is undefined, a singleton
/// sequence its item (unless kept).
pub(super) fn finish_sequence(result: Option<V>, keep_array: bool) -> Option<V> {
    match result {
        Some(V::Arr(a, f)) if f & SEQ != 0 && f & TUPLE == 0 => {
            let f = if keep_array { f | KEEP } else { f };
            match a.len() {
                0 => None,
                1 if f & KEEP == 0 => a.first().cloned(),
                _ => Some(V::Arr(a, f)),
            }
        }
        other => other,
    }
}
