//! The web pages in a real browser: headless Chromium driven over
//! WebDriver (chromedriver's HTTP JSON protocol) by a small client of our
//! own, against a real server on a loopback port. The pages are opened the
//! way a person would: links, the start form, the stop button.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them the tests are skipped with a printed reason, unless
//! STEPLINE_REQUIRE_BROWSER is set, which makes their absence a failure.
//! Screenshots go to target/web-screenshots/ (look at them after a run).
//! STEPLINE_CHROMIUM and STEPLINE_CHROMEDRIVER override the programs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_language::interp::Failure;
use stepline_runtime::{TaskCall, TaskFuture, TaskRunner};

use crate::aws::Server;
use crate::rest::{get, http, post};
use crate::support::{TempDir, repo_root};

/// One browser at a time: each Chromium wants a core of its own, and CI
/// has two.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// WebDriver's key for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

fn program(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or a printed reason to skip (a failure when
/// STEPLINE_REQUIRE_BROWSER is set, as .ci/run does).
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = program("STEPLINE_CHROMIUM", "chromium");
    let driver = program("STEPLINE_CHROMEDRIVER", "chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            assert!(
                std::env::var_os("STEPLINE_REQUIRE_BROWSER").is_none(),
                "chromium and chromedriver are required (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED: chromium or chromedriver is not installed (apt-get install chromium chromium-driver); .ci/run installs them"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A script run with the authoring page's editor at hand: `root`, the
/// shadow root it lives in, and `view`, its CodeMirror view.
fn in_editor(body: &str) -> String {
    format!(
        "const root = document.querySelector('#author-editor').shadowRoot;
         const view = StepCodeMirror.EditorView.findFromDOM(root.querySelector('.cm-editor'));
         {body}"
    )
}

/// A WebDriver session in a headless Chromium, ended (and chromedriver
/// killed) on drop.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Child,
    _profile: TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// A reference to an element of the current page.
#[derive(Clone)]
struct Element(String);

impl Browser {
    fn start() -> Option<Self> {
        Self::start_with_args(&[])
    }

    /// A browser with extra Chromium command-line arguments.
    fn start_with_args(extra: &[&str]) -> Option<Self> {
        let (chromium, chromedriver) = browser_programs()?;
        let serial = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        let port = free_port();
        let mut driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = runtime.block_on(async {
                let reply = client.get(format!("{base}/status")).send().await.ok()?;
                let body: Value = serde_json::from_str(&reply.text().await.ok()?).ok()?;
                body["value"]["ready"].as_bool()
            });
            if ready == Some(true) {
                break;
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                panic!("chromedriver did not become ready on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = TempDir::new("chromium-profile");
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1440,900",
        ];
        let profile_arg = format!("--user-data-dir={}", profile.path().display());
        args.push(&profile_arg);
        args.extend_from_slice(extra);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let mut browser = Self {
            runtime,
            client,
            session: String::new(),
            driver,
            _profile: profile,
            _serial: serial,
        };
        let created = browser.command("POST", &format!("{base}/session"), Some(capabilities));
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser.session = format!("{base}/session/{id}");
        Some(browser)
    }

    /// One WebDriver command; its `value`, or a panic with the driver's
    /// error.
    fn command(&self, method: &str, url: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let request = self.client.request(method, url);
        let request = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .body(body.to_string()),
            None => request,
        };
        let (status, text) = self.runtime.block_on(async {
            let reply = request.send().await.expect("reach chromedriver");
            let status = reply.status().as_u16();
            (status, reply.text().await.expect("chromedriver's answer"))
        });
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("chromedriver answered {status} with non-JSON ({e}): {text}")
        });
        assert!(
            status < 300,
            "WebDriver {url} failed with {status}: {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn session_command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.command(method, &format!("{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.session_command("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    fn script(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.script(script, args.clone());
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-")));
                panic!(
                    "timed out waiting for {what}; the page says: {}",
                    self.text("body")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first element matching a CSS selector, waiting for it to appear.
    fn find(&self, css: &str) -> Element {
        self.wait_for(
            &format!("'{css}'"),
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        );
        let found = self.session_command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = found[ELEMENT].as_str();
        Element(
            id.unwrap_or_else(|| panic!("no element for {css}: {found}"))
                .to_owned(),
        )
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.session_command(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        );
    }

    /// Replaces the text of an input or textarea, as typing would.
    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_command(
            "POST",
            &format!("/element/{}/clear", element.0),
            Some(json!({})),
        );
        self.session_command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        );
    }

    /// Types `text` with the keyboard into whatever has the focus (the
    /// WebDriver actions API: "send keys to an element" would first move
    /// the caret to the end of a code editor).
    fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let c = c.to_string();
                [
                    json!({"type": "keyDown", "value": c}),
                    json!({"type": "keyUp", "value": c}),
                ]
            })
            .collect();
        self.session_command(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Puts the authoring page's editor caret just after the first
    /// occurrence of `after` in its text, and focuses it.
    fn editor_caret_after(&self, after: &str) {
        let found = self.script(
            &in_editor(
                "const i = view.state.doc.toString().indexOf(arguments[0]);
                 if (i < 0) return false;
                 view.focus();
                 view.dispatch({selection: {anchor: i + arguments[0].length}});
                 return true;",
            ),
            json!([after]),
        );
        assert_eq!(found, json!(true), "'{after}' is not in the editor");
    }

    /// The authoring page's editor text.
    fn editor_text(&self) -> String {
        self.script(&in_editor("return view.state.doc.toString()"), json!([]))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The authoring page's diagnostics list: `LINE:COL CODE` each.
    fn diagnostics(&self) -> Vec<String> {
        let list = self.script(
            "return [...document.querySelectorAll('#author-diagnostics li')].map((l) => l.dataset.line + ':' + l.dataset.column + ' ' + l.dataset.code)",
            json!([]),
        );
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The visible text of the first element matching `css`.
    fn text(&self, css: &str) -> String {
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The status class (`st-...`) of the graph node of state `name`.
    fn state_status(&self, name: &str) -> String {
        self.script(
            "const g = [...document.querySelectorAll('g.node[data-state]')].find((n) => n.dataset.state === arguments[0]);
             if (!g) return 'missing';
             const c = [...g.classList].find((c) => c.startsWith('st-') && c !== 'st-selected');
             return c ? c.slice(3) : 'none';",
            json!([name]),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    fn wait_for_state(&self, name: &str, status: &str) {
        self.wait_for(
            &format!("state {name} to be {status}"),
            "const g = [...document.querySelectorAll('g.node[data-state]')].find((n) => n.dataset.state === arguments[0]);
             return g !== undefined && g.classList.contains('st-' + arguments[1]);",
            json!([name, status]),
        );
    }

    /// Saves a PNG of the window to target/web-screenshots/NAME.png.
    fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let data = self.session_command("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64"))
            .expect("a PNG");
        let dir = repo_root().join("target/web-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Waits for a dialog (`confirm`), and accepts or dismisses it.
    fn answer_dialog(&self, accept: bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = format!("{}/alert/text", self.session);
            let reply = self
                .runtime
                .block_on(async { self.client.get(url).send().await });
            if reply.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "no dialog came");
            std::thread::sleep(Duration::from_millis(50));
        }
        let action = if accept { "accept" } else { "dismiss" };
        self.session_command("POST", &format!("/alert/{action}"), Some(json!({})));
    }

    /// A screenshot that docs/web.md shows: saved as [`screenshot`] does,
    /// and copied to docs/screenshots/ when STEPLINE_DOC_SCREENSHOTS is
    /// set (how the pictures in the docs are brought up to date).
    fn doc_screenshot(&self, name: &str) {
        let path = self.screenshot(name);
        if std::env::var_os("STEPLINE_DOC_SCREENSHOTS").is_some() {
            let dir = repo_root().join("docs/screenshots");
            std::fs::create_dir_all(&dir).expect("docs/screenshots");
            std::fs::copy(&path, dir.join(format!("{name}.png"))).expect("copy the screenshot");
        }
    }

    /// Messages the page logged at SEVERE (script errors, refused loads,
    /// Content-Security-Policy violations) since the last call.
    fn severe_logs(&self) -> Vec<String> {
        let logs = self.session_command("POST", "/se/log", Some(json!({"type": "browser"})));
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["level"] == "SEVERE")
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Fails if the page logged anything at SEVERE (see `severe_logs`).
    fn assert_quiet_console(&self) {
        let severe = self.severe_logs();
        assert!(severe.is_empty(), "{severe:?}");
    }

    /// Sets a `<select>` or `<input>` to `value` and tells the page, as
    /// picking it would.
    fn choose(&self, css: &str, value: &str) {
        self.find(css);
        self.script(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('change'));",
            json!([css, value]),
        );
    }

    /// `script` run on each element matching `css` (as `e`), mapped.
    fn each(&self, css: &str, script: &str) -> Value {
        self.script(
            &format!("return [...document.querySelectorAll(arguments[0])].map((e) => {script})"),
            json!([css]),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = self.session.clone();
            let client = self.client.clone();
            let _ = self
                .runtime
                .block_on(async move { client.delete(url).send().await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn create_machine(server: &Server, name: &str, definition: &str) {
    let reply = post(
        server,
        &format!("/v1/state-machines?name={name}"),
        definition,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

fn start(server: &Server, machine: &str, name: &str, input: &str) {
    let reply = post(
        server,
        &format!("/v1/state-machines/{machine}/executions?name={name}"),
        input,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// The address the browser opens the server's pages at.
fn base(server: &Server) -> String {
    format!("http://{}", server.addr)
}

/// Waits until `machine` has no RUNNING execution left.
fn wait_until_none_running(server: &Server, machine: &str) {
    let deadline = Instant::now() + PATIENCE;
    while get(
        server,
        &format!("/v1/executions?machine={machine}&status=RUNNING"),
    )
    .json()["executions"]
        != json!([])
    {
        assert!(
            Instant::now() < deadline,
            "the executions of {machine} did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Choice on `$.ok`: SUCCEEDED when it is true, FAILED with the error
/// `Rejected` otherwise.
const GRADER: &str = r#"{"StartAt": "Check", "States": {
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Accept"}], "Default": "Reject"},
    "Accept": {"Type": "Pass", "Next": "Done"},
    "Reject": {"Type": "Fail", "Error": "Rejected", "Cause": "not ok"},
    "Done": {"Type": "Succeed"}}}"#;

/// Starts `grader` executions, one per `(name, ok)`, and waits for their
/// ends.
fn grade(server: &Server, runs: &[(&str, bool)]) {
    for (name, ok) in runs {
        start(server, "grader", name, &json!({ "ok": ok }).to_string());
        // Distinct start times, so that the start order is the list's.
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_until_none_running(server, "grader");
}

/// A Pass, a short Wait (long enough to see it running), a Choice, a Task
/// (the test server's tasks echo), a Map over the items, a Parallel whose
/// failing branch is caught, and a Succeed.
const PIPELINE: &str = r#"{
  "StartAt": "Prepare",
  "States": {
    "Prepare": {"Type": "Pass", "Result": {"items": [1, 2, 3]}, "ResultPath": "$.batch", "Next": "Settle"},
    "Settle": {"Type": "Wait", "Seconds": 3, "Next": "Route"},
    "Route": {"Type": "Choice",
      "Choices": [{"Variable": "$.who", "IsPresent": true, "Next": "Work"}],
      "Default": "Nobody"},
    "Nobody": {"Type": "Fail", "Error": "NoOne", "Cause": "no who"},
    "Work": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.work", "Next": "EachItem"},
    "EachItem": {"Type": "Map", "ItemsPath": "$.batch.items", "ResultPath": "$.each",
      "ItemProcessor": {"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "End": true}}},
      "Next": "Both"},
    "Both": {"Type": "Parallel", "ResultPath": "$.both",
      "Branches": [
        {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": true}}},
        {"StartAt": "Right", "States": {"Right": {"Type": "Fail", "Error": "Flaky", "Cause": "right branch"}}}
      ],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Done"}],
      "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

/// A job polled until it is done: a loop, rules with And and Not, a Catch.
const POLLING: &str = r#"{
  "StartAt": "Submit",
  "States": {
    "Submit": {"Type": "Task", "Resource": "stepline:process:submit", "Next": "Poll",
      "Catch": [{"ErrorEquals": ["States.Timeout", "States.TaskFailed"], "Next": "Alert"}]},
    "Poll": {"Type": "Wait", "Seconds": 5, "Next": "Status"},
    "Status": {"Type": "Choice",
      "Choices": [
        {"Variable": "$.status", "StringEquals": "RUNNING", "Next": "Poll"},
        {"And": [{"Variable": "$.status", "StringEquals": "DONE"}, {"Variable": "$.count", "NumericGreaterThan": 10}], "Next": "Publish"},
        {"Not": {"Variable": "$.status", "IsPresent": true}, "Next": "Alert"}
      ],
      "Default": "Alert"},
    "Publish": {"Type": "Pass", "End": true},
    "Alert": {"Type": "Fail", "Error": "JobFailed"}
  }
}"#;

#[test]
fn an_execution_started_from_the_form_turns_green_live() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "pipeline", PIPELINE);
    let base = format!("http://{}", server.addr);

    // The home page lists the state machine; its link opens the graph.
    browser.open(&format!("{base}/"));
    browser.find("#machines a[href='#/machines/pipeline']");
    browser.doc_screenshot("machines");
    browser.click("#machines a[href='#/machines/pipeline']");
    browser.find("#graph svg g.node[data-state='Both']");
    // Choice conditions, Default and Catch are edge labels; Map and
    // Parallel hold their states as nested groups.
    let labels = browser.script(
        "return [...document.querySelectorAll('.edge-label text')].map((t) => t.textContent)",
        json!([]),
    );
    let labels: Vec<&str> = labels
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(labels.contains(&"$.who is present"), "{labels:?}");
    assert!(labels.contains(&"Default"), "{labels:?}");
    assert!(labels.contains(&"catch States.ALL"), "{labels:?}");
    let nested = browser.script(
        "const inside = (outer, inner) => document.querySelector(`g.node[data-state='${outer}'] g.node[data-state='${inner}']`) !== null;
         return [inside('EachItem', 'Double'), inside('Both', 'Left'), inside('Both', 'Right'), inside('Both', 'Done')];",
        json!([]),
    );
    assert_eq!(nested, json!([true, true, true, false]));
    browser.doc_screenshot("machine-graph");

    // A bad input is refused in the form, with the reason.
    browser.type_into("#start-input", "{\"who\": ");
    browser.click("#start-button");
    browser.wait_for(
        "the input error",
        "return document.querySelector('#start-error').textContent.includes('not valid JSON')",
        json!([]),
    );

    // A good one starts the execution and opens its page.
    browser.type_into("#start-name", "from-the-form");
    browser.type_into("#start-input", "{\"who\": \"web\"}");
    browser.click("#start-button");
    browser.wait_for(
        "the execution page",
        "return location.hash === '#/executions/pipeline/from-the-form'",
        json!([]),
    );
    // While it waits, the Wait state is running and the Pass before it
    // has succeeded.
    browser.wait_for_state("Settle", "running");
    assert_eq!(browser.state_status("Prepare"), "succeeded");
    assert_eq!(browser.state_status("Work"), "none");
    browser.screenshot("execution-running");

    // Without reloading, the rest turns green as it happens.
    for state in [
        "Settle", "Route", "Work", "EachItem", "Double", "Left", "Done",
    ] {
        browser.wait_for_state(state, "succeeded");
    }
    browser.wait_for_state("Both", "caught");
    assert_eq!(browser.state_status("Right"), "failed");
    assert_eq!(browser.state_status("Nobody"), "none");
    browser.wait_for(
        "the SUCCEEDED badge",
        "return document.querySelector('#exec-status').innerText.trim() === 'SUCCEEDED'",
        json!([]),
    );
    assert!(browser.text("#state-panel").contains("\"who\": \"web\""));

    // A state's input and output, from the graph.
    browser.click("g.node[data-state='Work']");
    browser.wait_for(
        "the state's output",
        "return document.querySelector('#state-panel').innerText.includes('\"echo\"')",
        json!([]),
    );
    browser.doc_screenshot("execution-succeeded");
    browser.script(
        "document.querySelector('#graph').scrollTop = 1e6",
        json!([]),
    );
    browser.screenshot("execution-caught");
    let panel = browser.text("#state-panel").to_lowercase();
    assert!(
        panel.contains("input") && panel.contains("output"),
        "{panel}"
    );

    // The executions page lists it.
    browser.click("#nav-executions");
    browser.find("#executions a[href='#/executions/pipeline/from-the-form']");

    // What the server refuses is shown under the form with its code: the
    // name is taken (by an execution with another input).
    browser.open(&format!("{base}/#/machines/pipeline"));
    browser.type_into("#start-name", "from-the-form");
    browser.type_into("#start-input", "{\"who\": \"someone else\"}");
    browser.click("#start-button");
    browser.wait_for(
        "the server's refusal",
        "return document.querySelector('#start-error').textContent.startsWith('ExecutionAlreadyExists: ')",
        json!([]),
    );

    // A loop goes round the side; compound rules read as expressions.
    create_machine(&server, "polling", POLLING);
    browser.open(&format!("{base}/#/machines/polling"));
    browser.find("#graph path.edge.back");
    let loops = browser.script(
        "return [...document.querySelectorAll('#graph path.edge.back')].map((p) => p.dataset.from + '>' + p.dataset.to)",
        json!([]),
    );
    assert_eq!(loops, json!(["Status>Poll"]));
    let labels = browser.script(
        "return [...document.querySelectorAll('.edge-label title')].map((t) => t.textContent)",
        json!([]),
    );
    for expected in [
        "$.status == \"RUNNING\"",
        "$.status == \"DONE\" and $.count > 10",
        "not ($.status is present)",
        "Default",
        "catch States.Timeout, States.TaskFailed",
    ] {
        assert!(
            labels
                .as_array()
                .is_some_and(|l| l.contains(&json!(expected))),
            "{expected} in {labels}"
        );
    }
    browser.click("#graph-fit");
    browser.screenshot("machine-loop");
    // Nothing failed in the page but the refused start (a 409).
    let severe: Vec<String> = browser
        .severe_logs()
        .into_iter()
        .filter(|m| !m.contains("status of 409"))
        .collect();
    assert!(severe.is_empty(), "{severe:?}");
}

/// Tasks fail on their first attempt and succeed on a retry.
struct FirstAttemptFails;

impl TaskRunner for FirstAttemptFails {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move {
            if call.request.attempt == 0 {
                Err(Failure::new("Flaky.Again", "the first attempt fails"))
            } else {
                Ok(json!({"attempt": call.request.attempt}))
            }
        })
    }
}

/// A retried Task, then a Parallel whose failing branch cancels the other
/// one (still waiting) and is caught.
const RETRIED: &str = r#"{
  "StartAt": "Try",
  "States": {
    "Try": {"Type": "Task", "Resource": "stepline:process:flaky", "Next": "Split",
      "Retry": [{"ErrorEquals": ["Flaky.Again"], "IntervalSeconds": 1, "MaxAttempts": 2}]},
    "Split": {"Type": "Parallel",
      "Branches": [
        {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": true}}},
        {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom.Went", "Cause": "on purpose"}}}
      ],
      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After"}],
      "End": true},
    "After": {"Type": "Succeed"}
  }
}"#;

/// A failure as the person at 3 a.m. sees it: the error on top, the failed
/// state red, the failed events highlighted. The error's text holds markup,
/// which must show as text. Then the colours of a retry (green: it
/// succeeded in the end) and of a branch cancelled by its sibling's
/// failure (grey, not running for ever).
#[test]
fn a_failed_execution_shows_its_error() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start_with(Arc::new(FirstAttemptFails));
    let definition = json!({
        "StartAt": "Charge <card>",
        "States": {
            "Charge <card>": {"Type": "Pass", "Next": "Declined"},
            "Declined": {"Type": "Fail", "Error": "PaymentDeclined", "Cause": "card <img src=x id=injected> expired"}
        }
    });
    create_machine(&server, "payments", &definition.to_string());
    start(&server, "payments", "charge-1", "{\"amount\": 12}");
    let base = format!("http://{}", server.addr);

    browser.open(&format!("{base}/#/executions?status=FAILED"));
    browser.click("#executions a[href='#/executions/payments/charge-1']");
    let error = browser.wait_for(
        "the execution's error",
        "const e = document.querySelector('#exec-error'); return e && e.innerText",
        json!([]),
    );
    let error = error.as_str().unwrap_or_default();
    assert!(error.contains("PaymentDeclined"), "{error}");
    assert!(
        error.contains("card <img src=x id=injected> expired"),
        "{error}"
    );
    assert_eq!(
        browser.script("return document.getElementById('injected')", json!([])),
        Value::Null,
        "the cause was parsed as markup"
    );
    browser.wait_for_state("Declined", "failed");
    assert_eq!(browser.state_status("Charge <card>"), "succeeded");
    let failures = browser.script(
        "return [...document.querySelectorAll('#timeline tr.failure td.type')].map((t) => t.textContent)",
        json!([]),
    );
    assert_eq!(failures, json!(["ExecutionFailed"]));
    // A row opens the event's full details.
    browser.click("#timeline tr.failure");
    browser.wait_for(
        "the event's details",
        "const d = document.querySelector('#timeline tr.detail pre'); return d && d.textContent.includes('\"error\": \"PaymentDeclined\"')",
        json!([]),
    );
    browser.screenshot("execution-failed");

    create_machine(&server, "retried", RETRIED);
    start(&server, "retried", "second-time-lucky", "{}");
    browser.open(&format!("{base}/#/executions/retried/second-time-lucky"));
    browser.wait_for_state("After", "succeeded");
    assert_eq!(browser.state_status("Try"), "succeeded");
    assert_eq!(browser.state_status("Split"), "caught");
    assert_eq!(browser.state_status("Boom"), "failed");
    assert_eq!(browser.state_status("Hold"), "aborted");
    let failures = browser.script(
        "return [...document.querySelectorAll('#timeline tr.failure td.type')].map((t) => t.textContent)",
        json!([]),
    );
    assert_eq!(failures, json!(["TaskFailed", "ParallelStateFailed"]));
    browser.click("g.node[data-state='Boom']");
    browser.wait_for(
        "Boom's error in the panel",
        "return document.querySelector('#state-panel .error-box')?.innerText.includes('Boom.Went')",
        json!([]),
    );
    browser.screenshot("execution-retried");
    browser.assert_quiet_console();
}

#[test]
fn a_running_execution_is_stopped_from_its_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "sleepy", &crate::rest::waiting(3600));
    start(&server, "sleepy", "long-nap", "{}");
    let base = format!("http://{}", server.addr);

    browser.open(&format!("{base}/#/executions/sleepy/long-nap"));
    browser.wait_for_state("Nap", "running");
    // The button opens a dialog; cancelling it stops nothing.
    browser.click("#stop-button");
    browser.wait_for(
        "the stop dialog",
        "return document.querySelector('#stop-dialog').open",
        json!([]),
    );
    browser.click("#stop-cancel");
    browser.wait_for(
        "the dialog to close",
        "return !document.querySelector('#stop-dialog').open",
        json!([]),
    );
    assert_eq!(
        get(&server, "/v1/executions/sleepy/long-nap").json()["status"],
        "RUNNING"
    );
    // Stopped with an error and a cause, which the history keeps.
    browser.click("#stop-button");
    browser.type_into("#stop-error", "Operator.Stopped");
    browser.type_into("#stop-cause", "the <b>night</b> shift said so");
    browser.screenshot("execution-stop-dialog");
    browser.click("#stop-confirm");
    browser.wait_for(
        "the ABORTED badge",
        "return document.querySelector('#exec-status').innerText.trim() === 'ABORTED'",
        json!([]),
    );
    browser.wait_for_state("Nap", "aborted");
    browser.wait_for(
        "the stop button to go",
        "return document.querySelector('#stop-button').hidden",
        json!([]),
    );
    let panel = browser.text("#state-panel");
    assert!(!panel.contains("null"), "{panel}");
    let described = get(&server, "/v1/executions/sleepy/long-nap").json();
    assert_eq!(described["status"], "ABORTED");
    assert_eq!(described["error"], "Operator.Stopped");
    assert_eq!(described["cause"], "the <b>night</b> shift said so");
    let error = browser.wait_for(
        "the stop's error on the page",
        "const e = document.querySelector('#exec-error'); return e && e.innerText",
        json!([]),
    );
    assert!(
        error.as_str().is_some_and(
            |e| e.contains("Operator.Stopped") && e.contains("the <b>night</b> shift said so")
        ),
        "{error}"
    );
    browser.screenshot("execution-stopped");
}

/// An execution's page as a person investigating it reads it: absolute
/// times with the zone beside relative ones, when a running Wait ends, a
/// Gantt of its states (Map items and Parallel branches labelled), and the
/// buttons that act on it: Redrive, and start again with the same input.
#[test]
fn the_execution_page_shows_times_a_gantt_and_acts() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "sleepy", &crate::rest::waiting(3600));
    start(&server, "sleepy", "long-nap", r#"{"who": "Ada"}"#);
    let base = format!("http://{}", server.addr);
    browser.open(&format!("{base}/#/executions/sleepy/long-nap"));
    browser.wait_for_state("Nap", "running");

    // The start: absolute, with the zone, and how long ago.
    let started = browser.text("#exec-started");
    assert!(
        started.contains("UTC") && (started.contains("(just now)") || started.contains(" ago)")),
        "{started}"
    );
    let meta = browser.text(".head .meta");
    assert!(
        meta.starts_with("sleepy · revision 1 · started ") && !meta.contains("null"),
        "{meta}"
    );
    let described = get(&server, "/v1/executions/sleepy/long-nap").json();
    let shown_at = browser.script(
        "return new Date(document.querySelector('#exec-started').dataset.at).getTime()",
        json!([]),
    );
    let start_ms = browser.script(
        "return new Date(arguments[0]).getTime()",
        json!([described["startDate"]]),
    );
    assert_eq!(shown_at, start_ms);
    // The header's toggle shows every time in UTC (the command line's
    // default), and back in this browser's zone.
    let in_utc = described["startDate"]
        .as_str()
        .expect("startDate")
        .trim_end_matches('Z')
        .replace('T', " ")
        + " UTC";
    browser.click("#zone-toggle");
    let shown = browser.wait_for(
        "the start in UTC",
        "const t = document.querySelector('#exec-started .abs'); return t && t.innerText.endsWith(' UTC') && t.innerText",
        json!([]),
    );
    assert_eq!(shown.as_str(), Some(in_utc.as_str()));
    assert_eq!(browser.text("#zone-toggle"), "Times: UTC");
    browser.click("#zone-toggle");
    assert_eq!(browser.text("#zone-toggle"), "Times: local");

    // The Wait ends an hour after it was entered, and says so.
    let wait = browser.wait_for(
        "when the Wait ends",
        "const w = document.querySelector(\"#wait-ends .wait[data-state='Nap']\"); return w && w.innerText",
        json!([]),
    );
    let wait = wait.as_str().unwrap_or_default();
    assert!(
        wait.starts_with("Nap waits until ") && wait.contains("UTC") && wait.contains("(in "),
        "{wait}"
    );
    let waits_ms = browser.script(
        "return new Date(document.querySelector('#wait-ends .time').dataset.at) - new Date(arguments[0])",
        json!([described["startDate"]]),
    );
    let waits_ms = waits_ms.as_i64().expect("milliseconds");
    assert!((3_600_000..3_602_000).contains(&waits_ms), "{waits_ms}");

    // The Gantt: Nap's bar runs, and the time still to wait is drawn.
    browser.wait_for(
        "Nap's running bar and its planned end",
        "const r = document.querySelector(\"#gantt .g-row[data-state='Nap']\"); return r && r.dataset.status === 'running' && r.querySelector('.g-plan') !== null",
        json!([]),
    );
    browser.doc_screenshot("execution-waiting");

    // Stopped, it can be redriven: it runs again from the Wait.
    let stopped = post(&server, "/v1/executions/sleepy/long-nap/stop", "{}");
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    browser.wait_for(
        "the Redrive button",
        "const b = document.querySelector('#redrive-button'); return b && !b.hidden",
        json!([]),
    );
    browser.click("#redrive-button");
    browser.wait_for(
        "the execution running again",
        "return document.querySelector('#exec-status')?.innerText.trim() === 'RUNNING' && document.querySelector('#redrive-button')?.hidden",
        json!([]),
    );
    let described = get(&server, "/v1/executions/sleepy/long-nap").json();
    assert_eq!(described["status"], "RUNNING");
    let history = get(&server, "/v1/executions/sleepy/long-nap/history").json();
    assert!(
        history["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "ExecutionRedriven"),
        "{history}"
    );

    // Start again with this input: a new execution, the same input.
    browser.click("#rerun-button");
    let hash = browser.wait_for(
        "the new execution's page",
        "return location.hash.startsWith('#/executions/sleepy/') && location.hash !== '#/executions/sleepy/long-nap' && location.hash",
        json!([]),
    );
    let new_name = hash
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("#/executions/sleepy/")
        .to_owned();
    let again = get(&server, &format!("/v1/executions/sleepy/{new_name}")).json();
    assert_eq!(again["input"], json!({"who": "Ada"}));
    browser.wait_for_state("Nap", "running");

    // A finished run's Gantt: Map items and Parallel branches labelled,
    // the failed branch red.
    create_machine(&server, "pipeline", PIPELINE);
    start(&server, "pipeline", "gantt-1", r#"{"who": "Grace"}"#);
    browser.open(&format!("{base}/#/executions/pipeline/gantt-1"));
    browser.wait_for_state("Done", "succeeded");
    let rows = browser.wait_for(
        "the Gantt's rows",
        "const r = [...document.querySelectorAll('#gantt .g-row[data-state]')]; return r.length >= 12 && r.map((e) => e.dataset.status + ' ' + e.querySelector('.g-label').innerText)",
        json!([]),
    );
    let rows: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "succeeded Prepare",
        "succeeded Settle",
        "succeeded Double · item 0",
        "succeeded Double · item 2",
        "succeeded Left · branch 1",
        "failed Right · branch 2",
        "caught Both",
        "succeeded Done",
    ] {
        assert!(rows.contains(&expected), "{expected} not in {rows:?}");
    }
    // The Wait's bar is about 3 seconds of the run: its width says so.
    let share = browser.script(
        "const bar = document.querySelector(\"#gantt .g-row[data-state='Settle'] .g-bar\");
         return bar.getBoundingClientRect().width / bar.parentElement.getBoundingClientRect().width",
        json!([]),
    );
    assert!(share.as_f64().is_some_and(|s| s > 0.5), "{share}");
    // A row selects its state.
    browser.click("#gantt .g-row[data-state='Right']");
    browser.wait_for(
        "Right's panel",
        "return document.querySelector('#state-panel h3')?.innerText.startsWith('Right')",
        json!([]),
    );
    browser.doc_screenshot("execution-gantt");
    // A state's panel lists what it changed from its input to its output.
    browser.click("g.node[data-state='Prepare']");
    let changes = browser.wait_for(
        "Prepare's changes",
        "const l = [...document.querySelectorAll('#state-panel section.diff li')]; return l.length > 0 && l.map((e) => e.className + ' ' + e.innerText)",
        json!([]),
    );
    assert_eq!(changes, json!(["add + $.batch {\"items\":[1,2,3]}"]));
    browser.screenshot("execution-diff");
    browser.click("g.node[data-state='Route']");
    browser.wait_for(
        "Route changes nothing",
        "return document.querySelector('#state-panel section.diff')?.innerText.includes('none: the output is the input')",
        json!([]),
    );
    browser.assert_quiet_console();
}

/// The executions list pages through its results and filters by status
/// and machine; filters live in the URL, so a filtered list can be shared.
#[test]
fn the_executions_list_filters_and_pages() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(
        &server,
        "quick",
        r#"{"StartAt": "Go", "States": {"Go": {"Type": "Pass", "End": true}}}"#,
    );
    create_machine(&server, "sleepy", &crate::rest::waiting(3600));
    for i in 0..30 {
        start(&server, "quick", &format!("q-{i:02}"), "{}");
    }
    start(&server, "sleepy", "still-going", "{}");
    let base = format!("http://{}", server.addr);

    // The state machines, each with its latest execution.
    browser.open(&format!("{base}/"));
    let latest = browser.wait_for(
        "the latest executions",
        "const rows = [...document.querySelectorAll('#machines tbody tr')];
         return rows.length === 2 && rows.map((r) => r.cells[0].innerText + ' ' + r.cells[4].innerText.split(' · ')[0])",
        json!([]),
    );
    assert_eq!(
        latest,
        json!(["quick SUCCEEDED q-29", "sleepy RUNNING still-going"])
    );
    browser.screenshot("machines-latest");

    browser.open(&format!("{base}/#/executions"));
    browser.wait_for(
        "a full first page",
        "return document.querySelectorAll('#executions tbody tr').length === 25",
        json!([]),
    );
    browser.click(".pager button:last-child");
    browser.wait_for(
        "the second page",
        "return document.querySelectorAll('#executions tbody tr').length === 6 && document.querySelector('.page-no').textContent === 'page 2'",
        json!([]),
    );
    browser.click(".pager button:first-child");
    browser.wait_for(
        "the first page again",
        "return document.querySelectorAll('#executions tbody tr').length === 25",
        json!([]),
    );

    // Status filter: only the running one.
    browser.choose("#filter-status", "RUNNING");
    browser.wait_for(
        "the running execution alone",
        "const rows = document.querySelectorAll('#executions tbody tr'); return rows.length === 1 && rows[0].dataset.status === 'RUNNING' && location.hash.includes('status=RUNNING')",
        json!([]),
    );
    // Machine filter, from a URL.
    browser.open(&format!(
        "{base}/#/executions?machine=quick&status=SUCCEEDED"
    ));
    browser.wait_for(
        "quick's executions",
        "const rows = [...document.querySelectorAll('#executions tbody tr')]; return rows.length === 25 && rows.every((r) => r.dataset.status === 'SUCCEEDED')",
        json!([]),
    );
    browser.screenshot("executions");
    // A filter naming a machine that does not exist says so.
    browser.open(&format!("{base}/#/executions?machine=nope"));
    browser.wait_for(
        "the error",
        "const e = document.querySelector('.error-box'); return e && e.innerText.includes('nope')",
        json!([]),
    );
}

/// The pages are served with a policy that forbids inline script and other
/// origins, and the AWS dialect still answers POST /.
#[test]
fn the_pages_are_served_with_a_strict_content_security_policy() {
    let server = Server::start();
    let page = get(&server, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    for asset in [
        "/assets/app.js",
        "/assets/graph.js",
        "/assets/author.js",
        "/assets/vendor/codemirror.js",
        "/assets/vendor/codemirror.LICENSE.txt",
        "/assets/asl.schema.json",
        "/assets/app.css",
        "/assets/editor.css",
        "/assets/favicon.svg",
    ] {
        let reply = get(&server, asset);
        assert_eq!(reply.status, 200, "{asset}");
        assert!(reply.header("content-security-policy").is_some(), "{asset}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
    // Revalidation answers 304 while the asset is unchanged.
    let bundle = get(&server, "/assets/vendor/codemirror.js");
    let tag = bundle.header("etag").expect("an entity tag").to_owned();
    let again = http(
        server.addr,
        "GET",
        "/assets/vendor/codemirror.js",
        &[("If-None-Match", &tag)],
        b"",
    );
    assert_eq!(again.status, 304, "{}", again.body);
    assert!(again.body.is_empty());
    // The workbench's own address is its fragment's.
    let author = get(&server, "/author");
    assert!(
        (300..400).contains(&author.status),
        "{} {}",
        author.status,
        author.body
    );
    assert_eq!(author.header("location"), Some("/#/author"));
    let aws = http(
        server.addr,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
        ],
        b"{}",
    );
    assert_eq!(aws.status, 200, "{}", aws.body);
    assert_eq!(aws.json(), json!({"stateMachines": []}));
}

/// An execution's page draws the definition the execution runs: its
/// revision survives an update and a delete of the state machine.
#[test]
fn an_execution_keeps_the_definition_it_started_with() {
    let server = Server::start();
    create_machine(&server, "evolving", &crate::rest::waiting(3600));
    start(&server, "evolving", "old-one", "{}");
    let updated = r#"{"StartAt": "Renamed", "States": {"Renamed": {"Type": "Pass", "End": true}}}"#;
    let reply = http(
        server.addr,
        "PUT",
        "/v1/state-machines/evolving",
        &[],
        json!({"definition": updated}).to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let path = "/v1/executions/evolving/old-one/state-machine";
    let ran = get(&server, path);
    assert_eq!(ran.status, 200, "{}", ran.body);
    let ran = ran.json();
    assert_eq!(ran["revision"], 1);
    assert_eq!(ran["name"], "evolving");
    assert!(
        ran["definition"]
            .as_str()
            .unwrap_or_default()
            .contains("Nap")
    );
    let deleted = http(
        server.addr,
        "DELETE",
        "/v1/state-machines/evolving",
        &[],
        b"",
    );
    assert!(deleted.status < 300, "{}", deleted.body);
    assert_eq!(get(&server, path).json()["revision"], 1);
    let missing = get(&server, "/v1/executions/evolving/nope/state-machine");
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.json()["code"], "ExecutionDoesNotExist");
}

/// What a process task wrote (issue 9's per-attempt task output) shows in
/// its state's panel, as text: the real binary runs a registered process
/// that writes to stderr and fails.
#[test]
fn a_task_states_process_output_shows_in_its_panel() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = crate::support::TempDir::new("web-task-output");
    let script = dir.write(
        "noisy.sh",
        "cat > /dev/null\necho 'warming up <b id=bold>cache</b>' >&2\necho 'card expired' >&2\nexit 1\n",
    );
    let config = dir.write(
        "stepline.toml",
        format!(
            "[tasks.processes.noisy]\ncommand = \"/bin/sh\"\nargs = [\"{}\"]\n",
            script.display()
        ),
    );
    let serve = crate::support::Serve::start_with(
        &crate::support::stepline_binary(),
        &dir.path().join("data"),
        Some(&config),
    );
    let definition = json!({"StartAt": "Bill", "States": {
        "Bill": {"Type": "Task", "Resource": "stepline:process:noisy", "End": true}}});
    let (status, answer) = serve.call(
        "CreateStateMachine",
        &json!({"name": "noisy", "definition": definition.to_string(), "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": "arn:aws:states:us-east-1:111111111111:stateMachine:noisy", "name": "run-1"}),
    );
    assert_eq!(status, 200, "{answer}");
    let ended = crate::crash::wait_until_ended(
        &serve,
        answer["executionArn"].as_str().expect("arn"),
        Instant::now() + Duration::from_secs(20),
    );
    assert_eq!(ended["status"], "FAILED", "{ended}");

    browser.open(&format!("http://{}/#/executions/noisy/run-1", serve.addr));
    browser.wait_for_state("Bill", "failed");
    browser.click("g.node[data-state='Bill']");
    let output = browser.wait_for(
        "the task's output in the panel",
        "const l = document.querySelector('#state-panel .task-log'); return l && l.innerText.includes('card expired') && l.innerText",
        json!([]),
    );
    let output = output.as_str().unwrap_or_default();
    assert!(
        output.contains("warming up <b id=bold>cache</b>"),
        "{output}"
    );
    assert!(output.contains("attempt 1 · FAILED"), "{output}");
    assert_eq!(
        browser.script("return document.getElementById('bold')", json!([])),
        Value::Null,
        "the output was parsed as markup"
    );
    browser.screenshot("execution-task-output");
    browser.assert_quiet_console();
}

/// A server with `[[server.tokens]]`: the pages ask for the token, send it
/// as `Authorization: Bearer`, and say so when it is refused.
#[test]
fn the_pages_ask_for_the_api_token_of_a_secured_server() {
    let Some(browser) = Browser::start() else {
        return;
    };
    const TOKEN: &str = "web-pages-token-0123456789";
    let dir = TempDir::new("web-token");
    let config = dir.write(
        "stepline.toml",
        format!("[[server.tokens]]\ntoken = \"{TOKEN}\"\n"),
    );
    let serve = crate::support::Serve::start_with(
        &crate::support::stepline_binary(),
        &dir.path().join("data"),
        Some(&config),
    );
    let bearer = format!("Bearer {TOKEN}");
    let created = http(
        serve.addr,
        "POST",
        "/v1/state-machines?name=guarded",
        &[("Authorization", &bearer)],
        br#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);

    browser.open(&format!("http://{}/#/", serve.addr));
    browser.wait_for(
        "the token form",
        "return document.querySelector('form.token-form') !== null",
        json!([]),
    );
    browser.type_into("#token-input", "not-the-token-at-all");
    browser.click("form.token-form button");
    browser.wait_for(
        "the refusal",
        "const f = document.querySelector('form.token-form'); return f !== null && f.innerText.includes('refused')",
        json!([]),
    );
    browser.type_into("#token-input", TOKEN);
    browser.click("form.token-form button");
    browser.wait_for(
        "the state machine listed",
        "const t = document.querySelector('#machines'); return t !== null && t.innerText.includes('guarded') && document.querySelector('form.token-form') === null",
        json!([]),
    );
    browser.screenshot("token-accepted");

    // The workbench's calls carry the token too: its check answers.
    browser.open(&format!("http://{}/#/author/guarded", serve.addr));
    wait_for_verdict(&browser, "valid");
    // Without it, the new workbench asks for it.
    browser.script("sessionStorage.clear()", json!([]));
    browser.open(&format!("http://{}/#/author", serve.addr));
    browser.wait_for(
        "the token form in the workbench",
        "return document.querySelector('form.token-form') !== null",
        json!([]),
    );
}

/// A page on another origin: a tiny HTTP server of the test's own that
/// answers every request with `page`, until dropped.
struct ForeignSite {
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ForeignSite {
    fn serve(page: String) -> Self {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = [0u8; 8192];
                let _ = stream.read(&mut head);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ForeignSite {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A page on another origin, open in the operator's browser, tries every
/// request a page can send without asking the server first (fetch with
/// no-cors and Blob, text/plain and form bodies; HTML forms; a JSON fetch,
/// which needs a preflight) to create a state machine, stop an execution
/// and start one. None of it happens: the API says so afterwards.
#[test]
fn a_page_on_another_origin_can_change_nothing() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "sleepy", &crate::rest::waiting(3600));
    start(&server, "sleepy", "long-nap", "{}");
    let target = format!("http://{}", server.addr);
    let definition = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
    let page = format!(
        r#"<!doctype html><html><body><p id="status">attacking</p>
<iframe name="sink" id="sink"></iframe>
<form id="form-start" method="POST" target="sink" enctype="text/plain"
  action="{target}/v1/state-machines/sleepy/executions?name=form-start"><input name='{{"a":"' value='"}}'></form>
<form id="form-stop" method="POST" target="sink"
  action="{target}/v1/executions/sleepy/long-nap/stop"><input name="x" value="y"></form>
<form id="form-create" method="POST" target="sink" enctype="multipart/form-data"
  action="{target}/v1/state-machines?name=form-machine"><input name="d" value="x"></form>
<script>
const T = {target:?};
const definition = {definition:?};
const attempts = [
  ["POST", "/v1/state-machines?name=blob-machine", {{mode: "no-cors", body: new Blob([definition])}}],
  ["POST", "/v1/state-machines?name=text-machine", {{mode: "no-cors", body: definition}}],
  ["POST", "/v1/state-machines?name=json-machine", {{headers: {{"Content-Type": "application/json"}}, body: definition}}],
  ["POST", "/v1/executions/sleepy/long-nap/stop", {{mode: "no-cors", body: new Blob(["{{}}"])}}],
  ["POST", "/v1/executions/sleepy/long-nap/stop", {{mode: "no-cors"}}],
  ["POST", "/v1/state-machines/sleepy/executions?name=blob-start", {{mode: "no-cors", body: new Blob(["{{}}"])}}],
  ["POST", "/v1/state-machines/sleepy/executions?name=bare-start", {{mode: "no-cors"}}],
  ["POST", "/", {{mode: "no-cors", body: new Blob([JSON.stringify({{name: "aws-machine", definition, roleArn: "arn:aws:iam::111111111111:role/r"}})])}}],
];
async function attack() {{
  const outcomes = [];
  for (const [method, path, init] of attempts) {{
    try {{
      const r = await fetch(T + path, Object.assign({{method, credentials: "include"}}, init));
      outcomes.push(path + " " + r.type + " " + r.status);
    }} catch (e) {{
      outcomes.push(path + " threw " + e.name);
    }}
  }}
  for (const id of ["form-start", "form-stop", "form-create"]) {{
    await new Promise((done) => {{
      document.getElementById("sink").onload = done;
      document.getElementById(id).submit();
      setTimeout(done, 3000);
    }});
  }}
  window.outcomes = outcomes;
  document.getElementById("status").textContent = "done";
}}
attack();
</script></body></html>"#
    );
    let site = ForeignSite::serve(page);
    browser.open(&format!("http://{}/", site.addr));
    browser.wait_for(
        "the attack to finish",
        "return document.getElementById('status').textContent === 'done'",
        json!([]),
    );
    let outcomes = browser.script("return window.outcomes", json!([]));
    browser.screenshot("foreign-origin-attack");

    let described = get(&server, "/v1/executions/sleepy/long-nap").json();
    assert_eq!(
        described["status"], "RUNNING",
        "stopped from another origin: {outcomes}"
    );
    let executions = get(&server, "/v1/executions?machine=sleepy").json();
    let names: Vec<&str> = executions["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["long-nap"],
        "started from another origin: {outcomes}"
    );
    let machines = get(&server, "/v1/state-machines").json();
    let machine_names: Vec<&str> = machines["stateMachines"]
        .as_array()
        .expect("state machines")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(
        machine_names,
        ["sleepy"],
        "created from another origin: {outcomes}"
    );
}

/// DNS rebinding: a name the attacker controls, resolved to the server's
/// loopback address, reaches the server with its own Host, and gets
/// nothing: not the pages, not the API.
#[test]
fn a_rebound_name_gets_nothing() {
    let Some(browser) =
        Browser::start_with_args(&["--host-resolver-rules=MAP attacker.example 127.0.0.1"])
    else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "secret-machine", &crate::rest::waiting(1));
    let rebound = format!("http://attacker.example:{}", server.addr.port());
    browser.open(&format!("{rebound}/v1/state-machines"));
    let body = browser.text("body");
    assert!(body.contains("MisdirectedRequest"), "{body}");
    assert!(!body.contains("secret-machine"), "{body}");
    browser.open(&format!("{rebound}/"));
    let page = browser.text("body");
    assert!(page.contains("[server] hosts"), "{page}");
    // The server's own name still works in the same browser.
    browser.open(&format!("http://{}/v1/state-machines", server.addr));
    assert!(browser.text("body").contains("secret-machine"));
}

/// A definition as a person writes it, one field a line, so that the
/// workbench's diagnostics have distinct lines: "Pass" is at 6:15.
const GREETER: &str = r#"{
  "Comment": "Greets",
  "StartAt": "Hello",
  "States": {
    "Hello": {
      "Type": "Pass",
      "Result": {"hello": "world"},
      "End": true
    }
  }
}
"#;

/// Opens the workbench of `machine` from its page, and waits until the
/// validator has answered once.
fn open_workbench(browser: &Browser, base: &str, machine: &str) {
    browser.open(&format!("{base}/#/machines/{machine}"));
    browser.click("#author-link");
    browser.wait_for(
        "the workbench",
        "return location.hash === '#/author/' + arguments[0] && document.querySelector('#author-editor')?.shadowRoot?.querySelector('.cm-content') != null",
        json!([machine]),
    );
    wait_for_verdict(browser, "valid");
}

fn wait_for_verdict(browser: &Browser, verdict: &str) {
    browser.wait_for(
        &format!("the verdict '{verdict}'"),
        "const s = document.querySelector('#author-status'); return s !== null && s.textContent === arguments[0]",
        json!([verdict]),
    );
}

/// Typing a mistake shows the validator's diagnostic at its line and
/// column, in the list and in the editor; fixing it clears it. The graph
/// follows the text, and a click on a state jumps to its text (and the
/// caret in a state's text selects it in the graph). Field names complete
/// from the schema, for the kind of object the caret is in.
#[test]
fn the_workbench_checks_as_you_type_and_redraws_the_graph() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "greeter", GREETER);
    let base = format!("http://{}", server.addr);
    open_workbench(&browser, &base, "greeter");
    assert_eq!(browser.editor_text(), GREETER);
    browser.find("#author-graph g.node[data-state='Hello']");
    assert!(browser.diagnostics().is_empty());

    // "Pass" loses its last letter: a Type that does not exist, at 6:15.
    browser.editor_caret_after("\"Type\": \"Pass");
    browser.keys("\u{E003}");
    browser.wait_for(
        "the diagnostic at 6:15",
        "return [...document.querySelectorAll('#author-diagnostics li.error')].some((l) => l.dataset.line === '6' && l.dataset.column === '15')",
        json!([]),
    );
    let underlined = browser.script(
        &in_editor(
            "return [...root.querySelectorAll('.cm-lintRange-error')].map((e) => e.textContent).join('')",
        ),
        json!([]),
    );
    assert_eq!(
        underlined,
        json!("\"Pas\""),
        "the underline covers the value"
    );
    let marked_line = browser.script(
        &in_editor(
            "const m = root.querySelector('.cm-gutter-lint .cm-lint-marker-error');
         if (!m) return null;
         const top = m.closest('.cm-gutterElement').getBoundingClientRect().top;
         const line = [...root.querySelectorAll('.cm-line')].find((l) => Math.abs(l.getBoundingClientRect().top - top) < 3);
         return line ? line.textContent : null;",
        ),
        json!([]),
    );
    assert_eq!(marked_line, json!("      \"Type\": \"Pas\","));
    let status = browser.text("#author-status");
    assert!(status.starts_with("1 error"), "{status}");
    browser.doc_screenshot("author-diagnostic");

    // Put back, the diagnostic goes.
    browser.keys("s");
    wait_for_verdict(&browser, "valid");
    assert!(
        browser.diagnostics().is_empty(),
        "{:?}",
        browser.diagnostics()
    );
    assert_eq!(
        browser.script(
            &in_editor("return root.querySelectorAll('.cm-lintRange').length"),
            json!([])
        ),
        json!(0)
    );

    // A new state, typed after Hello, appears in the graph.
    browser.editor_caret_after("\"End\": true\n    }");
    browser.keys(", \"Bye\": {\"Type\": \"Succeed\"}");
    assert!(
        browser
            .editor_text()
            .contains("\"End\": true\n    }, \"Bye\": {\"Type\": \"Succeed\"}\n  }"),
        "{}",
        browser.editor_text()
    );
    browser.find("#author-graph g.node[data-state='Bye']");
    browser.wait_for(
        "the unreachable Bye's warning",
        "return [...document.querySelectorAll('#author-diagnostics li.warning')].some((l) => l.dataset.line === '9')",
        json!([]),
    );

    // A click on Hello in the graph selects its name in the text; the
    // caret in Bye's text selects Bye in the graph.
    browser.click("#author-graph g.node[data-state='Hello']");
    let selected = browser.script(
        &in_editor(
            "const s = view.state.selection.main;
             return [view.state.sliceDoc(s.from, s.to), view.state.doc.lineAt(s.head).number];",
        ),
        json!([]),
    );
    assert_eq!(selected, json!(["\"Hello\"", 5]));
    browser.editor_caret_after("\"Bye\": {\"Ty");
    browser.wait_for(
        "Bye selected in the graph",
        "return document.querySelector(\"#author-graph g.node[data-state='Bye']\").classList.contains('st-selected')",
        json!([]),
    );
    assert_eq!(browser.text("#author-test-state"), "Bye (Succeed)");

    // Completion: in a Pass state, the Pass fields not yet there.
    browser.editor_caret_after("\"Type\": \"Pass\",");
    browser.keys("\u{E007}\"Res");
    let options = browser.wait_for(
        "the completions",
        &in_editor(
            "const o = [...root.querySelectorAll('.cm-tooltip-autocomplete li .cm-completionLabel')].map((l) => l.textContent); return o.length ? o : null",
        ),
        json!([]),
    );
    let options: Vec<&str> = options
        .as_array()
        .expect("options")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(options.contains(&"ResultPath"), "{options:?}");
    assert!(!options.contains(&"Result"), "already there: {options:?}");
    assert!(
        !options.contains(&"ResultSelector"),
        "not a Pass field: {options:?}"
    );
    browser.doc_screenshot("author-completion");
    // CodeMirror ignores a key for a moment after the list opens, so that
    // a key meant for the text does not pick an option.
    std::thread::sleep(Duration::from_millis(300));
    browser.keys("\u{E007}");
    assert!(
        browser.editor_text().contains("\n      \"ResultPath\"\n"),
        "{}",
        browser.editor_text()
    );
    // And the values a field allows: QueryLanguage's two.
    browser.editor_caret_after("\"Comment\": \"Greets\",");
    browser.keys("\u{E007}\"QueryLanguage\": \"");
    let values = browser.wait_for(
        "the values of QueryLanguage",
        &in_editor(
            "const o = [...root.querySelectorAll('.cm-tooltip-autocomplete li .cm-completionLabel')].map((l) => l.textContent); return o.length ? o : null",
        ),
        json!([]),
    );
    assert_eq!(values, json!(["JSONata", "JSONPath"]));
    browser.assert_quiet_console();
}

/// "Test this state" runs the selected Task through TestState with the
/// input and the mock result typed in the page, and shows every stage of
/// its data flow and the next state.
#[test]
fn the_workbench_tests_a_state_stage_by_stage() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    let definition = r#"{
  "StartAt": "Price",
  "States": {
    "Price": {
      "Type": "Task",
      "Resource": "stepline:process:price",
      "InputPath": "$.order",
      "Parameters": {"sku.$": "$.sku", "qty.$": "$.qty"},
      "ResultSelector": {"total.$": "$.amount"},
      "ResultPath": "$.price",
      "Next": "Done"
    },
    "Done": {"Type": "Succeed"}
  }
}"#;
    create_machine(&server, "orders", definition);
    let base = format!("http://{}", server.addr);
    open_workbench(&browser, &base, "orders");
    browser.click("#author-graph g.node[data-state='Price']");
    browser.wait_for(
        "Price as the state to test",
        "return document.querySelector('#author-test-state').textContent === 'Price (Task)' && !document.querySelector('#author-test-mock-label').hidden",
        json!([]),
    );
    let input = json!({"order": {"sku": "A-1", "qty": 2, "note": "gift"}, "customer": "c-7"});
    browser.type_into("#author-test-input", &input.to_string());
    browser.type_into("#author-test-mock", r#"{"amount": 42, "currency": "EUR"}"#);
    browser.click("#author-test-run");
    browser.find("#author-test-result section.stage[data-stage='output']");
    let stages = browser.script(
        "const out = {};
         for (const s of document.querySelectorAll('#author-test-result section.stage')) out[s.dataset.stage] = JSON.parse(s.querySelector('pre').textContent);
         out.labels = [...document.querySelectorAll('#author-test-result section.stage h4')].map((h) => h.textContent);
         return out;",
        json!([]),
    );
    let mut expected_output = input.clone();
    expected_output["price"] = json!({"total": 42});
    assert_eq!(stages["input"], input);
    assert_eq!(
        stages["afterInputPath"],
        json!({"sku": "A-1", "qty": 2, "note": "gift"})
    );
    assert_eq!(stages["afterParameters"], json!({"sku": "A-1", "qty": 2}));
    assert_eq!(stages["result"], json!({"amount": 42, "currency": "EUR"}));
    assert_eq!(stages["afterResultSelector"], json!({"total": 42}));
    assert_eq!(stages["afterResultPath"], expected_output);
    assert_eq!(stages["output"], expected_output);
    assert_eq!(
        stages["labels"],
        json!([
            "Input",
            "After InputPath",
            "After Parameters",
            "Result",
            "After ResultSelector",
            "After ResultPath",
            "Output"
        ])
    );
    assert_eq!(browser.text("#author-test-next").trim(), "next: Done");
    let result = browser.text("#author-test-result");
    assert!(result.contains("SUCCEEDED"), "{result}");
    assert!(!result.contains("null"), "{result}");
    browser.doc_screenshot("author-test-state");

    // The same endpoint over plain HTTP, as curl would: a mocked failure
    // that nothing catches.
    let reply = post(
        &server,
        "/v1/test-state",
        &json!({"definition": {"Type": "Task", "Resource": "stepline:process:price", "End": true},
                "mock": {"errorOutput": {"error": "Price.Unknown", "cause": "no such sku"}}})
        .to_string(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["error"], "Price.Unknown");
    let refused = post(
        &server,
        "/v1/test-state",
        r#"{"definition": {}, "mock": 3}"#,
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    browser.assert_quiet_console();
}

/// Saving from the workbench: a new revision of the state machine, the
/// server's diagnostics when it refuses, a copy under a new name, and a
/// new state machine from `/author`.
#[test]
fn saving_from_the_workbench_creates_a_revision() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "greeter", GREETER);
    let base = format!("http://{}", server.addr);
    open_workbench(&browser, &base, "greeter");

    browser.editor_caret_after("\"hello\": \"world");
    browser.keys("!");
    browser.wait_for(
        "the unsaved mark",
        "return !document.querySelector('#author-dirty').hidden",
        json!([]),
    );
    browser.click("#author-publish");
    browser.click("#author-save-revision");
    browser.wait_for(
        "the saved and published revision",
        "return document.querySelector('#author-save-message').textContent.startsWith('Saved revision 2 of greeter. Published as version 1.')",
        json!([]),
    );
    // Version 1 is revision 2: publishing it again answers the same.
    let version = post(
        &server,
        "/v1/state-machines/greeter/versions",
        r#"{"revision": 2}"#,
    );
    assert_eq!(version.status, 201, "{}", version.body);
    assert_eq!(
        (
            version.json()["version"].clone(),
            version.json()["revision"].clone()
        ),
        (json!(1), json!(2))
    );
    let stale = post(
        &server,
        "/v1/state-machines/greeter/versions",
        r#"{"revision": 1}"#,
    );
    assert_eq!(
        (stale.status, stale.json()["code"].clone()),
        (409, json!("Conflict")),
        "{}",
        stale.body
    );
    browser.click("#author-publish");
    let stored = get(&server, "/v1/state-machines/greeter").json();
    assert_eq!(stored["revision"], 2);
    assert!(
        stored["definition"]
            .as_str()
            .unwrap_or_default()
            .contains("\"world!\""),
        "{stored}"
    );
    assert!(browser.text("#author-meta").contains("revision 2"));
    assert_eq!(
        browser.script(
            "return document.querySelector('#author-dirty').hidden",
            json!([])
        ),
        json!(true)
    );

    // A definition with an error is refused, and the server's diagnostics
    // are shown at their place.
    browser.editor_caret_after("\"Type\": \"Pass");
    browser.keys("\u{E003}");
    browser.click("#author-save-revision");
    browser.wait_for(
        "the refusal",
        "return document.querySelector('#author-save-message').textContent.startsWith('InvalidDefinition: ')",
        json!([]),
    );
    browser.wait_for(
        "the refusal's diagnostic at 6:15",
        "return [...document.querySelectorAll('#author-diagnostics li.error')].some((l) => l.dataset.line === '6' && l.dataset.column === '15')",
        json!([]),
    );
    browser.screenshot("author-save-refused");
    assert_eq!(
        get(&server, "/v1/state-machines/greeter").json()["revision"],
        2
    );

    // Fixed, it is saved as a new state machine under another name.
    browser.editor_caret_after("\"Type\": \"Pas");
    browser.keys("s");
    browser.type_into("#author-name", "greeter-copy");
    browser.click("#author-save-new");
    browser.wait_for(
        "the new state machine",
        "return document.querySelector('#author-save-message').textContent.startsWith('Created greeter-copy, revision 1.') && location.hash === '#/author/greeter-copy'",
        json!([]),
    );
    let copy = get(&server, "/v1/state-machines/greeter-copy");
    assert_eq!(copy.status, 200, "{}", copy.body);

    // `/author` opens an empty workbench with a valid start.
    browser.open(&format!("{base}/author"));
    browser.wait_for(
        "the new workbench",
        "return location.hash === '#/author' && document.querySelector('#author-editor')?.shadowRoot?.querySelector('.cm-content') != null",
        json!([]),
    );
    wait_for_verdict(&browser, "valid");
    browser.type_into("#author-name", "fresh");
    browser.click("#author-save-new");
    browser.wait_for(
        "the fresh state machine",
        "return document.querySelector('#author-save-message').textContent.startsWith('Created fresh, revision 1.')",
        json!([]),
    );
    assert_eq!(get(&server, "/v1/state-machines/fresh").status, 200);

    // Going elsewhere with unsaved edits asks first; staying keeps them.
    browser.editor_caret_after("\"hello\": \"world");
    browser.keys("?");
    browser.click("#nav-machines");
    browser.answer_dialog(false);
    assert_eq!(
        browser.script("return location.hash", json!([])),
        json!("#/author/fresh")
    );
    assert!(browser.editor_text().contains("\"world?\""));
    browser.click("#nav-machines");
    browser.answer_dialog(true);
    browser.find("#machines a[href='#/machines/fresh']");
    let severe: Vec<String> = browser
        .severe_logs()
        .into_iter()
        .filter(|m| !m.contains("status of 422"))
        .collect();
    assert!(severe.is_empty(), "{severe:?}");
}

/// Tasks fail twice, with a cause that is JSON, then succeed.
struct ThirdTimeLucky;

impl TaskRunner for ThirdTimeLucky {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move {
            if call.request.attempt < 2 {
                Err(Failure::new(
                    "Busy.TryLater",
                    json!({"errorMessage": "the ledger is busy", "attempt": call.request.attempt})
                        .to_string(),
                ))
            } else {
                Ok(json!({"booked": true}))
            }
        })
    }
}

/// A retried state says how many attempts it took on its graph node, and
/// its panel lists each attempt with its times, error and cause (parsed,
/// when it is JSON).
#[test]
fn a_retried_state_shows_its_attempts() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start_with(Arc::new(ThirdTimeLucky));
    create_machine(
        &server,
        "ledger",
        r#"{"StartAt": "Book", "States": {
            "Book": {"Type": "Task", "Resource": "stepline:process:book", "End": true,
              "Retry": [{"ErrorEquals": ["Busy.TryLater"], "IntervalSeconds": 1, "BackoffRate": 1, "MaxAttempts": 3}]}}}"#,
    );
    start(&server, "ledger", "booking-1", "{}");
    let base = format!("http://{}", server.addr);
    browser.open(&format!("{base}/#/executions/ledger/booking-1"));
    browser.wait_for_state("Book", "succeeded");
    browser.wait_for(
        "the attempts on the node",
        "const t = document.querySelector(\"g.node[data-state='Book'] g.attempts text\"); return t && t.textContent === '3 attempts'",
        json!([]),
    );
    browser.click("g.node[data-state='Book']");
    let attempts = browser.wait_for(
        "the attempts in the panel",
        "const a = [...document.querySelectorAll('#state-panel .attempt')]; return a.length === 3 && a.map((e) => e.innerText)",
        json!([]),
    );
    let attempts: Vec<&str> = attempts
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        attempts[0].contains("attempt 1 · failed · Busy.TryLater"),
        "{attempts:?}"
    );
    assert!(
        attempts[1].contains("attempt 2 · failed · Busy.TryLater"),
        "{attempts:?}"
    );
    assert!(
        attempts[2].contains("attempt 3 · succeeded"),
        "{attempts:?}"
    );
    for a in &attempts {
        assert!(a.contains("start ") && a.contains(" · end "), "{a}");
    }
    // The JSON cause is shown parsed, one member a line.
    assert!(
        attempts[1].contains("\"errorMessage\": \"the ledger is busy\",\n  \"attempt\": 1"),
        "{attempts:?}"
    );
    browser.doc_screenshot("execution-attempts");

    // A failure whose cause is JSON: the execution's error shows it parsed.
    create_machine(
        &server,
        "strict-ledger",
        r#"{"StartAt": "Book", "States": {
            "Book": {"Type": "Task", "Resource": "stepline:process:book", "End": true}}}"#,
    );
    start(&server, "strict-ledger", "booking-2", "{}");
    browser.open(&format!("{base}/#/executions/strict-ledger/booking-2"));
    let cause = browser.wait_for(
        "the parsed cause",
        "const c = document.querySelector('#exec-error pre.cause.parsed'); return c && c.textContent",
        json!([]),
    );
    assert_eq!(
        serde_json::from_str::<Value>(cause.as_str().unwrap_or_default()).ok(),
        Some(json!({"errorMessage": "the ledger is busy", "attempt": 0}))
    );
    assert!(
        cause
            .as_str()
            .unwrap_or_default()
            .contains("\n  \"attempt\": 0"),
        "indented: {cause}"
    );
    browser.assert_quiet_console();
}

/// Many runs at once: the grid of a state machine's latest executions,
/// states as rows. A failed run shows its failed state as a failed cell,
/// and the cell opens that state in that execution.
#[test]
fn the_grid_shows_a_failed_cell_for_a_failed_run() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "grader", GRADER);
    grade(
        &server,
        &[("run-1", true), ("run-2", false), ("run-3", true)],
    );
    let base = base(&server);
    browser.open(&format!("{base}/#/machines/grader"));
    browser.click("#grid-link");
    browser.find("#grid");
    let columns = browser.script(
        "return [...document.querySelectorAll('#grid th.run')].map((t) => t.dataset.execution + ' ' + t.dataset.status)",
        json!([]),
    );
    assert_eq!(
        columns,
        json!(["run-1 SUCCEEDED", "run-2 FAILED", "run-3 SUCCEEDED"])
    );
    let cells = browser.script(
        "const out = {};
         for (const td of document.querySelectorAll('#grid td.g-cell')) out[td.dataset.state + '@' + td.dataset.execution] = td.dataset.status;
         return out",
        json!([]),
    );
    assert_eq!(cells["Reject@run-2"], "failed", "{cells}");
    assert_eq!(cells["Check@run-2"], "succeeded", "{cells}");
    assert_eq!(cells["Accept@run-2"], "none", "{cells}");
    assert_eq!(cells["Reject@run-1"], "none", "{cells}");
    assert_eq!(cells["Done@run-3"], "succeeded", "{cells}");
    assert_eq!(
        browser.script(
            "return document.querySelector(\"#grid td[data-state='Reject'][data-execution='run-2'] a.cell\").classList.contains('st-failed')",
            json!([])
        ),
        json!(true)
    );
    browser.doc_screenshot("grid");
    // The failed cell opens the failed state in its execution.
    browser.click("#grid td[data-state='Reject'][data-execution='run-2'] a.cell");
    let panel = browser.wait_for(
        "Reject's panel in run-2",
        "const p = document.querySelector('#state-panel'); return location.hash.startsWith('#/executions/grader/run-2') && p && p.querySelector('h3')?.innerText.startsWith('Reject') && p.innerText",
        json!([]),
    );
    assert!(
        panel.as_str().is_some_and(|p| p.contains("Rejected")),
        "{panel}"
    );
    browser.assert_quiet_console();
}

/// Comfort: the pages follow the system's dark preference, a toggle
/// overrides it (and is remembered), "/" focuses the search box, and the
/// arrow keys walk a list's rows.
#[test]
fn the_pages_go_dark_and_slash_focuses_search() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "orders", &crate::rest::waiting(3600));
    create_machine(&server, "invoices", &crate::rest::waiting(1));
    start(&server, "orders", "order-1", "{}");
    let base = format!("http://{}", server.addr);
    let theme = |browser: &Browser| {
        browser.script(
            "return document.documentElement.dataset.theme + ' ' + getComputedStyle(document.body).backgroundColor + ' ' + document.querySelector('#theme-toggle').textContent",
            json!([]),
        )
    };
    browser.open(&format!("{base}/"));
    browser.find("#machines tr[data-name='orders']");
    assert_eq!(
        theme(&browser),
        json!("light rgb(246, 247, 249) Theme: auto")
    );
    // The system turns dark: so do the pages, at once.
    browser.session_command(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    );
    browser.wait_for(
        "the dark theme",
        "return document.documentElement.dataset.theme === 'dark' && getComputedStyle(document.body).backgroundColor === 'rgb(13, 17, 23)'",
        json!([]),
    );
    // The toggle: auto, dark, light, auto; light wins over the system and
    // is kept across a reload.
    browser.click("#theme-toggle");
    assert_eq!(theme(&browser), json!("dark rgb(13, 17, 23) Theme: dark"));
    browser.click("#theme-toggle");
    assert_eq!(
        theme(&browser),
        json!("light rgb(246, 247, 249) Theme: light")
    );
    browser.open(&format!("{base}/#/executions"));
    browser.find("#executions");
    assert_eq!(
        theme(&browser),
        json!("light rgb(246, 247, 249) Theme: light")
    );
    browser.click("#theme-toggle");
    assert_eq!(theme(&browser), json!("dark rgb(13, 17, 23) Theme: auto"));

    // "/" focuses the search, which filters the state machines by name.
    browser.open(&format!("{base}/#/"));
    browser.find("#machines tr[data-name='invoices']");
    browser.keys("/");
    browser.wait_for(
        "the search box focused",
        "return document.activeElement && document.activeElement.id === 'machine-search'",
        json!([]),
    );
    browser.keys("ord");
    browser.wait_for(
        "only orders listed",
        "const shown = [...document.querySelectorAll('#machines tr[data-name]')].filter((r) => !r.hidden).map((r) => r.dataset.name); return shown.length === 1 && shown[0] === 'orders'",
        json!([]),
    );
    // Down from the search box: the first row left.
    browser.keys("\u{E015}");
    browser.wait_for(
        "the orders row focused",
        "return document.activeElement && document.activeElement.getAttribute('href') === '#/machines/orders'",
        json!([]),
    );
    // The execution page in the dark, for the docs.
    browser.open(&format!("{base}/#/executions/orders/order-1"));
    browser.wait_for_state("Nap", "running");
    browser.find("#gantt .g-row[data-state='Nap']");
    browser.doc_screenshot("execution-dark");
    // Arrow keys walk the events.
    browser.script(
        "document.querySelector('#timeline tr.event').focus()",
        json!([]),
    );
    let focused =
        "return document.activeElement && document.activeElement.dataset.type === arguments[0]";
    browser.keys("\u{E015}");
    browser.wait_for("the second event", focused, json!(["WaitStateEntered"]));
    browser.keys("\u{E013}");
    browser.wait_for("the first event", focused, json!(["ExecutionStarted"]));
    browser.assert_quiet_console();
}

