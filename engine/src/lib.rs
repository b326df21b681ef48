//! stepline's engine: the Amazon States Language and everything that runs it.
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
//!
//! - [`interp`]: the pure interpreter; an execution advances by applying
//!   commands (start, task results, timers) and answers with effects.
//! - [`history`]: the events an execution records, named as AWS names them.
//! - [`runtime`]: drives executions with a clock and task invokers.
//!
//! The store and the real task invokers arrive with their own work; see
//! docs/ARCHITECTURE.md for the whole map.
//!
//! This crate never opens a socket, starts a server or parses command-line
//! arguments: those belong to the `stepline` binary in `server/`.

pub mod asl;
pub mod confined;
pub mod history;
pub mod interp;
pub mod maprun;
pub mod query;
pub mod runtime;
pub mod store;
pub mod tasks;
