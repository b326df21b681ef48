//! The Map Run runner: one distributed Map's work, run as its parent's task.
//!
//! A reader thread pulls items (ItemReader or the inline array), applies
//! ItemSelector and ItemBatcher and hands units of work through a bounded
//! channel (so memory stays flat however long the input). The runner
//! starts one child execution per unit, at most MaxConcurrency at once
//! and with no more than `IN_FLIGHT_BYTES` of input at once,
//! counts outcomes against the tolerated failures, keeps the Map Run
//! record up to date, writes results (ResultWriter) and answers the parent.
//!
//! Exactly once: unit `i` of a Map Run always runs as the child named
//! `derived_name(MAP_RUN_ARN#i)`, and the store refuses a second execution
//! of a name. After a crash the parent's task is invoked again; the runner
//! reads the items again and, for every unit, finds the child of that name
//! (resumed by the engine, or already finished) instead of starting one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::reader::{self, Buckets, ReaderError};
use super::writer;
use crate::children::Children;
use crate::tasks::nested::derived_name;
use crate::{EngineError, TaskCall, TaskFuture};
use stepline_language::cause;
use stepline_language::interp::{Failure, ItemSelection};
use stepline_language::map_run::{BatcherSpec, MAX_CONCURRENCY, MapRunSpec};
use stepline_language::payload::{MAX_PAYLOAD_BYTES, json_size};
use stepline_store::{
    ExecutionRecord, ExecutionStatus, MapRunChild, MapRunCounts, MapRunRecord, StoreError,
};

/// Units read ahead of the children that run them, at most...
const READ_AHEAD: usize = 256;

/// ...and their input as JSON text, at most (an item parsed into a
/// `Value` takes several times its text). Reading is much faster than
/// running children: a few MiB ahead keep them busy.
const READ_AHEAD_BYTES: usize = 4 * 1024 * 1024;

/// The input (as JSON text) of the units read ahead and of the children
/// running, at most, per Map Run. A child holds its input several times
/// over (its record, its history, its state), and a definition is
/// untrusted: large batches at a high MaxConcurrency would otherwise hold
/// a whole file. With them fewer children run at once than MaxConcurrency
/// allows (AWS's MaxConcurrency is an upper bound too). A unit larger
/// than this runs alone.
const IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;

/// How often the Map Run record is written and its settings read back
/// (UpdateMapRun).
const REFRESH: Duration = Duration::from_millis(200);

/// One child execution's worth of work.
#[derive(Debug)]
pub(crate) struct Unit {
    pub index: usize,
    pub input: Value,
    /// Items in it (1, or a batch's size).
    pub items: u64,
}

/// Runs the Map Run described by the task's input.
pub fn run(engine: Arc<dyn Children>, buckets: Buckets, call: TaskCall) -> TaskFuture {
    Box::pin(async move {
        let spec: MapRunSpec = serde_json::from_value(call.request.input.clone())
            .map_err(|e| cause::MAP_RUN_MALFORMED.failure(&[("reason", &e)]))?;
        let mut map_run = MapRun::start(engine, buckets, &call.execution_arn, spec)?;
        map_run.handed_over = call.handed_over.clone();
        map_run.run().await
    })
}

struct MapRun {
    engine: Arc<dyn Children>,
    /// Where ItemReader reads and ResultWriter writes.
    buckets: Arc<Buckets>,
    spec: MapRunSpec,
    child: MapRunChild,
    record: MapRunRecord,
    /// Children started and not yet ended, by unit: stopped if the Map Run
    /// is dropped (its parent stopped, its state timed out).
    running: Arc<Mutex<Running>>,
    /// Outputs by unit while no ResultWriter is set and they fit in a payload.
    outputs: Vec<Option<Value>>,
    outputs_bytes: usize,
    units: usize,
    /// Every item was read: the total is known.
    read_all: bool,
    /// Dropped because its parent's node let go of the parent: the
    /// children run on, for the next owner's Map Run to find.
    handed_over: crate::HandedOver,
}

fn runtime(e: EngineError) -> Failure {
    cause::MAP_RUN_ENGINE.failure(&[("reason", &e)])
}

fn writer_failed(e: impl std::fmt::Display) -> Failure {
    cause::RESULT_WRITER_FAILED.failure(&[("reason", &e)])
}

fn results_too_large() -> Failure {
    cause::MAP_RUN_RESULTS_TOO_LARGE.failure(&[("limit", &MAX_PAYLOAD_BYTES)])
}

