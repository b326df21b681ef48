//! Queries over JSON data: JSONPath paths, reference paths, payload templates
//! (`"key.$"` fields), intrinsic function calls and JSONata expressions.
//!
//! Everything here is compiled once, when a definition is validated, and
//! evaluated many times while executions run. Nothing here does I/O.

pub mod eval;
pub mod intrinsic;
mod intrinsic_eval;
pub mod jsonata;
pub mod path;
pub mod reference;
pub mod template;

pub use intrinsic::{Arg, FormatString, Intrinsic, IntrinsicCall, IntrinsicError};
pub use intrinsic_eval::{compact_json, resolve_path};
pub use path::{Path, PathError, PathRoot, Segment};
pub use reference::{ReferencePath, SetError};
pub use template::{Template, TemplateError, TemplateErrorKind};
