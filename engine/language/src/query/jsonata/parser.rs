//! A Pratt parser for JSONata, then the reference implementation's AST
//! rewrite: `a.b[c]` becomes a path whose steps carry their stages, `^(...)`
//! a sort step, `@$x` / `#$i` tuple bindings, `{...}` after an expression a
//! grouping.

use std::sync::Arc;

use super::error::JErr;
use super::lexer::{Lexer, Lit, Tok};

/// Nesting bound while parsing: deeper input is refused, not overflowed.
const MAX_PARSE_DEPTH: usize = 200;
/// Stack the parser may use (measured as in `eval`), whatever the build.
const PARSE_STACK: usize = 384 * 1024;

#[derive(Debug)]
pub(super) struct Node {
    pub kind: Kind,
    /// Character offset in the expression.
    pub pos: usize,
    pub ann: Ann,
}

/// What the rewrite attaches to a node.
#[derive(Debug, Default)]
pub(super) struct Ann {
    /// Filters on an expression that is not a path step.
    pub predicate: Vec<Stage>,
    /// Filters and index bindings on a path step, applied per input item.
    pub stages: Vec<Stage>,
    pub group: Option<Vec<(Node, Node)>>,
    pub focus: Option<String>,
    pub index: Option<String>,
    pub tuple: bool,
    pub keep_array: bool,
    pub consarray: bool,
}

#[derive(Debug)]
pub(super) enum Stage {
    Filter(Node),
    Index(String),
}

#[derive(Debug)]
pub(super) enum Kind {
    Path {
        steps: Vec<Node>,
        keep_singleton: bool,
    },
    Name(String),
    Str(Arc<str>),
    Num(f64),
    Value(Lit),
    Wildcard,
    Descendant,
    Parent,
    Var(String),
    Regex(Arc<RegexDef>),
    Binary {
        op: &'static str,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Neg(Box<Node>),
    Array(Vec<Node>),
    Object(Vec<(Node, Node)>),
    Condition {
        cond: Box<Node>,
        then: Box<Node>,
        otherwise: Option<Box<Node>>,
    },
    Block(Vec<Node>),
    Bind {
        name: String,
        value: Box<Node>,
    },
    Lambda(Arc<LambdaDef>),
    Call {
        procedure: Box<Node>,
        args: Vec<Node>,
        partial: bool,
    },
    Placeholder,
    Apply {
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Transform(Arc<TransformDef>),
    Sort(Vec<(bool, Node)>),
}

#[derive(Debug)]
pub(super) struct LambdaDef {
    pub params: Vec<String>,
    pub body: Node,
}

#[derive(Debug)]
pub(super) struct TransformDef {
    pub pattern: Node,
    pub update: Node,
    pub delete: Option<Node>,
}

#[derive(Debug)]
pub(super) struct RegexDef {
    pub regex: fancy_regex::Regex,
}

impl Node {
    fn new(kind: Kind, pos: usize) -> Self {
        Self {
            kind,
            pos,
            ann: Ann::default(),
        }
    }
}

/// Parses an expression into the rewritten AST.
pub(super) fn parse(src: &str) -> Result<Node, JErr> {
    let mut p = Parser {
        lexer: Lexer::new(src),
        tok: Tok::End,
        pos: 0,
        depth: 0,
        src,
        stack_base: super::eval::stack_address(),
    };
    p.advance(true)?;
    let raw = p.expression(0)?;
    if p.tok != Tok::End {
        return Err(JErr::at(
            "S0201",
            format!("Syntax error: {}", p.show()),
            p.char_pos(),
        ));
    }
    process(raw)
}

struct Parser<'s> {
    lexer: Lexer<'s>,
    tok: Tok,
    /// Byte offset of `tok`.
    pos: usize,
    depth: usize,
    src: &'s str,
    stack_base: usize,
}

/// The parser's first form, before the rewrite.
enum Raw {
    Leaf(Kind, usize),
    Binary(&'static str, Box<Raw>, Box<Raw>, usize),
    Predicate(Box<Raw>, Option<Box<Raw>>, usize),
    Group(Box<Raw>, Vec<(Raw, Raw)>, usize),
    Sort(Box<Raw>, Vec<(bool, Raw)>, usize),
    Neg(Box<Raw>, usize),
    Array(Vec<Raw>, usize),
    Object(Vec<(Raw, Raw)>, usize),
    Condition(Box<Raw>, Box<Raw>, Option<Box<Raw>>, usize),
    Block(Vec<Raw>, usize),
    Lambda(Vec<String>, Box<Raw>, usize),
    Call(Box<Raw>, Vec<Raw>, usize),
    Transform(Box<Raw>, Box<Raw>, Option<Box<Raw>>, usize),
}

fn infix_bp(op: &str) -> u8 {
    match op {
        "." => 75,
        "[" | "(" | "@" | "#" => 80,
        "{" => 70,
        "*" | "/" | "%" => 60,
        "+" | "-" | "&" => 50,
        "=" | "!=" | "<" | "<=" | ">" | ">=" | "^" | "~>" | "in" => 40,
        "and" => 30,
        "or" => 25,
        "?" => 20,
        ":=" => 10,
        _ => 0,
    }
}

impl Parser<'_> {
    fn char_pos(&self) -> usize {
        self.src[..self.pos.min(self.src.len())].chars().count()
    }