impl MapRun {
    fn start(
        engine: Arc<dyn Children>,
        buckets: Buckets,
        execution_arn: &str,
        spec: MapRunSpec,
    ) -> Result<Self, Failure> {
        let parent = engine.describe_execution(execution_arn).map_err(runtime)?;
        // A Map Run inside a child runs a scope of the same compiled
        // definition: scope ids are global to it.
        let machine_arn = parent
            .map_run
            .as_ref()
            .map_or(parent.state_machine_arn.clone(), |m| m.machine_arn.clone());
        let child = MapRunChild {
            map_run_arn: spec.map_run_arn.clone(),
            machine_arn,
            revision: parent.revision,
            scope: spec.processor,
            express: spec.express,
        };
        let max_concurrency = match spec.max_concurrency {
            0 => MAX_CONCURRENCY,
            n => n,
        };
        // Counts start again after a restart: every unit is found again.
        let record = match engine.describe_map_run(&spec.map_run_arn) {
            Ok(mut existing) => {
                existing.items = MapRunCounts::default();
                existing.executions = MapRunCounts::default();
                existing.status = "RUNNING".into();
                existing.stop = None;
                existing
            }
            Err(_) => MapRunRecord {
                map_run_arn: spec.map_run_arn.clone(),
                execution_arn: execution_arn.to_owned(),
                status: "RUNNING".into(),
                start: engine.now(),
                stop: None,
                max_concurrency,
                tolerated_failure_percentage: spec.tolerated_percentage,
                tolerated_failure_count: spec.tolerated_count,
                items: MapRunCounts::default(),
                executions: MapRunCounts::default(),
            },
        };
        engine.put_map_run(&record).map_err(runtime)?;
        Ok(Self {
            engine,
            buckets: Arc::new(buckets),
            spec,
            child,
            record,
            running: Arc::default(),
            outputs: Vec::new(),
            outputs_bytes: 0,
            units: 0,
            read_all: false,
            handed_over: Default::default(),
        })
    }

    async fn run(mut self) -> Result<Value, Failure> {
        let machine = self
            .engine
            .compiled(&self.child.machine_arn, self.child.revision)
            .map_err(runtime)?;
        let selection = ItemSelection::new(machine, &self.spec);
        let (tx, mut rx) = mpsc::channel(READ_AHEAD);
        let source = open_source(&self.spec, &self.buckets);
        if let Some(reader) = &self.spec.reader {
            let now = self.engine.now();
            let records: Vec<_> = reader::read_paths(reader, &self.buckets)
                .iter()
                .filter_map(|path| {
                    crate::lineage::record(
                        &path.to_string_lossy(),
                        &self.record.execution_arn,
                        stepline_store::LineageKind::Read,
                        "itemReader",
                        None,
                        now,
                    )
                })
                .collect();
            if let Err(e) = self.engine.record_lineage(records) {
                tracing::warn!(error = %e, "the ItemReader's files could not be recorded");
            }
        }
        let batcher = self.spec.batcher.clone();
        let budget = Budget {
            read_ahead: Arc::new(Semaphore::new(READ_AHEAD_BYTES)),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
        };
        let producer = Producer {
            tx,
            budget: budget.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        // Reading is blocking file I/O: its own thread, paced by the
        // channel and the byte budget.
        std::thread::spawn(move || producer.run(source, selection, batcher));
        let mut children: JoinSet<(usize, u64, Result<ExecutionRecord, EngineError>)> =
            JoinSet::new();
        let mut refresh = tokio::time::interval(REFRESH);
        let outcome: Result<(), Failure> = loop {
            if self.read_all && children.is_empty() {
                break Ok(());
            }
            let room = (children.len() as u64) < self.record.max_concurrency.max(1);
            tokio::select! {
                unit = rx.recv(), if room && !self.read_all => match unit {
                    None => {
                        self.read_all = true;
                        if let Err(f) = self.check_tolerance() {
                            break Err(f);
                        }
                    }
                    Some(Err(f)) => break Err(f),
                    Some(Ok(Read { unit, read_ahead, in_flight })) => {
                        drop(read_ahead);
                        self.units = self.units.max(unit.index + 1);
                        self.record.items.total += unit.items;
                        self.record.items.running += unit.items;
                        self.record.executions.total += 1;
                        self.record.executions.running += 1;
                        let (engine, child) = (Arc::clone(&self.engine), self.child.clone());
                        let label = self.spec.label.clone();
                        let name = derived_name(&format!("{}#{}", self.spec.map_run_arn, unit.index));
                        let running = Arc::clone(&self.running);
                        let redrive = self.spec.redrive;
                        children.spawn(async move {
                            let (index, items) = (unit.index, unit.items);
                            let start = ChildStart { engine, child, label, name, input: unit.input, redrive };
                            let result = start.run(running, index).await;
                            drop(in_flight);
                            (index, items, result)
                        });
                    }
                },
                Some(joined) = children.join_next(), if !children.is_empty() => {
                    let (index, items, result) = match joined {
                        Ok(done) => done,
                        Err(e) => break Err(cause::MAP_RUN_CHILD_LOST.failure(&[("reason", &e)])),
                    };
                    let record = match result {
                        Ok(r) => r,
                        Err(e) => break Err(runtime(e)),
                    };
                    if let Err(f) = self.finished(index, items, &record) {
                        break Err(f);
                    }
                }
                _ = refresh.tick() => self.refresh(),
            }
        };
        drop(rx);
        // A reader waiting for bytes that will never be freed stops.
        budget.read_ahead.close();
        budget.in_flight.close();
        let result = match outcome {
            Ok(()) => self.answer().await,
            Err(f) => Err(f),
        };
        self.close(&result).await;
        result
    }

    /// Counts a child that ended; fails the Map Run past its tolerance.
    fn finished(
        &mut self,
        index: usize,
        items: u64,
        child: &ExecutionRecord,
    ) -> Result<(), Failure> {
        let (i, e) = (&mut self.record.items, &mut self.record.executions);
        i.running -= items;
        e.running -= 1;
        let failed = match child.status {
            ExecutionStatus::Succeeded => {
                i.succeeded += items;
                e.succeeded += 1;
                false
            }
            ExecutionStatus::TimedOut => {
                i.timed_out += items;
                e.timed_out += 1;
                true
            }
            ExecutionStatus::Aborted => {
                i.aborted += items;
                e.aborted += 1;
                true
            }
            _ => {
                i.failed += items;
                e.failed += 1;
                true
            }
        };
        if self.spec.writer.is_none() {
            let output = if failed {
                json!({"Error": child.error, "Cause": child.cause})
            } else {
                child
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null)
            };
            self.keep_output(index, output)?;
        }
        if failed {
            self.check_tolerance()?;
        }
        Ok(())
    }

