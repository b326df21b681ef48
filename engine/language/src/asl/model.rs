//! The validated, compiled form of a state machine definition.
//!
//! Built once by [`crate::asl::validate`]; the interpreter reads only this.
//! State references are [`StateId`]s into one arena, every path, reference
//! path, payload template, intrinsic call and JSONata expression is already
//! parsed, and defaults are filled in, so nothing is re-read while an
//! execution runs. A value of these types is always consistent: it exists
//! only when validation found no error.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::query::intrinsic::IntrinsicCall;
use crate::query::jsonata::{JsonataExpr, JsonataTemplate};
use crate::query::path::Path;
use crate::query::reference::ReferencePath;
use crate::query::template::Template;

/// Index of a state in [`StateMachine::states`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateId(pub u32);

/// Index of a scope in [`StateMachine::scopes`]: the top level, a Parallel
/// branch or a Map's item processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeId(pub u32);

impl StateId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl ScopeId {
    /// The top-level scope.
    pub const ROOT: ScopeId = ScopeId(0);

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The language a state's fields are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QueryLanguage {
    #[default]
    JsonPath,
    Jsonata,
}

impl QueryLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLanguage::JsonPath => "JSONPath",
            QueryLanguage::Jsonata => "JSONata",
        }
    }
}

/// A whole state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub version: Option<String>,
    /// Maximum run time of an execution; `None` means no limit (AWS: one year
    /// for STANDARD executions, enforced by the runtime).
    pub timeout_seconds: Option<u64>,
    /// The top-level QueryLanguage, inherited by states that do not set one.
    pub query_language: QueryLanguage,
    /// Every state of every scope; scopes list theirs by id.
    pub states: Vec<State>,
    /// `scopes[0]` is the top level.
    pub scopes: Vec<Scope>,
}

impl StateMachine {
    pub fn state(&self, id: StateId) -> &State {
        &self.states[id.index()]
    }

    pub fn scope(&self, id: ScopeId) -> &Scope {
        &self.scopes[id.index()]
    }

    /// The state called `name` in `scope`.
    pub fn find(&self, scope: ScopeId, name: &str) -> Option<StateId> {
        self.scope(scope)
            .states
            .iter()
            .copied()
            .find(|&id| &*self.state(id).name == name)
    }
}

/// A set of states with its own StartAt: the top level, a Parallel branch,
/// or a Map's ItemProcessor (Iterator).
#[derive(Debug, Clone)]
pub struct Scope {
    pub start_at: StateId,
    pub states: Vec<StateId>,
    /// The Parallel or Map state that owns this scope; `None` at the top.
    pub owner: Option<StateId>,
    pub comment: Option<String>,
}

/// One state: what every state has, and what its type adds.
#[derive(Debug, Clone)]
pub struct State {
    /// Shared with every history event that names the state.
    pub name: std::sync::Arc<str>,
    pub scope: ScopeId,
    pub comment: Option<String>,
    /// The effective query language (the state's own or the top level's).
    pub query_language: QueryLanguage,
    /// Next or End; `None` for Choice, Succeed and Fail, which decide alone.
    pub transition: Option<Transition>,
    pub data: DataFlow,
    pub assign: Option<Payload>,
    pub kind: StateKind,
    /// Whether any field of this state can read the context object (`$$`,
    /// or any JSONata expression): when not, the interpreter skips
    /// preparing it.
    pub uses_context: bool,
}

/// Where a state goes when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Next(StateId),
    End,
}

/// How data flows through a state, in its query language. Fields a state
/// type does not have stay at their defaults.
#[derive(Debug, Clone)]
pub enum DataFlow {
    JsonPath(Box<PathFlow>),
    Jsonata(JsonataFlow),
}

/// JSONPath data flow: InputPath -> Parameters -> (work) -> ResultSelector ->
/// ResultPath -> OutputPath. A `None` path is an explicit `null`.
#[derive(Debug, Clone)]
pub struct PathFlow {
    /// `None`: input is `{}`. Default `$`.
    pub input_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// `None`: the result is discarded and the input passes on. Default `$`.
    pub result_path: Option<ReferencePath>,
    /// `None`: output is `{}`. Default `$`.
    pub output_path: Option<Path>,
}

/// JSONata data flow: Arguments -> (work) -> Output.
#[derive(Debug, Clone, Default)]
pub struct JsonataFlow {
    pub arguments: Option<JsonataTemplate>,
    pub output: Option<JsonataTemplate>,
}

/// A JSON value with dynamic parts, in either query language (Assign,
/// ItemSelector, ItemReader Parameters...).
#[derive(Debug, Clone)]
pub enum Payload {
    /// `"key.$"` fields hold paths or intrinsic calls.
    JsonPath(Template),
    /// `"{% ... %}"` strings anywhere.
    Jsonata(JsonataTemplate),
}

