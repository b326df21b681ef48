//! docs/ARCHITECTURE.md stays true: every source file and every module
//! path it names exists. A file is looked up under the folder its section
//! is about (`### \`engine/runtime/\`` reads names under
//! `engine/runtime/src/`), a bare file name anywhere below that folder;
//! a module path (`maprun::runner::run`) resolves module by module in the
//! crates, and its last part, if not a module, is named in the module's
//! code.

use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// Where the crates' modules live, by the name a path may start with.
const CRATES: &[(&str, &str)] = &[
    ("stepline_language", "engine/language/src"),
    ("stepline_store", "engine/store/src"),
    ("stepline_runtime", "engine/runtime/src"),
    ("stepline", "server/src"),
];

/// Paths into other projects' code, which this check does not follow.
const FOREIGN: &[&str] = &[
    "std",
    "core",
    "tokio",
    "sled",
    "axum",
    "hyper",
    "hyper_util",
    "serde",
    "serde_json",
    "chrono",
    "reqwest",
    "tracing",
    "jsonschema",
    "jsonpath_rust",
    "nix",
    "criterion",
    "mimalloc",
    "clap",
    "toml",
    "base64",
    "sha2",
];

/// The backticked spans of a line of text.
fn spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

fn is_file_name(span: &str) -> bool {
    span.ends_with(".rs")
        && span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-'))
}

fn is_module_path(span: &str) -> bool {
    span.contains("::")
        && span.split("::").all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        && span.starts_with(|c: char| c.is_ascii_lowercase())
}

fn files_named(dir: &Path, name: &str, found: &mut bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_named(&path, name, found);
        } else if path.to_string_lossy().ends_with(&format!("/{name}")) {
            *found = true;
        }
    }
}

/// Whether the file `span` names exists under one of `roots`.
fn file_exists(roots: &[PathBuf], span: &str) -> bool {
    roots.iter().any(|root| {
        if root.join(span).is_file() {
            return true;
        }
        let mut found = false;
        files_named(root, span, &mut found);
        found
    })
}

/// The file of module `name` inside module directory `dir`.
fn module_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Whether `span` (`a::b::item`) resolves in one of the crates.
fn module_path_resolves(root: &Path, span: &str) -> Option<bool> {
    let mut parts: Vec<&str> = span.split("::").collect();
    if FOREIGN.contains(&parts[0]) {
        return None;
    }
    let crate_roots: Vec<PathBuf> = match CRATES.iter().find(|(name, _)| *name == parts[0]) {
        Some((_, dir)) => {
            parts.remove(0);
            vec![root.join(dir)]
        }
        None => CRATES.iter().map(|(_, dir)| root.join(dir)).collect(),
    };
    Some(crate_roots.iter().any(|crate_root| {
        let lib = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| crate_root.join(f))
            .find(|p| p.is_file());
        let (mut dir, mut file) = (crate_root.clone(), lib);
        for (i, part) in parts.iter().enumerate() {
            match module_file(&dir, part) {
                Some(next) => {
                    dir = dir.join(part);
                    file = Some(next);
                }
                // The last part may be an item of the module reached.
                None if i + 1 == parts.len() && i > 0 => {
                    return file.is_some_and(|f| {
                        std::fs::read_to_string(f).is_ok_and(|text| text.contains(part))
                    });
                }
                None => return false,
            }
        }
        true
    }))
}

/// Where the names of a section are read: the folder its heading names
/// (and the crate around it), or every crate when it names none; paths
/// from the repository's root are read from there in every section.
fn section_roots(root: &Path, heading: &str) -> Vec<PathBuf> {
    let folder = spans(heading)
        .into_iter()
        .find(|s| s.ends_with('/') && root.join(s).is_dir());
    let mut roots: Vec<PathBuf> = match folder {
        Some(folder) => {
            let around = CRATES
                .iter()
                .map(|(_, dir)| root.join(dir))
                .filter(|dir| root.join(folder).starts_with(dir));
            [root.join(folder).join("src"), root.join(folder)]
                .into_iter()
                .chain(around)
                .collect()
        }
        None => CRATES.iter().map(|(_, dir)| root.join(dir)).collect(),
    };
    roots.push(root.to_path_buf());
    roots
}

fn problems_in(root: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut roots = section_roots(root, "");
    let mut in_code = false;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if line.starts_with("## ") || line.starts_with("### ") {
            roots = section_roots(root, line);
        }
        for span in spans(line) {
            if is_file_name(span) && !file_exists(&roots, span) {
                problems.push(format!("line {}: no file `{span}`", n + 1));
            }
            if is_module_path(span) && module_path_resolves(root, span) == Some(false) {
                problems.push(format!("line {}: no module path `{span}`", n + 1));
            }
        }
    }
    problems
}

#[test]
fn the_architecture_names_only_files_and_modules_that_exist() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("read it");
    let problems = problems_in(&root, &text);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_file_or_module_that_is_not_there_is_caught() {
    let root = repo_root();
    let text = "### `engine/runtime/` (crate `stepline-runtime`)\n\
                - `executor.rs` and `engine/executions.rs` exist, `engine.rs` does not.\n\
                - `maprun::runner::run` exists, `maprun::spec::MapRunSpec` does not.\n\
                - `std::fs::File` is not ours to check.\n";
    let problems = problems_in(&root, text);
    assert_eq!(
        problems,
        [
            "line 2: no file `engine.rs`",
            "line 3: no module path `maprun::spec::MapRunSpec`"
        ]
    );
}
