//! Issue 10: the distributed Map over local data, through the AWS dialect
//! of a real server: ItemReader over mapped buckets (CSV with every header
//! and delimiter option, JSON, JSONL, directory listings), MaxItems,
//! ItemBatcher, ResultWriter, tolerated failures, Map Run records and
//! their API actions, bad data, and a `kill -9` in the middle of a Map Run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepline_runtime::maprun::Buckets;
use stepline_runtime::{EngineConfig, TaskCall, TaskFuture, TaskRunner};

use crate::aws::{Server, create};
use crate::support::TempDir;

/// No Task in these definitions reaches a runner.
struct NoTasks;

impl TaskRunner for NoTasks {
    fn run(&self, _call: TaskCall) -> TaskFuture {
        Box::pin(async { Err(stepline_language::interp::Failure::new("NoTasks", "none")) })
    }
}

/// A server whose buckets `data` and `out` are directories of `dir`.
fn server(dir: &TempDir) -> Server {
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let config = EngineConfig {
        buckets: Buckets::new(BTreeMap::from([
            ("data".to_owned(), data),
            ("out".to_owned(), out),
        ])),
        ..EngineConfig::default()
    };
    Server::start_configured(Arc::new(NoTasks), config)
}

fn call(server: &Server, action: &str, body: Value) -> Value {
    let (status, out) = server.call(action, &body.to_string());
    assert_eq!(status, 200, "{action} {body}: {out}");
    out
}

/// A distributed Map state named `Each` around `fields`, processing each
/// item with `processor` (Pass by default).
fn machine(fields: Value, processor: Option<Value>) -> String {
    let mut map = json!({
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Item",
            "States": {"Item": {"Type": "Pass", "End": true}}
        },
        "End": true
    });
    if let Some(p) = processor {
        map["ItemProcessor"]["StartAt"] = p["StartAt"].clone();
        map["ItemProcessor"]["States"] = p["States"].clone();
    }
    for (k, v) in fields.as_object().unwrap() {
        map[k] = v.clone();
    }
    json!({"StartAt": "Each", "States": {"Each": map}}).to_string()
}

/// Creates `definition` as `name`, runs it with `input`, waits for the end.
fn run(server: &Server, name: &str, definition: &str, input: Value) -> Value {
    let (status, created) = create(server, name, definition);
    assert_eq!(status, 200, "{created}");
    let started = call(
        server,
        "StartExecution",
        json!({"stateMachineArn": created["stateMachineArn"], "input": input.to_string()}),
    );
    wait(
        server,
        started["executionArn"].as_str().unwrap(),
        Duration::from_secs(60),
    )
}

fn wait(server: &Server, arn: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let described = call(server, "DescribeExecution", json!({"executionArn": arn}));
        if described["status"] != "RUNNING" {
            return described;
        }
        assert!(Instant::now() < deadline, "{arn} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn output(described: &Value) -> Value {
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    serde_json::from_str(described["output"].as_str().unwrap()).unwrap()
}

fn event_types(server: &Server, arn: &str) -> Vec<Value> {
    let history = call(
        server,
        "GetExecutionHistory",
        json!({"executionArn": arn, "maxResults": 1000}),
    );
    history["events"].as_array().unwrap().clone()
}

fn csv_reader(config: Value) -> Value {
    json!({"ItemReader": {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": config,
        "Parameters": {"Bucket": "data", "Key.$": "$.key"}
    }})
}

#[test]
fn csv_rows_run_as_child_executions_with_a_map_run_record() {
    let dir = TempDir::new("dmap-csv");
    let server = server(&dir);
    std::fs::write(
        dir.path().join("data/orders.csv"),
        "id,customer,note\n1,\"Smith, J\",\"said \"\"hi\"\"\"\n2,Lee,\"two\nlines\"\n3,Kim,\n",
    )
    .unwrap();
    let mut fields = csv_reader(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}));
    fields["Label"] = json!("orders");
    fields["MaxConcurrency"] = json!(2);
    fields["ItemSelector"] =
        json!({"row.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "batch.$": "$.batch"});
    let described = run(
        &server,
        "csv",
        &machine(fields, None),
        json!({"key": "orders.csv", "batch": "b1"}),
    );
    assert_eq!(
        output(&described),
        json!([
            {"row": {"id": "1", "customer": "Smith, J", "note": "said \"hi\""}, "index": 0, "batch": "b1"},
            {"row": {"id": "2", "customer": "Lee", "note": "two\nlines"}, "index": 1, "batch": "b1"},
            {"row": {"id": "3", "customer": "Kim", "note": ""}, "index": 2, "batch": "b1"},
        ])
    );
    let parent = described["executionArn"].as_str().unwrap();
    let events = event_types(&server, parent);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    let map_run_arn = events[3]["mapRunStartedEventDetails"]["mapRunArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        map_run_arn.starts_with("arn:aws:states:us-east-1:111111111111:mapRun:csv/orders:"),
        "{map_run_arn}"
    );

    let runs = call(&server, "ListMapRuns", json!({"executionArn": parent}));
    assert_eq!(runs["mapRuns"].as_array().unwrap().len(), 1);
    assert_eq!(runs["mapRuns"][0]["mapRunArn"], map_run_arn);
    assert_eq!(
        runs["mapRuns"][0]["stateMachineArn"],
        "arn:aws:states:us-east-1:111111111111:stateMachine:csv/orders"
    );
    let run = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["executionArn"], parent);
    assert_eq!(run["maxConcurrency"], 2);
    assert_eq!(run["itemCounts"]["succeeded"], 3);
    assert_eq!(run["itemCounts"]["total"], 3);
    assert_eq!(run["executionCounts"]["succeeded"], 3);
    assert!(run["stopDate"].is_number());

    let children = call(&server, "ListExecutions", json!({"mapRunArn": map_run_arn}));
    let children = children["executions"].as_array().unwrap();
    assert_eq!(children.len(), 3);
    for child in children {
        let arn = child["executionArn"].as_str().unwrap();
        assert!(
            arn.starts_with("arn:aws:states:us-east-1:111111111111:execution:csv/orders:"),
            "{arn}"
        );
        assert_eq!(child["mapRunArn"], map_run_arn);
        assert_eq!(child["status"], "SUCCEEDED");
        let runs = call(
            &server,
            "DescribeStateMachineForExecution",
            json!({"executionArn": arn}),
        );
        assert_eq!(runs["mapRunArn"], map_run_arn);
        assert_eq!(runs["label"], "orders");
        assert_eq!(
            runs["stateMachineArn"],
            "arn:aws:states:us-east-1:111111111111:stateMachine:csv/orders"
        );
        let types: Vec<Value> = event_types(&server, arn)
            .iter()
            .map(|e| e["type"].clone())
            .collect();
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "ExecutionSucceeded"
            ]
        );
    }
    // The parent's machine lists only the parent.
    let machine_arn = described["stateMachineArn"].as_str().unwrap();
    let listed = call(
        &server,
        "ListExecutions",
        json!({"stateMachineArn": machine_arn}),
    );
    assert_eq!(listed["executions"].as_array().unwrap().len(), 1);

    // UpdateMapRun changes the record (and a running runner's limits).
    call(
        &server,
        "UpdateMapRun",
        json!({"mapRunArn": map_run_arn, "maxConcurrency": 7, "toleratedFailureCount": 2}),
    );
    let run = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
    assert_eq!(run["maxConcurrency"], 7);
    assert_eq!(run["toleratedFailureCount"], 2);
    let (status, missing) = server.call(
        "DescribeMapRun",
        &json!({"mapRunArn": format!("{map_run_arn}x")}).to_string(),
    );
    assert_eq!(
        (status, missing["__type"].as_str()),
        (400, Some("ResourceNotFound"))
    );
}