/// A value written either literally or computed at run time: `Seconds` /
/// `SecondsPath`, `Error` / `ErrorPath`, `MaxConcurrency` / `MaxConcurrencyPath`...
#[derive(Debug, Clone)]
pub enum Source<T> {
    Literal(T),
    Path(Path),
    Call(IntrinsicCall),
    Jsonata(JsonataExpr),
}

/// What each state type adds.
#[derive(Debug, Clone)]
pub enum StateKind {
    Pass(Pass),
    Task(Box<Task>),
    Choice(Choice),
    Wait(Wait),
    Succeed,
    Fail(Fail),
    Parallel(Box<Parallel>),
    Map(Box<Map>),
}

impl StateKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Pass(_) => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice(_) => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail(_) => "Fail",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pass {
    /// The static result (JSONPath); `None` passes the (selected) input on.
    /// Shared, so each run passes it on without a copy.
    pub result: Option<std::sync::Arc<Value>>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub resource: Resource,
    pub timeout_seconds: Option<Source<u64>>,
    pub heartbeat_seconds: Option<Source<u64>>,
    pub credentials: Option<Payload>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// A Task's Resource, recognised once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The Resource string as written, without the integration suffix.
    pub arn: String,
    pub kind: ResourceKind,
    pub pattern: IntegrationPattern,
}

