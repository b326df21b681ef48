//! Listing executions through both doors of a real `stepline serve` over
//! sled, with large inputs stored: ListExecutions (AWS JSON) and `GET
//! /v1/executions` (REST) page through the store's listing index with
//! opaque tokens, filter by machine, status and redrive as AWS does, never
//! show inputs or outputs, and leave `/health` answering while pages are
//! read. Results are checked, not timings (the benchmark is
//! `engine/runtime/benches/listing.rs`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::aws::call_raw;
use crate::rest::http;
use crate::support::{Serve, TempDir, stepline_binary};

/// Executions of the listed machine; each with an input this large.
const EXECUTIONS: usize = 120;
const INPUT_BYTES: usize = 200 * 1024;

/// Ends by the input: FAILED with `fail` (a state's runtime error, so a
/// redrive runs it again and fails again; a Fail state is not redriven),
/// waiting an hour (RUNNING) with `wait`, SUCCEEDED otherwise.
const DEFINITION: &str = r#"{
  "StartAt": "Route",
  "States": {
    "Route": {"Type": "Choice", "Choices": [
      {"Variable": "$.fail", "BooleanEquals": true, "Next": "Refuse"},
      {"Variable": "$.wait", "BooleanEquals": true, "Next": "Hold"}
    ], "Default": "Done"},
    "Refuse": {"Type": "Pass", "Parameters": {"reason.$": "$.no_such_field"}, "End": true},
    "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
    "Done": {"Type": "Pass", "Result": "ok", "End": true}
  }
}"#;

fn expected_status(i: usize) -> &'static str {
    if i % 10 == 3 {
        "FAILED"
    } else if i % 20 == 7 {
        "RUNNING"
    } else {
        "SUCCEEDED"
    }
}

/// What one execution shows in a listing.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    name: String,
    status: String,
    redrive_count: u64,
}

/// Every page of a ListExecutions request, by nextToken; each page's
/// size is checked against `size` (full but for the last).
fn aws_pages(addr: SocketAddr, request: &Value, size: Option<usize>) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = request.clone();
        if let Some(size) = size {
            request["maxResults"] = json!(size);
        }
        if let Some(t) = &token {
            request["nextToken"] = json!(t);
        }
        let (status, page) = call_raw(addr, "ListExecutions", &request.to_string());
        assert_eq!(status, 200, "{request}: {page}");
        let items = page["executions"].as_array().expect("executions").clone();
        let next = page["nextToken"].as_str().map(str::to_owned);
        let full = size.unwrap_or(100);
        assert!(items.len() <= full, "a page past maxResults");
        if next.is_some() {
            assert_eq!(items.len(), full, "a page with more to come is full");
        }
        pages.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return pages,
        }
    }
}

fn aws_listed(items: &[Value]) -> Vec<Listed> {
    items
        .iter()
        .map(|e| {
            assert!(e.get("input").is_none() && e.get("output").is_none(), "{e}");
            Listed {
                name: e["name"].as_str().expect("name").to_owned(),
                status: e["status"].as_str().expect("status").to_owned(),
                redrive_count: e["redriveCount"].as_u64().expect("redriveCount"),
            }
        })
        .collect()
}

/// Every page of `GET /v1/executions?QUERY`, by `next`; each at most
/// `limit` long, full but for the last.
fn rest_pages(addr: SocketAddr, query: &str, limit: usize) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!("/v1/executions?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(n) = &next {
            path.push_str(&format!("&next={n}"));
        }
        let reply = http(addr, "GET", &path, &[], b"");
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let page = reply.json();
        let items = page["executions"].as_array().expect("executions").clone();
        next = page["next"].as_str().map(str::to_owned);
        assert!(items.len() <= limit);
        if next.is_some() {
            assert_eq!(items.len(), limit);
        }
        for e in &items {
            assert!(e.get("input").is_none() && e.get("output").is_none(), "{e}");
        }
        pages.extend(items);
        if next.is_none() {
            return pages;
        }
    }
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

