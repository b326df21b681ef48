//! Durable throughput: executions on the tokio engine over a real sled
//! store, at several concurrencies. `cargo bench -p stepline-runtime --bench
//! durable`. Prints one line per case; figures go to docs/performance.md.
//!
//! Three shapes per execution: a chain of 20 Pass states (20 transitions in
//! one step: one batch, one flush), a chain of 10 zero-second Waits (10
//! steps, each written and flushed before the next timer is armed) and a
//! chain of 1,000 Pass states (one step). Flushes
//! of concurrent executions are shared (group commit).

use std::time::Instant;

use serde_json::json;
use stepline_runtime::Engine;
use stepline_store::WorkflowType;

mod common;

fn chain(kind: &str, n: usize) -> String {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut state = if kind == "Wait" {
            json!({"Type": "Wait", "Seconds": 0})
        } else {
            json!({"Type": "Pass"})
        };
        if i + 1 == n {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": states}).to_string()
}

/// Runs `concurrency` executions at once, `ROUNDS` times, and prints the
/// median rate and the range (one round of 256 short executions lasts a
/// few tens of milliseconds: a single round is noise).
async fn case(
    engine: &Engine,
    machine: &str,
    label: &str,
    concurrency: usize,
    transitions_each: usize,
) {
    const ROUNDS: usize = 7;
    let mut rates = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let started = Instant::now();
        let mut handles = Vec::new();
        for i in 0..concurrency {
            let engine = engine.clone();
            let machine = machine.to_owned();
            let name = format!("{label}-{concurrency}-{round}-{i}");
            handles.push(tokio::spawn(async move {
                let run = engine
                    .start_execution(&machine, Some(&name), Some("{}"))
                    .await
                    .expect("start");
                engine.wait_for(&run.arn).await.expect("wait")
            }));
        }
        for handle in handles {
            handle.await.expect("join");
        }
        rates.push(concurrency as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[ROUNDS / 2];
    let each = transitions_each as f64;
    println!(
        "{label:<14} concurrency {concurrency:>4}: median {median:.0} executions/s, {:.0} durable transitions/s (range {:.0} - {:.0} transitions/s over {ROUNDS} rounds)",
        median * each,
        rates[0] * each,
        rates[ROUNDS - 1] * each
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = common::temp_dir("durable");
    runtime.block_on(async {
        let engine = common::sled_engine(&dir);
        let pass = engine
            .create_state_machine("pass20", &chain("Pass", 20), None, WorkflowType::Standard)
            .await
            .expect("create");
        let wait = engine
            .create_state_machine("wait10", &chain("Wait", 10), None, WorkflowType::Standard)
            .await
            .expect("create");
        for concurrency in [1, 16, 256] {
            case(&engine, &pass.arn, "pass-chain", concurrency, 20).await;
        }
        for concurrency in [1, 16, 256] {
            case(&engine, &wait.arn, "wait-chain", concurrency, 10).await;
        }
        // 1,000 transitions in one step: one write, one flush.
        let long = engine
            .create_state_machine(
                "pass1000",
                &chain("Pass", 1000),
                None,
                WorkflowType::Standard,
            )
            .await
            .expect("create");
        for concurrency in [1, 16] {
            case(&engine, &long.arn, "pass-chain-1000", concurrency, 1000).await;
        }
    });
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
}