#[test]
fn every_reader_format_reads_its_items() {
    let dir = TempDir::new("dmap-formats");
    let server = server(&dir);
    let data = dir.path().join("data");
    let given = json!({"CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"]});
    let expected_ab = json!([{"a": "1", "b": "x y"}, {"a": "2", "b": "z"}]);
    let cases = [
        ("PIPE", "1|x y\n2|z\n"),
        ("SEMICOLON", "1;x y\n2;z\n"),
        ("TAB", "1\tx y\n2\tz\n"),
        ("COMMA", "1,x y\n2,z\n"),
    ];
    for (i, (delimiter, text)) in cases.iter().enumerate() {
        std::fs::write(data.join(format!("{delimiter}.csv")), text).unwrap();
        let mut config = given.clone();
        config["InputType"] = json!("CSV");
        config["CSVDelimiter"] = json!(delimiter);
        let out = run(
            &server,
            &format!("delim{i}"),
            &machine(csv_reader(config), None),
            json!({"key": format!("{delimiter}.csv")}),
        );
        assert_eq!(output(&out), expected_ab, "{delimiter}");
    }
    // SPACE: fields with spaces must be quoted.
    std::fs::write(data.join("space.csv"), "1 \"x y\"\n2 z\n").unwrap();
    let mut config = given.clone();
    config["InputType"] = json!("CSV");
    config["CSVDelimiter"] = json!("SPACE");
    let out = run(
        &server,
        "space",
        &machine(csv_reader(config), None),
        json!({"key": "space.csv"}),
    );
    assert_eq!(output(&out), expected_ab);

    std::fs::write(
        data.join("items.json"),
        r#"[{"n": 1}, [2, "]"], "three", 4.5, null]"#,
    )
    .unwrap();
    let out = run(
        &server,
        "json",
        &machine(csv_reader(json!({"InputType": "JSON"})), None),
        json!({"key": "items.json"}),
    );
    assert_eq!(
        output(&out),
        json!([{"n": 1}, [2, "]"], "three", 4.5, null])
    );

    std::fs::write(
        data.join("items.jsonl"),
        "{\"n\": 1}\n\n{\"n\": 2}\n{\"n\": 3}\n",
    )
    .unwrap();
    let mut config = json!({"InputType": "JSONL", "MaxItems": 2});
    let out = run(
        &server,
        "jsonl",
        &machine(csv_reader(config.clone()), None),
        json!({"key": "items.jsonl"}),
    );
    assert_eq!(output(&out), json!([{"n": 1}, {"n": 2}]));
    config["MaxItems"] = json!(0);
    let out = run(
        &server,
        "jsonl-all",
        &machine(csv_reader(config), None),
        json!({"key": "items.jsonl"}),
    );
    assert_eq!(output(&out).as_array().unwrap().len(), 3);

    // An empty JSON array and a header-only CSV: no children, an empty result.
    std::fs::write(data.join("empty.json"), "[ ]").unwrap();
    let out = run(
        &server,
        "empty-json",
        &machine(csv_reader(json!({"InputType": "JSON"})), None),
        json!({"key": "empty.json"}),
    );
    assert_eq!(output(&out), json!([]));
    std::fs::write(data.join("header.csv"), "a,b\n").unwrap();
    let out = run(
        &server,
        "header-only",
        &machine(csv_reader(json!({"InputType": "CSV"})), None),
        json!({"key": "header.csv"}),
    );
    assert_eq!(output(&out), json!([]));

    // listObjectsV2: the keys under a prefix, in key order.
    std::fs::create_dir_all(data.join("logs/2026")).unwrap();
    std::fs::write(data.join("logs/2026/b.log"), "bb").unwrap();
    std::fs::write(data.join("logs/a.log"), "a").unwrap();
    std::fs::write(data.join("logsx.txt"), "not under logs/").unwrap();
    let listing = json!({"ItemReader": {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "data", "Prefix": "logs/"}
    }, "ItemSelector": {"key.$": "$$.Map.Item.Value.Key", "size.$": "$$.Map.Item.Value.Size"}});
    let out = run(&server, "listing", &machine(listing, None), json!({}));
    assert_eq!(
        output(&out),
        json!([{"key": "logs/2026/b.log", "size": 2}, {"key": "logs/a.log", "size": 1}])
    );
}

