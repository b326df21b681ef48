//! End-to-end tests across crates, through the doors a user uses: the
//! `stepline` command line today, the HTTP server and real AWS clients as
//! they arrive. One test binary, one module per area.

mod access;
mod architecture;
mod aws;
mod cache;
mod cli;
mod cli_ops;
mod cluster;
mod conformance;
mod crash;
mod distributed_map;
mod docs;
mod error_words;
mod examples_tasks;
mod fuzz_corpus;
mod jsonata_diff;
mod layers;
mod limits;
mod listing;
mod load;
mod malformed;
mod ops;
mod orchestration;
mod poison;
mod pools;
mod postgres;
mod rest;
mod run;
mod sdk;
mod settings;
mod slowloris;
mod soak;
mod store;
mod support;
mod tasks;
mod tls;
mod triggers;
mod validate;
mod web;
mod windows;
