//! What the validator says about a definition: one [`Diagnostic`] per
//! problem, each with a code, a message, a JSON pointer and a position.
//!
//! Codes follow AWS's ValidateStateMachineDefinition where AWS has one;
//! the others are stepline's own and every one is explained in
//! docs/validation.md.

use std::fmt;

use serde::Serialize;

/// How bad a diagnostic is: errors make a definition unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        }
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// A diagnostic code. The string form is what users and tools see.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in declaration order (for docs and tests).
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    // Codes AWS's ValidateStateMachineDefinition also uses.
    /// The text is not JSON (syntax, encoding, nesting depth).
    InvalidJsonDescription = "INVALID_JSON_DESCRIPTION",
    /// The definition is empty or `null`.
    MissingDescription = "MISSING_DESCRIPTION",
    /// A field is missing, unknown, of the wrong type or out of range.
    SchemaValidationFailed = "SCHEMA_VALIDATION_FAILED",
    /// A Task's Resource is not a resource stepline knows how to run.
    InvalidResource = "INVALID_RESOURCE",
    /// No state of a scope can end the execution.
    MissingEndState = "MISSING_END_STATE",
    /// Two states share a name.
    DuplicateStateName = "DUPLICATE_STATE_NAME",
    /// A state name is empty, too long or has forbidden characters.
    InvalidStateName = "INVALID_STATE_NAME",
    /// StartAt, Next, Default or a Catch's Next names no state of its scope.
    MissingTransitionTarget = "MISSING_TRANSITION_TARGET",
    /// A string that looks like a path sits in a key without `.$`.
    NoDollar = "NO_DOLLAR",
    /// A Pass state's Result holds what looks like a path; Result is static.
    PassResultIsStatic = "PASS_RESULT_IS_STATIC",
    // stepline's own codes.
    /// The definition text is larger than the 1 MiB limit.
    DefinitionTooLarge = "DEFINITION_TOO_LARGE",
    /// An object has the same key twice.
    DuplicateJsonKey = "DUPLICATE_JSON_KEY",
    /// A state can never be entered.
    UnreachableState = "UNREACHABLE_STATE",
    /// A JSONPath path is not valid.
    InvalidPath = "INVALID_PATH",
    /// A path that must designate one place (ResultPath...) is not a reference path.
    InvalidReferencePath = "INVALID_REFERENCE_PATH",
    /// An intrinsic function call is not valid.
    InvalidIntrinsicFunction = "INVALID_INTRINSIC_FUNCTION",
    /// A JSONata expression is not valid, or is used where it is not allowed.
    InvalidJsonataExpression = "INVALID_JSONATA_EXPRESSION",
    /// A timestamp is not RFC 3339 as ASL requires.
    InvalidTimestamp = "INVALID_TIMESTAMP",
    /// An error name in ErrorEquals, or a Fail's Error, is not allowed.
    InvalidErrorName = "INVALID_ERROR_NAME",
    /// A Choice rule is malformed.
    InvalidChoiceRule = "INVALID_CHOICE_RULE",
    /// Two fields that exclude each other are both present, or a state lacks one it needs.
    ConflictingFields = "CONFLICTING_FIELDS",
    /// A field is not allowed in the state's query language.
    QueryLanguageMismatch = "QUERY_LANGUAGE_MISMATCH",
    /// An Assign key is not a valid variable name.
    InvalidVariableName = "INVALID_VARIABLE_NAME",
    /// HeartbeatSeconds is not smaller than TimeoutSeconds.
    InvalidTimeout = "INVALID_TIMEOUT",
    /// A JSONata expression reads a `$states` field that does not exist
    /// where it is evaluated (`result` outside Output/Assign of a Task, Map
    /// or Parallel, `errorOutput` outside a Catch).
    InvalidStatesAccess = "INVALID_STATES_ACCESS",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// A sentence a newcomer understands, saying what is wrong and how to fix it.
    pub message: String,
    /// RFC 6901 pointer to the place in the definition ("" is the whole document).
    pub pointer: String,
    /// 1-based line and column of that place in the original text.
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text_line(
            self.line,
            self.column,
            self.severity.as_str(),
            self.code.as_str(),
            &self.message,
            &self.pointer,
        ))
    }
}

/// The one text form of a diagnostic, `LINE:COL: error[CODE]: message (at
/// POINTER)`, with the severity in lower case whatever case it is given in.
/// Every command that prints diagnostics uses it (`stepline validate`,
/// `serve --load`, `stepline machines create|update`, the last from the
/// server's JSON), so they read the same; callers put the file name first.
pub fn text_line(
    line: u32,
    column: u32,
    severity: &str,
    code: &str,
    message: &str,
    pointer: &str,
) -> String {
    let mut text = format!(
        "{line}:{column}: {}[{code}]: {message}",
        severity.to_lowercase()
    );
    if !pointer.is_empty() {
        text.push_str(&format!(" (at {pointer})"));
    }
    text
}