fn create(server: &Serve, name: &str) -> String {
    let (status, created) = server.call(
        "CreateStateMachine",
        &json!({
            "name": name,
            "definition": DEFINITION,
            "roleArn": "arn:aws:iam::123456789012:role/r",
        }),
    );
    assert_eq!(status, 200, "{created}");
    created["stateMachineArn"].as_str().expect("arn").to_owned()
}

fn start(server: &Serve, machine: &str, name: &str, input: &Value) -> String {
    let (status, body) = server.call(
        "StartExecution",
        &json!({"stateMachineArn": machine, "name": name, "input": input.to_string()}),
    );
    assert_eq!(status, 200, "{body}");
    body["executionArn"].as_str().expect("arn").to_owned()
}

/// Waits until `count` executions match `request` (a ListExecutions
/// request).
fn settle(addr: SocketAddr, request: Value, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = aws_pages(addr, &request, Some(1000)).len();
        if now == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} executions match {request}, expected {count}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn error_type(addr: SocketAddr, request: &Value) -> (u16, String) {
    let (status, body) = call_raw(addr, "ListExecutions", &request.to_string());
    (
        status,
        body["__type"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn listings_page_through_large_executions_with_tokens_and_filters() {
    let data = TempDir::new("listing");
    let server = Serve::start(&stepline_binary(), data.path());
    let addr = server.addr;
    let machine = create(&server, "orders");
    let other = create(&server, "orders-other");

    let blob = "x".repeat(INPUT_BYTES);
    for i in 0..EXECUTIONS {
        let status = expected_status(i);
        let input = json!({
            "blob": blob,
            "fail": status == "FAILED",
            "wait": status == "RUNNING",
        });
        start(&server, &machine, &format!("run-{i:03}"), &input);
    }
    for i in 0..3 {
        start(
            &server,
            &other,
            &format!("other-{i}"),
            &json!({"blob": blob}),
        );
    }
    let running = (0..EXECUTIONS)
        .filter(|i| expected_status(*i) == "RUNNING")
        .count();
    let still_running = json!({"stateMachineArn": machine, "statusFilter": "RUNNING"});
    settle(addr, still_running.clone(), running);

    // Three failed executions redriven: they fail again, counted.
    let redriven: BTreeSet<String> = ["run-003", "run-053", "run-103"].map(str::to_owned).into();
    for name in &redriven {
        let arn = format!(
            "{}:{name}",
            machine.replace(":stateMachine:", ":execution:")
        );
        let (status, body) = server.call("RedriveExecution", &json!({"executionArn": arn}));
        assert_eq!(status, 200, "{body}");
    }
    let failed_again =
        json!({"stateMachineArn": machine, "statusFilter": "FAILED", "redriveFilter": "REDRIVEN"});
    settle(addr, failed_again, redriven.len());
    settle(addr, still_running, running);

    // The whole list in one page: every execution once, newest start
    // first, each as it ended, without its input.
    let reference = aws_pages(addr, &json!({"stateMachineArn": machine}), Some(1000));
    let listed = aws_listed(&reference);
    let expected: BTreeSet<String> = (0..EXECUTIONS).map(|i| format!("run-{i:03}")).collect();
    assert_eq!(
        listed
            .iter()
            .map(|l| l.name.clone())
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(listed.len(), EXECUTIONS);
    for l in &listed {
        let i: usize = l.name[4..].parse().expect("index");
        assert_eq!(l.status, expected_status(i), "{}", l.name);
        let count = u64::from(redriven.contains(&l.name));
        assert_eq!(l.redrive_count, count, "{}", l.name);
    }
    let starts: Vec<f64> = reference
        .iter()
        .map(|e| e["startDate"].as_f64().expect("startDate"))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {starts:?}"
    );
    let order = names(&reference);

    // Pages of every size follow each other, the default page is 100.
    for size in [Some(1), Some(7), Some(50), None] {
        let paged = aws_pages(addr, &json!({"stateMachineArn": machine}), size);
        assert_eq!(names(&paged), order, "pages of {size:?}");
    }

    // Filters, alone and together, in the same order.
    let only = |keep: &dyn Fn(&Listed) -> bool| -> Vec<String> {
        listed
            .iter()
            .filter(|l| keep(l))
            .map(|l| l.name.clone())
            .collect()
    };
    let filtered = |extra: Value| -> Vec<String> {
        let mut request = json!({"stateMachineArn": machine});
        for (k, v) in extra.as_object().expect("fields") {
            request[k] = v.clone();
        }
        names(&aws_pages(addr, &request, Some(7)))
    };
    for status in ["SUCCEEDED", "FAILED", "RUNNING", "TIMED_OUT", "ABORTED"] {
        assert_eq!(
            filtered(json!({"statusFilter": status})),
            only(&|l| l.status == status),
            "{status}"
        );
    }
    assert!(filtered(json!({"statusFilter": "PENDING_REDRIVE"})).is_empty());
    assert_eq!(
        filtered(json!({"redriveFilter": "REDRIVEN"})),
        only(&|l| l.redrive_count > 0)
    );
    assert_eq!(
        filtered(json!({"redriveFilter": "NOT_REDRIVEN"})),
        only(&|l| l.redrive_count == 0)
    );
    assert_eq!(
        filtered(json!({"statusFilter": "FAILED", "redriveFilter": "NOT_REDRIVEN"})),
        only(&|l| l.status == "FAILED" && l.redrive_count == 0)
    );
    assert_eq!(
        filtered(json!({"statusFilter": "SUCCEEDED", "redriveFilter": "REDRIVEN"})),
        Vec::<String>::new()
    );
    let others = aws_pages(addr, &json!({"stateMachineArn": other}), Some(2));
    assert_eq!(names(&others), ["other-2", "other-1", "other-0"]);

    // Tokens: the same token gives the same page; a token is good only
    // for the list and filters it came from; anything else is refused as
    // AWS refuses it.
    let first_page = |request: &Value| {
        let (status, page) = call_raw(addr, "ListExecutions", &request.to_string());
        assert_eq!(status, 200, "{page}");
        page
    };
    let failed = json!({"stateMachineArn": machine, "statusFilter": "FAILED", "maxResults": 2});
    let token = first_page(&failed)["nextToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let mut again = failed.clone();
    again["nextToken"] = json!(token);
    assert_eq!(first_page(&again), first_page(&again));
    assert_eq!(
        names(first_page(&again)["executions"].as_array().expect("page")),
        only(&|l| l.status == "FAILED")[2..4]
    );
    let with_token = |mut request: Value, token: &str| {
        request["nextToken"] = json!(token);
        request
    };
    let refused = [
        with_token(
            json!({"stateMachineArn": machine, "statusFilter": "SUCCEEDED"}),
            &token,
        ),
        with_token(json!({"stateMachineArn": machine}), &token),
        with_token(
            json!({"stateMachineArn": machine, "statusFilter": "FAILED", "redriveFilter": "REDRIVEN"}),
            &token,
        ),
        with_token(
            json!({"stateMachineArn": other, "statusFilter": "FAILED"}),
            &token,
        ),
        with_token(failed.clone(), "garbage"),
        with_token(failed.clone(), &format!("A{token}")),
        with_token(failed.clone(), &token.replace('.', ".x")),
    ];
    for request in refused {
        assert_eq!(
            error_type(addr, &request),
            (400, "InvalidToken".to_owned()),
            "{request}"
        );
    }
    let (_, body) = call_raw(
        addr,
        "ListExecutions",
        &with_token(failed.clone(), "garbage").to_string(),
    );
    assert_eq!(body["message"], json!("Invalid Token: 'garbage'"));
    for (request, error) in [
        (
            json!({"stateMachineArn": machine, "mapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:orders/Map:x"}),
            "ValidationException",
        ),
        (
            json!({"stateMachineArn": machine, "statusFilter": "DONE"}),
            "ValidationException",
        ),
        (
            json!({"stateMachineArn": machine, "redriveFilter": "SOMETIMES"}),
            "ValidationException",
        ),
        (
            json!({"stateMachineArn": machine, "maxResults": 1001}),
            "ValidationException",
        ),
        (
            json!({"stateMachineArn": format!("{machine}-gone")}),
            "StateMachineDoesNotExist",
        ),
    ] {
        assert_eq!(error_type(addr, &request).1, error, "{request}");
    }

    // REST: the same order and filters, its own tokens.
    let rest_query = "machine=orders";
    for limit in [1, 13, 100] {
        assert_eq!(
            names(&rest_pages(addr, rest_query, limit)),
            order,
            "limit {limit}"
        );
    }
    assert_eq!(
        names(&rest_pages(addr, "machine=orders&status=FAILED", 4)),
        only(&|l| l.status == "FAILED")
    );
    let everything = rest_pages(addr, "", 25);
    assert_eq!(everything.len(), EXECUTIONS + 3);
    let mut every_name = names(&everything);
    every_name.sort();
    let mut all_names: Vec<String> = order.iter().cloned().chain(names(&others)).collect();
    all_names.sort();
    assert_eq!(every_name, all_names);
    let reply = http(
        addr,
        "GET",
        "/v1/executions?machine=orders&limit=2",
        &[],
        b"",
    );
    let rest_token = reply.json()["next"].as_str().expect("next").to_owned();
    for path in [
        format!("/v1/executions?machine=orders&status=FAILED&next={rest_token}"),
        format!("/v1/executions?next={rest_token}"),
        "/v1/executions?next=garbage".to_owned(),
        // An AWS token is not a REST one.
        format!("/v1/executions?machine=orders&status=FAILED&next={token}"),
    ] {
        let reply = http(addr, "GET", &path, &[], b"");
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.json()["code"], json!("InvalidToken"), "{path}");
    }
    let reply = http(addr, "GET", "/v1/executions?status=DONE", &[], b"");
    assert_eq!(reply.status, 400);

    // A cursor is a place in the order: executions started after the
    // first page was read do not shift the second; a new first page
    // shows them.
    let page_of_ten = json!({"stateMachineArn": machine, "maxResults": 10});
    let first = first_page(&page_of_ten);
    assert_eq!(
        names(first["executions"].as_array().expect("page")),
        order[..10]
    );
    let token = first["nextToken"].as_str().expect("token").to_owned();
    start(&server, &machine, "late", &json!({"blob": blob}));
    let second = first_page(&with_token(page_of_ten.clone(), &token));
    assert_eq!(
        names(second["executions"].as_array().expect("page")),
        order[10..20]
    );
    let fresh = first_page(&page_of_ten);
    assert_eq!(fresh["executions"][0]["name"], json!("late"));

    // `/health` answers while four clients read the largest pages there
    // are, through both doors, without a pause.
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicU32::new(0));
    let listers: Vec<_> = (0..4)
        .map(|i| {
            let (stop, pages, machine) = (Arc::clone(&stop), Arc::clone(&pages), machine.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let listed = if i % 2 == 0 {
                        rest_pages(addr, "", 1000).len()
                    } else {
                        aws_pages(addr, &json!({"stateMachineArn": machine}), Some(1000)).len()
                    };
                    assert!(listed > EXECUTIONS);
                    pages.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while pages.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..20 {
        let reply = http(addr, "GET", "/health", &[], b"");
        assert_eq!(reply.status, 200, "{}", reply.body);
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for lister in listers {
        lister.join().expect("a lister");
    }
}
