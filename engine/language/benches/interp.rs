//! Interpreter throughput: `cargo bench -p stepline-runtime` (add
//! `--features bench-asl` to run the `asl` crate on the same chains side by
//! side). Figures and how they were taken: docs/performance.md.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use stepline_language::asl::{self, StateMachine};
use stepline_language::clock::ManualClock;
use stepline_language::interp::{ExecutionInfo, Status};
use stepline_language::local::{UnavailableInvoker, run_to_completion};

fn compile(definition: &Value) -> Arc<StateMachine> {
    let validation = asl::validate(definition.to_string().as_bytes());
    Arc::new(validation.machine.expect("benchmark definitions are valid"))
}

fn info() -> ExecutionInfo {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    ExecutionInfo {
        execution_arn: "arn:aws:states:us-east-1:111111111111:execution:bench:run".into(),
        name: "run".into(),
        role_arn: "arn:aws:iam::111111111111:role/stepline".into(),
        state_machine_arn: "arn:aws:states:us-east-1:111111111111:stateMachine:bench".into(),
        state_machine_name: "bench".into(),
        start_time: start,
        region: "us-east-1".into(),
        redrive_count: 0,
    }
}

fn run(machine: &Arc<StateMachine>, input: &Value) -> Status {
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("date"),
    );
    run_to_completion(
        Arc::clone(machine),
        info(),
        input.clone(),
        1,
        &clock,
        &mut UnavailableInvoker,
    )
    .status
}

/// `n` Pass states in a row.
fn pass_chain(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut state = json!({"Type": "Pass"});
        if i + 1 == n {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": states})
}

fn pass_chains(c: &mut Criterion) {
    let input = json!({"order": {"id": 42, "lines": [1, 2, 3]}});
    for n in [10usize, 1000] {
        let machine = compile(&pass_chain(n));
        let mut group = c.benchmark_group("pass_chain");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("stepline/{n}"), |b| {
            b.iter(|| black_box(run(&machine, &input)))
        });
        #[cfg(feature = "bench-asl")]
        {
            let definition = pass_chain(n).to_string();
            let other = asl_crate::compile(&definition);
            group.bench_function(format!("asl-crate/{n}"), |b| {
                b.iter(|| black_box(asl_crate::run(&other, &input)))
            });
        }
        group.finish();
    }
}

fn map_of_10k(c: &mut Criterion) {
    let machine = compile(&json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0,
            "ItemSelector": {"n.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true
        }}
    }));
    let items: Vec<Value> = (0..10_000).map(|i| json!(i)).collect();
    let input = json!({ "items": items });
    let mut group = c.benchmark_group("map");
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(10);
    group.bench_function("stepline/10000-items", |b| {
        b.iter(|| black_box(run(&machine, &input)))
    });
    group.finish();
}

/// A loop of 100 rounds through a Choice with several operators.
fn choice_heavy(c: &mut Criterion) {
    let machine = compile(&json!({
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Test"},
            "Test": {"Type": "Choice", "Choices": [
                {"And": [
                    {"Variable": "$.i", "NumericGreaterThanEquals": 100},
                    {"Variable": "$.name", "StringMatches": "ord*"},
                    {"Not": {"Variable": "$.missing", "IsPresent": true}}
                ], "Next": "Done"},
                {"Or": [
                    {"Variable": "$.flag", "BooleanEquals": false},
                    {"Variable": "$.when", "TimestampLessThan": "2030-01-01T00:00:00Z"}
                ], "Next": "Step"}
            ], "Default": "Done"},
            "Step": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "name.$": "$.name", "flag.$": "$.flag", "when.$": "$.when"}, "Next": "Test"},
            "Done": {"Type": "Succeed"}
        }
    }));
    let input = json!({"name": "order-1", "flag": true, "when": "2026-05-01T00:00:00Z"});
    let mut group = c.benchmark_group("choice");
    group.throughput(Throughput::Elements(202));
    group.bench_function("stepline/100-rounds", |b| {
        b.iter(|| black_box(run(&machine, &input)))
    });
    group.finish();
}

