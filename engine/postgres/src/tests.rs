//! The shared store suite, on a real PostgreSQL: `STEPLINE_TEST_POSTGRES`
//! names it (`tests/postgres/start` starts one and prints its URL). Without
//! it the tests say so and pass, unless `STEPLINE_REQUIRE_POSTGRES=1` (as
//! in CI), which makes a missing database a failure.

use std::sync::atomic::{AtomicU64, Ordering};

use stepline_store::{Executions, Histories, Store, StoreError, WriteBatch, WriteOp};

use super::*;

/// Options for a schema of its own, new to this run, or `None` (and why)
/// when no database is configured.
pub(crate) fn fresh_options(what: &str) -> Option<PostgresOptions> {
    let Ok(url) = std::env::var("STEPLINE_TEST_POSTGRES") else {
        assert!(
            std::env::var("STEPLINE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "STEPLINE_REQUIRE_POSTGRES=1 but STEPLINE_TEST_POSTGRES is not set"
        );
        eprintln!("{what}: skipped, STEPLINE_TEST_POSTGRES is not set (see tests/postgres/start)");
        return None;
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut options = PostgresOptions::new(url);
    options.schema = format!(
        "test_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Some(options)
}

#[test]
fn the_store_suite_passes_on_postgresql() {
    let Some(base) = fresh_options("the store suite") else {
        return;
    };
    let mut n = 0;
    stepline_store::suite::run_all(|_| {
        n += 1;
        let mut options = base.clone();
        options.schema = format!("{}_{n}", base.schema);
        PostgresStore::open(&options).unwrap()
    });
}

#[test]
fn a_second_open_finds_the_schema_migrated_and_the_data_kept() {
    let Some(options) = fresh_options("reopen") else {
        return;
    };
    assert_eq!(
        PostgresStore::migrate(&options).unwrap(),
        Migrated {
            from: 0,
            to: SCHEMA_VERSION
        }
    );
    let store = PostgresStore::open(&options).unwrap();
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::PutEndedNotice("arn:one".to_owned()));
    store.apply(&batch).unwrap();
    store.flush().unwrap();
    drop(store);
    assert_eq!(
        PostgresStore::migrate(&options).unwrap(),
        Migrated {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    let store = PostgresStore::open(&options).unwrap();
    assert_eq!(
        stepline_store::EndedNotices::ended_notices(&store).unwrap(),
        ["arn:one"]
    );
}

#[test]
fn a_schema_name_that_is_not_plain_is_refused() {
    let mut options = PostgresOptions::new("postgres://nobody@127.0.0.1:1/none");
    options.schema = "x; DROP TABLE executions".to_owned();
    let e = PostgresStore::open(&options).unwrap_err();
    assert!(
        e.to_string().contains("not a plain lowercase identifier"),
        "{e}"
    );
}

#[test]
fn an_unreachable_database_is_an_error_that_says_so() {
    let mut options = PostgresOptions::new("postgres://nobody@127.0.0.1:1/none");
    options.schema = "stepline".to_owned();
    let e = PostgresStore::open(&options).unwrap_err();
    assert!(e.is_io(), "{e:?}");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
}

#[test]
fn a_store_used_from_an_async_worker_answers() {
    let Some(options) = fresh_options("async caller") else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::open(&options).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let answered = runtime.block_on({
        let store = std::sync::Arc::clone(&store);
        async move { store.history_len("arn:none") }
    });
    assert_eq!(answered.unwrap(), 0);
    assert!(matches!(store.execution("arn:none"), Ok(None)));
    // Dropped on a runtime's thread: the store's own runtime must not
    // panic going away.
    runtime.block_on(async move { drop(store) });
    let _: Option<StoreError> = None;
}

fn open_execution(name: &str) -> stepline_store::ExecutionRecord {
    stepline_store::ExecutionRecord {
        arn: format!("arn:aws:states:us-east-1:1:execution:m:{name}"),
        state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:m".into(),
        revision: 1,
        name: name.into(),
        input: "{}".into(),
        status: stepline_store::ExecutionStatus::Running,
        start: chrono::Utc::now(),
        stop: None,
        output: None,
        error: None,
        cause: None,
        seed: 1,
        redrive_count: 0,
        token_secret: String::new(),
        test_case: None,
        map_run: None,
        queued: None,
    }
}

fn lease(execution: &str, node: &str, epoch: u64) -> stepline_store::Lease {
    stepline_store::Lease {
        execution: execution.into(),
        node: node.into(),
        epoch,
    }
}

/// A step of `execution` fenced with `lease`: an ended notice, which
/// shows whether it went in.
fn fenced_step(store: &PostgresStore, lease: &stepline_store::Lease) -> Result<(), StoreError> {
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::Fence(lease.clone()));
    batch.push(WriteOp::PutEndedNotice(lease.execution.clone()));
    store.apply(&batch)
}

/// A store where nodes `a` and `b` are alive and `a` owns an open
/// execution called `name` (its ARN) at epoch 1.
fn two_nodes_and_an_execution_of_a(
    options: &PostgresOptions,
    name: &str,
) -> (PostgresStore, String) {
    use stepline_store::Cluster;
    let store = PostgresStore::open(options).unwrap();
    let ttl = std::time::Duration::from_secs(30);
    store.heartbeat("a", "http://a", ttl).unwrap();
    store.heartbeat("b", "http://b", ttl).unwrap();
    let record = open_execution(name);
    let arn = record.arn.clone();
    let mut create = WriteBatch::new();
    create.push(WriteOp::CreateExecution(record));
    create.push(WriteOp::PutLease(lease(&arn, "a", 1)));
    store.apply(&create).unwrap();
    (store, arn)
}

#[test]
fn a_taken_over_execution_refuses_its_old_owners_writes() {
    use stepline_store::{Cluster, EndedNotices};
    let Some(options) = fresh_options("fencing") else {
        return;
    };
    let (store, arn) = two_nodes_and_an_execution_of_a(&options, "fenced");
    // A live owner's execution is nobody else's to claim.
    assert_eq!(store.claim("b", 10).unwrap(), vec![]);
    fenced_step(&store, &lease(&arn, "a", 1)).unwrap();
    // A fence with a node or epoch that is not the lease's is refused.
    for wrong in [lease(&arn, "b", 1), lease(&arn, "a", 2)] {
        let e = fenced_step(&store, &wrong).unwrap_err();
        assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    }
    // Once a's row is gone by, b takes it over at the next epoch, and a's
    // late write is refused whole.
    store.leave("a").unwrap();
    store
        .apply(WriteBatch::new().push(WriteOp::RemoveEndedNotice(arn.clone())))
        .unwrap();
    let e = fenced_step(&store, &lease(&arn, "a", 1)).unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert_eq!(store.claim("b", 10).unwrap(), vec![lease(&arn, "b", 2)]);
    assert_eq!(store.lease(&arn).unwrap(), Some(lease(&arn, "b", 2)));
    assert_eq!(store.ended_notices().unwrap(), Vec::<String>::new());
    // a comes back to life: its old lease stays taken.
    store
        .heartbeat("a", "http://a", std::time::Duration::from_secs(30))
        .unwrap();
    let e = fenced_step(&store, &lease(&arn, "a", 1)).unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    fenced_step(&store, &lease(&arn, "b", 2)).unwrap();
    // A redrive's lease must be past the last epoch.
    let stale = store.apply(WriteBatch::new().push(WriteOp::PutLease(lease(&arn, "a", 2))));
    assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
    store
        .apply(WriteBatch::new().push(WriteOp::PutLease(lease(&arn, "a", 3))))
        .unwrap();
    let nodes = store.nodes().unwrap();
    assert_eq!(
        nodes
            .iter()
            .map(|n| (n.id.as_str(), n.alive, n.executions))
            .collect::<Vec<_>>(),
        vec![("a", true, 1), ("b", true, 0)]
    );
}

#[test]
fn claiming_nodes_never_take_the_same_execution() {
    use stepline_store::Cluster;
    let Some(options) = fresh_options("claims") else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::open(&options).unwrap());
    let ttl = std::time::Duration::from_secs(30);
    for i in 0..200 {
        let record = open_execution(&format!("orphan-{i}"));
        let arn = record.arn.clone();
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::CreateExecution(record));
        // Half were owned by a node that died; half never had a lease.
        if i % 2 == 0 {
            batch.push(WriteOp::PutLease(lease(&arn, "dead", 1)));
        }
        store.apply(&batch).unwrap();
    }
    store.heartbeat("dead", "http://dead", ttl).unwrap();
    store.leave("dead").unwrap();
    let claimers: Vec<_> = ["b", "c", "d"]
        .into_iter()
        .map(|node| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                store.heartbeat(node, node, ttl).unwrap();
                let mut mine = Vec::new();
                loop {
                    let got = store.claim(node, 7).unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got);
                }
            })
        })
        .collect();
    let mut all: Vec<stepline_store::Lease> = claimers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_by(|x, y| x.execution.cmp(&y.execution));
    let twice: Vec<_> = all
        .windows(2)
        .filter(|w| w[0].execution == w[1].execution)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    assert!(twice.is_empty(), "claimed twice: {twice:?}");
    let unclaimed = store.orphans("b").unwrap();
    assert_eq!((all.len(), unclaimed), (200, 0), "claimed, left");
    for l in &all {
        let expected = if l
            .execution
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            % 2
            == 0
        {
            2
        } else {
            1
        };
        assert_eq!(l.epoch, expected, "{l:?}");
    }
}