    /// Outputs are the Map's result only while they fit in a payload (AWS:
    /// larger results need a ResultWriter).
    fn keep_output(&mut self, index: usize, output: Value) -> Result<(), Failure> {
        self.outputs_bytes += output.to_string().len() + 1;
        if self.outputs_bytes > MAX_PAYLOAD_BYTES {
            return Err(results_too_large());
        }
        if self.outputs.len() <= index {
            self.outputs.resize(index + 1, None);
        }
        self.outputs[index] = Some(output);
        Ok(())
    }

    /// Fails when the failed items pass the tolerated count or percentage
    /// (the percentage once the total is known). With neither set, none
    /// is tolerated.
    fn check_tolerance(&self) -> Result<(), Failure> {
        let i = &self.record.items;
        let failures = i.failed + i.timed_out + i.aborted;
        if failures == 0 {
            return Ok(());
        }
        let (count, pct) = (
            self.record.tolerated_failure_count,
            self.record.tolerated_failure_percentage,
        );
        let over_count = match (count, pct) {
            (None, None) => true,
            (Some(c), _) => failures > c,
            (None, Some(_)) => false,
        };
        let over_pct = match pct {
            Some(p) if self.read_all && i.total > 0 => {
                (failures as f64) * 100.0 / (i.total as f64) > p
            }
            _ => false,
        };
        if over_count || over_pct {
            return Err(cause::TOLERATED_FAILURE_EXCEEDED.failure(&[]));
        }
        Ok(())
    }

    /// Writes the counts and reads back what UpdateMapRun may have changed.
    fn refresh(&mut self) {
        if let Ok(stored) = self.engine.describe_map_run(&self.spec.map_run_arn) {
            self.record.max_concurrency = stored.max_concurrency;
            self.record.tolerated_failure_count = stored.tolerated_failure_count;
            self.record.tolerated_failure_percentage = stored.tolerated_failure_percentage;
        }
        self.update_pending();
        let _ = self.engine.put_map_run(&self.record);
    }

    fn update_pending(&mut self) {
        for c in [&mut self.record.items, &mut self.record.executions] {
            c.pending = c
                .total
                .saturating_sub(c.running + c.succeeded + c.failed + c.timed_out + c.aborted);
        }
    }