/// The start form, on a state machine's page and in the workbench, keeps
/// the inputs executions were started with (in the browser) and offers
/// them again, newest first.
#[test]
fn the_start_form_remembers_recent_inputs() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "greeter", GREETER);
    let base = format!("http://{}", server.addr);
    open_workbench(&browser, &base, "greeter");
    assert_eq!(
        browser.text("#author-run-revision"),
        "Runs the saved revision 1."
    );
    assert_eq!(
        browser.script(
            "return document.querySelector('#author-run #start-recent').hidden",
            json!([])
        ),
        json!(true)
    );
    browser.type_into("#author-run #start-input", r#"{"who": "first"}"#);
    browser.click("#author-run #start-button");
    browser.wait_for(
        "the first execution's page",
        "return location.hash.startsWith('#/executions/greeter/')",
        json!([]),
    );
    browser.wait_for_state("Hello", "succeeded");

    browser.open(&format!("{base}/#/machines/greeter"));
    browser.type_into("#start-input", r#"{"who": "second"}"#);
    browser.click("#start-button");
    browser.wait_for(
        "the second execution's page",
        "return location.hash.startsWith('#/executions/greeter/')",
        json!([]),
    );
    browser.open(&format!("{base}/#/machines/greeter"));
    let offered = browser.wait_for(
        "the recent inputs",
        "const s = document.querySelector('#start-recent'); return s && !s.hidden && [...s.options].slice(1).map((o) => o.textContent)",
        json!([]),
    );
    assert_eq!(
        offered,
        json!([r#"{"who": "second"}"#, r#"{"who": "first"}"#])
    );
    browser.click("#start-recent option[value='1']");
    browser.wait_for(
        "the chosen input in the form",
        "return document.querySelector('#start-input').value === '{\"who\": \"first\"}'",
        json!([]),
    );
    browser.assert_quiet_console();
}

/// A process task that fails once and then succeeds: each attempt in the
/// panel carries what that attempt wrote.
#[test]
fn a_retried_process_task_shows_each_attempts_output() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = crate::support::TempDir::new("web-retried-output");
    let marker = dir.path().join("tried");
    let script = dir.write(
        "flaky.sh",
        format!(
            "cat > /dev/null\nif [ -e '{m}' ]; then echo 'second try works' >&2; echo '{{\"ok\": true}}'; exit 0; fi\ntouch '{m}'\necho 'first try <b id=bold>fails</b>' >&2\nexit 1\n",
            m = marker.display()
        ),
    );
    let config = dir.write(
        "stepline.toml",
        format!(
            "[tasks.processes.flaky]\ncommand = \"/bin/sh\"\nargs = [\"{}\"]\n",
            script.display()
        ),
    );
    let serve = crate::support::Serve::start_with(
        &crate::support::stepline_binary(),
        &dir.path().join("data"),
        Some(&config),
    );
    let definition = json!({"StartAt": "Sync", "States": {
        "Sync": {"Type": "Task", "Resource": "stepline:process:flaky", "End": true,
          "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]}}});
    let (status, answer) = serve.call(
        "CreateStateMachine",
        &json!({"name": "flaky", "definition": definition.to_string(), "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": "arn:aws:states:us-east-1:111111111111:stateMachine:flaky", "name": "run-1"}),
    );
    assert_eq!(status, 200, "{answer}");
    let ended = crate::crash::wait_until_ended(
        &serve,
        answer["executionArn"].as_str().expect("arn"),
        Instant::now() + Duration::from_secs(20),
    );
    assert_eq!(ended["status"], "SUCCEEDED", "{ended}");

    browser.open(&format!("http://{}/#/executions/flaky/run-1", serve.addr));
    browser.wait_for_state("Sync", "succeeded");
    browser.click("g.node[data-state='Sync']");
    let attempts = browser.wait_for(
        "each attempt's output",
        "const a = [...document.querySelectorAll('#state-panel .attempt')];
         return a.length === 2 && a.every((e) => e.querySelector('.task-log')) && a.map((e) => e.innerText)",
        json!([]),
    );
    let attempts: Vec<&str> = attempts
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        attempts[0].contains("failed") && attempts[0].contains("first try <b id=bold>fails</b>"),
        "{attempts:?}"
    );
    assert!(
        attempts[1].contains("succeeded") && attempts[1].contains("second try works"),
        "{attempts:?}"
    );
    assert!(!attempts[0].contains("second try"), "{attempts:?}");
    // Shown with their attempts, the logs are not listed again below.
    assert_eq!(
        browser.script(
            "return document.querySelectorAll('#state-panel .visit.task-log').length",
            json!([])
        ),
        json!(0)
    );
    assert_eq!(
        browser.script("return document.getElementById('bold')", json!([])),
        Value::Null,
        "the output was parsed as markup"
    );
    browser.screenshot("execution-attempt-output");
    browser.assert_quiet_console();
}

/// The dashboard: per state machine, what started, runs and ended, the
/// success rate and the durations, from the counts the server keeps; the
/// page's figures match the executions run and the API's.
#[test]
fn the_dashboard_counts_what_ran() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "grader", GRADER);
    create_machine(&server, "sleepy", &crate::rest::waiting(3600));
    start(&server, "sleepy", "nap-1", "{}");
    grade(
        &server,
        &[
            ("ok-1", true),
            ("bad-1", false),
            ("ok-2", true),
            ("ok-3", true),
            ("bad-2", false),
        ],
    );
    let api = get(&server, "/v1/dashboard").json();
    let grader = &api["stateMachines"][0];
    assert_eq!(grader["name"], "grader", "{api}");
    let day = &grader["windows"]["day"];
    assert_eq!(
        (
            &day["started"],
            &day["finished"],
            &day["succeeded"],
            &day["failed"]
        ),
        (&json!(5), &json!(5), &json!(3), &json!(2)),
        "{api}"
    );
    assert_eq!(day["successRate"], json!(0.6));
    assert!(day["durationP95Ms"].is_number(), "{api}");
    let sleepy = &api["stateMachines"][1];
    assert_eq!(sleepy["running"], 1, "{api}");
    assert_eq!(sleepy["windows"]["day"]["successRate"], Value::Null);

    browser.open(&format!("{}/", base(&server)));
    browser.click("#nav-dashboard");
    let cells = "[...e.querySelectorAll('td.num')].map((c) => c.innerText).join(' | ')";
    browser.wait_for(
        "the dashboard's rows",
        "return document.querySelectorAll('#dashboard tbody tr[data-machine]').length === 2",
        json!([]),
    );
    let rows = browser.each("#dashboard tbody tr[data-machine]", cells);
    let row = |i: usize| rows[i].as_str().unwrap_or_default().to_owned();
    // started | running | finished | rate | p50 | p95
    assert!(row(0).starts_with("5 | 0 | 5 | 60.0 % | "), "{rows}");
    // Durations written as the command line writes them ("0.042s").
    let p95 = row(0).rsplit(" | ").next().unwrap_or_default().to_owned();
    let (seconds, millis) = p95
        .strip_suffix('s')
        .and_then(|d| d.split_once('.'))
        .unwrap_or_default();
    assert!(
        !seconds.is_empty()
            && seconds.chars().all(|c| c.is_ascii_digit())
            && millis.len() == 3
            && millis.chars().all(|c| c.is_ascii_digit()),
        "{rows}"
    );
    assert_eq!(row(1), "1 | 1 | 0 | — | — | —", "{rows}");
    // The chart: this hour's bar, green and red, titled with its counts.
    let chart = browser.each(
        "#dashboard tr[data-machine='grader'] svg.chart g.bar",
        "e.querySelector('title').textContent + ' ' + e.querySelectorAll('rect.ok, rect.bad').length",
    );
    let bars: Vec<&str> = chart
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| !t.ends_with(" 0"))
        .collect();
    assert_eq!(bars.len(), 1, "{chart}");
    assert!(
        bars[0].contains("5 started, 3 succeeded, 2 failed") && bars[0].ends_with(" 2"),
        "{bars:?}"
    );
    browser.doc_screenshot("dashboard");

    // The week holds the same; another failure shows at once on refresh.
    browser.click("#dashboard-window a[data-window='week']");
    browser.wait_for(
        "the week's figures",
        "return location.hash === '#/dashboard?window=week' && document.querySelector('#dashboard tr[data-machine=grader] .d-finished')?.innerText === '5'",
        json!([]),
    );
    grade(&server, &[("bad-3", false)]);
    browser.click("#dashboard-refresh");
    browser.wait_for(
        "the new failure counted",
        "const r = document.querySelector('#dashboard tr[data-machine=grader]'); return r.querySelector('.d-finished').innerText === '6' && r.querySelector('.d-rate').innerText === '50.0 %'",
        json!([]),
    );
    browser.assert_quiet_console();
}

/// The executions list filters by start time and by name on the server,
/// shows each failure's error, and counts the period's executions by
/// status (a count is a filter).
#[test]
fn the_executions_list_filters_by_time_and_name_and_shows_errors() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "grader", GRADER);
    grade(&server, &[("order-1", true), ("refund-1", false)]);
    std::thread::sleep(Duration::from_millis(30));
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(30));
    grade(
        &server,
        &[("order-2", true), ("refund-2", false), ("order-3", true)],
    );
    let base = base(&server);
    let names = |browser: &Browser| {
        browser.each(
            "#executions tbody tr[data-status]",
            "e.cells[0].innerText + ' ' + e.cells[3].innerText",
        )
    };

    // A name typed into the search box, then Enter.
    browser.open(&format!("{base}/#/executions"));
    browser.find("#executions tbody tr[data-status]");
    browser.type_into("#filter-name", "refund");
    browser.keys("\u{E007}");
    browser.wait_for(
        "the refunds alone",
        "return location.hash.includes('name=refund') && document.querySelectorAll('#executions tbody tr[data-status]').length === 2",
        json!([]),
    );
    assert_eq!(
        names(&browser),
        json!(["refund-2 Rejected", "refund-1 Rejected"])
    );
    // The counts of the period (the last 7 days by default), by status.
    let counts = browser.wait_for(
        "the counts",
        "const c = {}; for (const b of document.querySelectorAll('#status-counts button.chip')) c[b.dataset.status || 'started'] = Number(b.dataset.count); return c.started !== undefined && c",
        json!([]),
    );
    assert_eq!(
        counts,
        json!({"started": 5, "SUCCEEDED": 3, "FAILED": 2, "TIMED_OUT": 0, "ABORTED": 0, "RUNNING": 0})
    );
    browser.doc_screenshot("executions-filtered");
    // A count filters by its status.
    browser.click("#status-counts button[data-status='SUCCEEDED']");
    browser.wait_for(
        "no refund succeeded",
        "return location.hash.includes('status=SUCCEEDED') && location.hash.includes('name=refund') && document.querySelector('#executions td.empty') !== null",
        json!([]),
    );

    // Started from a time on: the later three, newest first.
    browser.open(&format!("{base}/#/executions?from={between}"));
    browser.wait_for(
        "the later runs",
        "return document.querySelectorAll('#executions tbody tr[data-status]').length === 3",
        json!([]),
    );
    assert_eq!(
        names(&browser),
        json!(["order-3 ", "refund-2 Rejected", "order-2 "])
    );
    assert!(
        browser
            .script(
                "return document.querySelector('#filter-from').value",
                json!([])
            )
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    // Started before it: the first two; with a name: one.
    browser.open(&format!("{base}/#/executions?to={between}&name=order"));
    browser.wait_for(
        "the first order",
        "return document.querySelectorAll('#executions tbody tr[data-status]').length === 1",
        json!([]),
    );
    assert_eq!(names(&browser), json!(["order-1 "]));
    browser.click("#filter-clear");
    browser.wait_for(
        "every execution again",
        "return location.hash === '#/executions' && document.querySelectorAll('#executions tbody tr[data-status]').length === 5",
        json!([]),
    );
    browser.assert_quiet_console();
}

