//! The AWS Step Functions JSON 1.0 dialect: shapes exactly as AWS writes
//! them. Engine types are converted here by hand; the engine knows nothing
//! of these shapes.

pub mod actions;
pub mod constraints;
pub mod history;
pub mod pagination;

#[cfg(test)]
mod golden;
