//! Every error stepline raises, with the words of its cause: one
//! [`Template`] per kind of failure, the only place a cause is worded.
//!
//! A raise site names a template and fills its placeholders
//! (`{path}`, `{field}`...) with [`Template::failure`] or
//! [`Template::eval`]; it never formats a cause of its own, so a new
//! state or field cannot invent its wording (a test in
//! `tests/e2e/error_words.rs` scans the engine's code for causes built
//! anywhere else). Where AWS Step Functions raises the same error, the
//! template is AWS's words; docs/errors.md is the table of [`TEMPLATES`],
//! with where each is raised and the evidence for AWS's words, and a test
//! holds the two equal, row for row.
//!
//! Templates describe text only: no I/O, no clock.

use std::fmt::Display;

use crate::interp::Failure;
use crate::query::eval::EvalError;

/// One kind of failure: the error names it is raised with and the words
/// of its cause, with `{name}` placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// A short stable name: the first column of docs/errors.md.
    pub id: &'static str,
    /// The ASL error names raised with this cause (`{...}` marks a part
    /// filled at the raise site, as in `States.Http.StatusCode.{status}`).
    pub errors: &'static [&'static str],
    /// The cause, with `{name}` placeholders.
    pub text: &'static str,
}

/// The placeholders a raise site fills: `(name, value)`.
pub type Args<'a> = [(&'a str, &'a dyn Display)];