#[test]
fn bad_data_fails_the_map_with_item_reader_failed() {
    let dir = TempDir::new("dmap-bad");
    let server = server(&dir);
    let data = dir.path().join("data");
    std::fs::write(data.join("short.csv"), "a,b\n1,2\n3\n4,5\n").unwrap();
    std::fs::write(data.join("open.csv"), "a,b\n1,\"2\n").unwrap();
    std::fs::write(data.join("bad.jsonl"), "{\"a\":1}\n{oops\n").unwrap();
    std::fs::write(data.join("bad.json"), "[1, {\"a\": }]").unwrap();
    std::fs::write(data.join("empty.json"), "").unwrap();
    std::fs::write(data.join("empty.csv"), "").unwrap();
    std::fs::write(dir.path().join("secret.json"), "[1]").unwrap();
    let cases = [
        (
            "short.csv",
            "CSV",
            "CSV row 3 has 1 field(s) but the header has 2",
        ),
        (
            "open.csv",
            "CSV",
            "CSV row 2 has a quoted field that is never closed",
        ),
        ("bad.jsonl", "JSONL", "JSONL line 2 is not JSON"),
        ("bad.json", "JSON", "JSON element 1 is not valid JSON"),
        ("empty.json", "JSON", "The JSON file is empty"),
        ("empty.csv", "CSV", "The CSV file is empty"),
        (
            "../secret.json",
            "JSON",
            "is not a plain relative path inside bucket 'data'",
        ),
        ("missing.json", "JSON", "does not exist in bucket 'data'"),
    ];
    for (i, (key, input_type, cause)) in cases.iter().enumerate() {
        let mut fields = csv_reader(json!({"InputType": input_type}));
        fields["Catch"] = json!([{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Caught"}]);
        let definition: Value = serde_json::from_str(&machine(fields, None)).unwrap();
        let mut definition = definition;
        definition["States"]["Caught"] = json!({"Type": "Pass", "End": true});
        let out = run(
            &server,
            &format!("bad{i}"),
            &definition.to_string(),
            json!({"key": key}),
        );
        let caught = output(&out);
        assert_eq!(
            caught["Error"], "States.ItemReaderFailed",
            "{key}: {caught}"
        );
        let text = caught["Cause"].as_str().unwrap();
        assert!(text.contains(cause), "{key}: {text}");
        let types: Vec<Value> = event_types(&server, out["executionArn"].as_str().unwrap())
            .iter()
            .map(|e| e["type"].clone())
            .collect();
        assert!(types.contains(&json!("MapRunFailed")), "{types:?}");
    }
    // A bucket the operator did not map.
    let fields = json!({"ItemReader": {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "elsewhere", "Key": "x.json"}
    }});
    let out = run(&server, "unmapped", &machine(fields, None), json!({}));
    assert_eq!(out["status"], "FAILED");
    assert_eq!(out["error"], "States.ItemReaderFailed");
    assert!(
        out["cause"].as_str().unwrap().contains("[buckets]"),
        "{out}"
    );
}

#[test]
fn batches_and_result_files_as_aws_writes_them() {
    let dir = TempDir::new("dmap-batch");
    let server = server(&dir);
    let items: Vec<Value> = (0..5).map(|n| json!({"n": n})).collect();
    std::fs::write(
        dir.path().join("data/five.json"),
        Value::Array(items).to_string(),
    )
    .unwrap();
    let mut fields = csv_reader(json!({"InputType": "JSON"}));
    fields["ItemBatcher"] = json!({"MaxItemsPerBatch": 2, "BatchInput": {"job.$": "$.job"}});
    fields["ResultWriter"] = json!({
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "runs"}
    });
    let processor = json!({"StartAt": "Sum", "States": {"Sum": {"Type": "Pass",
        "Parameters": {"count.$": "States.ArrayLength($.Items)", "job.$": "$.BatchInput.job"}, "End": true}}});
    let out = run(
        &server,
        "batched",
        &machine(fields, Some(processor)),
        json!({"key": "five.json", "job": "j7"}),
    );
    let result = output(&out);
    let map_run_arn = result["MapRunArn"].as_str().unwrap();
    let id = map_run_arn.rsplit(':').next().unwrap();
    assert_eq!(
        result["ResultWriterDetails"],
        json!({"Bucket": "out", "Key": format!("runs/{id}/manifest.json")})
    );
    let base = dir.path().join("out/runs").join(id);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["DestinationBucket"], "out");
    assert_eq!(manifest["MapRunArn"], map_run_arn);
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));
    assert_eq!(manifest["ResultFiles"]["PENDING"], json!([]));
    let succeeded = &manifest["ResultFiles"]["SUCCEEDED"][0];
    assert_eq!(succeeded["Key"], format!("runs/{id}/SUCCEEDED_0.json"));
    let text = std::fs::read_to_string(base.join("SUCCEEDED_0.json")).unwrap();
    assert_eq!(succeeded["Size"], text.len());
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(entries.len(), 3, "5 items in batches of 2");
    let inputs: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str(e["Input"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        inputs,
        [
            json!({"BatchInput": {"job": "j7"}, "Items": [{"n": 0}, {"n": 1}]}),
            json!({"BatchInput": {"job": "j7"}, "Items": [{"n": 2}, {"n": 3}]}),
            json!({"BatchInput": {"job": "j7"}, "Items": [{"n": 4}]}),
        ]
    );
    for e in &entries {
        assert_eq!(e["Status"], "SUCCEEDED");
        let out: Value = serde_json::from_str(e["Output"].as_str().unwrap()).unwrap();
        assert_eq!(out["job"], "j7");
        for field in [
            "ExecutionArn",
            "Name",
            "StartDate",
            "StopDate",
            "StateMachineArn",
        ] {
            assert!(e.get(field).is_some(), "{field} in {e}");
        }
    }
    let described = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
    assert_eq!(described["itemCounts"]["total"], 5);
    assert_eq!(described["itemCounts"]["resultsWritten"], 5);
    assert_eq!(described["executionCounts"]["total"], 3);

    // A ResultWriter to a bucket that is not mapped fails the state.
    let mut fields = csv_reader(json!({"InputType": "JSON"}));
    fields["ResultWriter"] = json!({
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "nowhere", "Prefix": "x"}
    });
    let out = run(
        &server,
        "unwritable",
        &machine(fields, None),
        json!({"key": "five.json"}),
    );
    assert_eq!(out["status"], "FAILED");
    assert_eq!(out["error"], "States.ResultWriterFailed");
}