/// What a Task's Resource designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKind {
    /// `arn:aws:states:::http:invoke`
    HttpInvoke,
    /// `arn:aws:states:REGION:ACCOUNT:activity:NAME`
    Activity { name: String },
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`
    LambdaFunction { name: String },
    /// `arn:aws:states:::lambda:invoke`
    LambdaInvoke,
    /// `arn:aws:states:::states:startExecution`
    StartExecution,
    /// `stepline:process:NAME`: a command the operator registered.
    Process { name: String },
    /// Never written in a definition: the Map Run of a distributed Map,
    /// which the interpreter hands to the runtime as a task.
    MapRun,
    /// Any other `arn:aws:states:::SERVICE:ACTION` integration; runs only
    /// when mocked or mapped by the operator.
    Service { service: String, action: String },
}

/// The service integration pattern, from the Resource's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationPattern {
    RequestResponse,
    /// `.sync`
    Sync,
    /// `.sync:2`
    Sync2,
    /// `.waitForTaskToken`
    WaitForTaskToken,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter_strategy: JitterStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JitterStrategy {
    #[default]
    None,
    Full,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: StateId,
    /// JSONPath: where `{Error, Cause}` goes; `None` for `null`. Default `$`.
    pub result_path: Option<ReferencePath>,
    /// JSONata: the state's output when this catcher fires.
    pub output: Option<JsonataTemplate>,
    pub assign: Option<Payload>,
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub choices: Vec<ChoiceRule>,
    pub default: Option<StateId>,
}

/// A top-level Choice rule: a condition and where to go when it holds.
#[derive(Debug, Clone)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: StateId,
    pub assign: Option<Payload>,
    pub output: Option<JsonataTemplate>,
}

/// A boolean expression over the state's input.
#[derive(Debug, Clone)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        variable: Path,
        operator: Operator,
        operand: Operand,
    },
    /// JSONata `Condition`: a literal boolean or an expression.
    Jsonata(Source<bool>),
}

/// A comparison operator, without its `Path` suffix (that is in [`Operand`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

impl Operator {
    /// Every operator with its ASL name; the `...Path` forms are the same
    /// names with `Path` appended (StringMatches and the Is* tests have none).
    pub const ALL: &'static [(Operator, &'static str)] = &[
        (Operator::StringEquals, "StringEquals"),
        (Operator::StringLessThan, "StringLessThan"),
        (Operator::StringGreaterThan, "StringGreaterThan"),
        (Operator::StringLessThanEquals, "StringLessThanEquals"),
        (Operator::StringGreaterThanEquals, "StringGreaterThanEquals"),
        (Operator::StringMatches, "StringMatches"),
        (Operator::NumericEquals, "NumericEquals"),
        (Operator::NumericLessThan, "NumericLessThan"),
        (Operator::NumericGreaterThan, "NumericGreaterThan"),
        (Operator::NumericLessThanEquals, "NumericLessThanEquals"),
        (
            Operator::NumericGreaterThanEquals,
            "NumericGreaterThanEquals",
        ),
        (Operator::BooleanEquals, "BooleanEquals"),
        (Operator::TimestampEquals, "TimestampEquals"),
        (Operator::TimestampLessThan, "TimestampLessThan"),
        (Operator::TimestampGreaterThan, "TimestampGreaterThan"),
        (Operator::TimestampLessThanEquals, "TimestampLessThanEquals"),
        (
            Operator::TimestampGreaterThanEquals,
            "TimestampGreaterThanEquals",
        ),
        (Operator::IsNull, "IsNull"),
        (Operator::IsPresent, "IsPresent"),
        (Operator::IsNumeric, "IsNumeric"),
        (Operator::IsString, "IsString"),
        (Operator::IsBoolean, "IsBoolean"),
        (Operator::IsTimestamp, "IsTimestamp"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("", |(_, name)| name)
    }

    /// Whether a `...Path` form exists.
    pub fn has_path_form(self) -> bool {
        !matches!(
            self,
            Operator::StringMatches
                | Operator::IsNull
                | Operator::IsPresent
                | Operator::IsNumeric
                | Operator::IsString
                | Operator::IsBoolean
                | Operator::IsTimestamp
        )
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub enum Operand {
    String(String),
    Number(f64),
    Bool(bool),
    Timestamp(DateTime<FixedOffset>),
    /// StringMatches: the pattern, compiled.
    Pattern(WildcardPattern),
    /// The `...Path` form: compare with the value at this path.
    Path(Path),
}

/// A StringMatches pattern: `*` matches any run of characters, `\*` a
/// literal star, `\\` a literal backslash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WildcardPattern {
    /// Literal pieces between stars; the pattern matches when they appear in
    /// order, the first at the start and the last at the end.
    pub pieces: Vec<String>,
}

impl WildcardPattern {
    pub fn parse(pattern: &str) -> Self {
        let mut pieces = vec![String::new()];
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => pieces.last_mut().map_or((), |p| p.push(escaped)),
                    None => pieces.last_mut().map_or((), |p| p.push('\\')),
                },
                '*' => pieces.push(String::new()),
                c => pieces.last_mut().map_or((), |p| p.push(c)),
            }
        }
        Self { pieces }
    }

    pub fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Wait {
    pub until: WaitUntil,
}

/// How long a Wait state waits.
#[derive(Debug, Clone)]
pub enum WaitUntil {
    Seconds(Source<u64>),
    Timestamp(Source<DateTime<FixedOffset>>),
}

#[derive(Debug, Clone)]
pub struct Fail {
    pub error: Option<Source<String>>,
    pub cause: Option<Source<String>>,
}

#[derive(Debug, Clone)]
pub struct Parallel {
    pub branches: Vec<ScopeId>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// A Map's items.
#[derive(Debug, Clone)]
pub enum Items {
    /// ItemsPath.
    Path(Path),
    /// Items: an expression, or an array (or any JSON) whose strings may
    /// be expressions, each evaluated (`[1, "{% $x %}", 3]`).
    Jsonata(JsonataTemplate),
}

#[derive(Debug, Clone)]
pub struct Map {
    pub processor: ScopeId,
    pub mode: ProcessorMode,
    /// Where the items come from: ItemsPath (JSONPath, default `$`) or Items
    /// (JSONata); `None` with an ItemReader.
    pub items: Option<Items>,
    /// ItemSelector (or the legacy Parameters of an Iterator-style Map).
    pub item_selector: Option<Payload>,
    pub item_reader: Option<ItemReader>,
    pub item_batcher: Option<ItemBatcher>,
    pub result_writer: Option<ResultWriter>,
    /// 0 means no limit.
    pub max_concurrency: Source<u64>,
    pub tolerated_failure_percentage: Option<Source<f64>>,
    pub tolerated_failure_count: Option<Source<u64>>,
    pub label: Option<String>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// ItemProcessor.ProcessorConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorMode {
    Inline,
    Distributed { execution_type: ExecutionType },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionType {
    Standard,
    Express,
}

/// A distributed Map's ItemReader.
#[derive(Debug, Clone)]
pub struct ItemReader {
    pub resource: String,
    /// Parameters (JSONPath) or Arguments (JSONata).
    pub parameters: Option<Payload>,
    pub reader_config: ReaderConfig,
}

#[derive(Debug, Clone, Default)]
pub struct ReaderConfig {
    pub input_type: Option<String>,
    pub csv_header_location: Option<String>,
    pub csv_headers: Option<Vec<String>>,
    pub csv_delimiter: Option<String>,
    pub max_items: Option<Source<u64>>,
}

#[derive(Debug, Clone)]
pub struct ItemBatcher {
    pub max_items_per_batch: Option<Source<u64>>,
    pub max_input_bytes_per_batch: Option<Source<u64>>,
    pub batch_input: Option<Payload>,
}

#[derive(Debug, Clone)]
pub struct ResultWriter {
    pub resource: Option<String>,
    pub parameters: Option<Payload>,
    pub output_type: Option<String>,
    pub transformation: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::WildcardPattern;

    #[test]
    fn string_matches_follows_the_aws_rules() {
        let cases = [
            ("log-*.txt", "log-2024.txt", true),
            ("log-*.txt", "log-.txt", true),
            ("log-*.txt", "log-2024.txt.gz", false),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            (r"a\*", "a*", true),
            (r"a\*", "ab", false),
            (r"a\\*", r"a\xyz", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                WildcardPattern::parse(pattern).matches(text),
                expected,
                "{pattern} vs {text}"
            );
        }
    }
}
