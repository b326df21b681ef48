//! Helpers shared by the end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// What one `stepline` command line printed and returned.
#[derive(Debug)]
pub struct Run {
    pub status: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `stepline ARGS...` in-process through the same entry point as the
/// binary's `main`.
pub fn stepline<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let mut argv: Vec<std::ffi::OsString> = vec!["stepline".into()];
    argv.extend(args.iter().map(|a| a.as_ref().to_owned()));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = stepline::cli::run(argv, &mut stdout, &mut stderr);
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `stepline serve --listen 127.0.0.1:0 ARGS...` as a separate process,
/// which must refuse to start: what it wrote on stderr.
pub fn serve_refused<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = Command::new(stepline_binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("stepline runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started: {stderr}");
    stderr
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared/conformance/cases` beside the repository (or
/// `$STEPLINE_SHARED_DIR/conformance/cases`), when it is there.
pub fn conformance_cases() -> Option<PathBuf> {
    let shared = std::env::var_os("STEPLINE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    let cases = shared.join("conformance/cases");
    cases.is_dir().then_some(cases)
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("stepline-test-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` inside the directory; returns the path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether boto3 can be imported. Where it cannot, the test is skipped
/// loudly, unless STEPLINE_REQUIRE_AWS_CLIENTS is set (as .ci/run does after
/// installing it), which makes its absence a failure.
pub fn boto3_available() -> bool {
    let has_boto3 = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_boto3 {
        assert!(
            std::env::var_os("STEPLINE_REQUIRE_AWS_CLIENTS").is_none(),
            "boto3 is required (pip install boto3)"
        );
        eprintln!("SKIPPED: boto3 is not installed (pip install boto3); .ci/run installs it");
    }
    has_boto3
}

/// The `stepline` program as a real process: the tests crate's own copy
/// of the binary (same entry point), which cargo builds with the tests.
pub fn stepline_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stepline-under-test"))
}

/// The address a `stepline serve` child prints on its first stdout line
/// (`stepline listening on SCHEME://ADDR ...`), or that line when it names
/// none.
pub fn listening_address(child: &mut Child, scheme: &str) -> Result<std::net::SocketAddr, String> {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the first line");
    line.split(&format!("{scheme}://"))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or(line)
}

/// A running `stepline serve` and the port it chose.
pub struct Serve {
    pub child: Child,
    pub addr: std::net::SocketAddr,
}

impl Serve {
    pub fn start(binary: &PathBuf, data: &Path) -> Self {
        Self::start_with(binary, data, None)
    }

    /// `stepline serve`, with `--config FILE` when one is given.
    pub fn start_with(binary: &PathBuf, data: &Path, config: Option<&Path>) -> Self {
        Self::start_with_env(binary, data, config, &[])
    }

    /// `stepline serve` with `env` added to its environment.
    pub fn start_with_env(
        binary: &PathBuf,
        data: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(binary);
        command.envs(env.iter().copied());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        Self::spawn(command)
    }

    /// Runs `command`, a `stepline serve` (perhaps under a wrapper such as
    /// `prlimit`), and waits for the address it prints first.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let addr = listening_address(&mut child, "http")
            .unwrap_or_else(|line| panic!("no address in {line:?}"));
        Self { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn call(&self, action: &str, body: &Value) -> (u16, Value) {
        crate::aws::call_raw(self.addr, action, &body.to_string())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, looking every 20 ms; fails the test, naming
/// `what`, after `seconds`.
pub fn eventually(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
