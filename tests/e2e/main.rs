//! End-to-end tests across crates, through the doors a user uses: the
//! `stepline` command line today, the HTTP server and real AWS clients as
//! they arrive. One test binary, one module per area.

mod aws;
mod conformance;
mod crash;
mod distributed_map;
mod examples_tasks;
mod jsonata_diff;
mod load;
mod malformed;
mod rest;
mod run;
mod support;
mod tasks;
mod triggers;
mod validate;