    /// The Map's result: the children's outputs in order, or where the
    /// ResultWriter put them.
    async fn answer(&mut self) -> Result<Value, Failure> {
        match self.spec.writer.clone() {
            None => Ok(Value::Array(
                std::mem::take(&mut self.outputs)
                    .into_iter()
                    .map(|o| o.unwrap_or(Value::Null))
                    .collect(),
            )),
            Some(spec) if spec.resource.is_none() => {
                let engine = Arc::clone(&self.engine);
                let child_machine = self.child_machine_arn();
                let (map_run_arn, units) = (self.spec.map_run_arn.clone(), self.units);
                let entries = tokio::task::spawn_blocking(move || {
                    let names = (0..units).map(|i| derived_name(&format!("{map_run_arn}#{i}")));
                    writer::preview(&*engine, &spec, &child_machine, names)
                })
                .await
                .map_err(writer_failed)?
                .map_err(writer_failed)?;
                entries.map(Value::Array).ok_or_else(results_too_large)
            }
            Some(spec) => {
                let (engine, buckets) = (Arc::clone(&self.engine), Arc::clone(&self.buckets));
                let (record, child_machine) = (self.record.clone(), self.child_machine_arn());
                let (map_run_arn, units) = (self.spec.map_run_arn.clone(), self.units);
                let written = tokio::task::spawn_blocking(move || {
                    let names = (0..units).map(|i| derived_name(&format!("{map_run_arn}#{i}")));
                    writer::write(&*engine, &buckets, &spec, &record, &child_machine, names)
                })
                .await
                .map_err(writer_failed)?
                .map_err(writer_failed)?;
                self.record.items.results_written = self.record.items.total;
                self.record.executions.results_written = self.record.executions.total;
                Ok(written)
            }
        }
    }

    fn child_machine_arn(&self) -> String {
        let machine = self
            .engine
            .describe_execution(&self.record.execution_arn)
            .map(|p| p.map_run.map_or(p.state_machine_arn, |m| m.machine_arn))
            .unwrap_or_default();
        format!("{machine}/{}", self.spec.label)
    }

    /// Stops the children still running (a failed Map Run) and records
    /// how the Map Run ended.
    async fn close(&mut self, result: &Result<Value, Failure>) {
        let cause = "The Map Run failed.";
        let stopped = self
            .running
            .lock()
            .map(|mut r| r.close(cause))
            .unwrap_or_default();
        for arn in stopped {
            let _ = self.engine.stop_execution(&arn, cause.into());
        }
        self.record.status = if result.is_ok() {
            "SUCCEEDED"
        } else {
            "FAILED"
        }
        .into();
        self.record.stop = Some(self.engine.now());
        self.update_pending();
        let _ = self.engine.put_map_run(&self.record);
        let _ = self.engine.flush_now().await;
    }
}

/// A Map Run dropped before it ended (its parent was stopped, its state
/// timed out): the children stop with it and the record says ABORTED.
impl Drop for MapRun {
    fn drop(&mut self) {
        if self.record.status != "RUNNING" || self.handed_over.is_handed_over() {
            return;
        }
        let cause = "The parent execution's Map Run was stopped.";
        let running = match self.running.lock() {
            Ok(mut r) => r.close(cause),
            Err(_) => return,
        };
        for arn in running {
            let _ = self.engine.stop_execution(&arn, cause.into());
        }
        self.record.status = "ABORTED".into();
        self.record.stop = Some(self.engine.now());
        let _ = self.engine.put_map_run(&self.record);
    }
}

/// The children started and not ended yet, by unit. Once the Map Run
/// has closed (`closed`: why), a child that finishes starting is stopped
/// at once with that cause.
#[derive(Debug, Default)]
struct Running {
    by_unit: HashMap<usize, String>,
    closed: Option<String>,
}

impl Running {
    /// Closes with `cause`; answers the children to stop.
    fn close(&mut self, cause: &str) -> Vec<String> {
        self.closed = Some(cause.to_owned());
        self.by_unit.drain().map(|(_, arn)| arn).collect()
    }
}

/// One child of the Map Run: what starting it takes.
struct ChildStart {
    engine: Arc<dyn Children>,
    child: MapRunChild,
    label: String,
    name: String,
    input: Value,
    /// The Map Run is redriven: a child that did not succeed is redriven.
    redrive: bool,
}