/// Pass states that each call several intrinsic functions.
fn intrinsic_heavy(c: &mut Criterion) {
    let mut states = serde_json::Map::new();
    for i in 0..50 {
        let mut state = json!({"Type": "Pass", "Parameters": {
            "greeting.$": "States.Format('Hello {} #{}', $.name, $.n)",
            "parts.$": "States.StringSplit($.csv, ',')",
            "hash.$": "States.Hash($.name, 'SHA-256')",
            "n.$": "States.MathAdd($.n, 1)",
            "name.$": "$.name",
            "csv.$": "$.csv",
            "json.$": "States.JsonToString($.obj)",
            "obj.$": "$.obj"
        }});
        if i == 49 {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), state);
    }
    let machine = compile(&json!({"StartAt": "S0", "States": states}));
    let input = json!({"name": "stepline", "n": 0, "csv": "a,b,c,d", "obj": {"k": [1, 2, 3]}});
    let mut group = c.benchmark_group("intrinsics");
    group.throughput(Throughput::Elements(50));
    group.bench_function("stepline/50-states", |b| {
        b.iter(|| black_box(run(&machine, &input)))
    });
    group.finish();
}

/// The same 50-state transformation written with JSONPath (Parameters,
/// intrinsics, Assign) and with JSONata (Output, Assign).
fn jsonata_vs_jsonpath(c: &mut Criterion) {
    let chain = |state: Value, jsonata: bool| {
        let mut states = serde_json::Map::new();
        for i in 0..50 {
            let mut s = state.clone();
            if i == 49 {
                s["End"] = json!(true);
            } else {
                s["Next"] = json!(format!("S{}", i + 1));
            }
            states.insert(format!("S{i}"), s);
        }
        let mut definition = json!({"StartAt": "S0", "States": states});
        if jsonata {
            definition["QueryLanguage"] = json!("JSONata");
        }
        compile(&definition)
    };
    let jsonpath = chain(
        json!({"Type": "Pass", "Parameters": {
            "greeting.$": "States.Format('Hello {} #{}', $.name, $.n)",
            "n.$": "States.MathAdd($.n, 1)",
            "name.$": "$.name",
            "items.$": "$.items",
            "count.$": "States.ArrayLength($.items)"
        }, "Assign": {"last.$": "$.n"}}),
        false,
    );
    let jsonata = chain(
        json!({"Type": "Pass", "Output": {
            "greeting": "{% 'Hello ' & $states.input.name & ' #' & $states.input.n %}",
            "n": "{% $states.input.n + 1 %}",
            "name": "{% $states.input.name %}",
            "items": "{% $states.input.items %}",
            "count": "{% $count($states.input.items) %}"
        }, "Assign": {"last": "{% $states.input.n %}"}}),
        true,
    );
    let input = json!({"name": "stepline", "n": 0, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]});
    let mut group = c.benchmark_group("query_language");
    group.throughput(Throughput::Elements(50));
    group.bench_function("jsonpath/50-states", |b| {
        b.iter(|| black_box(run(&jsonpath, &input)))
    });
    group.bench_function("jsonata/50-states", |b| {
        b.iter(|| black_box(run(&jsonata, &input)))
    });
    group.finish();
}

#[cfg(feature = "bench-asl")]
mod asl_crate {
    //! The `asl` crate (0.2) running the same definitions, for comparison.
    use asl::asl::execution::StateExecutionHandler;
    use asl::asl::state_machine::StateMachine;
    use asl::asl::types::execution::EmptyContext;
    use serde_json::Value;

    pub struct NoTasks;

    impl StateExecutionHandler for NoTasks {
        type TaskExecutionError = String;

        fn execute_task(
            &self,
            _: &str,
            _: &Value,
            _: Option<&Value>,
        ) -> Result<Option<Value>, String> {
            Err("no tasks in benchmarks".into())
        }
    }

    pub fn compile(definition: &str) -> StateMachine {
        StateMachine::parse(definition).expect("the asl crate parses the chain")
    }

    pub fn run(machine: &StateMachine, input: &Value) -> usize {
        machine.start(input, NoTasks, EmptyContext {}).count()
    }
}

criterion_group!(
    benches,
    pass_chains,
    map_of_10k,
    choice_heavy,
    intrinsic_heavy,
    jsonata_vs_jsonpath
);
criterion_main!(benches);