/// The triggers page: each trigger's kind, last and next fire and recent
/// executions; a schedule's backfill previews its slots before it runs;
/// a trigger is disabled (and enabled again) from the page.
#[test]
fn a_trigger_is_disabled_and_backfilled_from_its_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "grader", GRADER);
    for spec in [
        json!({"name": "hourly", "kind": "schedule", "stateMachine": "grader", "schedule": "rate(1 hour)", "input": {"ok": true}}),
        json!({"name": "deploys", "kind": "webhook", "stateMachine": "grader"}),
    ] {
        let reply = post(&server, "/v1/triggers", &spec.to_string());
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let reply = http(
        server.addr,
        "POST",
        "/v1/hooks/deploys",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", "delivery-1"),
        ],
        br#"{"ok": false}"#,
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    wait_until_none_running(&server, "grader");

    browser.open(&format!("{}/#/triggers", base(&server)));
    browser.wait_for(
        "the webhook's execution",
        "return document.querySelector(\"#triggers tr[data-trigger='deploys'] .t-recent a\")?.innerText === 'deploys-delivery-1'",
        json!([]),
    );
    let row = |name: &str| {
        browser.script(
            "const r = document.querySelector(`#triggers tr[data-trigger='${arguments[0]}']`);
             return [r.dataset.enabled, r.cells[1].innerText, r.querySelector('.t-next').innerText.length > 0, r.querySelector('.t-toggle').innerText].join(' ')",
            json!([name]),
        )
    };
    assert_eq!(row("hourly"), json!("true schedule true Disable"));
    assert!(
        browser
            .text("#triggers tr[data-trigger='hourly'] .t-next")
            .contains("in "),
        "the next fire is ahead"
    );
    assert_eq!(row("deploys"), json!("true webhook true Disable"));
    assert!(
        browser
            .text("#triggers tr[data-trigger='deploys'] .t-last")
            .contains("1 started")
    );

    // Backfill the last three hours: a preview first, then the run.
    browser.click("#triggers tr[data-trigger='hourly'] .t-backfill");
    browser.find("#backfill-dialog[open]");
    let now = chrono::Utc::now();
    let local = |t: chrono::DateTime<chrono::Utc>| {
        browser
            .script(
                "const d = new Date(arguments[0]); const p = (n) => String(n).padStart(2, '0'); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`",
                json!([t.to_rfc3339()]),
            )
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (from, to) = (local(now - chrono::Duration::minutes(179)), local(now));
    browser.type_into("#backfill-from", "");
    browser.script(
        "document.querySelector('#backfill-from').value = arguments[0]; document.querySelector('#backfill-to').value = arguments[1];",
        json!([from, to]),
    );
    browser.click("#backfill-preview-button");
    let slots = browser.wait_for(
        "the preview",
        "const s = document.querySelector('#backfill-summary'); return s && [Number(s.dataset.slots), document.querySelectorAll('#backfill-preview ol.slots li').length, document.querySelector('#backfill-run').disabled]",
        json!([]),
    );
    // rate(1 hour) fires on the hour (anchored on the epoch): two or
    // three slots in a range just under three hours.
    let count = slots[0].as_u64().unwrap_or_default();
    assert!((2..=3).contains(&count), "{slots}");
    assert_eq!(slots[1], json!(count), "{slots}");
    assert_eq!(slots[2], json!(false), "{slots}");
    assert_eq!(
        get(&server, "/v1/executions?machine=grader&name=hourly-").json()["executions"],
        json!([]),
        "a preview starts nothing"
    );
    browser.doc_screenshot("triggers-backfill");
    browser.click("#backfill-run");
    browser.wait_for(
        "the dialog closed",
        "return document.querySelector('#backfill-dialog[open]') === null",
        json!([]),
    );
    wait_until_none_running(&server, "grader");
    let started = get(&server, "/v1/executions?machine=grader&name=hourly-").json();
    assert_eq!(
        started["executions"].as_array().map(Vec::len),
        Some(count as usize),
        "{started}"
    );
    browser.wait_for(
        "the backfilled executions listed",
        "return document.querySelectorAll(\"#triggers tr[data-trigger='hourly'] .t-recent a\").length >= 2",
        json!([]),
    );

    // Disable from the page: the API says so, and the next fire goes.
    browser.click("#triggers tr[data-trigger='hourly'] .t-toggle");
    browser.wait_for(
        "hourly disabled",
        "const r = document.querySelector(\"#triggers tr[data-trigger='hourly']\"); return r && r.dataset.enabled === 'false' && r.querySelector('.t-disabled') !== null && r.querySelector('.t-toggle').innerText === 'Enable'",
        json!([]),
    );
    let hourly = get(&server, "/v1/triggers/hourly").json();
    assert_eq!(hourly["enabled"], false, "{hourly}");
    assert_eq!(hourly["nextFire"], Value::Null, "{hourly}");
    browser.doc_screenshot("triggers");
    browser.click("#triggers tr[data-trigger='hourly'] .t-toggle");
    browser.wait_for(
        "hourly enabled again",
        "return document.querySelector(\"#triggers tr[data-trigger='hourly']\")?.dataset.enabled === 'true'",
        json!([]),
    );
    assert_eq!(get(&server, "/v1/triggers/hourly").json()["enabled"], true);
    browser.assert_quiet_console();
}

/// The workbench's editor follows the pages' dark mode: its background,
/// and token colours meant for a dark background, switched both ways
/// while it is open.
#[test]
fn the_workbench_editor_goes_dark_with_the_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    create_machine(&server, "grader", GRADER);
    open_workbench(&browser, &base(&server), "grader");
    // The colour of the first string ("Check", StartAt's value) and the
    // editor's background.
    let colours = |browser: &Browser| {
        browser.script(
            &in_editor(
                "const key = [...root.querySelectorAll('.cm-line span')].find((s) => s.textContent === '\"Check\"');
                 return document.documentElement.dataset.theme + ' ' + getComputedStyle(key).color + ' ' + getComputedStyle(root.querySelector('.cm-editor')).backgroundColor",
            ),
            json!([]),
        )
    };
    let light = colours(&browser);
    assert!(
        light
            .as_str()
            .is_some_and(|c| c.starts_with("light ") && c.ends_with("rgb(255, 255, 255)")),
        "{light}"
    );
    // auto -> dark.
    browser.click("#theme-toggle");
    browser.wait_for(
        "the dark editor",
        &in_editor(
            "return getComputedStyle(root.querySelector('.cm-editor')).backgroundColor === 'rgb(22, 27, 34)'",
        ),
        json!([]),
    );
    assert_eq!(
        colours(&browser),
        json!("dark rgb(165, 214, 255) rgb(22, 27, 34)")
    );
    browser.doc_screenshot("author-dark");
    // dark -> light: back to CodeMirror's own colours.
    browser.click("#theme-toggle");
    browser.wait_for(
        "the light editor",
        &in_editor(
            "return getComputedStyle(root.querySelector('.cm-editor')).backgroundColor === 'rgb(255, 255, 255)'",
        ),
        json!([]),
    );
    assert_eq!(colours(&browser), light);
    browser.assert_quiet_console();
}