#[test]
fn a_message_reaches_the_owner_and_goes_with_its_step() {
    use stepline_store::Cluster;
    let Some(options) = fresh_options("messages") else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::open(&options).unwrap());
    let ttl = std::time::Duration::from_secs(30);
    store.heartbeat("owner", "http://owner", ttl).unwrap();
    let record = open_execution("messaged");
    let arn = record.arn.clone();
    let mut create = WriteBatch::new();
    create.push(WriteOp::CreateExecution(record));
    create.push(WriteOp::PutLease(lease(&arn, "owner", 1)));
    store.apply(&create).unwrap();
    // The first wait starts the listening connection.
    store.wait_for_messages("owner", std::time::Duration::from_millis(300));
    let waiter = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || {
            store.wait_for_messages("owner", std::time::Duration::from_secs(20))
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    store.post(&arn, "{\"hello\":1}").unwrap();
    assert!(waiter.join().unwrap(), "the post did not wake the owner");
    let messages = store.messages("owner", 10).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body, "{\"hello\":1}");
    assert_eq!(store.messages("someone-else", 10).unwrap(), vec![]);
    // Removed with a step; a fenced-out step keeps it.
    let mut stale = WriteBatch::new();
    stale.push(WriteOp::Fence(lease(&arn, "owner", 7)));
    stale.push(WriteOp::RemoveMessage(messages[0].id));
    assert!(store.apply(&stale).is_err());
    assert_eq!(store.messages("owner", 10).unwrap().len(), 1);
    let mut step = WriteBatch::new();
    step.push(WriteOp::Fence(lease(&arn, "owner", 1)));
    step.push(WriteOp::RemoveMessage(messages[0].id));
    store.apply(&step).unwrap();
    assert_eq!(store.messages("owner", 10).unwrap(), vec![]);
}