impl ChildStart {
    /// Starts (or finds, or redrives) the child and waits for it to end.
    async fn run(
        self,
        running: Arc<Mutex<Running>>,
        index: usize,
    ) -> Result<ExecutionRecord, EngineError> {
        let engine = Arc::clone(&self.engine);
        // In a task of its own: the Map Run dropping this future while a
        // start is under way must not leave a child that nobody stops.
        let record = tokio::spawn(self.start(Arc::clone(&running), index))
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("starting a Map Run child failed: {e}"))
            })??;
        if record.status != ExecutionStatus::Running {
            return Ok(record);
        }
        let ended = engine.wait_for(&record.arn).await;
        if let Ok(mut r) = running.lock() {
            r.by_unit.remove(&index);
        }
        ended
    }

    /// Starts, finds or redrives the child; a running one is registered,
    /// or stopped if the Map Run closed meanwhile.
    async fn start(
        self,
        running: Arc<Mutex<Running>>,
        index: usize,
    ) -> Result<ExecutionRecord, EngineError> {
        let engine = &self.engine;
        let mut record = engine
            .start_map_child(&self.child, &self.label, &self.name, &self.input)
            .await?;
        // Stored with the child: not held again while it runs.
        drop(self.input);
        let failed = matches!(
            record.status,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
        );
        if self.redrive && failed {
            match engine.redrive_execution(&record.arn).await {
                Ok(redriven) => record = redriven,
                // Not redrivable (it failed before its first state): it
                // stays a failed item.
                Err(EngineError::ExecutionNotRedrivable(_)) => return Ok(record),
                Err(e) => return Err(e),
            }
        }
        if record.status != ExecutionStatus::Running {
            return Ok(record);
        }
        let closed = match running.lock() {
            Ok(mut r) => {
                if r.closed.is_none() {
                    r.by_unit.insert(index, record.arn.clone());
                }
                r.closed.clone()
            }
            Err(_) => None,
        };
        if let Some(cause) = closed {
            let _ = engine.stop_execution(&record.arn, cause);
        }
        Ok(record)
    }
}

/// Where items come from.
enum Source {
    Inline(std::vec::IntoIter<Value>),
    Reader(reader::Items),
    Broken(ReaderError),
}

fn open_source(spec: &MapRunSpec, buckets: &Buckets) -> Source {
    match (&spec.reader, &spec.items) {
        (Some(r), _) => match reader::open(r, buckets) {
            Ok(items) => Source::Reader(items),
            Err(e) => Source::Broken(e),
        },
        (None, Some(items)) => Source::Inline(items.clone().into_iter()),
        (None, None) => Source::Inline(Vec::new().into_iter()),
    }
}

/// The bytes of input a Map Run holds, read ahead and in flight.
#[derive(Clone)]
struct Budget {
    read_ahead: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
}

/// A unit on its way to a child, with its shares of the budget: the
/// read-ahead share is returned when the runner takes the unit, the
/// in-flight share when its child ends.
struct Read {
    unit: Unit,
    read_ahead: OwnedSemaphorePermit,
    in_flight: OwnedSemaphorePermit,
}

/// The reader thread's ends: the channel to the runner and the byte
/// budget it takes from before sending a unit.
struct Producer {
    tx: mpsc::Sender<Result<Read, Failure>>,
    budget: Budget,
    runtime: tokio::runtime::Handle,
}

impl Producer {
    /// Items -> ItemSelector -> batches -> the channel. Ends when the
    /// items do, at the first error, or when the runner is gone.
    fn run(self, source: Source, selection: ItemSelection, batcher: Option<BatcherSpec>) {
        let reader_failed = |e: ReaderError| cause::ITEM_READER_FAILED.failure(&[("reason", &e)]);
        let mut items: Box<dyn Iterator<Item = Result<Value, Failure>>> = match source {
            Source::Inline(v) => Box::new(v.map(Ok)),
            Source::Reader(r) => Box::new(r.map(move |i| i.map_err(reader_failed))),
            Source::Broken(e) => {
                self.fail(reader_failed(e));
                return;
            }
        };
        let mut batch = Batch::new(batcher);
        let mut units = 0usize;
        let mut index = 0usize;
        loop {
            let item = match items.next() {
                None => break,
                Some(Err(f)) => return self.fail(f),
                Some(Ok(item)) => item,
            };
            let selected = match selection.select(index, item) {
                Ok(v) => v,
                Err(f) => return self.fail(f),
            };
            index += 1;
            let unit = match &mut batch {
                None => Unit {
                    index: units,
                    input: selected,
                    items: 1,
                },
                Some(b) => match b.push(selected) {
                    Some(full) => full.into_unit(units, &b.spec),
                    None => continue,
                },
            };
            if !self.send(unit) {
                return;
            }
            units += 1;
        }
        if let Some(b) = &mut batch {
            if let Some(last) = b.take() {
                self.send(last.into_unit(units, &b.spec));
            }
        }
    }

