//! Lowering each state: the fields every state has, then its type's own.

use serde_json::Value;

use super::Builder;
use super::fields::Ctx;
use crate::asl::diagnostic::Code;
use crate::asl::model::{
    Catcher, DataFlow, ExecutionType, Fail, IntegrationPattern, ItemBatcher, ItemReader, Items,
    JitterStrategy, JsonataFlow, Map, Parallel, Pass, PathFlow, ProcessorMode, QueryLanguage,
    ReaderConfig, Resource, ResourceKind, ResultWriter, Retrier, ScopeId, Source, State, StateId,
    StateKind, Task, Transition, Wait, WaitUntil,
};
use crate::asl::source::{Node, NodeValue};
use crate::asl::{resource, timestamp};

/// Error names AWS defines; any other `States.` name is refused.
pub const PREDEFINED_ERRORS: &[&str] = &[
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
    "States.BranchFailed",
];

/// JSONPath fields, each with what a JSONata state uses instead.
const JSONPATH_ONLY: &[(&str, &str)] = &[
    ("InputPath", "use Arguments with $states.input instead"),
    ("Parameters", "use Arguments instead"),
    ("ResultSelector", "use Output with $states.result instead"),
    (
        "ResultPath",
        "use Output (and Assign) with $states.result instead",
    ),
    ("OutputPath", "use Output instead"),
    ("Result", "use Output instead"),
    ("ItemsPath", "use Items instead"),
    (
        "SecondsPath",
        "write Seconds as a {% ... %} expression instead",
    ),
    (
        "TimestampPath",
        "write Timestamp as a {% ... %} expression instead",
    ),
    ("ErrorPath", "write Error as a {% ... %} expression instead"),
    ("CausePath", "write Cause as a {% ... %} expression instead"),
    (
        "TimeoutSecondsPath",
        "write TimeoutSeconds as a {% ... %} expression instead",
    ),
    (
        "HeartbeatSecondsPath",
        "write HeartbeatSeconds as a {% ... %} expression instead",
    ),
    (
        "MaxConcurrencyPath",
        "write MaxConcurrency as a {% ... %} expression instead",
    ),
    (
        "ToleratedFailurePercentagePath",
        "write ToleratedFailurePercentage as a {% ... %} expression instead",
    ),
    (
        "ToleratedFailureCountPath",
        "write ToleratedFailureCount as a {% ... %} expression instead",
    ),
];

/// JSONata fields, each with what a JSONPath state uses instead.
const JSONATA_ONLY: &[(&str, &str)] = &[
    ("Arguments", "use Parameters instead"),
    (
        "Output",
        "use ResultSelector, ResultPath and OutputPath instead",
    ),
    ("Items", "use ItemsPath instead"),
];