    fn show(&self) -> String {
        match &self.tok {
            Tok::End => "end of expression".into(),
            Tok::Op(o) => format!("\"{o}\""),
            Tok::Name(n) => format!("\"{n}\""),
            Tok::Var(v) => format!("\"${v}\""),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Num(n) => format!("{n}"),
            Tok::Value(v) => format!("{v:?}").to_lowercase(),
            Tok::Regex { pattern, .. } => format!("/{pattern}/"),
        }
    }

    /// Moves to the next token; `/` is a regex only in prefix position.
    fn advance(&mut self, prefix: bool) -> Result<(), JErr> {
        let (tok, pos) = self.lexer.next(prefix).map_err(|e| {
            let p = e.position.unwrap_or(0);
            let chars = self.src[..p.min(self.src.len())].chars().count();
            JErr {
                position: Some(chars),
                ..e
            }
        })?;
        self.tok = tok;
        self.pos = pos;
        Ok(())
    }

    /// Consumes the current token; the next one is in prefix position
    /// unless the consumed one ends an operand.
    fn bump(&mut self) -> Result<Tok, JErr> {
        let tok = std::mem::replace(&mut self.tok, Tok::End);
        let operand_end = matches!(
            tok,
            Tok::Name(_)
                | Tok::Var(_)
                | Tok::Str(_)
                | Tok::Num(_)
                | Tok::Value(_)
                | Tok::Regex { .. }
                | Tok::Op(")" | "]" | "}")
        );
        self.advance(!operand_end)?;
        Ok(tok)
    }

    fn expect(&mut self, op: &'static str) -> Result<(), JErr> {
        if self.tok == Tok::Op(op) {
            self.bump()?;
            Ok(())
        } else if self.tok == Tok::End {
            Err(JErr::at(
                "S0203",
                format!("Expected \"{op}\" before end of expression"),
                self.char_pos(),
            ))
        } else {
            Err(JErr::at(
                "S0202",
                format!("Expected \"{op}\", got {}", self.show()),
                self.char_pos(),
            ))
        }
    }

    fn expression(&mut self, rbp: u8) -> Result<Raw, JErr> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH
            || self.stack_base.abs_diff(super::eval::stack_address()) > PARSE_STACK
        {
            return Err(JErr::at(
                "U1001",
                "The expression is nested too deeply",
                self.char_pos(),
            ));
        }
        let mut left = self.nud()?;
        loop {
            let bp = match &self.tok {
                Tok::Op(op) => infix_bp(op),
                _ => 0,
            };
            if rbp >= bp {
                break;
            }
            left = self.led(left)?;
        }
        self.depth -= 1;
        Ok(left)
    }

