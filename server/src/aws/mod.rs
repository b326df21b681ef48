//! The AWS Step Functions JSON 1.0 dialect: shapes exactly as AWS writes
//! them. Engine types are converted here by hand; the engine knows nothing
//! of these shapes.
//!
//! `dispatch` names every action ([`Action`]) and routes it to its
//! resource's module; `constraints` checks a request against AWS's model
//! first; `wire` has what the actions share (request members, dates,
//! pages).

pub mod activities;
pub mod constraints;
pub mod dispatch;
pub mod error;
pub mod executions;
pub mod history;
pub mod machines;
pub mod map_runs;
pub mod pagination;
pub mod tags;
pub mod test_state;
pub mod versions;
pub mod wire;

pub use dispatch::{Action, dispatch};
pub use error::AwsError;

#[cfg(test)]
mod golden;
