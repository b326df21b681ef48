//! Puts the commit the binary is built from in `STEPLINE_COMMIT`, for
//! `stepline --version`: `$STEPLINE_COMMIT` when the builder sets it (a
//! package built from a tarball that knows its commit), else `git rev-parse
//! --short HEAD`, else `unknown` (no git, or not a checkout: a tarball
//! builds all the same).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STEPLINE_COMMIT");
    let commit = std::env::var("STEPLINE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Built again when HEAD moves: HEAD itself (a checkout of another
    // branch) and the branch it points to (a commit), wherever git keeps
    // them (a worktree's HEAD is apart from the shared refs).
    // Only files that exist: cargo runs the script again on every build
    // for one that does not (a branch kept in packed-refs has no file).
    let mut files = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    files.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for file in files {
        if let Some(path) = git(&["rev-parse", "--git-path", &file]) {
            let path = absolute(&path);
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rustc-env=STEPLINE_COMMIT={commit}");
}

/// git answers paths relative to the current directory (the package's).
fn absolute(path: &str) -> String {
    let path = std::path::Path::new(path);
    if path.is_absolute() {
        return path.display().to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}