    fn nud(&mut self) -> Result<Raw, JErr> {
        let pos = self.char_pos();
        let tok = self.bump()?;
        Ok(match tok {
            Tok::Num(n) => Raw::Leaf(Kind::Num(n), pos),
            Tok::Str(s) => Raw::Leaf(Kind::Str(s.into()), pos),
            Tok::Value(v) => Raw::Leaf(Kind::Value(v), pos),
            Tok::Var(v) => Raw::Leaf(Kind::Var(v), pos),
            Tok::Regex { pattern, flags } => Raw::Leaf(
                Kind::Regex(Arc::new(compile_regex(&pattern, &flags, pos)?)),
                pos,
            ),
            Tok::Name(n) if (n == "function" || n == "λ") && self.tok == Tok::Op("(") => {
                self.lambda(pos)?
            }
            Tok::Name(n) => Raw::Leaf(Kind::Name(n), pos),
            Tok::Op(op @ ("and" | "or" | "in")) => Raw::Leaf(Kind::Name(op.into()), pos),
            Tok::Op("-") => Raw::Neg(Box::new(self.expression(70)?), pos),
            Tok::Op("*") => Raw::Leaf(Kind::Wildcard, pos),
            Tok::Op("**") => Raw::Leaf(Kind::Descendant, pos),
            Tok::Op("%") => Raw::Leaf(Kind::Parent, pos),
            Tok::Op("?") => Raw::Leaf(Kind::Placeholder, pos),
            Tok::Op("(") => {
                let mut items = Vec::new();
                while self.tok != Tok::Op(")") {
                    items.push(self.expression(0)?);
                    if self.tok != Tok::Op(";") {
                        break;
                    }
                    self.bump()?;
                }
                self.expect(")")?;
                Raw::Block(items, pos)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if self.tok != Tok::Op("]") {
                    loop {
                        let mut item = self.expression(0)?;
                        if self.tok == Tok::Op("..") {
                            let p = self.char_pos();
                            self.bump()?;
                            let rhs = self.expression(0)?;
                            item = Raw::Binary("..", Box::new(item), Box::new(rhs), p);
                        }
                        items.push(item);
                        if self.tok != Tok::Op(",") {
                            break;
                        }
                        self.bump()?;
                    }
                }
                self.expect("]")?;
                Raw::Array(items, pos)
            }
            Tok::Op("{") => Raw::Object(self.pairs()?, pos),
            Tok::Op("|") => {
                let pattern = self.expression(0)?;
                self.expect("|")?;
                let update = self.expression(0)?;
                let delete = if self.tok == Tok::Op(",") {
                    self.bump()?;
                    Some(Box::new(self.expression(0)?))
                } else {
                    None
                };
                self.expect("|")?;
                Raw::Transform(Box::new(pattern), Box::new(update), delete, pos)
            }
            Tok::End => {
                return Err(JErr::at("S0207", "Unexpected end of expression", pos));
            }
            other => {
                let shown = match other {
                    Tok::Op(o) => o.to_string(),
                    _ => String::new(),
                };
                return Err(JErr::at(
                    "S0211",
                    format!("The symbol {shown} cannot be used as a unary operator"),
                    pos,
                ));
            }
        })
    }

    /// `{ key: value, ... }` after the `{`.
    fn pairs(&mut self) -> Result<Vec<(Raw, Raw)>, JErr> {
        let mut pairs = Vec::new();
        if self.tok != Tok::Op("}") {
            loop {
                let key = self.expression(0)?;
                self.expect(":")?;
                let value = self.expression(0)?;
                pairs.push((key, value));
                if self.tok != Tok::Op(",") {
                    break;
                }
                self.bump()?;
            }
        }
        self.expect("}")?;
        Ok(pairs)
    }

    fn lambda(&mut self, pos: usize) -> Result<Raw, JErr> {
        self.expect("(")?;
        let mut params = Vec::new();
        while self.tok != Tok::Op(")") {
            match self.bump()? {
                Tok::Var(v) => params.push(v),
                _ => {
                    return Err(JErr::at(
                        "S0208",
                        "Parameter of function definition must be a variable name (start with $)",
                        self.char_pos(),
                    ));
                }
            }
            if self.tok == Tok::Op(",") {
                self.bump()?;
            } else {
                break;
            }
        }
        self.expect(")")?;
        // An optional signature `<...>`: accepted, not enforced.
        if self.tok == Tok::Op("<") {
            let mut depth = 0i32;
            loop {
                match &self.tok {
                    Tok::Op("<") => depth += 1,
                    Tok::Op(">") => depth -= 1,
                    Tok::End => {
                        return Err(JErr::at(
                            "S0401",
                            "Unterminated function signature",
                            self.char_pos(),
                        ));
                    }
                    _ => {}
                }
                self.bump()?;
                if depth == 0 {
                    break;
                }
            }
        }
        self.expect("{")?;
        let body = self.expression(0)?;
        self.expect("}")?;
        Ok(Raw::Lambda(params, Box::new(body), pos))
    }

