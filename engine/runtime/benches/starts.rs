//! What a StartExecution costs the engine, without HTTP: server CPU per
//! start of a one-Pass-state machine, EXPRESS and STANDARD, over a real
//! sled store, 64 starts in flight. `cargo bench -p stepline-runtime
//! --bench starts [express|standard]`. CPU time (the process's, from /proc) is steadier than
//! a rate on a shared machine; figures go to docs/performance.md.

use std::time::Instant;

use stepline_runtime::Engine;
use stepline_store::WorkflowType;

mod common;

const ONE_PASS: &str = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#;

/// The process's user + system CPU time in seconds (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn case(engine: &Engine, machine: &str, label: &str) {
    const IN_FLIGHT: usize = 64;
    const EACH: usize = 400;
    for round in 0..3 {
        let started = Instant::now();
        let cpu = cpu_seconds();
        let handles: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let engine = engine.clone();
                let machine = machine.to_owned();
                tokio::spawn(async move {
                    for _ in 0..EACH {
                        engine
                            .start_execution(&machine, None, Some(r#"{"order":{"id":1}}"#))
                            .await
                            .expect("start");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("join");
        }
        let n = (IN_FLIGHT * EACH) as f64;
        let wall = started.elapsed().as_secs_f64();
        println!(
            "{label:<9} round {round}: {:.0} starts/s, {:.1} us CPU per start",
            n / wall,
            (cpu_seconds() - cpu) * 1e6 / n
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = common::temp_dir("starts");
    runtime.block_on(async {
        let engine = common::sled_engine(&dir);
        // `starts express` or `starts standard` runs one case.
        let only: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        for (name, kind) in [
            ("express", WorkflowType::Express),
            ("standard", WorkflowType::Standard),
        ] {
            if !only.is_empty() && !only.iter().any(|o| o == name) {
                continue;
            }
            let machine = engine
                .create_state_machine(name, ONE_PASS, None, kind)
                .await
                .expect("create");
            case(&engine, &machine.arn, name).await;
        }
    });
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
}
