//! The crates are layers, and a layer only uses the ones below it:
//!
//! `stepline-language` < `stepline-store` < `stepline-runtime` < `stepline`
//!
//! A second store backend (`stepline-postgres`) sits beside the store: it
//! uses the store's crate, and only the binary, which chooses a backend,
//! uses it; the runtime works on any backend.
//!
//! The language is pure: it may gain a dependency only by adding it to
//! [`PURE_DEPENDENCIES`] here, where a reviewer sees it, and its code
//! touches no file, socket, process or environment. The dependency graph
//! comes from `cargo metadata`, so a `[dependencies]` line in any form
//! counts.

use std::path::Path;

use serde_json::Value;

use crate::support::repo_root;

/// The workspace's crates, lowest first. A crate may depend on those
/// before it, never on those after it. `stepline-tests` sits above all.
const LAYERS: &[&str] = &[
    "stepline-language",
    "stepline-store",
    "stepline-postgres",
    "stepline-runtime",
    "stepline",
];

/// Store backends in crates of their own: only the binary may use them.
const BACKENDS: &[&str] = &["stepline-postgres"];

/// Everything the language crate may depend on: none of them does I/O.
const PURE_DEPENDENCIES: &[&str] = &[
    "serde",
    "serde_json",
    "thiserror",
    "jsonpath-rust",
    "jsonschema",
    "chrono",
    "base64",
    "md-5",
    "sha1",
    "sha2",
    "fancy-regex",
    "indexmap",
    // Benchmarks only (an optional dependency), measured side by side.
    "asl",
    "criterion",
];

/// Paths the language's code may not name.
const IO_PATHS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::os",
    "tokio::",
];

/// (crate, the crates it depends on, of every kind) for the workspace.
fn workspace_graph() -> Vec<(String, Vec<String>)> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| d["name"].as_str().expect("name").to_owned())
                .collect();
            (package["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// Every way `graph` breaks the layering, in words.
fn layering_problems(graph: &[(String, Vec<String>)]) -> Vec<String> {
    let layer = |name: &str| LAYERS.iter().position(|l| *l == name);
    let mut problems = Vec::new();
    for (name, deps) in graph {
        let Some(own) = layer(name) else { continue };
        for dep in deps {
            match layer(dep) {
                Some(other) if other >= own => problems.push(format!(
                    "{name} depends on {dep}, which is not below it (layers, lowest first: {LAYERS:?})"
                )),
                None if dep.starts_with("stepline") => problems.push(format!(
                    "{name} depends on {dep}, which has no layer: add it to LAYERS"
                )),
                _ => {}
            }
            if BACKENDS.contains(&dep.as_str()) && name != "stepline" {
                problems.push(format!(
                    "{name} depends on {dep}, a store backend: only the binary chooses a backend"
                ));
            }
            if own == 0 && layer(dep).is_none() && !PURE_DEPENDENCIES.contains(&dep.as_str()) {
                problems.push(format!(
                    "{name} depends on {dep}: the language crate stays pure; if {dep} does no I/O, add it to PURE_DEPENDENCIES"
                ));
            }
        }
    }
    problems
}

fn io_in_language(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read the language's sources") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            io_in_language(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if let Some(io) = IO_PATHS.iter().find(|p| code.contains(*p)) {
                    found.push(format!("{}:{}: uses {io}", path.display(), n + 1));
                }
            }
        }
    }
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let graph = workspace_graph();
    for layer in LAYERS {
        assert!(
            graph.iter().any(|(name, _)| name == layer),
            "the workspace has no crate {layer}"
        );
    }
    let problems = layering_problems(&graph);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_reversed_dependency_is_caught() {
    let mut graph = workspace_graph();
    let (_, language_deps) = graph
        .iter_mut()
        .find(|(name, _)| name == "stepline-language")
        .expect("the language crate");
    language_deps.push("stepline-runtime".into());
    let (_, store_deps) = graph
        .iter_mut()
        .find(|(name, _)| name == "stepline-store")
        .expect("the store crate");
    store_deps.push("stepline".into());
    let problems = layering_problems(&graph);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("stepline-language depends on stepline-runtime"));
    assert!(problems[1].contains("stepline-store depends on stepline"));
}

#[test]
fn a_backend_used_by_the_runtime_is_caught() {
    let mut graph = workspace_graph();
    let (_, runtime_deps) = graph
        .iter_mut()
        .find(|(name, _)| name == "stepline-runtime")
        .expect("the runtime crate");
    runtime_deps.push("stepline-postgres".into());
    let problems = layering_problems(&graph);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("only the binary chooses a backend"));
}

#[test]
fn an_io_dependency_of_the_language_is_caught() {
    let graph = vec![(
        "stepline-language".to_owned(),
        vec!["serde".to_owned(), "tokio".to_owned()],
    )];
    let problems = layering_problems(&graph);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("depends on tokio"), "{}", problems[0]);
}

#[test]
fn the_language_touches_no_file_socket_process_or_environment() {
    let mut found = Vec::new();
    io_in_language(&repo_root().join("engine/language/src"), &mut found);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