#[test]
fn a_copy_into_postgresql_and_back_keeps_everything() {
    let Some(options) = fresh_options("copy") else {
        return;
    };
    let store = PostgresStore::open(&options).unwrap();
    stepline_store::suite::check_copy_between(&stepline_store::MemoryStore::new(), &store);
    let back = stepline_store::MemoryStore::new();
    stepline_store::copy::copy(&store, &back, &mut |_| {}).unwrap();
    assert_eq!(
        stepline_store::StateMachines::state_machines(&back).unwrap(),
        stepline_store::StateMachines::state_machines(&store).unwrap()
    );
}

#[test]
fn one_live_node_leads_a_role_and_the_next_takes_over() {
    use stepline_store::Cluster;
    let Some(options) = fresh_options("leaders") else {
        return;
    };
    let store = PostgresStore::open(&options).unwrap();
    let ttl = std::time::Duration::from_secs(30);
    store.heartbeat("a", "http://a", ttl).unwrap();
    store.heartbeat("b", "http://b", ttl).unwrap();
    assert!(store.lead("triggers", "a").unwrap());
    assert!(
        store.lead("triggers", "a").unwrap(),
        "a leader keeps leading"
    );
    assert!(!store.lead("triggers", "b").unwrap());
    // Another role is led on its own.
    assert!(store.lead("retention", "b").unwrap());
    store.leave("a").unwrap();
    assert!(store.lead("triggers", "b").unwrap());
    // a, back to life, does not take it back from a live leader.
    store.heartbeat("a", "http://a", ttl).unwrap();
    assert!(!store.lead("triggers", "a").unwrap());
}

#[test]
fn a_released_execution_goes_to_another_node() {
    use stepline_store::Cluster;
    let Some(options) = fresh_options("release") else {
        return;
    };
    let (store, arn) = two_nodes_and_an_execution_of_a(&options, "released");
    // Only the holder's lease at its epoch can be released.
    assert!(!store.release(&lease(&arn, "b", 1)).unwrap());
    assert!(!store.release(&lease(&arn, "a", 2)).unwrap());
    assert!(store.release(&lease(&arn, "a", 1)).unwrap());
    // Its writes stop at once, and it does not claim it back.
    let e = fenced_step(&store, &lease(&arn, "a", 1)).unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert_eq!(store.orphans("a").unwrap(), 0);
    assert_eq!(store.claim("a", 10).unwrap(), vec![]);
    assert_eq!(store.orphans("b").unwrap(), 1);
    assert_eq!(store.claim("b", 10).unwrap(), vec![lease(&arn, "b", 2)]);
    assert_eq!(store.orphans("b").unwrap(), 0);
}

