//! Retention (migration 0017): deleting a cluster's history before a cut,
//! in small transactions, written once for both backends. A prune makes
//! sure a [keyframe](super::keyframe) exists at the cut (the state after
//! every event before it), records itself in `prunes` before anything is
//! deleted (so every answer reaching before the cut says so from then on),
//! then deletes the events before the cut a few thousand at a time, except
//! those the keyframe at the cut lists (the latest event of each object
//! present then, which later snapshots read), and last the keyframes and
//! terminal counts before the cut. Each backend runs the steps in
//! transactions of its own ([`Steps`]) and gives the space back.

use async_trait::async_trait;

use super::keyframe::{self, Keyframe, Params, Run};
use super::lives;
use super::marker_changes;
use super::minutes;
use super::statement::{Placeholders, Statement};
use super::{StoreError, to_i64, to_u64};
use crate::archive::{Cluster, Prune, PruneReport, now_millis};

/// The tables other than `event_log` that hold a row per event (or per
/// some events), keyed by
/// `(cluster_id, raft_index, position)`: a prune deletes their rows with
/// the events'. A new per-event table is one line here.
pub(super) const PER_EVENT_TABLES: &[&str] = &[
    "allocation_details",
    "job_details",
    "deployment_details",
    "node_details",
    "evaluation_details",
    "marker_changes",
];

/// Events deleted per transaction: small enough that a concurrent writer
/// waits at most a few milliseconds for the lock.
pub const EVENTS_PER_STEP: u64 = 2_000;

/// One transaction of a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Makes sure a keyframe exists at `before - 1` and carries the terminal
    /// counts forward to it; returns the keyframe's id.
    Keyframe { before: u64 },
    /// Records the prune; returns its id.
    Record { before: u64, time: Option<i64> },
    /// Deletes the events in `[from, below)` that keyframe `keyframe` does
    /// not list, adding their number to prune `prune`; returns it.
    Events {
        prune: i64,
        keyframe: i64,
        from: u64,
        below: u64,
    },
    /// Deletes the oldest keyframe before `before`, with its objects and
    /// the terminal counts up to it; returns 0 when none is left.
    OldKeyframe { before: u64 },
    /// Marks prune `prune` finished.
    Finish { prune: i64 },
}

/// A prune's transactions, whichever the backend.
#[async_trait]
pub(super) trait Steps: Send + Sync {
    /// Runs [`apply`] in a transaction of its own, holding the write lock
    /// from its start (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the cluster's
    /// row, [`lock_cluster`]).
    async fn step(&self, cluster_id: i64, step: Step) -> Result<u64, StoreError>;
    /// Runs a statement outside any transaction, for one integer.
    async fn int(&self, statement: Statement) -> Result<Option<i64>, StoreError>;
    /// Gives the space of `deleted` events back, a little at a time;
    /// whether it can (an SQLite archive created without incremental
    /// auto-vacuum cannot).
    async fn reclaim(&self, deleted: u64) -> Result<bool, StoreError>;
    /// The archive's size in bytes, as retention measures it.
    async fn size(&self) -> Result<u64, StoreError>;
    fn style(&self) -> Placeholders;
}

/// `SELECT … FOR UPDATE` of the cluster's row on PostgreSQL, which the
/// writer's commit updates: a prune's step and a writer's keyframe then
/// follow each other. SQLite has one writer at a time anyway.
pub(super) fn lock_cluster(cluster_id: i64, style: Placeholders) -> Option<Statement> {
    match style {
        Placeholders::Question => None,
        Placeholders::Numbered => {
            let mut p = Params::new(style);
            let c = p.int(cluster_id);
            Some(p.statement(format!("SELECT id FROM clusters WHERE id = {c} FOR UPDATE")))
        }
    }
}

/// The cluster's newest prune (the cut in force), as
/// [`super::records::PruneRecord`] maps it.
pub fn newest(cluster_id: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    p.statement(format!(
        "SELECT before_index, before_time, started_at, finished_at, events FROM prunes \
         WHERE cluster_id = {c} ORDER BY before_index DESC, id DESC LIMIT 1"
    ))
}