/// Tasks that report the files they touched: `{"out": PATH}` as written,
/// `{"in": PATH}` as read.
struct ReportsFiles;

impl TaskRunner for ReportsFiles {
    fn run(&self, call: TaskCall) -> TaskFuture {
        Box::pin(async move {
            let input = call.request.input;
            let mut result = json!({});
            if let Some(out) = input.get("out") {
                result["stepline:outputs"] = json!([out]);
            }
            if let Some(read) = input.get("in") {
                result["stepline:inputs"] = json!([read]);
            }
            Ok(result)
        })
    }
}

/// The triggers page draws which state machine starts which (an
/// execution trigger is an arrow between two state machines, any other
/// trigger a node of its own), and the lineage pages follow a file from
/// the execution that wrote it to the one that read it, by clicking.
#[test]
fn the_triggers_graph_and_the_lineage_graph_lead_where_they_say() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start_with(Arc::new(ReportsFiles));
    let task = |name: &str| {
        format!(
            r#"{{"StartAt": "{name}", "States": {{"{name}": {{"Type": "Task", "Resource": "stepline:process:{name}", "End": true}}}}}}"#
        )
    };
    create_machine(&server, "extract", &task("Extract"));
    create_machine(&server, "load", &task("Load"));
    for spec in [
        json!({"name": "nightly", "kind": "schedule", "stateMachine": "extract", "schedule": "cron(0 2 * * ? *)"}),
        json!({"name": "after-extract", "kind": "execution", "source": "extract", "stateMachine": "load"}),
    ] {
        let reply = post(&server, "/v1/triggers", &spec.to_string());
        assert_eq!(reply.status, 201, "{}", reply.body);
    }

    browser.open(&format!("{}/#/triggers", base(&server)));
    browser.wait_for(
        "the arrow from extract to load",
        "return document.querySelector(\"#trigger-graph path.edge[data-from='m:extract'][data-to='m:load']\") !== null",
        json!([]),
    );
    let labels = browser.text("#trigger-graph");
    assert!(labels.contains("after-extract"), "{labels}");
    browser.find("#trigger-graph path.edge[data-from='t:nightly'][data-to='m:extract']");
    browser.doc_screenshot("triggers-graph");
    browser.click("#trigger-graph g.node[data-state='m:load']");
    browser.wait_for(
        "the state machine's page",
        "return location.hash === '#/machines/load'",
        json!([]),
    );

    // extract writes a file; load reads it.
    let path = "/data/warehouse/orders/2026-03-01.csv";
    start(
        &server,
        "extract",
        "day-0301",
        &json!({"out": path}).to_string(),
    );
    start(
        &server,
        "load",
        "day-0301",
        &json!({"in": path}).to_string(),
    );
    wait_until_none_running(&server, "extract");
    wait_until_none_running(&server, "load");

    browser.open(&format!("{}/#/executions/extract/day-0301", base(&server)));
    browser.wait_for(
        "the execution's files",
        "return [...document.querySelectorAll('#lineage-graph path.edge')].some((e) => e.dataset.from.startsWith('e:') && e.dataset.to === 'f:' + arguments[0])",
        json!([path]),
    );
    browser.click(&format!("#lineage-graph g.node[data-state='f:{path}']"));
    browser.wait_for(
        "the file's lineage",
        "return document.querySelector('#lineage-list tbody tr:nth-child(2)') !== null",
        json!([]),
    );
    let list = browser.text("#lineage-list");
    assert!(
        list.contains("wrote") && list.contains("extract/day-0301"),
        "{list}"
    );
    assert!(
        list.contains("read") && list.contains("load/day-0301"),
        "{list}"
    );
    assert_eq!(browser.text("#nav-lineage"), "Lineage");
    browser.doc_screenshot("lineage");
    // From the file to the execution that read it.
    browser.script(
        "document.querySelector(\"#lineage-graph g.node[data-state^='e:'][data-state*=':load:']\").dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        json!([]),
    );
    browser.wait_for(
        "the reader's page",
        "return location.hash === '#/executions/load/day-0301'",
        json!([]),
    );
    browser.assert_quiet_console();
}

