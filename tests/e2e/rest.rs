//! The native REST API under `/v1/` on a real server bound to a loopback
//! port, through raw HTTP/1.1 as curl speaks it: the whole flow, invalid
//! definitions with every diagnostic, long polls and server-sent events,
//! stop, paging, and the OpenAPI document held against the router.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::aws::Server;

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return out;
        };
        if size == 0 || raw.len() < end + 2 + size {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
}

/// One raw HTTP/1.1 request (`Connection: close`); the answer as read
/// until the server closes. `headers` may override Content-Type; `None` as
/// a value leaves the header out.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    let has_type = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !has_type && !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        if !value.is_empty() {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    // The server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let raw_body = response.get(split + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn get(server: &Server, path: &str) -> Reply {
    http(server.addr, "GET", path, &[], b"")
}

pub fn post(server: &Server, path: &str, body: &str) -> Reply {
    http(server.addr, "POST", path, &[], body.as_bytes())
}

/// A Pass, a Task (the test server's tasks echo their input) and a Succeed.
pub const FLOW: &str = r#"{
  "Comment": "the REST flow",
  "StartAt": "Greet",
  "States": {
    "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"}, "Next": "Work"},
    "Work": {"Type": "Task", "Resource": "stepline:process:echo", "ResultPath": "$.work", "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

/// Waits `seconds` in a Wait state, then succeeds.
pub fn waiting(seconds: u64) -> String {
    format!(
        r#"{{"StartAt": "Nap", "States": {{"Nap": {{"Type": "Wait", "Seconds": {seconds}, "Next": "Done"}}, "Done": {{"Type": "Succeed"}}}}}}"#
    )
}

fn wait_until_done(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = get(server, &format!("/v1/executions/{id}"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let execution = reply.json();
        if execution["status"] != "RUNNING" {
            return execution;
        }
        assert!(Instant::now() < deadline, "{id} did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_state_machine_runs_through_the_rest_api() {
    let server = Server::start();

    // Created from the definition itself; stored exactly as sent.
    let created = post(&server, "/v1/state-machines?name=flow", FLOW);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some("/v1/state-machines/flow"));
    let machine = created.json();
    assert_eq!(machine["name"], "flow");
    assert_eq!(machine["type"], "STANDARD");
    assert_eq!(machine["definition"], FLOW);
    assert_eq!(
        machine["arn"],
        "arn:aws:states:us-east-1:111111111111:stateMachine:flow"
    );
    assert_eq!(get(&server, "/v1/state-machines/flow").json(), machine);

    // Created in the wrapped form, the definition as an object.
    let definition: Value = serde_json::from_str(FLOW).expect("json");
    let wrapped = json!({"name": "express", "definition": definition, "type": "EXPRESS"});
    let created = post(&server, "/v1/state-machines", &wrapped.to_string());
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["type"], "EXPRESS");
    let again = post(&server, "/v1/state-machines", &wrapped.to_string());
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.json()["code"], "StateMachineAlreadyExists");

    let listed = get(&server, "/v1/state-machines").json();
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["express", "flow"]);

    // EXPRESS executions may share a name; each id adds the ARN's own id.
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let started = http(
                server.addr,
                "POST",
                "/v1/state-machines/express/executions?name=twice",
                &[],
                br#"{"who": "express"}"#,
            );
            assert_eq!(started.status, 201, "{}", started.body);
            let id = started.json()["id"].as_str().expect("id").to_owned();
            let arn = started.json()["arn"].as_str().expect("arn").to_owned();
            assert_eq!(
                started.header("location").map(str::to_owned),
                Some(format!("/v1/executions/{}", id.replace(':', "%3A")))
            );
            assert_eq!(
                arn.split_once(":express:")
                    .map(|(_, key)| key.replacen(':', "/", 1)),
                Some(id.clone())
            );
            id
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        assert!(id.starts_with("express/twice:"), "{id}");
        let done = wait_until_done(&server, id);
        assert_eq!(
            (done["name"].as_str(), done["status"].as_str()),
            (Some("twice"), Some("SUCCEEDED"))
        );
    }

    // Started with the input as the body and the name in a header.
    let started = http(
        server.addr,
        "POST",
        "/v1/state-machines/flow/executions",
        &[("Execution-Name", "run-1")],
        br#"{"who": "world"}"#,
    );
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(
        started.header("location"),
        Some("/v1/executions/flow/run-1")
    );
    assert_eq!(started.json()["id"], "flow/run-1");
    let done = wait_until_done(&server, "flow/run-1");
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(done["input"], json!({"who": "world"}));
    assert_eq!(
        done["output"],
        json!({"greeting": "hello world", "work": {"echo": {"greeting": "hello world"}}})
    );
    assert!(done["stopDate"].is_string());

    // The history, whole and then after an event.
    let history = get(&server, "/v1/executions/flow/run-1/history").json();
    let events = history["events"].as_array().expect("events");
    assert_eq!(history["status"], "SUCCEEDED");
    assert_eq!(history["more"], false);
    assert_eq!(events[0]["type"], "ExecutionStarted");
    assert_eq!(events[0]["details"]["input"], json!({"who": "world"}));
    assert_eq!(events.last().expect("last")["type"], "ExecutionSucceeded");
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(history["lastEventId"], json!(ids.len()));
    let page = get(&server, "/v1/executions/flow/run-1/history?after=2&limit=2").json();
    let page_ids: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(page_ids, [3, 4]);
    assert_eq!(page["more"], true);
    assert_eq!(page["lastEventId"], 4);

    // The same name and input while it ran would return it; now it is
    // closed, so the name is taken.
    let again = post(
        &server,
        "/v1/state-machines/flow/executions?name=run-1",
        r#"{"who": "world"}"#,
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.json()["code"], "ExecutionAlreadyExists");

    // More executions: listing filters and pages, newest first.
    for n in 2..=4 {
        let started = post(
            &server,
            &format!("/v1/state-machines/flow/executions?name=run-{n}"),
            r#"{"who": "you"}"#,
        );
        assert_eq!(started.status, 201, "{}", started.body);
        wait_until_done(&server, &format!("flow/run-{n}"));
    }
    let all = get(&server, "/v1/executions?machine=flow&status=SUCCEEDED").json();
    let names: Vec<&str> = all["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 4, "{all}");
    assert_eq!(names[0], "run-4");
    let none = get(&server, "/v1/executions?machine=flow&status=FAILED").json();
    assert_eq!(none["executions"], json!([]));
    let mut paged = Vec::new();
    let mut path = "/v1/executions?machine=flow&limit=3".to_owned();
    loop {
        let page = get(&server, &path).json();
        for e in page["executions"].as_array().expect("executions") {
            paged.push(e["name"].as_str().expect("name").to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/executions?machine=flow&limit=3&next={next}"),
            None => break,
        }
    }
    assert_eq!(paged, names);
    let other_list = get(
        &server,
        &format!(
            "/v1/executions?limit=3&next={}",
            get(&server, "/v1/executions?machine=flow&limit=3").json()["next"]
                .as_str()
                .expect("next")
        ),
    );
    assert_eq!(other_list.status, 400, "{}", other_list.body);
    assert_eq!(other_list.json()["code"], "InvalidToken");

    // Update: new executions use the new revision.
    let updated = http(
        server.addr,
        "PUT",
        "/v1/state-machines/flow",
        &[],
        waiting(0).as_bytes(),
    );
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["revision"], 2);
    let role = json!({"roleArn": "arn:aws:iam::111111111111:role/other"});
    let updated = http(
        server.addr,
        "PUT",
        "/v1/state-machines/flow",
        &[],
        role.to_string().as_bytes(),
    );
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["roleArn"], role["roleArn"]);
    assert_eq!(updated.json()["definition"], waiting(0));

    // Delete: 204, then 404; its executions are still there.
    let deleted = http(server.addr, "DELETE", "/v1/state-machines/flow", &[], b"");
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = get(&server, "/v1/state-machines/flow");
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["code"], "StateMachineDoesNotExist");
    assert_eq!(get(&server, "/v1/executions/flow/run-1").status, 200);
}