    /// Waits for the unit's bytes in the budget, then sends it; false
    /// once the runner is gone.
    fn send(&self, unit: Unit) -> bool {
        let bytes = json_size(&unit.input, IN_FLIGHT_BYTES);
        let share = |semaphore: &Arc<Semaphore>, most: usize| {
            let bytes = bytes.clamp(1, most) as u32;
            self.runtime
                .block_on(Arc::clone(semaphore).acquire_many_owned(bytes))
                .ok()
        };
        let Some(in_flight) = share(&self.budget.in_flight, IN_FLIGHT_BYTES) else {
            return false;
        };
        let Some(read_ahead) = share(&self.budget.read_ahead, READ_AHEAD_BYTES) else {
            return false;
        };
        let read = Read {
            unit,
            read_ahead,
            in_flight,
        };
        self.tx.blocking_send(Ok(read)).is_ok()
    }

    fn fail(&self, failure: Failure) {
        let _ = self.tx.blocking_send(Err(failure));
    }
}

/// ItemBatcher: items gathered until MaxItemsPerBatch or
/// MaxInputBytesPerBatch would be passed.
struct Batch {
    spec: BatcherSpec,
    items: Vec<Value>,
    bytes: usize,
}

struct Full(Vec<Value>);

impl Full {
    /// AWS's batch input: `{"BatchInput": ..., "Items": [...]}`.
    fn into_unit(self, index: usize, spec: &BatcherSpec) -> Unit {
        let mut input = Map::new();
        if let Some(batch_input) = &spec.batch_input {
            input.insert("BatchInput".into(), batch_input.clone());
        }
        let items = self.0.len() as u64;
        input.insert("Items".into(), Value::Array(self.0));
        Unit {
            index,
            input: Value::Object(input),
            items,
        }
    }
}

impl Batch {
    fn new(spec: Option<BatcherSpec>) -> Option<Self> {
        spec.map(|spec| Self {
            spec,
            items: Vec::new(),
            bytes: 0,
        })
    }

    /// Adds an item; answers the batch that it closed, if any.
    fn push(&mut self, item: Value) -> Option<Full> {
        let size = json_size(&item, MAX_PAYLOAD_BYTES) + 1;
        let max_bytes = self
            .spec
            .max_input_bytes_per_batch
            .filter(|n| *n > 0)
            .map_or(MAX_PAYLOAD_BYTES, |n| (n as usize).min(MAX_PAYLOAD_BYTES));
        let mut closed = None;
        if !self.items.is_empty() && self.bytes + size > max_bytes {
            closed = self.take();
        }
        self.items.push(item);
        self.bytes += size;
        let max_items = self.spec.max_items_per_batch.filter(|n| *n > 0);
        if closed.is_none() && max_items.is_some_and(|n| self.items.len() as u64 >= n) {
            closed = self.take();
        }
        closed
    }

    fn take(&mut self) -> Option<Full> {
        if self.items.is_empty() {
            return None;
        }
        self.bytes = 0;
        Some(Full(std::mem::take(&mut self.items)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_close_on_count_and_bytes() {
        let spec = BatcherSpec {
            max_items_per_batch: Some(2),
            max_input_bytes_per_batch: None,
            batch_input: Some(json!({"k": 1})),
        };
        let mut b = Batch::new(Some(spec.clone())).unwrap();
        assert!(b.push(json!(1)).is_none());
        let full = b.push(json!(2)).unwrap();
        let unit = full.into_unit(0, &spec);
        assert_eq!(unit.input, json!({"BatchInput": {"k": 1}, "Items": [1, 2]}));
        assert_eq!(unit.items, 2);
        let spec = BatcherSpec {
            max_items_per_batch: None,
            max_input_bytes_per_batch: Some(8),
            batch_input: None,
        };
        let mut b = Batch::new(Some(spec)).unwrap();
        assert!(b.push(json!("ab")).is_none()); // 5 bytes
        let full = b.push(json!("cd")).unwrap(); // 5 more would pass 8
        assert_eq!(full.0, vec![json!("ab")]);
        assert_eq!(b.take().unwrap().0, vec![json!("cd")]);
    }
}