/// Holds every task until the test opens the gate.
struct Gate(Arc<std::sync::atomic::AtomicBool>);

impl TaskRunner for Gate {
    fn run(&self, call: TaskCall) -> TaskFuture {
        let open = Arc::clone(&self.0);
        Box::pin(async move {
            while !open.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(call.request.input.clone())
        })
    }
}

/// Links planted in the bucket while the Map Run runs, at the names its
/// result files and manifest will have, pointing outside the bucket: the
/// writer refuses them rather than writing through them.
#[cfg(unix)]
#[test]
fn links_planted_in_a_result_bucket_do_not_lead_writes_outside() {
    let dir = TempDir::new("dmap-links");
    let outside = TempDir::new("dmap-links-outside");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let gate = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let config = EngineConfig {
        buckets: Buckets::new(BTreeMap::from([("out".to_owned(), out.clone())])),
        ..EngineConfig::default()
    };
    let server = Server::start_configured(Arc::new(Gate(Arc::clone(&gate))), config);
    let processor = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "stepline:process:gate", "End": true}}});
    let fields = json!({"ItemsPath": "$.items", "ResultWriter": {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "runs"}}});
    let (status, created) = create(&server, "planted", &machine(fields, Some(processor)));
    assert_eq!(status, 200, "{created}");
    let started = call(
        &server,
        "StartExecution",
        json!({"stateMachineArn": created["stateMachineArn"],
               "input": json!({"items": [{"n": 1}, {"n": 2}]}).to_string()}),
    );
    let arn = started["executionArn"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let map_run_arn = loop {
        let runs = call(&server, "ListMapRuns", json!({"executionArn": arn}));
        if let Some(a) = runs["mapRuns"][0]["mapRunArn"].as_str() {
            break a.to_owned();
        }
        assert!(Instant::now() < deadline, "no Map Run");
        std::thread::sleep(Duration::from_millis(10));
    };
    let id = map_run_arn.rsplit(':').next().unwrap();
    let base = out.join("runs").join(id);
    std::fs::create_dir_all(&base).unwrap();
    for (name, target) in [
        ("manifest.json", "manifest.json"),
        ("SUCCEEDED_0.json", "succeeded.json"),
    ] {
        std::os::unix::fs::symlink(outside.path().join(target), base.join(name)).unwrap();
    }
    gate.store(true, std::sync::atomic::Ordering::SeqCst);
    let done = wait(&server, &arn, Duration::from_secs(30));
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.ResultWriterFailed", "{done}");
    let cause = done["cause"].as_str().unwrap();
    assert!(cause.contains("symbolic link"), "{cause}");
    let leaked: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leaked.is_empty(), "written outside the bucket: {leaked:?}");
    // Only the planted links are left: no temporary file.
    let mut left: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["SUCCEEDED_0.json", "manifest.json"]);

    // The manifest's link alone (no result file in the way) is refused too.
    gate.store(false, std::sync::atomic::Ordering::SeqCst);
    let fields = json!({"ItemsPath": "$.items", "ResultWriter": {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "again"}}});
    let processor = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "stepline:process:gate", "End": true}}});
    let (status, created) = create(&server, "manifest", &machine(fields, Some(processor)));
    assert_eq!(status, 200, "{created}");
    let started = call(
        &server,
        "StartExecution",
        json!({"stateMachineArn": created["stateMachineArn"],
               "input": json!({"items": [{"n": 1}]}).to_string()}),
    );
    let arn = started["executionArn"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let map_run_arn = loop {
        let runs = call(&server, "ListMapRuns", json!({"executionArn": arn}));
        if let Some(a) = runs["mapRuns"][0]["mapRunArn"].as_str() {
            break a.to_owned();
        }
        assert!(Instant::now() < deadline, "no Map Run");
        std::thread::sleep(Duration::from_millis(10));
    };
    let base = out
        .join("again")
        .join(map_run_arn.rsplit(':').next().unwrap());
    std::fs::create_dir_all(&base).unwrap();
    std::os::unix::fs::symlink(outside.path().join("m.json"), base.join("manifest.json")).unwrap();
    gate.store(true, std::sync::atomic::Ordering::SeqCst);
    let done = wait(&server, &arn, Duration::from_secs(30));
    assert_eq!(done["error"], "States.ResultWriterFailed", "{done}");
    assert!(!outside.path().join("m.json").exists());
}