#[test]
fn an_invalid_definition_is_answered_with_every_diagnostic() {
    let server = Server::start();
    let definition = "{\n  \"StartAt\": \"Missing\",\n  \"States\": {\n    \"A\": {\"Type\": \"Pass\", \"Nxt\": \"B\"}\n  }\n}";
    let reply = post(&server, "/v1/state-machines?name=bad", definition);
    assert_eq!(reply.status, 422, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["code"], "InvalidDefinition");
    let diagnostics = body["diagnostics"].as_array().expect("diagnostics");
    assert!(diagnostics.len() >= 2, "{body}");
    for d in diagnostics {
        assert!(d["line"].as_u64().expect("line") >= 1, "{d}");
        assert!(d["column"].as_u64().expect("column") >= 1, "{d}");
        assert!(d["pointer"].is_string() && d["code"].is_string(), "{d}");
    }
    // The unknown field is reported at its key, line 4.
    assert!(
        diagnostics
            .iter()
            .any(|d| d["pointer"] == "/States/A/Nxt" && d["line"] == 4),
        "{body}"
    );
    // Text that is not JSON is a definition error too, with its position.
    let reply = post(&server, "/v1/state-machines?name=bad", "{\n  \"StartAt\": ");
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.json()["diagnostics"][0]["line"], 2);

    // Validation without storing: the same diagnostics, always 200.
    let reply = post(&server, "/v1/validate", definition);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["valid"], false);
    assert_eq!(reply.json()["diagnostics"], body["diagnostics"]);
    let reply = post(&server, "/v1/validate", FLOW);
    assert_eq!(reply.json(), json!({"valid": true, "diagnostics": []}));
    assert_eq!(
        get(&server, "/v1/state-machines").json()["stateMachines"],
        json!([])
    );
}

