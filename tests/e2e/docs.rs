//! The user's documents say what is true now: no promise of a feature
//! that "arrives with" some later work, no "not yet" that is no longer
//! so, and no issue numbers (a reader has no tracker). A real, open
//! limitation is written as `**Not yet:**` followed by what is missing, so
//! that it stands out to the reader and to this check.

use std::path::Path;

use crate::support::repo_root;

/// Words that promise later work or point at a tracker.
const PROMISES: &[&str] = &[
    "arrives with ",
    "arrive with ",
    "arrives later",
    "arrive later",
    "comes with issue",
    "come with issue",
    "coming soon",
    "(see the open issues)",
];

/// Everyday uses of "not yet" that promise nothing.
const PLAIN_NOT_YET: &[&str] = &["not yet taken", "not yet left", "not yet tried"];

/// Projects whose own issue numbers a document may cite.
const CITED_TRACKERS: &[&str] = &["sled issue ", "sled's own issue "];

fn problems_in(name: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lower = line.to_lowercase();
        let at = || format!("{name}:{}: {}", n + 1, line.trim());
        if PROMISES.iter().any(|p| lower.contains(p)) {
            found.push(at());
            continue;
        }
        let not_yet = lower.matches("not yet").count();
        let allowed = line.matches("**Not yet:**").count()
            + PLAIN_NOT_YET
                .iter()
                .map(|p| lower.matches(p).count())
                .sum::<usize>();
        if not_yet > allowed {
            found.push(at());
            continue;
        }
        if issue_number(&lower) {
            found.push(at());
        }
    }
    found
}

/// "issue 7", "issues 5 and 6", "issue #12": not a cited project's.
fn issue_number(lower: &str) -> bool {
    let mut rest = lower;
    while let Some(i) = rest.find("issue") {
        let before = &rest[..i];
        let after = rest[i + "issue".len()..]
            .trim_start_matches('s')
            .trim_start();
        let after = after.strip_prefix('#').unwrap_or(after);
        let numbered = after.starts_with(|c: char| c.is_ascii_digit());
        let cited = CITED_TRACKERS.iter().any(|t| {
            let t = t.trim_end().trim_end_matches("issue").trim_end();
            before.trim_end().ends_with(t)
        });
        if numbered && !cited {
            return true;
        }
        rest = &rest[i + "issue".len()..];
    }
    false
}

fn documents(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("docs/ reads") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            documents(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

#[test]
fn the_documents_promise_nothing_that_already_arrived() {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    documents(&root.join("docs"), &mut files);
    assert!(files.len() > 10, "the documents were not found: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a document reads");
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        found.extend(problems_in(&name, &text));
    }
    assert!(
        found.is_empty(),
        "stale promises or issue numbers in the documents (write an open limitation as `**Not yet:** ...`):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_is_for() {
    for stale in [
        "Real invokers come with issue 7.",
        "The API arrives with the tasks work.",
        "Not yet: Map Run actions.",
        "No authentication on the API yet, not yet anyway.",
        "Planned | Issue 5. Not enforced today.",
        "see issues 5 and 6",
        "fixed in issue #12",
    ] {
        assert!(!problems_in("t.md", stale).is_empty(), "{stale}");
    }
    for fine in [
        "**Not yet:** splitting result files at 5 GB.",
        "a task not yet taken is offered again",
        "sled 0.34 honouring flush; sled's own issue 1452",
        "on the platform (sled issue 1452)",
        "An issue with the network is reported as States.Http.Socket.",
        "The whole request head must arrive within the timeout.",
    ] {
        assert!(problems_in("t.md", fine).is_empty(), "{fine}");
    }
}