impl Template {
    /// The cause with every placeholder filled from `args`. A placeholder
    /// `args` lacks stays as written (and fails debug builds, which every
    /// test runs).
    pub fn render(&self, args: &Args<'_>) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut rest = self.text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_end = after.find('}').filter(|&end| is_placeholder(&after[..end]));
            match name_end {
                Some(end) => {
                    let name = &after[..end];
                    match args.iter().find(|(n, _)| *n == name) {
                        Some((_, value)) => {
                            use std::fmt::Write as _;
                            let _ = write!(out, "{value}");
                        }
                        None => {
                            debug_assert!(false, "the template '{}' needs {{{name}}}", self.id);
                            out.push('{');
                            out.push_str(name);
                            out.push('}');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The failure, raised with the template's one error name.
    pub fn failure(&self, args: &Args<'_>) -> Failure {
        Failure::new(self.error(), self.render(args))
    }

    /// The failure raised with `error`, one of the template's names (a
    /// template that several names share, or one that is a pattern).
    pub fn failure_as(&self, error: impl Into<String>, args: &Args<'_>) -> Failure {
        let error = error.into();
        debug_assert!(
            self.errors.iter().any(|e| matches_pattern(e, &error)),
            "'{error}' is not an error of the template '{}'",
            self.id
        );
        Failure::new(error, self.render(args))
    }

    /// The failure as an evaluation error (paths, templates, intrinsics).
    pub fn eval(&self, args: &Args<'_>) -> EvalError {
        EvalError::new(self.error(), self.render(args))
    }

    fn error(&self) -> &'static str {
        debug_assert!(
            self.errors.len() == 1 && !self.errors[0].contains('{'),
            "the template '{}' has several error names: use failure_as",
            self.id
        );
        self.errors.first().copied().unwrap_or("States.Runtime")
    }

    /// The placeholder names of the text, in order.
    pub fn placeholders(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut rest = self.text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            match after.find('}').filter(|&end| is_placeholder(&after[..end])) {
                Some(end) => {
                    names.push(&after[..end]);
                    rest = &after[end + 1..];
                }
                None => rest = after,
            }
        }
        names
    }
}

/// `{name}`: a lowercase word (underscores allowed). Anything else between
/// braces is text, such as a JSON value in a cause.
fn is_placeholder(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Whether `error` is the name `pattern`, with `{...}` parts matching any
/// text.
fn matches_pattern(pattern: &str, error: &str) -> bool {
    match pattern.find('{') {
        None => pattern == error,
        Some(open) => {
            let close = pattern[open..]
                .find('}')
                .map_or(pattern.len(), |c| open + c + 1);
            let (prefix, suffix) = (&pattern[..open], &pattern[close..]);
            error.len() >= prefix.len() + suffix.len()
                && error.starts_with(prefix)
                && error.ends_with(suffix)
        }
    }
}

/// Prefixes `failure`'s cause with the state that raised it, as AWS does
/// for `States.Runtime` and `States.QueryEvaluationError` (and intrinsic
/// failures, which are `States.Runtime`). A cause already prefixed is
/// left alone.
pub fn in_state(failure: Failure, state: &str, entered_event: u64) -> Failure {
    let cause = match failure.cause {
        Some(c) if c.starts_with(IN_STATE_START) => c,
        Some(c) => IN_STATE.render(&[("state", &state), ("event", &entered_event), ("cause", &c)]),
        None => IN_STATE
            .render(&[("state", &state), ("event", &entered_event), ("cause", &"")])
            .trim_end()
            .to_owned(),
    };
    Failure {
        error: failure.error,
        cause: Some(cause),
    }
}

const IN_STATE_START: &str = "An error occurred while executing the state '";

/// Declares each template as a constant and lists them all in
/// [`TEMPLATES`], in the order of docs/errors.md.
macro_rules! templates {
    ($( $(#[$doc:meta])* $name:ident = $id:literal, [$($error:literal),+], $text:literal; )+) => {
        $(
            $(#[$doc])*
            pub const $name: Template = Template { id: $id, errors: &[$($error),+], text: $text };
        )+
        /// Every template, in the order of docs/errors.md.
        pub const TEMPLATES: &[Template] = &[$($name),+];
    };
}

templates! {
    // --- The prefix of runtime and evaluation failures -------------------

    /// Before the cause of a `States.Runtime` or
    /// `States.QueryEvaluationError` failure: the state and the event it
    /// was entered at.
    IN_STATE = "in-state", ["States.Runtime", "States.QueryEvaluationError"],
        "An error occurred while executing the state '{state}' (entered at the event id #{event}). {cause}";

    // --- JSONPath: paths that select nothing ------------------------------

    /// A payload template's `"name.$"` path, or ErrorPath / CausePath,
    /// selects nothing.
    JSONPATH_NOT_FOUND = "jsonpath-not-found", ["States.Runtime"],
        "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{input}'";
    /// A template that is a bare path (no `"name.$"` member around it)
    /// selects nothing.
    JSONPATH_NOT_FOUND_BARE = "jsonpath-not-found-bare", ["States.Runtime"],
        "The JSONPath '{path}' could not be found in the input '{input}'";
    /// InputPath, OutputPath, ItemsPath and the `...Path` number and
    /// timestamp fields select nothing; `{selector}` is the path as
    /// Jayway writes it (`$['a'][0]`).
    INVALID_PATH = "invalid-path", ["States.Runtime"],
        "Invalid path '{path}' : No results for path: {selector}";
    /// A Choice rule's Variable (or a `...Path` operand) selects nothing.
    CHOICE_INVALID_PATH = "choice-invalid-path", ["States.Runtime"],
        "Invalid path '{path}': The choice state's condition path references an invalid value.";
    /// ErrorPath or CausePath selects (or an intrinsic gives) a value that
    /// is not a string.
    FAIL_FIELD_NOT_STRING = "fail-field-not-string", ["States.Runtime"],
        "The {field} field must resolve to a string, but it resolved to {value}";

    // --- JSONPath: values of the wrong kind --------------------------------

    /// SecondsPath selects a value that is not an integer.
    SECONDS_PATH_NOT_INTEGER = "seconds-path-not-integer", ["States.Runtime"],
        "The SecondsPath parameter cannot be parsed as a long value: {path} == {value}";
    /// SecondsPath selects a negative integer.
    SECONDS_PATH_NEGATIVE = "seconds-path-negative", ["States.Runtime"],
        "The SecondsPath parameter references a negative value: {path} == {value}";
    /// TimestampPath selects a value that is not an ASL timestamp.
    TIMESTAMP_PATH_INVALID = "timestamp-path-invalid", ["States.Runtime"],
        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {path} == {value}";
    /// TimeoutSecondsPath or HeartbeatSecondsPath selects a value that is
    /// not a positive integer.
    SECONDS_FIELD_PATH_INVALID = "seconds-field-path-invalid", ["States.Runtime"],
        "The {field} field refers to value \"{value}\" which is not a valid positive integer: {path}";
    /// MaxConcurrencyPath, ToleratedFailureCountPath, MaxItemsPath and the
    /// ItemBatcher's `...Path` fields select a value that is not an
    /// integer (a number or a string of digits).
    INTEGER_PATH_INVALID = "integer-path-invalid", ["States.Runtime"],
        "The {field} field refers to value \"{value}\" which is not a valid integer: {path}";
    /// ToleratedFailurePercentagePath selects a value that is not a
    /// number (or a string of one).
    PERCENTAGE_PATH_INVALID = "percentage-path-invalid", ["States.Runtime"],
        "The ToleratedFailurePercentagePath field refers to value \"{value}\" which is not a valid float: {path}";

    // --- Map fields out of range --------------------------------------------

    /// MaxConcurrency (given by a path or an expression) is negative.
    MAX_CONCURRENCY_NEGATIVE = "max-concurrency-negative", ["States.Runtime"],
        "Expected non-negative integer for MaxConcurrency, got '{value}' instead.";
    /// A distributed Map's MaxConcurrency is above what a Map Run runs.
    MAX_CONCURRENCY_TOO_LARGE = "max-concurrency-too-large", ["States.Runtime"],
        "Expected an integer from 0 to {max} for MaxConcurrency, got '{value}' instead.";
    /// MaxItems, MaxItemsPerBatch or MaxInputBytesPerBatch is negative.
    NON_NEGATIVE_FIELD = "non-negative-field", ["States.Runtime"],
        "Expected non-negative integer for {field}, got '{value}' instead.";
    /// ToleratedFailureCount is negative.
    TOLERATED_COUNT_NEGATIVE = "tolerated-count-negative", ["States.Runtime"],
        "ToleratedFailureCount cannot be negative.";
    /// ToleratedFailurePercentage is outside 0..100.
    TOLERATED_PERCENTAGE_RANGE = "tolerated-percentage-range", ["States.Runtime"],
        "ToleratedFailurePercentage must be between 0 and 100.";
    /// The Map's items (its input, ItemsPath or Items) are not an array.
    ITEMS_NOT_ARRAY = "items-not-array", ["States.Runtime", "States.QueryEvaluationError"],
        "Map state input must be an array but was: {value}";

    // --- Intrinsic functions ------------------------------------------------

    /// An intrinsic function cannot compute its result; `{detail}` says
    /// why (see "Intrinsic function details" in docs/errors.md).
    INTRINSIC_FAILED = "intrinsic-failed", ["States.Runtime"],
        "The function '{call}' had the following error: {detail}";
    /// The detail when a path argument of an intrinsic function selects
    /// nothing.
    INTRINSIC_PATH_NOT_FOUND = "intrinsic-path-not-found", ["States.Runtime"],
        "The JsonPath argument for the field '{path}' could not be found in the input '{input}'";
    /// An intrinsic call where the definition model allows none (the
    /// builder never produces one there).
    INTRINSIC_NOT_ALLOWED = "intrinsic-not-allowed", ["States.Runtime"],
        "An intrinsic function is not allowed in the field '{field}'.";

    // --- JSONata ---------------------------------------------------------------

    /// An expression raised an error; `{message}` and `{code}` are
    /// JSONata's (docs/jsonata.md).
    JSONATA_ERROR = "jsonata-error", ["States.QueryEvaluationError"],
        "The JSONata expression '{expr}' specified for the field '{field}' threw an error during evaluation. {message} ({code})";
    /// An expression gave nothing where a value is needed.
    JSONATA_UNDEFINED = "jsonata-undefined", ["States.QueryEvaluationError"],
        "The JSONata expression '{expr}' specified for the field '{field}' returned nothing (undefined).";
    /// An expression gave a value of the wrong JSON type for its field.
    JSONATA_WRONG_TYPE = "jsonata-wrong-type", ["States.QueryEvaluationError"],
        "The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{actual}' for value: {value}";
    /// The expressions of one field together give more than a payload.
    JSONATA_TOO_LARGE = "jsonata-too-large", ["States.QueryEvaluationError"],
        "The JSONata expressions specified for the field '{field}' give a value larger than the payload limit of {limit} bytes.";
    /// A Wait state's Timestamp expression gives a value that is not an
    /// ASL timestamp.
    TIMESTAMP_FIELD_INVALID = "timestamp-field-invalid", ["States.QueryEvaluationError"],
        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {value}";

    // --- Flow -------------------------------------------------------------------

    /// No Choice rule matched and the state has no Default.
    NO_CHOICE_MATCHED = "no-choice-matched", ["States.NoChoiceMatched"],
        "No Matches!";
    /// ResultPath cannot place the result in the state's input.
    RESULT_PATH_MATCH_FAILURE = "result-path-match-failure", ["States.ResultPathMatchFailure"],
        "Unable to apply ReferencePath {path} to input {input}: {reason}";
    /// A Map's failed items passed its tolerated failure count or
    /// percentage.
    TOLERATED_FAILURE_EXCEEDED = "tolerated-failure-exceeded", ["States.ExceedToleratedFailureThreshold"],
        "The specified tolerated failure threshold was exceeded";
    /// A Task ran past TimeoutSeconds (no cause, as AWS).
    TASK_TIMED_OUT = "task-timed-out", ["States.Timeout"],
        "";
    /// A Task sent no heartbeat for HeartbeatSeconds (no cause, as AWS).
    HEARTBEAT_TIMED_OUT = "heartbeat-timed-out", ["States.HeartbeatTimeout"],
        "";
    /// The execution ran past the state machine's TimeoutSeconds.
    EXECUTION_TIMED_OUT = "execution-timed-out", ["States.Timeout"],
        "The execution ran longer than the state machine's TimeoutSeconds.";

    // --- Limits -----------------------------------------------------------------

    /// A state's input or output, a task's result, a Map Run's results or
    /// the execution's output is larger than 256 KiB; `{name}` is the
    /// state, or the resource of a task's result.
    DATA_LIMIT = "data-limit", ["States.DataLimitExceeded"],
        "The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit.";
    /// A payload nests arrays and objects deeper than stepline keeps.
    DEPTH_LIMIT = "depth-limit", ["States.DataLimitExceeded"],
        "The state/task '{name}' returned a result that nests arrays and objects more than {depth} levels deep, deeper than the service limit.";
    /// A payload template copies more than 256 KiB.
    TEMPLATE_TOO_LARGE = "template-too-large", ["States.DataLimitExceeded"],
        "The payload template builds a value larger than the payload limit of {limit} bytes";
    /// The history reached its bound.
    HISTORY_LIMIT = "history-limit", ["States.Runtime"],
        "The execution reached the maximum number of history events ({limit}).";
    /// An execution's input (a nested execution's, a Map Run child's, a
    /// start through the engine) is larger than 256 KiB.
    EXECUTION_INPUT_TOO_LARGE = "execution-input-too-large", ["StepFunctions.InvalidExecutionInputException"],
        "Invalid State Machine Execution Input: 'The input has a size of {size} bytes, exceeding the maximum number of bytes service limit ({limit}).'";

    // --- Where stepline runs differently from AWS --------------------------------

    /// `stepline run` (or a test) reaches a Task with no runner for it.
    NO_TASK_RUNNER = "no-task-runner", ["States.TaskFailed"],
        "stepline cannot run the resource '{resource}' of the state '{state}' here: no task runner is configured for it (give `stepline run` a --config whose [tasks] section configures it, as for `stepline serve`)";
    /// `stepline run` reaches a distributed Map with an ItemReader.
    ITEM_READER_NEEDS_SERVE = "item-reader-needs-serve", ["States.ItemReaderFailed"],
        "An ItemReader reads buckets mapped in stepline.toml: run this definition with `stepline serve`";
    /// The runtime could not use a Map Run's fields (a bug, reported as
    /// data).
    MAP_RUN_MALFORMED = "map-run-malformed", ["States.Runtime"],
        "Malformed Map Run: {reason}";
    /// A Map Run child execution disappeared from the store.
    MAP_RUN_CHILD_LOST = "map-run-child-lost", ["States.Runtime"],
        "A child of the Map Run was lost: {reason}";
    /// The engine refused to start or follow a Map Run's child.
    MAP_RUN_ENGINE = "map-run-engine", ["States.Runtime"],
        "{reason}";
    /// A Map Run's results, kept for its output, pass 256 KiB.
    MAP_RUN_RESULTS_TOO_LARGE = "map-run-results-too-large", ["States.DataLimitExceeded"],
        "The Map Run's results exceed the maximum payload size of {limit} bytes; write them with a ResultWriter";
    /// An ItemReader could not read its source; `{reason}` is the
    /// reader's.
    ITEM_READER_FAILED = "item-reader-failed", ["States.ItemReaderFailed"],
        "{reason}";
    /// A ResultWriter could not write; `{reason}` is the writer's.
    RESULT_WRITER_FAILED = "result-writer-failed", ["States.ResultWriterFailed"],
        "{reason}";
    /// An execution recovered at start that was EXPRESS, or an EXPRESS
    /// Map Run child, when stepline stopped: it is not resumed.
    EXPRESS_NOT_RESUMED = "express-not-resumed", ["States.Runtime"],
        "stepline stopped while this EXPRESS execution ran; EXPRESS executions are not resumed";
    /// Replaying an execution's journal failed when stepline started.
    RECOVERY_FAILED = "recovery-failed", ["States.Runtime"],
        "stepline could not resume this execution after a restart, so it failed: {reason}";

    // --- Task runners ------------------------------------------------------------

    /// A task's own error, as it reported it: a Lambda function's
    /// `errorType` with its error payload as the cause (as AWS does), a
    /// process's named error, a mocked error.
    TASK_ERROR = "task-error", ["{error}"],
        "{cause}";

    /// A `.sync` pattern on a resource that has none in stepline.
    SYNC_NOT_SUPPORTED = "sync-not-supported", ["States.Runtime"],
        "'{resource}': stepline runs the .sync pattern only for arn:aws:states:::states:startExecution";
    /// A resource this runner cannot invoke.
    RESOURCE_NOT_INVOCABLE = "resource-not-invocable", ["States.Runtime"],
        "'{resource}' cannot be invoked here";
    /// A service integration stepline does not have.
    NO_INTEGRATION = "no-integration", ["States.TaskFailed"],
        "stepline has no integration for {service}:{action} ('{resource}'); use an HTTP task, a process or a mapped Lambda function";
    /// A process resource names a command the operator did not register.
    PROCESS_NOT_REGISTERED = "process-not-registered", ["States.TaskFailed"],
        "the process '{name}' is not registered: the operator registers commands under [tasks.processes.{name}] in stepline.toml";
    /// A registered process could not be started.
    PROCESS_NOT_STARTED = "process-not-started", ["States.TaskFailed"],
        "the process '{name}' ({command}) could not start: {reason}";
    /// A process ran past its configured time and was killed.
    PROCESS_TIMED_OUT = "process-timed-out", ["States.Timeout"],
        "the process '{name}' ran longer than its configured {seconds} s and was killed";
    /// Waiting for a process failed.
    PROCESS_WAIT_FAILED = "process-wait-failed", ["States.TaskFailed"],
        "waiting for the process '{name}' failed: {reason}";
    /// A process wrote more than its output limit.
    PROCESS_OUTPUT_TOO_LARGE = "process-output-too-large", ["States.DataLimitExceeded"],
        "the process '{name}' wrote more than {limit} bytes on stdout; it was stopped";
    /// A process exited 0 with an output that is not JSON.
    PROCESS_OUTPUT_NOT_JSON = "process-output-not-json", ["States.TaskFailed"],
        "the process '{name}' exited 0 but its stdout is not JSON ({reason}): {shown}{stderr}";
    /// A process exited with a failure and named no error of its own.
    PROCESS_FAILED = "process-failed", ["States.TaskFailed"],
        "the process '{name}' {how}{stderr}";
    /// An HTTP Task's parameters cannot be used.
    HTTP_BAD_PARAMETERS = "http-bad-parameters", ["States.Runtime"],
        "{reason}";
    /// An HTTP Task could not connect, send or read.
    HTTP_SOCKET = "http-socket", ["States.Http.Socket"],
        "{reason}";
    /// An HTTP Task's answer has a status that is not 2xx: the cause is
    /// the response (status, headers, body) as JSON.
    HTTP_STATUS = "http-status", ["States.Http.StatusCode.{status}"],
        "{response}";
    /// An OAuth token endpoint answered without an access token.
    HTTP_OAUTH_NO_TOKEN = "http-oauth-no-token", ["States.Http.StatusCode.{status}"],
        "the OAuth token endpoint {url} gave no access_token: {answer}";
    /// The operator's configuration does not allow this destination.
    HTTP_NOT_ALLOWED = "http-not-allowed", ["States.TaskFailed"],
        "stepline does not allow HTTP tasks to call {url}: {reason}";
    /// A connection's credentials may not go to this destination.
    HTTP_CONNECTION_NOT_ALLOWED = "http-connection-not-allowed", ["States.TaskFailed"],
        "the connection '{name}' may not be sent to {url}: {reason}";
    /// The destination resolves to stepline's own address.
    HTTP_OWN_ADDRESS = "http-own-address", ["States.TaskFailed"],
        "stepline does not allow HTTP tasks to call {url}: '{domain}' resolves to stepline's own address (the operator allows it with [tasks.http] allow_own_address = true in stepline.toml)";
    /// An HTTP response body passes the limit.
    HTTP_BODY_TOO_LARGE = "http-body-too-large", ["States.DataLimitExceeded"],
        "the HTTP response body is larger than the {limit} bytes allowed";
    /// lambda:invoke without a FunctionName.
    LAMBDA_NO_FUNCTION_NAME = "lambda-no-function-name", ["States.Runtime"],
        "the parameters of lambda:invoke need a FunctionName string";
    /// A Lambda function stepline.toml does not map.
    LAMBDA_NOT_FOUND = "lambda-not-found", ["Lambda.ResourceNotFoundException"],
        "Function not found: {function} (map it under [tasks.lambda] in stepline.toml to a url or a process)";
    /// A Lambda function mapped to a process that is not registered.
    LAMBDA_PROCESS_NOT_REGISTERED = "lambda-process-not-registered", ["States.TaskFailed"],
        "the Lambda function '{function}' maps to the process '{name}', which is not registered";
    /// A Lambda function mapped to something that is not a URL.
    LAMBDA_BAD_URL = "lambda-bad-url", ["States.TaskFailed"],
        "the Lambda function '{function}' maps to '{url}', which is not a URL: {reason}";
    /// states:startExecution without a StateMachineArn.
    NESTED_NO_MACHINE = "nested-no-machine", ["States.Runtime"],
        "The parameters of states:startExecution need a StateMachineArn string.";
    /// states:startExecution with a Name that is not a string.
    NESTED_BAD_NAME = "nested-bad-name", ["States.Runtime"],
        "The Name parameter of states:startExecution must be a string.";
    /// A nested execution (`.sync`) did not succeed: the cause is its
    /// DescribeExecution, as AWS gives it.
    NESTED_FAILED = "nested-failed", ["States.TaskFailed"],
        "{described}";
    /// The engine refused to start a nested execution (the AWS API error
    /// it would answer).
    NESTED_REFUSED = "nested-refused", ["StepFunctions.{exception}"],
        "{message}";
    /// A mocked Task has no answer for this invocation.
    MOCK_MISSING = "mock-missing", ["States.Runtime"],
        "the mocked response '{response}' has no entry for invocation {invocation} of the state '{state}'";
    /// TestState cannot run this resource without a mock.
    TEST_STATE_UNSUPPORTED = "test-state-unsupported", ["States.Runtime"],
        "TestState runs activity and nested-execution tasks only with a mock";
}

/// The two error names of [`ITEMS_NOT_ARRAY`]: `States.Runtime` in a
/// JSONPath state, `States.QueryEvaluationError` in a JSONata one.
pub fn items_not_array_error(jsonata: bool) -> &'static str {
    if jsonata {
        "States.QueryEvaluationError"
    } else {
        "States.Runtime"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_json_braces_kept() {
        let cause = INTEGER_PATH_INVALID.render(&[
            ("field", &"MaxConcurrencyPath"),
            ("value", &"{}"),
            ("path", &"$.n"),
        ]);
        assert_eq!(
            cause,
            "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: $.n"
        );
        assert_eq!(
            INTEGER_PATH_INVALID.placeholders(),
            ["field", "value", "path"]
        );
    }

    #[test]
    fn ids_are_unique_and_every_template_has_an_error_name() {
        let mut ids: Vec<&str> = TEMPLATES.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate template ids");
        for t in TEMPLATES {
            assert!(!t.errors.is_empty(), "{}", t.id);
        }
    }

    #[test]
    fn the_state_prefix_is_added_once() {
        let f =
            JSONPATH_NOT_FOUND.failure(&[("path", &"$.a"), ("field", &"x.$"), ("input", &"{}")]);
        let once = in_state(f, "S", 2);
        let cause = once.cause.clone().unwrap_or_default();
        assert_eq!(
            cause,
            "An error occurred while executing the state 'S' (entered at the event id #2). The JSONPath '$.a' specified for the field 'x.$' could not be found in the input '{}'"
        );
        assert_eq!(
            in_state(once, "S", 2).cause.as_deref(),
            Some(cause.as_str())
        );
    }

    #[test]
    fn error_patterns_match_their_names() {
        assert!(matches_pattern(
            "States.Http.StatusCode.{status}",
            "States.Http.StatusCode.404"
        ));
        assert!(!matches_pattern(
            "States.Http.StatusCode.{status}",
            "States.Runtime"
        ));
        assert!(matches_pattern("States.Runtime", "States.Runtime"));
    }
}