#[test]
fn tolerated_failures_decide_the_map_run() {
    let dir = TempDir::new("dmap-tolerance");
    let server = server(&dir);
    // Items 2 and 5 fail.
    let processor = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.bad", "BooleanEquals": true, "Next": "Boom"}], "Default": "Fine"},
        "Boom": {"Type": "Fail", "Error": "BadItem", "Cause": "this item is bad"},
        "Fine": {"Type": "Pass", "End": true}}});
    let items: Vec<Value> = (0..8)
        .map(|n| json!({"n": n, "bad": n == 2 || n == 5}))
        .collect();
    let input = json!({"items": items});
    let mut fields = json!({"ItemsPath": "$.items", "ToleratedFailureCount": 1});
    let out = run(
        &server,
        "one-tolerated",
        &machine(fields.clone(), Some(processor.clone())),
        input.clone(),
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.ExceedToleratedFailureThreshold");
    let events = event_types(&server, out["executionArn"].as_str().unwrap());
    let failed = events
        .iter()
        .find(|e| e["type"] == "MapRunFailed")
        .expect("MapRunFailed");
    assert_eq!(
        failed["mapRunFailedEventDetails"]["error"],
        "States.ExceedToleratedFailureThreshold"
    );

    fields["ToleratedFailureCount"] = json!(2);
    let out = run(
        &server,
        "two-tolerated",
        &machine(fields, Some(processor.clone())),
        input.clone(),
    );
    let result = output(&out);
    assert_eq!(
        result[2],
        json!({"Error": "BadItem", "Cause": "this item is bad"})
    );
    assert_eq!(result[3], json!({"n": 3, "bad": false}));

    // 2 of 8 is 25%.
    let fields = json!({"ItemsPath": "$.items", "ToleratedFailurePercentage": 25});
    let out = run(
        &server,
        "pct-ok",
        &machine(fields, Some(processor.clone())),
        input.clone(),
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let fields = json!({"ItemsPath": "$.items", "ToleratedFailurePercentage": 20});
    let out = run(
        &server,
        "pct-over",
        &machine(fields, Some(processor)),
        input,
    );
    assert_eq!(out["error"], "States.ExceedToleratedFailureThreshold");
    let runs = call(
        &server,
        "ListMapRuns",
        json!({"executionArn": out["executionArn"]}),
    );
    let run = call(
        &server,
        "DescribeMapRun",
        json!({"mapRunArn": runs["mapRuns"][0]["mapRunArn"]}),
    );
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["itemCounts"]["failed"], 2);
    assert_eq!(run["toleratedFailurePercentage"], 20.0);
}

