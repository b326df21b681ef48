//! Everything one store holds, written into another through the traits
//! alone: how `stepline store copy` moves a data directory to PostgreSQL
//! and back. Both stores must be out of service meanwhile.

use std::collections::BTreeSet;

use super::{
    ExecutionQuery, ExecutionsOf, ListCursor, READ_PAGE, Store, StoreError, WriteBatch, WriteOp,
};

/// How many of each kind a copy wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySummary {
    pub state_machines: u64,
    pub revisions: u64,
    pub executions: u64,
    pub history_events: u64,
    pub task_tokens: u64,
    pub activities: u64,
    pub triggers: u64,
    pub cache_entries: u64,
}

/// Why a copy did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target store already holds {0}: copy into an empty store only")]
    TargetNotEmpty(&'static str),
    #[error("reading the source store: {0}")]
    Read(#[source] StoreError),
    #[error("writing the target store: {0}")]
    Write(#[source] StoreError),
}

/// Events or journal entries per batch: a long history goes in several.
const CHUNK: usize = 1000;

/// Copies everything `from` holds into `to`, which must be empty, then
/// flushes `to`. `progress` hears of each execution copied, with the count
/// so far.
pub fn copy(
    from: &dyn Store,
    to: &dyn Store,
    progress: &mut dyn FnMut(u64),
) -> Result<CopySummary, CopyError> {
    refuse_unless_empty(to)?;
    let read = CopyError::Read;
    let write = |batch: &WriteBatch| to.apply(batch).map_err(CopyError::Write);
    let mut summary = CopySummary::default();

    // Definitions first: every revision an execution may replay.
    let mut revisions: BTreeSet<(String, u64)> = BTreeSet::new();
    for machine in from.state_machines().map_err(read)? {
        for revision in 1..=machine.revision {
            revisions.insert((machine.arn.clone(), revision));
        }
        summary.state_machines += 1;
    }
    let mut after: Option<ListCursor> = None;
    let mut executions = Vec::new();
    loop {
        let mut query = ExecutionQuery::new(ExecutionsOf::All, READ_PAGE);
        query.after = after.take();
        let page = from.list_executions(&query).map_err(read)?;
        executions.extend(page.executions.into_iter().map(|s| s.arn));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for arn in &executions {
        if let Some(record) = from.execution(arn).map_err(read)? {
            revisions.insert((record.state_machine_arn.clone(), record.revision));
            if let Some(child) = &record.map_run {
                revisions.insert((child.machine_arn.clone(), child.revision));
            }
        }
    }
    for (arn, revision) in &revisions {
        // Revisions are kept from the first put on; an older store may lack
        // the earliest ones.
        if let Some(record) = from.state_machine_revision(arn, *revision).map_err(read)? {
            write(WriteBatch::new().push(WriteOp::PutStateMachine(record)))?;
            summary.revisions += 1;
        }
    }
    // The current definitions last, so each machine ends at its own; a
    // machine deleted since its executions started keeps its revisions
    // only.
    let current = from.state_machines().map_err(read)?;
    let counted: BTreeSet<String> = revisions
        .iter()
        .map(|(arn, _)| arn.clone())
        .chain(current.iter().map(|m| m.arn.clone()))
        .collect();
    let mut gone: BTreeSet<&String> = revisions.iter().map(|(arn, _)| arn).collect();
    for machine in &current {
        gone.remove(&machine.arn);
    }
    let mut definitions = WriteBatch::new();
    for arn in gone {
        definitions.push(WriteOp::DeleteStateMachine(arn.clone()));
    }
    for machine in current {
        definitions.push(WriteOp::PutStateMachine(machine));
    }
    write(&definitions)?;

    for arn in &executions {
        let Some(record) = from.execution(arn).map_err(read)? else {
            continue;
        };
        write(WriteBatch::new().push(WriteOp::CreateExecution(record)))?;
        for chunk in from.journal(arn).map_err(read)?.chunks(CHUNK) {
            write(WriteBatch::new().push(WriteOp::AppendJournal {
                execution: arn.clone(),
                entries: chunk.to_vec(),
            }))?;
        }
        let mut events = 0;
        loop {
            let page = from.history_page(arn, events, CHUNK).map_err(read)?;
            let Some(last) = page.last().map(|e| e.id) else {
                break;
            };
            summary.history_events += page.len() as u64;
            write(WriteBatch::new().push(WriteOp::AppendHistory {
                execution: arn.clone(),
                events: page,
            }))?;
            events = last;
        }
        let mut rest = WriteBatch::new();
        for timer in from.timers_of(arn).map_err(read)? {
            rest.push(WriteOp::PutTimer(timer));
        }
        for log in from.task_logs(arn).map_err(read)? {
            rest.push(WriteOp::PutTaskLog {
                record: log,
                keep: u64::MAX,
            });
        }
        for run in from.map_runs(arn).map_err(read)? {
            rest.push(WriteOp::PutMapRun(run));
        }
        for record in from.lineage_of_execution(arn, usize::MAX).map_err(read)? {
            rest.push(WriteOp::PutLineage(record));
        }
        write(&rest)?;
        summary.executions += 1;
        progress(summary.executions);
    }

    // The dashboard's counts, hour by hour (a total is the sum of its
    // hours, so adding the hours writes it too).
    for machine in &counted {
        let mut batch = WriteBatch::new();
        for bucket in from.stats_hours(machine, 0, i64::MAX).map_err(read)? {
            batch.push(WriteOp::AddStats(crate::StatsDelta {
                state_machine: machine.clone(),
                hour: bucket.hour,
                stats: bucket.stats,
            }));
        }
        write(&batch)?;
    }

    let mut after = String::new();
    loop {
        let page = from.task_tokens_page(&after, READ_PAGE).map_err(read)?;
        let Some(last) = page.last().map(|t| t.token.clone()) else {
            break;
        };
        let mut batch = WriteBatch::new();
        for token in page {
            batch.push(WriteOp::PutTaskToken(token));
            summary.task_tokens += 1;
        }
        write(&batch)?;
        after = last;
    }
    let mut after = String::new();
    loop {
        let page = from.cache_entries_page(&after, READ_PAGE).map_err(read)?;
        let Some(last) = page.last().map(|e| e.key.clone()) else {
            break;
        };
        let mut batch = WriteBatch::new();
        for entry in page {
            batch.push(WriteOp::PutCacheEntry(entry));
            summary.cache_entries += 1;
        }
        write(&batch)?;
        after = last;
    }
    let mut rest = WriteBatch::new();
    for notice in from.ended_notices().map_err(read)? {
        rest.push(WriteOp::PutEndedNotice(notice));
    }
    for activity in from.activities().map_err(read)? {
        rest.push(WriteOp::PutActivity(activity));
        summary.activities += 1;
    }
    for trigger in from.triggers().map_err(read)? {
        if let Some(state) = from.trigger_state(&trigger.name).map_err(read)? {
            rest.push(WriteOp::PutTriggerState(state));
        }
        rest.push(WriteOp::PutTrigger(trigger));
        summary.triggers += 1;
    }
    write(&rest)?;
    to.flush().map_err(CopyError::Write)?;
    Ok(summary)
}

fn refuse_unless_empty(to: &dyn Store) -> Result<(), CopyError> {
    let read = CopyError::Read;
    if !to.state_machines().map_err(read)?.is_empty() {
        return Err(CopyError::TargetNotEmpty("state machines"));
    }
    let any = to
        .list_executions(&ExecutionQuery::new(ExecutionsOf::All, 1))
        .map_err(read)?;
    if !any.executions.is_empty() {
        return Err(CopyError::TargetNotEmpty("executions"));
    }
    if !to.activities().map_err(read)?.is_empty() {
        return Err(CopyError::TargetNotEmpty("activities"));
    }
    if !to.triggers().map_err(read)?.is_empty() {
        return Err(CopyError::TargetNotEmpty("triggers"));
    }
    Ok(())
}
