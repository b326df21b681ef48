//! JSONata errors: a code as the reference implementation names it (S0201,
//! T2001, D3001...), a message, and the character offset where it arose.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JErr {
    /// The reference implementation's code: `S` syntax, `T` type, `D`
    /// dynamic, `U` (ours) limits.
    pub code: &'static str,
    pub message: String,
    /// Offset in characters into the expression, when known.
    pub position: Option<usize>,
}

impl JErr {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            position: None,
        }
    }

    pub fn at(code: &'static str, message: impl Into<String>, position: usize) -> Self {
        Self {
            code,
            message: message.into(),
            position: Some(position),
        }
    }

    pub(super) fn or_at(mut self, position: usize) -> Self {
        self.position.get_or_insert(position);
        self
    }
}

impl fmt::Display for JErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for JErr {}