/// Runs one step on `run`, inside the backend's transaction.
pub(super) async fn apply(
    run: &mut dyn Run,
    cluster_id: i64,
    step: Step,
) -> Result<u64, StoreError> {
    let style = run.style();
    if let Some(lock) = lock_cluster(cluster_id, style) {
        run.execute(lock).await?;
    }
    match step {
        Step::Keyframe { before } => {
            let keyframe = keyframe_at(run, cluster_id, before.saturating_sub(1)).await?;
            run.execute(carry_counts(cluster_id, keyframe.index, style))
                .await?;
            Ok(to_u64(keyframe.id))
        }
        Step::Record { before, time } => {
            let id = run.int(record(cluster_id, before, time, style)).await?;
            Ok(id.map_or(0, to_u64))
        }
        Step::Events {
            prune,
            keyframe,
            from,
            below,
        } => {
            run.execute(lives::before_prune(cluster_id, (from, below), style))
                .await?;
            run.execute(marker_changes::before_prune(
                cluster_id,
                keyframe,
                (from, below),
                style,
            ))
            .await?;
            for statement in minutes::before_prune(cluster_id, keyframe, (from, below), style) {
                run.execute(statement).await?;
            }
            for table in PER_EVENT_TABLES {
                run.execute(delete_side(
                    table,
                    cluster_id,
                    keyframe,
                    (from, below),
                    style,
                ))
                .await?;
            }
            run.execute(delete_task_events(cluster_id, (from, below), style))
                .await?;
            let deleted = run
                .execute(delete_events(cluster_id, keyframe, (from, below), style))
                .await?;
            run.execute(delete_blocks(cluster_id, (from, below), style))
                .await?;
            run.execute(lives::after_prune(cluster_id, below, style))
                .await?;
            run.execute(count(prune, deleted, style)).await?;
            Ok(deleted)
        }
        Step::OldKeyframe { before } => old_keyframe(run, cluster_id, before).await,
        Step::Finish { prune } => run.execute(finish(prune, style)).await,
    }
}

/// The keyframe at `index`, built from the newest one before it when
/// missing. Refuses while events wait for their time and presence.
async fn keyframe_at(
    run: &mut dyn Run,
    cluster_id: i64,
    index: u64,
) -> Result<Keyframe, StoreError> {
    let style = run.style();
    if run
        .int(keyframe::unfilled(cluster_id, style))
        .await?
        .is_some()
    {
        return Err(keyframe::unfilled_error(&format!("#{cluster_id}")));
    }
    let from = run
        .keyframe(keyframe::newest(cluster_id, index, style))
        .await?;
    if let Some(k) = from.filter(|k| k.index == index) {
        return Ok(k);
    }
    let built = keyframe::build_at(run, cluster_id, from, index).await?;
    match built {
        Some(k) => Ok(k),
        None => Err(StoreError::Query(sqlx::Error::Protocol(format!(
            "the keyframe at index `{index}` could not be built"
        )))),
    }
}

/// Gives each job and node whose newest terminal count is before `index`
/// a row at `index` with that count, so deleting the rows before it loses
/// no count.
fn carry_counts(cluster_id: i64, index: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
    p.statement(format!(
        "INSERT INTO terminal_counts (cluster_id, ref_column, ref, raft_index, terminal) \
         SELECT r.cluster_id, r.ref_column, r.ref, CAST({i} AS BIGINT), r.terminal \
         FROM terminal_counts AS r WHERE r.cluster_id = {c} AND r.raft_index < {i} \
           AND r.raft_index = (SELECT MAX(n.raft_index) FROM terminal_counts AS n \
             WHERE n.cluster_id = r.cluster_id AND n.ref_column = r.ref_column AND n.ref = r.ref \
             AND n.raft_index <= {i}) \
         ON CONFLICT (cluster_id, ref_column, ref, raft_index) DO NOTHING"
    ))
}

/// Records a prune before `before`; returns its id.
fn record(cluster_id: i64, before: u64, time: Option<i64>, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, b, at) = (
        p.int(cluster_id),
        p.int(to_i64(before)),
        p.int(now_millis()),
    );
    let t = match time {
        Some(t) => p.int(t),
        None => "NULL".to_owned(),
    };
    p.statement(format!(
        "INSERT INTO prunes (cluster_id, before_index, before_time, started_at, events) \
         VALUES ({c}, {b}, {t}, {at}, 0) RETURNING id"
    ))
}

/// `NOT EXISTS (…)`: the event `e` is not the one keyframe `kf` lists for
/// its object.
fn not_kept(e: &str, kf: &str) -> String {
    format!("NOT {}", listed(e, kf))
}

/// `EXISTS (…)`: the event `e` is the one keyframe `kf` lists for its
/// object, which a prune keeps.
pub(super) fn listed(e: &str, kf: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM keyframe_objects AS o WHERE o.keyframe_id = {kf} \
           AND o.topic = {e}.topic AND o.namespace = {e}.namespace AND o.key_ref = {e}.key_ref \
           AND o.raft_index = {e}.raft_index)"
    )
}

/// A step of a prune's values, bound: the cluster, the ends of the range
/// `[lo, hi)` it deletes from, and the keyframe whose objects it keeps.
pub(super) struct StepBinds {
    pub c: String,
    pub lo: String,
    pub hi: String,
    pub kf: String,
}