#[test]
fn history_long_polls_and_streams_until_the_end() {
    let server = Server::start();
    let created = post(&server, "/v1/state-machines?name=nap", &waiting(1));
    assert_eq!(created.status, 201, "{}", created.body);
    let started = post(&server, "/v1/state-machines/nap/executions?name=n1", "");
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.json()["input"], json!({}));

    // Everything so far, then a long poll for what comes after.
    let first = get(&server, "/v1/executions/nap/n1/history").json();
    assert_eq!(first["status"], "RUNNING");
    let last = first["lastEventId"].as_u64().expect("last");
    let since = Instant::now();
    let next = get(
        &server,
        &format!("/v1/executions/nap/n1/history?after={last}&wait=20"),
    )
    .json();
    let waited = since.elapsed();
    assert!(
        waited > Duration::from_millis(300) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    let events = next["events"].as_array().expect("events");
    assert!(!events.is_empty(), "{next}");
    assert_eq!(events[0]["id"], json!(last + 1));

    // The stream from the start: every event once, in order, then `end`.
    let stream = http(server.addr, "GET", "/v1/executions/nap/n1/events", &[], b"");
    assert_eq!(stream.status, 200, "{}", stream.body);
    assert!(
        stream
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        stream.headers
    );
    let (ids, end) = parse_stream(&stream.body);
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let end = end.expect("an end message");
    assert_eq!(end["status"], "SUCCEEDED");
    let history = get(&server, "/v1/executions/nap/n1/history").json();
    assert_eq!(history["lastEventId"], json!(ids.len()));

    // Accept: text/event-stream on /history, resumed with Last-Event-ID.
    let resumed = http(
        server.addr,
        "GET",
        "/v1/executions/nap/n1/history",
        &[("Accept", "text/event-stream"), ("Last-Event-ID", "3")],
        b"",
    );
    let (resumed_ids, end) = parse_stream(&resumed.body);
    assert_eq!(resumed_ids.first(), Some(&4), "{}", resumed.body);
    assert_eq!(resumed_ids.len(), ids.len() - 3);
    assert!(end.is_some());
}

/// The ids of an event stream's messages, and its `end` message.
fn parse_stream(body: &str) -> (Vec<u64>, Option<Value>) {
    let mut ids = Vec::new();
    let mut end = None;
    for message in body.split("\n\n") {
        let mut event = "message";
        let mut data = String::new();
        let mut id = None;
        for line in message.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse::<u64>().ok();
            }
        }
        if data.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&data).expect("data is JSON");
        match event {
            "end" => end = Some(value),
            _ => {
                assert_eq!(value["id"].as_u64(), id, "{value}");
                ids.push(id.expect("id"));
            }
        }
    }
    (ids, end)
}

