//! `stepline serve --load DIR`: definitions authored as files become state
//! machines and follow the files' changes, through the real binary.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::aws::call_raw;
use crate::support::TempDir;

struct Serve {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &std::path::Path, load: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stepline-under-test"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--load")
        .arg(load)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Serve { child, addr }
}

fn definition(result: &str) -> String {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": true}}})
        .to_string()
}

fn describe(serve: &Serve, name: &str) -> Value {
    let arn = format!("arn:aws:states:us-east-1:111111111111:stateMachine:{name}");
    call_raw(
        serve.addr,
        "DescribeStateMachine",
        &json!({"stateMachineArn": arn}).to_string(),
    )
    .1
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_folder_of_definitions_is_loaded_and_followed() {
    let data = TempDir::new("load-data");
    let dir = TempDir::new("load-dir");
    dir.write("orders.asl.json", definition("v1"));
    dir.write("quick.express.asl.json", definition("fast"));
    dir.write(
        "broken.asl.json",
        "{\"StartAt\": \"Nope\",\n \"States\": {}}",
    );
    dir.write("notes.txt", "not a definition");
    let mut serve = serve(data.path(), dir.path());

    assert_eq!(describe(&serve, "orders")["definition"], definition("v1"));
    assert_eq!(describe(&serve, "quick")["type"], "EXPRESS");
    assert_eq!(
        describe(&serve, "broken")["__type"],
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        describe(&serve, "notes")["__type"],
        "StateMachineDoesNotExist"
    );

    // An edit updates the machine; a broken edit leaves it as it was.
    std::thread::sleep(Duration::from_millis(20));
    dir.write("orders.asl.json", definition("v2"));
    eventually("the edit is loaded", || {
        describe(&serve, "orders")["definition"] == definition("v2")
    });
    assert_eq!(describe(&serve, "orders")["revisionId"], "2");
    dir.write("orders.asl.json", "{\"StartAt\": 5}");
    // Named to sort after orders.asl.json: files load in name order, so
    // once it is loaded, the broken orders file has been reported.
    dir.write("zz-added.asl.json", definition("new"));
    eventually("the new file is loaded", || {
        describe(&serve, "zz-added")["definition"] == definition("new")
    });
    assert_eq!(describe(&serve, "orders")["definition"], definition("v2"));

    // Every problem of a bad file is reported with its line and column.
    let _ = serve.child.kill();
    let _ = serve.child.wait();
    let mut stderr = String::new();
    serve
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    let broken = dir.path().join("broken.asl.json").display().to_string();
    assert!(stderr.contains(&format!("{broken}:1:")), "{stderr}");
    assert!(stderr.contains("created state machine orders"), "{stderr}");
    assert!(
        stderr.contains("updated state machine orders (revision 2)"),
        "{stderr}"
    );
    let orders = dir.path().join("orders.asl.json").display().to_string();
    assert!(stderr.contains(&format!("{orders}:1:")), "{stderr}");
}