#[test]
fn update_map_run_widens_a_running_map_and_stop_aborts_it() {
    let dir = TempDir::new("dmap-update");
    let server = server(&dir);
    let items: Vec<Value> = (0..40).map(|n| json!(n)).collect();
    let processor =
        json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 30, "End": true}}});
    let fields = json!({"ItemsPath": "$.items", "MaxConcurrency": 1});
    let (status, created) = create(&server, "widen", &machine(fields, Some(processor)));
    assert_eq!(status, 200, "{created}");
    let started = call(
        &server,
        "StartExecution",
        json!({"stateMachineArn": created["stateMachineArn"], "input": json!({"items": items}).to_string()}),
    );
    let parent = started["executionArn"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = |server: &Server| -> Option<(String, Value)> {
        let runs = call(server, "ListMapRuns", json!({"executionArn": parent}));
        let arn = runs["mapRuns"][0]["mapRunArn"].as_str()?.to_owned();
        let described = call(server, "DescribeMapRun", json!({"mapRunArn": arn}));
        Some((arn, described))
    };
    let map_run_arn = loop {
        if let Some((arn, d)) = running(&server) {
            if d["executionCounts"]["running"] == 1 {
                break arn;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the Map Run never started a child"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    let d = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
    assert_eq!(
        d["executionCounts"]["running"], 1,
        "MaxConcurrency 1 holds: {d}"
    );
    call(
        &server,
        "UpdateMapRun",
        json!({"mapRunArn": map_run_arn, "maxConcurrency": 10}),
    );
    loop {
        let d = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
        if d["executionCounts"]["running"] == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the update never widened the Map Run: {d}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    call(&server, "StopExecution", json!({"executionArn": parent}));
    let out = wait(&server, &parent, Duration::from_secs(10));
    assert_eq!(out["status"], "ABORTED");
    let types: Vec<Value> = event_types(&server, &parent)
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types[types.len() - 2..],
        [json!("MapRunAborted"), json!("ExecutionAborted")]
    );
    // The children stop with it; the record says ABORTED.
    loop {
        let children = call(&server, "ListExecutions", json!({"mapRunArn": map_run_arn}));
        let children = children["executions"].as_array().unwrap().clone();
        let d = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
        if d["status"] == "ABORTED" && children.iter().all(|c| c["status"] == "ABORTED") {
            assert!(children.len() >= 10, "{children:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children still run: {children:?} {d}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A definition is untrusted: large items at a high MaxConcurrency must
/// not put a whole file in flight. The runner holds at most 16 MiB of
/// input (as JSON text) read ahead or running per Map Run
/// (docs/asl-support.md), so 120 items of ~200 KB run at most 83 at once
/// although MaxConcurrency allows all of them.
#[test]
fn large_items_are_run_fewer_at_once_than_max_concurrency() {
    let dir = TempDir::new("dmap-inflight");
    let server = server(&dir);
    let filler = "x".repeat(200_000);
    let lines: String = (0..120)
        .map(|n| format!("{}\n", json!({"n": n, "filler": filler})))
        .collect();
    std::fs::write(dir.path().join("data/big.jsonl"), lines).unwrap();
    let processor =
        json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": true}}});
    let mut fields = csv_reader(json!({"InputType": "JSONL"}));
    fields["MaxConcurrency"] = json!(1000);
    let (status, created) = create(&server, "inflight", &machine(fields, Some(processor)));
    assert_eq!(status, 200, "{created}");
    let started = call(
        &server,
        "StartExecution",
        json!({"stateMachineArn": created["stateMachineArn"], "input": json!({"key": "big.jsonl"}).to_string()}),
    );
    let parent = started["executionArn"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let map_run_arn = loop {
        let runs = call(&server, "ListMapRuns", json!({"executionArn": parent}));
        if let Some(arn) = runs["mapRuns"][0]["mapRunArn"].as_str() {
            break arn.to_owned();
        }
        assert!(Instant::now() < deadline, "no Map Run started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Watch the children start until their number holds still.
    let (mut most, mut last, mut still) = (0, 0, Instant::now());
    while still.elapsed() < Duration::from_secs(2) {
        let d = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
        let running = d["executionCounts"]["running"].as_u64().unwrap();
        most = most.max(running);
        if running != last {
            (last, still) = (running, Instant::now());
        }
        assert!(Instant::now() < deadline, "the children never settled: {d}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let bound = 16 * 1024 * 1024 / (200_000 + 20);
    assert!(
        most <= bound as u64,
        "{most} children ran at once; at most {bound} fit in 16 MiB"
    );
    assert!(
        most >= 50,
        "only {most} children ran at once with room for {bound}"
    );
    call(&server, "StopExecution", json!({"executionArn": parent}));
    assert_eq!(
        wait(&server, &parent, Duration::from_secs(20))["status"],
        "ABORTED"
    );
}

#[test]
fn writer_config_formats_results_and_files() {
    let dir = TempDir::new("dmap-writerconfig");
    let server = server(&dir);
    let processor = json!({"StartAt": "Pair", "States": {"Pair": {"Type": "Pass",
        "Parameters": {"pair.$": "States.Array($.n, $.n)"}, "OutputPath": "$.pair", "End": true}}});
    let input = json!({"items": [{"n": 1}, {"n": 2}]});
    // WriterConfig alone: the state's result, formatted, no file.
    let fields = json!({"ItemsPath": "$.items", "ResultWriter": {"WriterConfig": {"Transformation": "FLATTEN"}}});
    let out = run(
        &server,
        "flatten",
        &machine(fields, Some(processor.clone())),
        input.clone(),
    );
    assert_eq!(output(&out), json!([1, 1, 2, 2]));
    let fields = json!({"ItemsPath": "$.items", "ResultWriter": {"WriterConfig": {"Transformation": "NONE"}}});
    let out = run(
        &server,
        "none",
        &machine(fields, Some(processor.clone())),
        input.clone(),
    );
    let entries = output(&out);
    assert_eq!(entries[1]["Status"], "SUCCEEDED");
    assert_eq!(entries[1]["Output"], "[2,2]");
    // Files as JSON Lines of the outputs.
    let fields = json!({"ItemsPath": "$.items", "ResultWriter": {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "lines"},
        "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}}});
    let out = run(&server, "jsonl", &machine(fields, Some(processor)), input);
    let key = output(&out)["ResultWriterDetails"]["Key"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = dir
        .path()
        .join("out")
        .join(key.trim_end_matches("manifest.json"));
    let text = std::fs::read_to_string(base.join("SUCCEEDED_0.json")).unwrap();
    assert_eq!(text, "[1,1]\n[2,2]\n");
}

/// A distributed Map inside a distributed Map's children: each child
/// starts a Map Run of its own.
#[test]
fn distributed_maps_nest() {
    let dir = TempDir::new("dmap-nested");
    let server = server(&dir);
    let inner = json!({"Type": "Map", "Label": "inner",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Double", "States": {"Double": {"Type": "Pass",
                "Parameters": {"v.$": "States.MathAdd($, $)"}, "OutputPath": "$.v", "End": true}}},
        "End": true});
    let processor = json!({"StartAt": "Inner", "States": {"Inner": inner}});
    let fields = json!({"ItemsPath": "$.groups", "Label": "outer"});
    let out = run(
        &server,
        "nested",
        &machine(fields, Some(processor)),
        json!({"groups": [[1, 2], [3]]}),
    );
    assert_eq!(output(&out), json!([[2, 4], [6]]));
    let runs = call(
        &server,
        "ListMapRuns",
        json!({"executionArn": out["executionArn"]}),
    );
    let outer = runs["mapRuns"][0]["mapRunArn"].as_str().unwrap().to_owned();
    let children = call(&server, "ListExecutions", json!({"mapRunArn": outer}));
    for child in children["executions"].as_array().unwrap() {
        let runs = call(
            &server,
            "ListMapRuns",
            json!({"executionArn": child["executionArn"]}),
        );
        let inner = runs["mapRuns"][0]["mapRunArn"].as_str().unwrap();
        assert!(inner.contains(":mapRun:nested/outer/inner:"), "{inner}");
        let d = call(&server, "DescribeMapRun", json!({"mapRunArn": inner}));
        assert_eq!(d["status"], "SUCCEEDED");
    }
}

/// boto3 reads the Map Run actions' answers (dates, counts) unchanged.
#[test]
fn boto3_reads_map_runs() {
    if !crate::support::boto3_available() {
        return;
    }
    let dir = TempDir::new("dmap-boto3");
    let server = server(&dir);
    std::fs::write(
        dir.path().join("data/rows.jsonl"),
        "{\"a\": 1}\n{\"a\": 2}\n",
    )
    .unwrap();
    let definition = machine(csv_reader(json!({"InputType": "JSONL"})), None);
    let script = r#"
import json, sys, time, boto3
from botocore.config import Config
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=Config(retries={"max_attempts": 1}))
arn = sfn.create_state_machine(name="boto-map", definition=sys.argv[2],
                               roleArn="arn:aws:iam::111111111111:role/r")["stateMachineArn"]
execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"key": "rows.jsonl"}))["executionArn"]
for _ in range(500):
    described = sfn.describe_execution(executionArn=execution)
    if described["status"] != "RUNNING":
        break
    time.sleep(0.01)
runs = sfn.list_map_runs(executionArn=execution)["mapRuns"]
run = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
sfn.update_map_run(mapRunArn=run["mapRunArn"], maxConcurrency=5, toleratedFailurePercentage=10.0)
updated = sfn.describe_map_run(mapRunArn=run["mapRunArn"])
children = sfn.list_executions(mapRunArn=run["mapRunArn"])["executions"]
print(json.dumps({
    "status": described["status"],
    "runs": len(runs),
    "run_status": run["status"],
    "start_is_datetime": hasattr(run["startDate"], "year"),
    "items": run["itemCounts"]["succeeded"],
    "concurrency": updated["maxConcurrency"],
    "percentage": updated["toleratedFailurePercentage"],
    "children": sorted(c["status"] for c in children),
}))
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &format!("http://{}", server.addr),
            &definition,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(
        result,
        json!({"status": "SUCCEEDED", "runs": 1, "run_status": "SUCCEEDED", "start_is_datetime": true,
               "items": 2, "concurrency": 5, "percentage": 10.0, "children": ["SUCCEEDED", "SUCCEEDED"]})
    );
}

/// Fails odd items until healed.
struct Flaky(Arc<std::sync::atomic::AtomicBool>);

impl TaskRunner for Flaky {
    fn run(&self, call: TaskCall) -> TaskFuture {
        let healed = self.0.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            let n = call.request.input["n"].as_u64().unwrap_or(0);
            if n % 2 == 1 && !healed {
                return Err(stepline_language::interp::Failure::new(
                    "Flaky",
                    format!("item {n}"),
                ));
            }
            Ok(json!({"done": n}))
        })
    }
}

#[test]
fn redriving_the_parent_reruns_only_the_failed_items() {
    let dir = TempDir::new("dmap-redrive");
    let healed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let config = EngineConfig {
        buckets: Buckets::new(BTreeMap::from([(
            "data".to_owned(),
            dir.path().to_path_buf(),
        )])),
        ..EngineConfig::default()
    };
    let server = Server::start_configured(Arc::new(Flaky(Arc::clone(&healed))), config);
    let processor = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "stepline:process:flaky", "End": true}}});
    let fields = json!({"ItemsPath": "$.items", "MaxConcurrency": 3, "ToleratedFailureCount": 1});
    let items: Vec<Value> = (0..6).map(|n| json!({"n": n})).collect();
    let out = run(
        &server,
        "redrive",
        &machine(fields, Some(processor)),
        json!({"items": items}),
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.ExceedToleratedFailureThreshold");
    let parent = out["executionArn"].as_str().unwrap().to_owned();
    let runs = call(&server, "ListMapRuns", json!({"executionArn": parent}));
    let map_run_arn = runs["mapRuns"][0]["mapRunArn"].as_str().unwrap().to_owned();
    // Whatever the tolerance let run before the Map Run failed.
    let first: BTreeMap<String, Value> =
        call(&server, "ListExecutions", json!({"mapRunArn": map_run_arn}))["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["executionArn"].as_str().unwrap().to_owned(),
                    c["status"].clone(),
                )
            })
            .collect();
    assert!(first.values().any(|s| s == "FAILED"), "{first:?}");

    healed.store(true, std::sync::atomic::Ordering::SeqCst);
    call(&server, "RedriveExecution", json!({"executionArn": parent}));
    let out = wait(&server, &parent, Duration::from_secs(30));
    let result = output(&out);
    let done: Vec<Value> = (0..6).map(|n| json!({"done": n})).collect();
    assert_eq!(result, Value::Array(done));
    let events = event_types(&server, &parent);
    let redriven = events
        .iter()
        .find(|e| e["type"] == "MapRunRedriven")
        .expect("MapRunRedriven");
    assert_eq!(
        redriven["mapRunRedrivenEventDetails"],
        json!({"mapRunArn": map_run_arn, "redriveCount": 1})
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "MapRunStarted")
            .count(),
        1,
        "the same Map Run, not a new one"
    );
    let children = call(&server, "ListExecutions", json!({"mapRunArn": map_run_arn}));
    let children = children["executions"].as_array().unwrap();
    assert_eq!(children.len(), 6, "one child per item, across both runs");
    for child in children {
        let arn = child["executionArn"].as_str().unwrap();
        let redrives =
            call(&server, "DescribeExecution", json!({"executionArn": arn}))["redriveCount"]
                .clone();
        let expected = match first.get(arn).and_then(Value::as_str) {
            Some("SUCCEEDED") => 0,
            Some(_) => 1,
            None => 0, // not started before the Map Run failed
        };
        assert_eq!(redrives, expected, "{arn} was {:?}", first.get(arn));
        assert_eq!(child["status"], "SUCCEEDED");
    }
    let d = call(&server, "DescribeMapRun", json!({"mapRunArn": map_run_arn}));
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["itemCounts"]["succeeded"], 6);
}