impl StepBinds {
    pub(super) fn bind(
        p: &mut Params,
        cluster_id: i64,
        keyframe: i64,
        (from, below): (u64, u64),
    ) -> Self {
        StepBinds {
            c: p.int(cluster_id),
            lo: p.int(to_i64(from)),
            hi: p.int(to_i64(below)),
            kf: p.int(keyframe),
        }
    }
}

/// Deletes the events of `[from, below)` that keyframe `keyframe` does not list.
fn delete_events(
    cluster_id: i64,
    keyframe: i64,
    range: (u64, u64),
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let StepBinds { c, lo, hi, kf } = StepBinds::bind(&mut p, cluster_id, keyframe, range);
    let kept = not_kept("event_log", &kf);
    p.statement(format!(
        "DELETE FROM event_log WHERE cluster_id = {c} AND raft_index >= {lo} \
         AND raft_index < {hi} AND {kept}"
    ))
}

/// Deletes the rows of the per-event `table` in `[from, below)` whose event
/// is not kept; run before the events themselves.
fn delete_side(
    table: &str,
    cluster_id: i64,
    keyframe: i64,
    range: (u64, u64),
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let StepBinds { c, lo, hi, kf } = StepBinds::bind(&mut p, cluster_id, keyframe, range);
    let kept = listed("e", &kf);
    p.statement(format!(
        "DELETE FROM {table} WHERE cluster_id = {c} AND raft_index >= {lo} AND raft_index < {hi} \
         AND NOT EXISTS (SELECT 1 FROM event_log AS e WHERE e.cluster_id = {table}.cluster_id \
           AND e.raft_index = {table}.raft_index AND e.position = {table}.position AND {kept})"
    ))
}

/// Deletes the task events first seen before `below` of the allocations
/// with events in `[from, below)` (`task_event_log` is keyed by allocation;
/// an allocation's task events first seen earlier went with its events in
/// an earlier step). Run before the events themselves.
fn delete_task_events(
    cluster_id: i64,
    (from, below): (u64, u64),
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let (c, lo, hi) = (p.int(cluster_id), p.int(to_i64(from)), p.int(to_i64(below)));
    p.statement(format!(
        "DELETE FROM task_event_log WHERE cluster_id = {c} AND first_seen_index < {hi} \
         AND alloc_ref IN (SELECT key_ref FROM event_log WHERE cluster_id = {c} \
           AND topic = 'Allocation' AND raft_index >= {lo} AND raft_index < {hi})"
    ))
}

/// Deletes the blocks (migration 0032) reaching into `[from, below)` that
/// no event is packed in any more; run after the events. A block some of
/// whose events the keyframe keeps stays whole.
fn delete_blocks(cluster_id: i64, (from, below): (u64, u64), style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, lo, hi) = (p.int(cluster_id), p.int(to_i64(from)), p.int(to_i64(below)));
    p.statement(format!(
        "DELETE FROM event_blocks WHERE cluster_id = {c} AND last_index >= {lo} \
           AND first_index < {hi} AND NOT EXISTS (SELECT 1 FROM event_log AS e \
             WHERE e.cluster_id = {c} AND e.raft_index >= event_blocks.first_index \
               AND e.raft_index <= event_blocks.last_index AND e.block_id = event_blocks.id)"
    ))
}

/// Adds `deleted` events to prune `prune`.
fn count(prune: i64, deleted: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (n, id) = (p.int(to_i64(deleted)), p.int(prune));
    p.statement(format!(
        "UPDATE prunes SET events = events + {n} WHERE id = {id}"
    ))
}

/// Marks prune `prune` finished now.
fn finish(prune: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (at, id) = (p.int(now_millis()), p.int(prune));
    p.statement(format!(
        "UPDATE prunes SET finished_at = {at} WHERE id = {id}"
    ))
}

/// Deletes the oldest keyframe before `before - 1`, its objects and the
/// terminal counts up to its index; 0 when there is none.
async fn old_keyframe(run: &mut dyn Run, cluster_id: i64, before: u64) -> Result<u64, StoreError> {
    let style = run.style();
    let oldest = {
        let mut p = Params::new(style);
        let (c, b) = (p.int(cluster_id), p.int(to_i64(before.saturating_sub(1))));
        p.statement(format!(
            "SELECT id, raft_index, objects, terminal_allocations FROM keyframes \
             WHERE cluster_id = {c} AND raft_index < {b} ORDER BY raft_index LIMIT 1"
        ))
    };
    let Some(k) = run.keyframe(oldest).await? else {
        return Ok(0);
    };
    let mut p = Params::new(style);
    let id = p.int(k.id);
    run.execute(p.statement(format!(
        "DELETE FROM keyframe_objects WHERE keyframe_id = {id}"
    )))
    .await?;
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(k.index)));
    run.execute(p.statement(format!(
        "DELETE FROM terminal_counts WHERE cluster_id = {c} AND raft_index <= {i}"
    )))
    .await?;
    let mut p = Params::new(style);
    let id = p.int(k.id);
    run.execute(p.statement(format!("DELETE FROM keyframes WHERE id = {id}")))
        .await?;
    Ok(1)
}