/// A start beyond its state machine's `max_running` waits in its queue:
/// its page says so, with its place in the line, until a slot frees and
/// it runs.
#[test]
fn a_queued_execution_says_what_it_waits_for() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let config = stepline_runtime::EngineConfig {
        max_running: [("gate".to_owned(), 1)].into_iter().collect(),
        ..stepline_runtime::EngineConfig::default()
    };
    let server = Server::start_configured(Arc::new(ReportsFiles), config);
    create_machine(&server, "gate", &crate::rest::waiting(3600));
    start(&server, "gate", "first", "{}");
    start(&server, "gate", "second", "{}");

    browser.open(&format!("{}/#/executions/gate/second", base(&server)));
    browser.wait_for(
        "the queued note",
        "return document.querySelector(\"#exec-queued[data-reason='max_running']\") !== null",
        json!([]),
    );
    let note = browser.text("#exec-queued");
    assert!(note.contains("Queued, 1 of 1"), "{note}");
    let reply = post(&server, "/v1/executions/gate/first/stop", "{}");
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Its start reaches the page through the history it follows.
    browser.wait_for(
        "the note gone and the Wait running",
        "return document.querySelector('#exec-queued') === null && document.querySelector(\"g.node[data-state='Nap']\")?.classList.contains('st-running')",
        json!([]),
    );
    browser.assert_quiet_console();
}