impl Builder<'_> {
    pub(super) fn lower_states(&mut self) -> Vec<State> {
        (0..self.slots.len())
            .map(|i| self.lower_state(StateId(i as u32)))
            .collect()
    }

    fn lower_state(&mut self, id: StateId) -> State {
        let slot = &self.slots[id.index()];
        let (name, node, scope) = (
            std::sync::Arc::<str>::from(slot.name),
            slot.node,
            slot.scope,
        );
        let children = slot.children.clone();
        let mut cx = Ctx {
            node,
            pointer: slot.pointer.clone(),
            lang: self.query_language,
        };
        match cx.str("QueryLanguage") {
            // A misspelt "jsonata" was reported by the schema; reading it as
            // meant avoids a flood of follow-on errors.
            Some(ql) if ql.eq_ignore_ascii_case("JSONata") => cx.lang = QueryLanguage::Jsonata,
            Some("JSONPath") if self.query_language == QueryLanguage::Jsonata => {
                self.error(
                    Code::QueryLanguageMismatch,
                    &cx.ptr("QueryLanguage"),
                    "this state machine's QueryLanguage is JSONata, and a state cannot go back to JSONPath; convert this state to JSONata or set the top-level QueryLanguage to JSONPath",
                );
            }
            _ => {}
        }
        match cx.lang {
            QueryLanguage::Jsonata => self.forbid_fields(&cx, JSONPATH_ONLY),
            QueryLanguage::JsonPath => self.forbid_fields(&cx, JSONATA_ONLY),
        }
        let type_name = super::state_type(node).unwrap_or_default();
        let transition = match type_name {
            "Choice" | "Succeed" | "Fail" => None,
            _ => Some(self.transition(&cx, scope)),
        };
        let data = self.data_flow(&cx);
        let assign = self.assign(&cx);
        let kind = match type_name {
            "Task" => StateKind::Task(Box::new(self.task(&cx, scope))),
            "Choice" => StateKind::Choice(self.choice(&cx, scope)),
            "Wait" => StateKind::Wait(self.wait(&cx)),
            "Succeed" => StateKind::Succeed,
            "Fail" => StateKind::Fail(self.fail(&cx)),
            "Parallel" => StateKind::Parallel(Box::new(Parallel {
                branches: children,
                retry: self.retriers(&cx),
                catch: self.catchers(&cx, scope),
            })),
            "Map" => StateKind::Map(Box::new(self.map(&cx, scope, &children))),
            // "Pass", and unknown types the schema already reported.
            _ => StateKind::Pass(self.pass(&cx)),
        };
        State {
            name,
            scope,
            comment: cx.str("Comment").map(str::to_owned),
            query_language: cx.lang,
            transition,
            data,
            assign,
            kind,
            uses_context: cx.lang == QueryLanguage::Jsonata || mentions_context(node),
        }
    }

    /// Next or End, exactly one.
    fn transition(&mut self, cx: &Ctx<'_>, scope: ScopeId) -> Transition {
        let end = cx.bool("End") == Some(true);
        match (cx.str("Next"), end) {
            (Some(next), true) => {
                self.error_at_key(
                    Code::ConflictingFields,
                    &cx.ptr("End"),
                    "a state has either \"Next\" or \"End\": true, not both",
                );
                Transition::Next(self.resolve(scope, &cx.ptr("Next"), "Next", next))
            }
            (Some(next), false) => {
                Transition::Next(self.resolve(scope, &cx.ptr("Next"), "Next", next))
            }
            (None, true) => Transition::End,
            // A Next or End of the wrong type was already reported by the schema.
            (None, false) if cx.has("Next") || (cx.has("End") && cx.bool("End").is_none()) => {
                Transition::End
            }
            (None, false) => {
                let type_name = super::state_type(cx.node).unwrap_or("state");
                let message = format!(
                    "this {type_name} state needs \"Next\": \"<state name>\" to go on, or \"End\": true to finish"
                );
                self.error(Code::ConflictingFields, &cx.pointer, message);
                Transition::End
            }
        }
    }

    fn data_flow(&mut self, cx: &Ctx<'_>) -> DataFlow {
        match cx.lang {
            QueryLanguage::JsonPath => DataFlow::JsonPath(Box::new(PathFlow {
                input_path: self.path_or_null(cx, "InputPath"),
                parameters: match cx.member("Parameters") {
                    // A Map's Parameters is its legacy ItemSelector, read in `map`.
                    Some(m) if super::state_type(cx.node) != Some("Map") => {
                        self.template(&m.value, &cx.ptr("Parameters"))
                    }
                    _ => None,
                },
                result_selector: cx
                    .member("ResultSelector")
                    .and_then(|m| self.template(&m.value, &cx.ptr("ResultSelector"))),
                result_path: self.result_path(cx, "ResultPath"),
                output_path: self.path_or_null(cx, "OutputPath"),
            })),
            QueryLanguage::Jsonata => DataFlow::Jsonata(JsonataFlow {
                arguments: cx
                    .member("Arguments")
                    .and_then(|m| self.jsonata_template(&m.value, &cx.ptr("Arguments"))),
                output: cx
                    .member("Output")
                    .and_then(|m| self.jsonata_template(&m.value, &cx.ptr("Output"))),
            }),
        }
    }

    fn pass(&mut self, cx: &Ctx<'_>) -> Pass {
        let result = cx.member("Result").map(|m| m.value.to_value());
        if let Some(Value::Object(map)) = &result {
            for key in map.keys().filter(|k| k.ends_with(".$")) {
                let message = format!(
                    "Result is static: '{key}' is kept as it is, not evaluated; to compute values, use Parameters instead of Result"
                );
                let at = crate::pointer::pointer_push(&cx.ptr("Result"), key);
                self.warning(Code::PassResultIsStatic, &at, true, message);
            }
        }
        Pass {
            result: result.map(std::sync::Arc::new),
        }
    }

    fn task(&mut self, cx: &Ctx<'_>, scope: ScopeId) -> Task {
        let resource = match cx.str("Resource") {
            Some(text) => match resource::parse(text) {
                Ok(resource) => resource,
                Err(message) => {
                    self.error(Code::InvalidResource, &cx.ptr("Resource"), message);
                    placeholder_resource()
                }
            },
            None => placeholder_resource(),
        };
        let timeout_seconds =
            self.source(cx, "TimeoutSeconds", Some("TimeoutSecondsPath"), node_u64);
        let heartbeat_seconds = self.source(
            cx,
            "HeartbeatSeconds",
            Some("HeartbeatSecondsPath"),
            node_u64,
        );
        if let (Some(Source::Literal(timeout)), Some(Source::Literal(heartbeat))) =
            (&timeout_seconds, &heartbeat_seconds)
        {
            if heartbeat >= timeout {
                let message = format!(
                    "HeartbeatSeconds ({heartbeat}) must be smaller than TimeoutSeconds ({timeout}): a heartbeat is only useful if it can arrive before the task times out"
                );
                self.error(Code::InvalidTimeout, &cx.ptr("HeartbeatSeconds"), message);
            }
        }
        Task {
            resource,
            timeout_seconds,
            heartbeat_seconds,
            credentials: self.payload(cx, "Credentials"),
            retry: self.retriers(cx),
            catch: self.catchers(cx, scope),
        }
    }

    fn wait(&mut self, cx: &Ctx<'_>) -> Wait {
        let present: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|k| cx.has(k))
            .collect();
        if present.is_empty() {
            self.error(
                Code::ConflictingFields,
                &cx.pointer,
                "a Wait state needs one of Seconds, SecondsPath, Timestamp or TimestampPath",
            );
        } else if present.len() > 1 && !is_literal_and_path_pair(&present) {
            let message = format!(
                "a Wait state takes exactly one of Seconds, SecondsPath, Timestamp and TimestampPath, but this one has {}",
                present.join(" and ")
            );
            self.error_at_key(Code::ConflictingFields, &cx.ptr(present[1]), message);
        }
        let until = if cx.has("Timestamp") || cx.has("TimestampPath") {
            let pointer = cx.ptr("Timestamp");
            let source = self.source(cx, "Timestamp", Some("TimestampPath"), |n| {
                n.as_str().map(str::to_owned)
            });
            let source = match source {
                Some(Source::Literal(text)) => match timestamp::parse(&text) {
                    Some(t) => Some(Source::Literal(t)),
                    None => {
                        let message = timestamp::problem(&text);
                        self.error(Code::InvalidTimestamp, &pointer, message);
                        None
                    }
                },
                Some(Source::Path(p)) => Some(Source::Path(p)),
                Some(Source::Call(c)) => Some(Source::Call(c)),
                Some(Source::Jsonata(e)) => Some(Source::Jsonata(e)),
                None => None,
            };
            WaitUntil::Timestamp(
                source.unwrap_or(Source::Literal(chrono::DateTime::UNIX_EPOCH.fixed_offset())),
            )
        } else {
            let source = self.source(cx, "Seconds", Some("SecondsPath"), node_u64);
            WaitUntil::Seconds(source.unwrap_or(Source::Literal(0)))
        };
        Wait { until }
    }

    fn fail(&mut self, cx: &Ctx<'_>) -> Fail {
        let error = self.string_source(cx, "Error", "ErrorPath");
        Fail {
            error,
            cause: self.string_source(cx, "Cause", "CausePath"),
        }
    }

    fn map(&mut self, cx: &Ctx<'_>, scope: ScopeId, children: &[ScopeId]) -> Map {
        let processor_key = match (cx.has("ItemProcessor"), cx.has("Iterator")) {
            (true, true) => {
                self.error_at_key(
                    Code::ConflictingFields,
                    &cx.ptr("Iterator"),
                    "use either ItemProcessor or its older name Iterator, not both",
                );
                "ItemProcessor"
            }
            (false, false) => {
                self.error(
                    Code::ConflictingFields,
                    &cx.pointer,
                    "a Map state needs an ItemProcessor: the states that run for each item",
                );
                "ItemProcessor"
            }
            (true, false) => "ItemProcessor",
            (false, true) => "Iterator",
        };
        let mode = match cx
            .child(processor_key)
            .and_then(|p| p.child("ProcessorConfig"))
        {
            Some(config) if config.str("Mode") == Some("DISTRIBUTED") => {
                ProcessorMode::Distributed {
                    execution_type: match config.str("ExecutionType") {
                        Some("EXPRESS") => ExecutionType::Express,
                        _ => ExecutionType::Standard,
                    },
                }
            }
            _ => ProcessorMode::Inline,
        };
        if cx.has("ItemSelector") && cx.has("Parameters") {
            self.error_at_key(
                Code::ConflictingFields,
                &cx.ptr("Parameters"),
                "use either ItemSelector or its older name Parameters, not both",
            );
        }
        let selector_key = if cx.has("ItemSelector") {
            "ItemSelector"
        } else {
            "Parameters"
        };
        let item_selector = self.payload(cx, selector_key);
        let items = match cx.lang {
            QueryLanguage::JsonPath => {
                let path = self.path_or_null(cx, "ItemsPath");
                if let (Some(path), true) = (&path, cx.has("ItemsPath")) {
                    self.require_definite(path, "ItemsPath", &cx.ptr("ItemsPath"));
                }
                path.map(Items::Path)
            }
            // An array (or object) written in place may hold expressions
            // anywhere: AWS evaluates every one.
            QueryLanguage::Jsonata => cx.member("Items").and_then(|m| {
                self.jsonata_template(&m.value, &cx.ptr("Items"))
                    .map(Items::Jsonata)
            }),
        };
        let distributed_only: Vec<&str> = ["ItemReader", "ItemBatcher", "ResultWriter"]
            .into_iter()
            .filter(|k| cx.has(k))
            .collect();
        let mode_written = cx
            .child(processor_key)
            .and_then(|p| p.child("ProcessorConfig"))
            .and_then(|c| {
                c.member("Mode")
                    .map(|m| m.value.as_str().map(str::to_owned))
            });
        // A Mode that is neither INLINE nor DISTRIBUTED was reported by the
        // schema; saying "set DISTRIBUTED" on top of it would only confuse.
        let mode_is_clear = matches!(
            mode_written.as_ref().map(|m| m.as_deref()),
            None | Some(Some("INLINE" | "DISTRIBUTED"))
        );
        if mode == ProcessorMode::Inline && mode_is_clear {
            for key in distributed_only {
                let message = format!(
                    "{key} is only available to a distributed Map; set \"ProcessorConfig\": {{\"Mode\": \"DISTRIBUTED\"}} in the {processor_key}"
                );
                self.error_at_key(Code::ConflictingFields, &cx.ptr(key), message);
            }
        }
        Map {
            processor: children.first().copied().unwrap_or(ScopeId::ROOT),
            mode,
            items,
            item_selector,
            item_reader: cx.child("ItemReader").map(|r| self.item_reader(&r)),
            item_batcher: cx.child("ItemBatcher").map(|b| ItemBatcher {
                max_items_per_batch: self.source(
                    &b,
                    "MaxItemsPerBatch",
                    Some("MaxItemsPerBatchPath"),
                    node_u64,
                ),
                max_input_bytes_per_batch: self.source(
                    &b,
                    "MaxInputBytesPerBatch",
                    Some("MaxInputBytesPerBatchPath"),
                    node_u64,
                ),
                batch_input: self.payload(&b, "BatchInput"),
            }),
            result_writer: cx.child("ResultWriter").map(|w| {
                let config = w.child("WriterConfig");
                ResultWriter {
                    resource: w.str("Resource").map(str::to_owned),
                    parameters: self.payload(
                        &w,
                        if w.has("Arguments") {
                            "Arguments"
                        } else {
                            "Parameters"
                        },
                    ),
                    output_type: config
                        .as_ref()
                        .and_then(|c| c.str("OutputType"))
                        .map(str::to_owned),
                    transformation: config
                        .as_ref()
                        .and_then(|c| c.str("Transformation"))
                        .map(str::to_owned),
                }
            }),
            max_concurrency: self
                .source(cx, "MaxConcurrency", Some("MaxConcurrencyPath"), node_u64)
                .unwrap_or(Source::Literal(0)),
            tolerated_failure_percentage: self.source(
                cx,
                "ToleratedFailurePercentage",
                Some("ToleratedFailurePercentagePath"),
                |n| match &n.value {
                    NodeValue::Number(x) => x.as_f64(),
                    _ => None,
                },
            ),
            tolerated_failure_count: self.source(
                cx,
                "ToleratedFailureCount",
                Some("ToleratedFailureCountPath"),
                node_u64,
            ),
            label: cx.str("Label").map(str::to_owned),
            retry: self.retriers(cx),
            catch: self.catchers(cx, scope),
        }
    }

    fn item_reader(&mut self, reader: &Ctx<'_>) -> ItemReader {
        let config = reader.child("ReaderConfig");
        let reader_config = match config {
            Some(c) => ReaderConfig {
                input_type: c.str("InputType").map(str::to_owned),
                csv_header_location: c.str("CSVHeaderLocation").map(str::to_owned),
                csv_headers: c.member("CSVHeaders").map(|m| {
                    m.value
                        .items()
                        .iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                }),
                csv_delimiter: c.str("CSVDelimiter").map(str::to_owned),
                max_items: self.source(&c, "MaxItems", Some("MaxItemsPath"), node_u64),
            },
            None => ReaderConfig::default(),
        };
        ItemReader {
            resource: reader.str("Resource").unwrap_or_default().to_owned(),
            parameters: self.payload(
                reader,
                if reader.has("Arguments") {
                    "Arguments"
                } else {
                    "Parameters"
                },
            ),
            reader_config,
        }
    }

    fn retriers(&mut self, cx: &Ctx<'_>) -> Vec<Retrier> {
        let Some(member) = cx.member("Retry") else {
            return Vec::new();
        };
        let pointer = cx.ptr("Retry");
        let items = member.value.items();
        let mut out = Vec::with_capacity(items.len());
        for (i, node) in items.iter().enumerate() {
            let rx = Ctx {
                node,
                pointer: format!("{pointer}/{i}"),
                lang: cx.lang,
            };
            let error_equals = self.error_equals(&rx, i + 1 == items.len(), "retrier");
            out.push(Retrier {
                error_equals,
                interval_seconds: rx.u64("IntervalSeconds").unwrap_or(1),
                max_attempts: rx.u64("MaxAttempts").unwrap_or(3),
                backoff_rate: rx.f64("BackoffRate").unwrap_or(2.0),
                max_delay_seconds: rx.u64("MaxDelaySeconds"),
                jitter_strategy: match rx.str("JitterStrategy") {
                    Some("FULL") => JitterStrategy::Full,
                    _ => JitterStrategy::None,
                },
            });
        }
        out
    }

    fn catchers(&mut self, cx: &Ctx<'_>, scope: ScopeId) -> Vec<Catcher> {
        let Some(member) = cx.member("Catch") else {
            return Vec::new();
        };
        let pointer = cx.ptr("Catch");
        let items = member.value.items();
        let mut out = Vec::with_capacity(items.len());
        for (i, node) in items.iter().enumerate() {
            let kx = Ctx {
                node,
                pointer: format!("{pointer}/{i}"),
                lang: cx.lang,
            };
            match kx.lang {
                QueryLanguage::Jsonata => self.forbid_fields(
                    &kx,
                    &[("ResultPath", "use Output with $states.errorOutput instead")],
                ),
                QueryLanguage::JsonPath => {
                    self.forbid_fields(&kx, &[("Output", "use ResultPath instead")])
                }
            }
            let error_equals = self.error_equals(&kx, i + 1 == items.len(), "catcher");
            let next = match kx.str("Next") {
                Some(name) => self.resolve(scope, &kx.ptr("Next"), "Next", name),
                None => StateId(0),
            };
            out.push(Catcher {
                error_equals,
                next,
                result_path: self.result_path(&kx, "ResultPath"),
                output: kx
                    .member("Output")
                    .filter(|_| kx.lang == QueryLanguage::Jsonata)
                    .and_then(|m| self.jsonata_template(&m.value, &kx.ptr("Output"))),
                assign: self.assign(&kx),
            });
        }
        out
    }

    /// ErrorEquals of a retrier or catcher: States.ALL alone and last, and
    /// no made-up `States.` names.
    fn error_equals(&mut self, cx: &Ctx<'_>, is_last: bool, what: &str) -> Vec<String> {
        let pointer = cx.ptr("ErrorEquals");
        let names: Vec<String> = cx
            .member("ErrorEquals")
            .map(|m| m.value.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let at = format!("{pointer}/{i}");
            if name == "States.ALL" {
                if names.len() > 1 {
                    self.error(
                        Code::InvalidErrorName,
                        &at,
                        "States.ALL matches every error, so it must be alone in its ErrorEquals",
                    );
                } else if !is_last {
                    let message = format!(
                        "a {what} with States.ALL must be the last one; the {what}s after it could never match"
                    );
                    self.error(Code::InvalidErrorName, &at, message);
                }
            } else if name.starts_with("States.")
                && !PREDEFINED_ERRORS.contains(&name.as_str())
                && !name.starts_with("States.Http.StatusCode.")
            {
                let message = match PREDEFINED_ERRORS
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(name))
                {
                    Some(known) => format!(
                        "'{name}' is not an error Step Functions defines; did you mean '{known}'? (error names are case-sensitive)"
                    ),
                    None => format!(
                        "'{name}' is not an error Step Functions defines; names starting with 'States.' are reserved (known: {})",
                        PREDEFINED_ERRORS.join(", ")
                    ),
                };
                self.error(Code::InvalidErrorName, &at, message);
            }
        }
        names
    }
}

/// Whether a string in the state's own fields (not its nested branches or
/// processor) mentions `$$`. Conservative: a literal "$$" also counts.
fn mentions_context(node: &Node) -> bool {
    match &node.value {
        NodeValue::String(s) => s.contains("$$"),
        NodeValue::Array(items) => items.iter().any(mentions_context),
        NodeValue::Object(members) => members
            .iter()
            .filter(|m| !matches!(m.key.as_str(), "Branches" | "ItemProcessor" | "Iterator"))
            .any(|m| mentions_context(&m.value)),
        _ => false,
    }
}

/// `["Seconds", "SecondsPath"]` and the like: `source` reports those.
fn is_literal_and_path_pair(present: &[&str]) -> bool {
    matches!(present, [a, b] if b.strip_suffix("Path") == Some(a))
}

fn node_u64(node: &Node) -> Option<u64> {
    match &node.value {
        NodeValue::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn placeholder_resource() -> Resource {
    Resource {
        arn: String::new(),
        kind: ResourceKind::HttpInvoke,
        pattern: IntegrationPattern::RequestResponse,
    }
}