/// Rows per second through CSV -> Pass children; the row count is
/// STEPLINE_DMAP_ROWS (default 20,000 in CI, under a second; the figures in
/// docs/performance.md use more, see there).
#[test]
fn a_large_csv_file_runs_every_row_once() {
    let rows: usize = std::env::var("STEPLINE_DMAP_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = TempDir::new("dmap-large");
    let server = server(&dir);
    let mut text = String::from("id,amount\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{}\n", i % 100));
    }
    std::fs::write(dir.path().join("data/large.csv"), text).unwrap();
    let mut fields = csv_reader(json!({"InputType": "CSV"}));
    fields["ItemBatcher"] = json!({"MaxItemsPerBatch": 100});
    fields["ResultWriter"] = json!({
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "large"}
    });
    let processor = json!({"StartAt": "Count", "States": {"Count": {"Type": "Pass",
        "Parameters": {"n.$": "States.ArrayLength($.Items)"}, "End": true}}});
    let began = Instant::now();
    let (status, created) = create(&server, "large", &machine(fields, Some(processor)));
    assert_eq!(status, 200, "{created}");
    let started = call(
        &server,
        "StartExecution",
        json!({"stateMachineArn": created["stateMachineArn"], "input": json!({"key": "large.csv"}).to_string()}),
    );
    let out = wait(
        &server,
        started["executionArn"].as_str().unwrap(),
        Duration::from_secs(600),
    );
    let elapsed = began.elapsed();
    let result = output(&out);
    let run = call(
        &server,
        "DescribeMapRun",
        json!({"mapRunArn": result["MapRunArn"]}),
    );
    assert_eq!(run["itemCounts"]["succeeded"], rows);
    assert_eq!(run["executionCounts"]["succeeded"], rows.div_ceil(100));
    eprintln!(
        "distributed Map: {rows} CSV rows in batches of 100 in {:.2?} ({:.0} rows/s)",
        elapsed,
        rows as f64 / elapsed.as_secs_f64()
    );
}