#[test]
fn stop_aborts_a_running_execution() {
    let server = Server::start();
    assert_eq!(
        post(&server, "/v1/state-machines?name=long", &waiting(3600)).status,
        201
    );
    assert_eq!(
        post(&server, "/v1/state-machines/long/executions?name=l1", "{}").status,
        201
    );
    // Started again with the same name and input while it runs: the same
    // execution, 200 rather than 201.
    let again = post(&server, "/v1/state-machines/long/executions?name=l1", "{}");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["id"], "long/l1");
    let stopped = post(
        &server,
        "/v1/executions/long/l1/stop",
        r#"{"error": "Operator", "cause": "no longer needed"}"#,
    );
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    let stopped = stopped.json();
    assert_eq!(stopped["status"], "ABORTED");
    assert_eq!(stopped["error"], "Operator");
    let history = get(&server, "/v1/executions/long/l1/history?wait=30").json();
    assert_eq!(history["status"], "ABORTED");
    assert_eq!(
        history["events"]
            .as_array()
            .expect("events")
            .last()
            .expect("last")["type"],
        "ExecutionAborted"
    );
    // Stopping an ended execution leaves it as it is.
    let again = post(&server, "/v1/executions/long/l1/stop", "");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["status"], "ABORTED");
    let missing = post(&server, "/v1/executions/long/nope/stop", "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "ExecutionDoesNotExist");
}

/// The OpenAPI document and the router list the same routes, and the
/// server answers every documented operation with its handler (not the
/// not-found or method-not-allowed fallback).
#[test]
fn the_openapi_document_matches_the_router() {
    let server = Server::start();
    let reply = get(&server, "/v1/openapi.json");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = stepline::rest::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    routed.sort();
    assert_eq!(documented, routed);

    for (method, path) in &documented {
        let concrete = path.replace("{machine}", "m").replace("{name}", "n");
        let reply = http(server.addr, &method.to_uppercase(), &concrete, &[], b"");
        let code = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        assert!(
            reply.status != 405 && code.as_deref() != Some("NotFound"),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }
    // And the fallbacks answer in the REST error shape.
    let reply = get(&server, "/v1/nothing-here");
    assert_eq!(
        (reply.status, reply.json()["code"].clone()),
        (404, json!("NotFound"))
    );
    let reply = http(server.addr, "PATCH", "/v1/state-machines", &[], b"");
    assert_eq!(
        (reply.status, reply.json()["code"].clone()),
        (405, json!("MethodNotAllowed"))
    );
}

/// An open event stream of a running execution does not hold the server's
/// graceful shutdown open: the stream closes and the server stops.
#[test]
fn shutdown_closes_open_streams() {
    let server = Server::start();
    assert_eq!(
        post(&server, "/v1/state-machines?name=long", &waiting(3600)).status,
        201
    );
    assert_eq!(
        post(&server, "/v1/state-machines/long/executions?name=l1", "{}").status,
        201
    );
    let addr = server.addr;
    let stream =
        std::thread::spawn(move || http(addr, "GET", "/v1/executions/long/l1/events", &[], b""));
    let poll = std::thread::spawn(move || {
        http(
            addr,
            "GET",
            "/v1/executions/long/l1/history?after=2&wait=60",
            &[],
            b"",
        )
    });
    // Both are waiting inside the server now.
    std::thread::sleep(Duration::from_millis(300));
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        let _ = done.send(());
    });
    assert!(
        stopped.recv_timeout(Duration::from_secs(10)).is_ok(),
        "the server did not stop while a stream and a long poll were open"
    );
    let stream = stream.join().expect("stream thread");
    assert_eq!(stream.status, 200);
    let (ids, end) = parse_stream(&stream.body);
    assert_eq!(ids, [1, 2]);
    assert!(end.is_none(), "the execution has not ended");
    let poll = poll.join().expect("poll thread");
    assert_eq!(poll.status, 200, "{}", poll.body);
    assert_eq!(poll.json()["status"], "RUNNING");
}