#[test]
fn a_node_left_alone_takes_back_what_it_released() {
    use stepline_store::Cluster;
    let Some(options) = fresh_options("release-alone") else {
        return;
    };
    let (store, arn) = two_nodes_and_an_execution_of_a(&options, "released");
    assert!(store.release(&lease(&arn, "a", 1)).unwrap());
    // The node it was handed to dies before it claims it.
    store.leave("b").unwrap();
    assert_eq!(store.orphans("a").unwrap(), 1);
    assert_eq!(store.claim("a", 10).unwrap(), vec![lease(&arn, "a", 2)]);
}

/// The slots of a shared `max_running`: starts claim them until the
/// limit, a refused one is stored queued, a queued one takes the slot an
/// end frees (once: a second claim of it is refused), a new start does
/// not overtake the queue, and a stop of a queued execution is refused
/// once it started.
#[test]
fn shared_slots_are_counted_and_claimed_once() {
    use stepline_store::{Cluster, SlotClaim};
    let Some(options) = fresh_options("shared slots") else {
        return;
    };
    let store = PostgresStore::open(&options).unwrap();
    let machine = "arn:aws:states:us-east-1:1:stateMachine:m";
    let claim = |queued: Option<&str>| SlotClaim {
        state_machine: machine.into(),
        max: 2,
        queued: queued.map(str::to_owned),
    };
    let start = |name: &str, queued: Option<&str>| {
        let mut record = open_execution(name);
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::TakeSlot(claim(queued)));
        if queued.is_some() {
            batch.push(WriteOp::UpdateExecution(record));
        } else {
            // A version's executions count for its machine.
            record.state_machine_arn = format!("{machine}:1");
            batch.push(WriteOp::CreateExecution(record));
        }
        store.apply(&batch)
    };
    let queue = |name: &str, priority: i32| {
        let mut record = open_execution(name);
        record.queued = Some(stepline_store::Queued {
            priority,
            until: None,
        });
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::CreateExecution(record));
        store.apply(&batch).unwrap();
    };
    let arn = |name: &str| open_execution(name).arn;
    start("a", None).unwrap();
    start("b", None).unwrap();
    assert!(matches!(start("c", None), Err(StoreError::NoSlot { .. })));
    assert_eq!(store.execution(&arn("c")).unwrap(), None, "refused whole");
    queue("c", 0);
    queue("d", 5);
    let slots = store.slots(machine).unwrap();
    assert_eq!(slots.running, 2);
    assert_eq!(slots.queued, [(arn("d"), 5), (arn("c"), 0)]);
    // Full: the head waits.
    assert!(matches!(
        start("d", Some(&arn("d"))),
        Err(StoreError::NoSlot { .. })
    ));
    // `a` ends: one slot, for the head, once.
    let mut ended = open_execution("a");
    ended.status = stepline_store::ExecutionStatus::Succeeded;
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::UpdateExecution(ended));
    store.apply(&batch).unwrap();
    assert!(
        matches!(start("e", None), Err(StoreError::NoSlot { .. })),
        "no overtaking"
    );
    start("d", Some(&arn("d"))).unwrap();
    assert!(matches!(
        start("d", Some(&arn("d"))),
        Err(StoreError::NoSlot { .. })
    ));
    // A stop of the started one is refused; of the queued one, not.
    let leave = |name: &str| {
        let mut stopped = open_execution(name);
        stopped.status = stepline_store::ExecutionStatus::Aborted;
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::LeaveQueue(arn(name)));
        batch.push(WriteOp::UpdateExecution(stopped));
        store.apply(&batch)
    };
    assert!(matches!(leave("d"), Err(StoreError::NotQueued(_))));
    leave("c").unwrap();
    let slots = store.slots(machine).unwrap();
    assert_eq!((slots.running, slots.queued.len()), (2, 0));
    // Queued executions are nobody's orphans.
    queue("f", 0);
    store
        .heartbeat("n", "http://n", std::time::Duration::from_secs(30))
        .unwrap();
    let claimed = store.claim("n", 100).unwrap();
    assert!(
        claimed.iter().all(|l| l.execution != arn("f")),
        "{claimed:?}"
    );
}