    fn led(&mut self, left: Raw) -> Result<Raw, JErr> {
        let pos = self.char_pos();
        let Tok::Op(op) = self.bump()? else {
            return Err(JErr::at("S0201", "Syntax error", pos));
        };
        Ok(match op {
            "(" => {
                let mut args = Vec::new();
                while self.tok != Tok::Op(")") {
                    args.push(self.expression(0)?);
                    if self.tok != Tok::Op(",") {
                        break;
                    }
                    self.bump()?;
                }
                self.expect(")")?;
                Raw::Call(Box::new(left), args, pos)
            }
            "[" => {
                if self.tok == Tok::Op("]") {
                    self.bump()?;
                    Raw::Predicate(Box::new(left), None, pos)
                } else {
                    let rhs = self.expression(0)?;
                    self.expect("]")?;
                    Raw::Predicate(Box::new(left), Some(Box::new(rhs)), pos)
                }
            }
            "{" => Raw::Group(Box::new(left), self.pairs()?, pos),
            "^" => {
                self.expect("(")?;
                let mut terms = Vec::new();
                loop {
                    let mut descending = false;
                    if self.tok == Tok::Op("<") {
                        self.bump()?;
                    } else if self.tok == Tok::Op(">") {
                        descending = true;
                        self.bump()?;
                    }
                    terms.push((descending, self.expression(0)?));
                    if self.tok != Tok::Op(",") {
                        break;
                    }
                    self.bump()?;
                }
                self.expect(")")?;
                Raw::Sort(Box::new(left), terms, pos)
            }
            "?" => {
                let then = self.expression(0)?;
                let otherwise = if self.tok == Tok::Op(":") {
                    self.bump()?;
                    Some(Box::new(self.expression(0)?))
                } else {
                    None
                };
                Raw::Condition(Box::new(left), Box::new(then), otherwise, pos)
            }
            ":=" => {
                let rhs = self.expression(infix_bp(op) - 1)?;
                Raw::Binary(op, Box::new(left), Box::new(rhs), pos)
            }
            "@" | "#" => {
                let rhs = self.expression(infix_bp(op))?;
                Raw::Binary(op, Box::new(left), Box::new(rhs), pos)
            }
            _ => {
                let bp = infix_bp(op);
                if bp == 0 {
                    return Err(JErr::at("S0201", format!("Syntax error: \"{op}\""), pos));
                }
                let rhs = self.expression(bp)?;
                Raw::Binary(op, Box::new(left), Box::new(rhs), pos)
            }
        })
    }
}

fn compile_regex(pattern: &str, flags: &str, pos: usize) -> Result<RegexDef, JErr> {
    let mut prefix = String::new();
    for f in flags.chars() {
        match f {
            'i' => prefix.push('i'),
            'm' => prefix.push('m'),
            // JavaScript's `g` is implied by the functions that use a regex.
            'g' => {}
            _ => {
                return Err(JErr::at(
                    "S0302",
                    format!("Unsupported regular expression flag: {f}"),
                    pos,
                ));
            }
        }
    }
    let full = if prefix.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{prefix}){pattern}")
    };
    let regex = fancy_regex::RegexBuilder::new(&full)
        .backtrack_limit(100_000)
        .build()
        .map_err(|e| JErr::at("S0302", format!("Invalid regular expression: {e}"), pos))?;
    Ok(RegexDef { regex })
}

