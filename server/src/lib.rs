//! The `stepline` binary's library: the faces over the engine.
//!
//! Only this crate knows wire and terminal formats: command-line arguments,
//! text and JSON renderings of diagnostics, and (with the HTTP work) the AWS
//! JSON protocol and the REST API. It holds no business logic of its own:
//! every command is a thin call into the engine crates (`stepline-runtime` and the layers below it).

pub mod access;
pub mod alerts;
pub mod aws;
pub mod cli;
pub mod config;
pub mod http;
pub mod limits;
pub mod lineage;
pub mod load;
pub mod origin;
pub mod rest;
pub mod settings;
pub mod store;
pub mod tls;
pub mod triggers;
pub mod web;
pub mod windows;