/// Where the next step of deletions ends: the index of the
/// [`EVENTS_PER_STEP`]th event at or after `from`, or `below` when fewer
/// are left.
fn step_end(cluster_id: i64, from: u64, below: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, lo, hi, skip) = (
        p.int(cluster_id),
        p.int(to_i64(from)),
        p.int(to_i64(below)),
        p.int(to_i64(EVENTS_PER_STEP)),
    );
    p.statement(format!(
        "SELECT raft_index FROM event_log WHERE cluster_id = {c} AND raft_index >= {lo} \
         AND raft_index < {hi} ORDER BY raft_index, position LIMIT 1 OFFSET {skip}"
    ))
}

/// The lowest index of the cluster's events: where deletions start.
fn lowest(cluster_id: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    p.statement(format!(
        "SELECT MIN(raft_index) FROM event_log WHERE cluster_id = {c}"
    ))
}

/// Prunes the history of `cluster` before index `before` (its
/// time by Nomad's clock `time`), step by step: see the module's
/// documentation. `previous` is the cut in force, if any: a cut at or
/// before it only finishes what an interrupted prune left.
pub(super) async fn run(
    store: &dyn Steps,
    cluster: &Cluster,
    before: u64,
    time: Option<i64>,
    previous: Option<&Prune>,
) -> Result<PruneReport, StoreError> {
    let (cluster_id, style) = (cluster.id, store.style());
    if store
        .int(keyframe::unfilled(cluster_id, style))
        .await?
        .is_some()
    {
        return Err(keyframe::unfilled_error(&cluster.name));
    }
    let started_at = now_millis();
    let bytes_before = store.size().await?;
    let (before, time) = match previous {
        Some(p) if p.before_index >= before => (p.before_index, p.before_time),
        _ => (before, time),
    };
    let keyframe = to_i64(store.step(cluster_id, Step::Keyframe { before }).await?);
    let prune = to_i64(
        store
            .step(cluster_id, Step::Record { before, time })
            .await?,
    );
    let mut from = store
        .int(lowest(cluster_id, style))
        .await?
        .map_or(before, to_u64);
    let mut events = 0;
    while from < before {
        let end = store.int(step_end(cluster_id, from, before, style)).await?;
        let below = end.map_or(before, to_u64).max(from + 1).min(before);
        let step = Step::Events {
            prune,
            keyframe,
            from,
            below,
        };
        events += store.step(cluster_id, step).await?;
        from = below;
        tokio::task::yield_now().await;
    }
    while store.step(cluster_id, Step::OldKeyframe { before }).await? > 0 {
        tokio::task::yield_now().await;
    }
    store.step(cluster_id, Step::Finish { prune }).await?;
    let space_returned = store.reclaim(events).await?;
    let kept = store
        .int(kept(cluster_id, before, style))
        .await?
        .map_or(0, to_u64);
    Ok(PruneReport {
        prune: Prune {
            before_index: before,
            before_time: time,
            started_at,
            finished_at: Some(now_millis()),
            events,
        },
        kept,
        space_returned,
        bytes_before,
        bytes_after: store.size().await?,
    })
}

/// How many events before `before` are kept (listed by the keyframe there).
fn kept(cluster_id: i64, before: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, b) = (p.int(cluster_id), p.int(to_i64(before)));
    p.statement(format!(
        "SELECT COUNT(*) FROM event_log WHERE cluster_id = {c} AND raft_index < {b}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_event_tables_lose_the_rows_of_the_events_deleted() {
        let sql = delete_side("task_events", 1, 7, (0, 100), Placeholders::Question).sql;
        assert!(
            sql.starts_with("DELETE FROM task_events WHERE cluster_id = ?1 AND raft_index >= ?2"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "e.position = task_events.position AND EXISTS (SELECT 1 FROM keyframe_objects"
            ),
            "{sql}"
        );
    }

    #[test]
    fn only_postgres_locks_the_clusters_row() {
        assert!(lock_cluster(1, Placeholders::Question).is_none());
        let pg = lock_cluster(1, Placeholders::Numbered).map(|s| s.sql);
        assert_eq!(
            pg.as_deref(),
            Some("SELECT id FROM clusters WHERE id = $1 FOR UPDATE")
        );
    }
}
