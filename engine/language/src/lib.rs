//! The Amazon States Language: what a definition says, and what an
//! execution of it does, with no I/O.
//!
//! # Layout
//!
//! The modules follow the data:
//!
//! - [`asl`]: a definition's text -> positioned JSON -> schema check ->
//!   compiled [`asl::StateMachine`], with every problem reported as a
//!   [`asl::Diagnostic`] (code, message, JSON pointer, line and column).
//! - [`query`]: JSONPath paths, reference paths, payload templates,
//!   intrinsic functions and JSONata expressions, compiled once and
//!   evaluated many times.
//! - [`payload`]: the size and depth limits every payload obeys;
//!   [`pointer`]: JSON pointers, as every diagnostic names its place.
//! - [`interp`]: the pure interpreter; an execution advances by applying
//!   commands (start, task results, timers) and answers with effects.
//! - [`map_run`]: what a distributed Map asks its runner to do.
//! - [`history`]: the events an execution records, named as AWS names them.
//! - [`cause`]: every error stepline raises and the words of its cause,
//!   AWS's where AWS raises it (docs/errors.md is its table).
//! - [`clock`] and [`local`]: time as a value, and the in-process driver
//!   that runs one execution to its end (`stepline run`, TestState, tests).
//!
//! This crate opens no socket, file or process and starts no runtime: the
//! store, the runtime and the task runners are the crates above it
//! (docs/ARCHITECTURE.md).

pub mod asl;
pub mod cause;
pub mod clock;
mod hex;
pub mod history;
pub mod interp;
pub mod local;
pub mod map_run;
pub mod payload;
pub mod pointer;
pub mod query;
