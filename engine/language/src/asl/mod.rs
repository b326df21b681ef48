//! The Amazon States Language: the definition model, and turning the text a
//! person wrote into that model while telling them everything that is wrong.
//!
//! `validate` runs, in order: size and encoding checks, the positioned JSON
//! parse ([`source`]), the JSON Schema ([`schema`]), then the builder, which
//! checks every rule that spans fields and compiles paths, templates,
//! intrinsic calls and JSONata expressions once ([`build`]). All stages
//! report into one list; a model comes out only when no error was found.

mod build;
pub mod diagnostic;
pub mod diagram;
pub mod model;
pub mod resource;
pub mod schema;
pub mod source;
mod suggest;
pub mod timestamp;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use model::StateMachine;

use source::Document;

/// The largest definition accepted, in bytes (AWS: 1 MB).
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;

/// The outcome of validating one definition text.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The compiled state machine, when there is no error.
    pub machine: Option<StateMachine>,
    /// Every error and warning, ordered by position in the text.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    /// True when the definition can be used (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.machine.is_some()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    fn failed(diagnostic: Diagnostic) -> Self {
        Self {
            machine: None,
            diagnostics: vec![diagnostic],
        }
    }
}

/// The answer for a definition of `size` bytes, over the limit, that the
/// caller did not read whole.
pub fn too_large(size: u64) -> Validation {
    Validation::failed(whole_document(
        Code::DefinitionTooLarge,
        format!(
            "the definition is {size} bytes; the limit is {MAX_DEFINITION_BYTES} bytes (1 MiB). Move large constant data into the execution input"
        ),
    ))
}

/// Validates and compiles a definition given as raw bytes.
pub fn validate(bytes: &[u8]) -> Validation {
    if bytes.len() > MAX_DEFINITION_BYTES {
        return too_large(bytes.len() as u64);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
        return Validation::failed(whole_document(
            Code::MissingDescription,
            "the definition is empty; a state machine is a JSON object with StartAt and States",
        ));
    }
    let doc = match Document::parse(bytes) {
        Ok(doc) => doc,
        Err((error, position)) => {
            let position = position.unwrap_or(source::Position { line: 1, column: 1 });
            return Validation::failed(Diagnostic {
                severity: Severity::Error,
                code: Code::InvalidJsonDescription,
                message: format!("the definition is not valid JSON: {}", error.message),
                pointer: String::new(),
                line: position.line,
                column: position.column,
            });
        }
    };
    let value = doc.root.to_value();
    let mut diagnostics = schema::check(&doc, &value);
    let machine = build::build(&doc, &mut diagnostics);
    diagnostics.sort_by(|a, b| {
        (a.line, a.column, a.severity, a.code).cmp(&(b.line, b.column, b.severity, b.code))
    });
    diagnostics.dedup();
    let has_error = diagnostics.iter().any(|d| d.severity == Severity::Error);
    Validation {
        machine: if has_error { None } else { machine },
        diagnostics,
    }
}

fn whole_document(code: Code, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code,
        message: message.into(),
        pointer: String::new(),
        line: 1,
        column: 1,
    }
}