/// The worked example: state-machines/orders-csv-summary.asl.json over
/// state-machines/data/orders.csv.
#[test]
fn the_orders_csv_summary_example_splits_validates_and_summarises() {
    let dir = TempDir::new("dmap-example");
    let server = server(&dir);
    let root = crate::support::repo_root();
    std::fs::copy(
        root.join("state-machines/data/orders.csv"),
        dir.path().join("data/orders.csv"),
    )
    .unwrap();
    let definition =
        std::fs::read_to_string(root.join("state-machines/orders-csv-summary.asl.json")).unwrap();
    let out = run(
        &server,
        "orders",
        &definition,
        json!({"bucket": "data", "key": "orders.csv"}),
    );
    let result = output(&out);
    assert_eq!(
        result,
        json!({"orders": 10, "valid": 8, "invalid": 2, "total": 413.5,
               "invalidIds": ["1004", "1009"]}),
        "{result}"
    );
}

/// `kill -9` of the real binary in the middle of a Map Run, then a
/// restart: every item runs in exactly one child, and the Map ends.
#[test]
fn kill_9_in_the_middle_of_a_map_run_loses_no_item_and_runs_none_twice() {
    let dir = TempDir::new("dmap-crash");
    let data = dir.path().join("bucket");
    std::fs::create_dir_all(&data).unwrap();
    let items = 120;
    let lines: String = (0..items).map(|i| format!("{{\"i\": {i}}}\n")).collect();
    std::fs::write(data.join("items.jsonl"), lines).unwrap();
    let config = dir.path().join("stepline.toml");
    std::fs::write(
        &config,
        format!("[buckets]\ndata = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let store = dir.path().join("store");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_stepline-under-test"));
    // Each child waits a second: 120 items, 20 at a time, about 6 s.
    let mut fields = json!({"ItemReader": {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSONL"},
        "Parameters": {"Bucket": "data", "Key": "items.jsonl"}
    }, "MaxConcurrency": 20});
    fields["ResultSelector"] = json!({"count.$": "States.ArrayLength($)", "items.$": "$[*].i"});
    let processor =
        json!({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": true}}});
    let definition = machine(fields, Some(processor));

    let serve = crate::support::Serve::start_with(&binary, &store, Some(&config));
    let (status, created) = serve.call(
        "CreateStateMachine",
        &json!({"name": "crashmap", "definition": definition, "roleArn": "arn:aws:iam::111111111111:role/r"}),
    );
    assert_eq!(status, 200, "{created}");
    let (status, started) = serve.call(
        "StartExecution",
        &json!({"stateMachineArn": created["stateMachineArn"]}),
    );
    assert_eq!(status, 200, "{started}");
    let parent = started["executionArn"].as_str().unwrap().to_owned();
    // Kill once some children have ended and others run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let map_run_arn = loop {
        let (_, runs) = serve.call("ListMapRuns", &json!({"executionArn": parent}));
        if let Some(arn) = runs["mapRuns"][0]["mapRunArn"].as_str() {
            let (_, run) = serve.call("DescribeMapRun", &json!({"mapRunArn": arn}));
            if run["itemCounts"]["succeeded"].as_u64().unwrap_or(0) >= 20 {
                break arn.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the Map Run never progressed");
        std::thread::sleep(Duration::from_millis(50));
    };
    serve.kill();

    let serve = crate::support::Serve::start_with(&binary, &store, Some(&config));
    let deadline = Instant::now() + Duration::from_secs(60);
    let described = loop {
        let (_, d) = serve.call("DescribeExecution", &json!({"executionArn": parent}));
        if d["status"] != "RUNNING" {
            break d;
        }
        assert!(Instant::now() < deadline, "the parent never finished");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    let result: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    let expected: Vec<Value> = (0..items).map(|i| json!(i)).collect();
    assert_eq!(result, json!({"count": items, "items": expected}));
    // Every item has exactly one child.
    let (status, children) = serve.call(
        "ListExecutions",
        &json!({"mapRunArn": map_run_arn, "maxResults": 1000}),
    );
    assert_eq!(status, 200, "{children}");
    let children = children["executions"].as_array().unwrap();
    assert_eq!(children.len(), items, "one child per item");
    let mut seen = BTreeSet::new();
    for child in children {
        assert_eq!(child["status"], "SUCCEEDED", "{child}");
        let (_, d) = serve.call(
            "DescribeExecution",
            &json!({"executionArn": child["executionArn"]}),
        );
        let input: Value = serde_json::from_str(d["input"].as_str().unwrap()).unwrap();
        assert!(
            seen.insert(input["i"].as_u64().unwrap()),
            "item {input} ran twice"
        );
    }
    assert_eq!(seen.len(), items);
    let (_, run) = serve.call("DescribeMapRun", &json!({"mapRunArn": map_run_arn}));
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["itemCounts"]["succeeded"], items);
}