/// The reference implementation's `processAST`.
fn process(raw: Raw) -> Result<Node, JErr> {
    Ok(match raw {
        Raw::Leaf(Kind::Name(n), pos) => {
            let step = Node::new(Kind::Name(n), pos);
            Node::new(
                Kind::Path {
                    steps: vec![step],
                    keep_singleton: false,
                },
                pos,
            )
        }
        Raw::Leaf(kind, pos) => Node::new(kind, pos),
        Raw::Binary(".", lhs, rhs, pos) => {
            let lhs = process(*lhs)?;
            let mut steps = Vec::new();
            let mut keep = false;
            match lhs.kind {
                Kind::Path {
                    steps: s,
                    keep_singleton,
                } if lhs.ann.predicate.is_empty() && lhs.ann.group.is_none() => {
                    steps.extend(s);
                    keep |= keep_singleton;
                }
                _ => steps.push(lhs),
            }
            let rhs = process(*rhs)?;
            match rhs.kind {
                Kind::Path {
                    steps: s,
                    keep_singleton,
                } if rhs.ann.predicate.is_empty() && rhs.ann.group.is_none() => {
                    steps.extend(s);
                    keep |= keep_singleton;
                }
                _ => steps.push(rhs),
            }
            let last = steps.len() - 1;
            for (i, step) in steps.iter_mut().enumerate() {
                match &step.kind {
                    Kind::Num(_) | Kind::Value(_) => {
                        return Err(JErr::at(
                            "S0213",
                            "The literal value cannot be used as a step within a path expression",
                            step.pos,
                        ));
                    }
                    Kind::Str(s) => {
                        let name = s.to_string();
                        step.kind = Kind::Name(name);
                    }
                    Kind::Array(_) if i == 0 || i == last => step.ann.consarray = true,
                    _ => {}
                }
                keep |= step.ann.keep_array;
            }
            Node::new(
                Kind::Path {
                    steps,
                    keep_singleton: keep,
                },
                pos,
            )
        }
        Raw::Predicate(lhs, None, _) => {
            let mut node = process(*lhs)?;
            match &mut node.kind {
                Kind::Path {
                    steps,
                    keep_singleton,
                } => {
                    *keep_singleton = true;
                    if let Some(last) = steps.last_mut() {
                        last.ann.keep_array = true;
                    }
                }
                _ => node.ann.keep_array = true,
            }
            node
        }
        Raw::Predicate(lhs, Some(rhs), pos) => {
            let mut node = process(*lhs)?;
            let filter = process(*rhs)?;
            let is_path = matches!(node.kind, Kind::Path { .. })
                && node.ann.predicate.is_empty()
                && node.ann.group.is_none();
            if is_path {
                let Kind::Path { steps, .. } = &mut node.kind else {
                    return Err(JErr::at("S0201", "Syntax error", pos));
                };
                let Some(step) = steps.last_mut() else {
                    return Err(JErr::at("S0201", "Syntax error", pos));
                };
                if step.ann.group.is_some() {
                    return Err(JErr::at(
                        "S0209",
                        "A predicate cannot follow a grouping expression in a step",
                        pos,
                    ));
                }
                step.ann.stages.push(Stage::Filter(filter));
            } else {
                if node.ann.group.is_some() {
                    return Err(JErr::at(
                        "S0209",
                        "A predicate cannot follow a grouping expression in a step",
                        pos,
                    ));
                }
                node.ann.predicate.push(Stage::Filter(filter));
            }
            node
        }
        Raw::Group(lhs, pairs, pos) => {
            let mut node = process(*lhs)?;
            if node.ann.group.is_some() {
                return Err(JErr::at(
                    "S0210",
                    "Each step can only have one grouping expression",
                    pos,
                ));
            }
            let pairs = pairs
                .into_iter()
                .map(|(k, v)| Ok((process(k)?, process(v)?)))
                .collect::<Result<Vec<_>, JErr>>()?;
            node.ann.group = Some(pairs);
            node
        }
        Raw::Sort(lhs, terms, pos) => {
            let node = process(*lhs)?;
            let (mut steps, keep) = into_steps(node);
            let terms = terms
                .into_iter()
                .map(|(d, t)| Ok((d, process(t)?)))
                .collect::<Result<Vec<_>, JErr>>()?;
            steps.push(Node::new(Kind::Sort(terms), pos));
            Node::new(
                Kind::Path {
                    steps,
                    keep_singleton: keep,
                },
                pos,
            )
        }
        Raw::Binary("@", lhs, rhs, pos) => {
            let node = process(*lhs)?;
            let Raw::Leaf(Kind::Var(name), _) = *rhs else {
                return Err(JErr::at(
                    "S0214",
                    "The right side of @ must be a variable name (start with $)",
                    pos,
                ));
            };
            let (mut steps, keep) = into_steps(node);
            let Some(step) = steps.last_mut() else {
                return Err(JErr::at("S0201", "Syntax error", pos));
            };
            if !step.ann.stages.is_empty() || !step.ann.predicate.is_empty() {
                return Err(JErr::at(
                    "S0215",
                    "A context variable binding must precede any predicates on a step",
                    pos,
                ));
            }
            if matches!(step.kind, Kind::Sort(_)) {
                return Err(JErr::at(
                    "S0216",
                    "A context variable binding must precede the 'order-by' clause on a step",
                    pos,
                ));
            }
            step.ann.focus = Some(name);
            step.ann.tuple = true;
            Node::new(
                Kind::Path {
                    steps,
                    keep_singleton: keep,
                },
                pos,
            )
        }
        Raw::Binary("#", lhs, rhs, pos) => {
            let mut node = process(*lhs)?;
            let Raw::Leaf(Kind::Var(name), _) = *rhs else {
                return Err(JErr::at(
                    "S0214",
                    "The right side of # must be a variable name (start with $)",
                    pos,
                ));
            };
            if !matches!(node.kind, Kind::Path { .. }) {
                node.ann.stages = std::mem::take(&mut node.ann.predicate);
            }
            let (mut steps, keep) = into_steps(node);
            let Some(step) = steps.last_mut() else {
                return Err(JErr::at("S0201", "Syntax error", pos));
            };
            if step.ann.stages.is_empty() {
                step.ann.index = Some(name);
            } else {
                step.ann.stages.push(Stage::Index(name));
            }
            step.ann.tuple = true;
            Node::new(
                Kind::Path {
                    steps,
                    keep_singleton: keep,
                },
                pos,
            )
        }
        Raw::Binary(":=", lhs, rhs, pos) => {
            let Raw::Leaf(Kind::Var(name), _) = *lhs else {
                return Err(JErr::at(
                    "S0212",
                    "The left side of := must be a variable name (start with $)",
                    pos,
                ));
            };
            Node::new(
                Kind::Bind {
                    name,
                    value: Box::new(process(*rhs)?),
                },
                pos,
            )
        }
        Raw::Binary("~>", lhs, rhs, pos) => Node::new(
            Kind::Apply {
                lhs: Box::new(process(*lhs)?),
                rhs: Box::new(process(*rhs)?),
            },
            pos,
        ),
        Raw::Binary(op, lhs, rhs, pos) => Node::new(
            Kind::Binary {
                op,
                lhs: Box::new(process(*lhs)?),
                rhs: Box::new(process(*rhs)?),
            },
            pos,
        ),
        Raw::Neg(inner, pos) => {
            let inner = process(*inner)?;
            match inner.kind {
                Kind::Num(n) if inner.ann.predicate.is_empty() => Node::new(Kind::Num(-n), pos),
                _ => Node::new(Kind::Neg(Box::new(inner)), pos),
            }
        }
        Raw::Array(items, pos) => Node::new(
            Kind::Array(items.into_iter().map(process).collect::<Result<_, _>>()?),
            pos,
        ),
        Raw::Object(pairs, pos) => Node::new(
            Kind::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| Ok((process(k)?, process(v)?)))
                    .collect::<Result<_, JErr>>()?,
            ),
            pos,
        ),
        Raw::Condition(c, t, e, pos) => Node::new(
            Kind::Condition {
                cond: Box::new(process(*c)?),
                then: Box::new(process(*t)?),
                otherwise: match e {
                    Some(e) => Some(Box::new(process(*e)?)),
                    None => None,
                },
            },
            pos,
        ),
        Raw::Block(items, pos) => Node::new(
            Kind::Block(items.into_iter().map(process).collect::<Result<_, _>>()?),
            pos,
        ),
        Raw::Lambda(params, body, pos) => Node::new(
            Kind::Lambda(Arc::new(LambdaDef {
                params,
                body: process(*body)?,
            })),
            pos,
        ),
        Raw::Call(procedure, args, pos) => {
            let args: Vec<Node> = args.into_iter().map(process).collect::<Result<_, _>>()?;
            let partial = args.iter().any(|a| matches!(a.kind, Kind::Placeholder));
            Node::new(
                Kind::Call {
                    procedure: Box::new(process(*procedure)?),
                    args,
                    partial,
                },
                pos,
            )
        }
        Raw::Transform(pattern, update, delete, pos) => Node::new(
            Kind::Transform(Arc::new(TransformDef {
                pattern: process(*pattern)?,
                update: process(*update)?,
                delete: match delete {
                    Some(d) => Some(process(*d)?),
                    None => None,
                },
            })),
            pos,
        ),
    })
}

/// A node as path steps: a path's own, or the node as the only step.
fn into_steps(node: Node) -> (Vec<Node>, bool) {
    match node.kind {
        Kind::Path {
            steps,
            keep_singleton,
        } if node.ann.predicate.is_empty() && node.ann.group.is_none() => (steps, keep_singleton),
        _ => {
            let keep = node.ann.keep_array;
            (vec![node], keep)
        }
    }
}