/// Tasks that take two seconds.
struct TwoSeconds;

impl TaskRunner for TwoSeconds {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok(json!({}))
        })
    }
}

/// A task waiting for a slot of its pool says so on its execution's
/// page, and its TaskStarted event says how long it waited.
#[test]
fn a_task_waiting_for_its_pool_says_so() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let pools: std::collections::BTreeMap<String, stepline_runtime::pools::PoolConfig> =
        serde_json::from_value(json!({"one": {"slots": 1, "processes": ["slow"]}}))
            .expect("pool config");
    let config = stepline_runtime::EngineConfig {
        pools: Arc::new(stepline_runtime::pools::Pools::new(&pools).expect("pools")),
        ..stepline_runtime::EngineConfig::default()
    };
    let server = Server::start_configured(Arc::new(TwoSeconds), config);
    create_machine(
        &server,
        "pooled",
        r#"{"StartAt": "Load", "States": {"Load": {"Type": "Task", "Resource": "stepline:process:slow", "End": true}}}"#,
    );
    start(&server, "pooled", "first", "{}");
    start(&server, "pooled", "second", "{}");

    browser.open(&format!("{}/#/executions/pooled/second", base(&server)));
    browser.wait_for(
        "the pool wait",
        "return document.querySelector(\".pool-wait[data-pool='one'][data-state='Load']\") !== null",
        json!([]),
    );
    browser.wait_for(
        "the wait over and its length in the events",
        "return document.querySelector('.pool-wait') === null && [...document.querySelectorAll('#timeline tr')].some((r) => /TaskStarted/.test(r.innerText) && /pool one, waited \\d/.test(r.innerText))",
        json!([]),
    );
    browser.assert_quiet_console();
}
