//! Keyframes (migration 0011): every object present at a raft index, by the
//! index of the event that last described it, so that a snapshot starts from
//! the newest keyframe before its moment and reads only the events after
//! it. A keyframe is built from the previous one and the events between
//! them, in SQL only (`INSERT … SELECT`), in one transaction: during the
//! writer's commit once the events stored since the last keyframe reach
//! [`threshold`], and over existing history by the catch-up
//! ([`crate::store::Store::build_keyframes`]). Both backends run the same
//! statements through [`Run`].

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

pub(super) use super::params::Params;
use super::statement::{Placeholders, Statement};
use super::terminal_counts;
use super::{StoreError, to_i64, to_u64};
use crate::archive::{Batch, now_millis};

/// Events between keyframes at least: keyframes then cost at most about
/// one small row per event, and a snapshot reads at most this many events
/// (or the keyframe's object count, when larger) after its keyframe
/// (docs/performance.md, "Denser keyframes").
pub const MIN_EVENTS_BETWEEN: u64 = 2_500;

/// Overrides [`MIN_EVENTS_BETWEEN`] in a process started with it (tests
/// build keyframes every few events).
pub const EVENTS_BETWEEN_ENV: &str = "NOMAD_CHRONICLE_KEYFRAME_EVENTS";

/// Overrides [`MIN_EVENTS_BETWEEN`] and [`EVENTS_BETWEEN_ENV`] in this
/// process; 0: no override.
static EVENTS_BETWEEN: AtomicU64 = AtomicU64::new(0);

/// Makes keyframes of this process follow each other every `events` events
/// at least (0: the default again), as [`EVENTS_BETWEEN_ENV`] does for a
/// process started with it: for tests that build keyframes in process.
pub fn set_min_events_between(events: u64) {
    EVENTS_BETWEEN.store(events, Ordering::Relaxed);
}

/// A keyframe as the archive holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    pub id: i64,
    /// The state after every event up to this index.
    pub index: u64,
    /// Objects present then.
    pub objects: u64,
    /// Allocations terminal then (not listed).
    pub terminal_allocations: u64,
}

/// A `keyframes` row: `id, raft_index, objects, terminal_allocations`.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyframeRecord {
    id: i64,
    raft_index: i64,
    objects: i64,
    terminal_allocations: i64,
}

impl From<KeyframeRecord> for Keyframe {
    fn from(r: KeyframeRecord) -> Self {
        Keyframe {
            id: r.id,
            index: to_u64(r.raft_index),
            objects: to_u64(r.objects),
            terminal_allocations: to_u64(r.terminal_allocations),
        }
    }
}

/// How many events after a keyframe holding `objects` call for the next
/// one: never fewer than [`MIN_EVENTS_BETWEEN`] (or its override), nor
/// fewer than the objects the next keyframe copies.
pub fn threshold(objects: u64) -> u64 {
    let set = EVENTS_BETWEEN.load(Ordering::Relaxed);
    let least = match set {
        0 => std::env::var(EVENTS_BETWEEN_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(MIN_EVENTS_BETWEEN),
        set => set,
    };
    least.max(objects)
}

/// The latest event of each object of `topics` (an SQL list) with an index
/// in `(after, upto]`, as `o_topic, o_namespace, o_key, o_last`; the
/// placeholders are bound already.
pub(super) fn latest_between(
    p: &Params,
    cluster: &str,
    after: &str,
    upto: &str,
    topics: &str,
) -> String {
    format!(
        "SELECT topic AS o_topic, namespace AS o_namespace, key_ref AS o_key, MAX(raft_index) AS o_last \
         FROM event_log{} WHERE cluster_id = {cluster} AND raft_index > {after} AND raft_index <= {upto} \
         AND topic IN ({topics}) GROUP BY topic, namespace, key_ref",
        p.stream_order()
    )
}

/// The topics a keyframe holds.
pub(super) const OBJECT_TOPICS: &str = "'Node', 'Job', 'Allocation'";

/// The newest keyframe of a cluster at or before `index`.
pub fn newest(cluster_id: i64, index: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
    p.statement(format!(
        "SELECT id, raft_index, objects, terminal_allocations FROM keyframes \
         WHERE cluster_id = {c} AND raft_index <= {i} ORDER BY raft_index DESC LIMIT 1"
    ))
}

/// One event of the cluster whose time and presence are not filled in yet.
pub fn unfilled(cluster_id: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    p.statement(format!(
        "SELECT raft_index FROM event_log WHERE cluster_id = {c} AND event_at IS NULL LIMIT 1"
    ))
}

/// How many events follow `index`, counting no further than `cap`.
pub fn events_after(cluster_id: i64, index: u64, cap: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i, n) = (p.int(cluster_id), p.int(to_i64(index)), p.int(to_i64(cap)));
    p.statement(format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM event_log WHERE cluster_id = {c} AND raft_index > {i} \
         LIMIT {n}) AS e"
    ))
}

/// The index of the `n`th event (from 1) after `index`: where the next
/// keyframe goes.
pub fn nth_event_after(cluster_id: i64, index: u64, n: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
    let skip = p.int(to_i64(n.saturating_sub(1)));
    p.statement(format!(
        "SELECT raft_index FROM event_log WHERE cluster_id = {c} AND raft_index > {i} \
         ORDER BY raft_index, position LIMIT 1 OFFSET {skip}"
    ))
}

/// How the count of terminal allocations changes from keyframe `from` (its
/// id and index; `-1` and 0 for none) to `upto`: the sum of
/// [`terminal_terms`].
pub fn terminal_delta(
    cluster_id: i64,
    from: (i64, u64),
    upto: u64,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let [c, kf, after, upto] = bind_window(&mut p, cluster_id, from, upto);
    let terms = terminal_terms(&p, &c, &kf, &after, &upto);
    p.statement(format!(
        "SELECT CAST(COALESCE(SUM(t.term), 0) AS BIGINT) AS delta FROM ({terms}) AS t"
    ))
}

/// Binds the window of [`terminal_terms`]: the cluster, keyframe `from`'s
/// id and index (`-1` and 0 for none), and `upto`; returns their
/// placeholders in that order.
pub(super) fn bind_window(
    p: &mut Params,
    cluster_id: i64,
    from: (i64, u64),
    upto: u64,
) -> [String; 4] {
    [
        p.int(cluster_id),
        p.int(from.0),
        p.int(to_i64(from.1)),
        p.int(to_i64(upto)),
    ]
}

/// Each allocation with events in `(after, upto]`, as `job_ref, node_ref,
/// term`: its term counts one if it is terminal at `upto`, and minus one if
/// it was terminal at keyframe `kf` (at index `after`) — then it was not in
/// the keyframe, yet had an event before. The placeholders are bound already.
pub(super) fn terminal_terms(p: &Params, c: &str, kf: &str, after: &str, upto: &str) -> String {
    let latest = latest_between(p, c, after, upto, "'Allocation'");
    let (by_key, join) = (p.by_key(), p.join_rows());
    format!(
        "SELECT e.job_ref AS job_ref, e.node_ref AS node_ref, \
           CASE WHEN e.presence = 1 THEN 1 ELSE 0 END \
           - CASE WHEN NOT EXISTS (SELECT 1 FROM keyframe_objects AS o WHERE o.keyframe_id = {kf} \
                    AND o.topic = 'Allocation' AND o.namespace = l.o_namespace AND o.key_ref = l.o_key) \
                   AND EXISTS (SELECT 1 FROM event_log AS b{by_key} WHERE b.topic = 'Allocation' \
                    AND b.key_ref = l.o_key AND b.cluster_id = {c} AND b.raft_index <= {after} \
                    AND b.namespace = l.o_namespace) \
             THEN 1 ELSE 0 END AS term \
         FROM ({latest}) AS l {join} event_log AS e ON e.cluster_id = {c} AND e.raft_index = l.o_last \
           AND e.topic = l.o_topic AND e.namespace = l.o_namespace AND e.key_ref = l.o_key"
    )
}

/// Adds keyframe `index` with its terminal count (its objects are counted
/// once inserted); nothing, and no id, when it exists already.
fn insert_keyframe(cluster_id: i64, index: u64, terminal: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i, t, at) = (
        p.int(cluster_id),
        p.int(to_i64(index)),
        p.int(to_i64(terminal)),
        p.int(now_millis()),
    );
    p.statement(format!(
        "INSERT INTO keyframes (cluster_id, raft_index, objects, terminal_allocations, built_at) \
         VALUES ({c}, {i}, 0, {t}, {at}) ON CONFLICT DO NOTHING RETURNING id"
    ))
}

/// Fills keyframe `id` at `index`: the objects of keyframe `from` (id and
/// index) that no event touched since, and the latest event of each object
/// touched since that says it is present.
fn insert_objects(
    cluster_id: i64,
    id: i64,
    from: (i64, u64),
    index: u64,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let [c, kf, after, upto] = bind_window(&mut p, cluster_id, from, index);
    let new = p.int(id);
    let latest = latest_between(&p, &c, &after, &upto, OBJECT_TOPICS);
    let (by_key, join) = (p.by_key(), p.join_rows());
    p.statement(format!(
        "INSERT INTO keyframe_objects (keyframe_id, topic, namespace, key_ref, raft_index) \
         SELECT CAST({new} AS BIGINT), o.topic, o.namespace, o.key_ref, o.raft_index \
         FROM keyframe_objects AS o WHERE o.keyframe_id = {kf} AND NOT EXISTS ( \
           SELECT 1 FROM event_log AS x{by_key} WHERE x.topic = o.topic AND x.key_ref = o.key_ref \
           AND x.cluster_id = {c} AND x.raft_index > {after} AND x.raft_index <= {upto} \
           AND x.namespace = o.namespace) \
         UNION ALL \
         SELECT CAST({new} AS BIGINT), e.topic, e.namespace, e.key_ref, e.raft_index \
         FROM ({latest}) AS l {join} event_log AS e ON e.cluster_id = {c} AND e.raft_index = l.o_last \
           AND e.topic = l.o_topic AND e.namespace = l.o_namespace AND e.key_ref = l.o_key \
         WHERE e.presence = 0"
    ))
}

/// Records how many objects keyframe `id` holds.
fn set_objects(id: i64, objects: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (n, id) = (p.int(to_i64(objects)), p.int(id));
    p.statement(format!(
        "UPDATE keyframes SET objects = {n} WHERE id = {id}"
    ))
}

/// Drops the keyframes at or after `index` (events were stored below
/// them), their rows first: the statements to run in order.
fn invalidate(cluster_id: i64, index: u64, style: Placeholders) -> [Statement; 3] {
    let objects = {
        let mut p = Params::new(style);
        let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
        p.statement(format!(
            "DELETE FROM keyframe_objects WHERE keyframe_id IN \
             (SELECT id FROM keyframes WHERE cluster_id = {c} AND raft_index >= {i})"
        ))
    };
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
    let keyframes = p.statement(format!(
        "DELETE FROM keyframes WHERE cluster_id = {c} AND raft_index >= {i}"
    ));
    let counts = terminal_counts::invalidate(cluster_id, index, style);
    [objects, counts, keyframes]
}

/// What the keyframe work needs of a connection (or a transaction on one),
/// whichever the backend.
#[async_trait]
pub(super) trait Run: Send {
    fn style(&self) -> Placeholders;
    /// The first column of the first row, if any, as an integer.
    async fn int(&mut self, statement: Statement) -> Result<Option<i64>, StoreError>;
    /// Runs `statement`; returns the rows it changed.
    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError>;
    /// A keyframe row, if any.
    async fn keyframe(&mut self, statement: Statement) -> Result<Option<Keyframe>, StoreError>;
}

/// Why the keyframes of a cluster cannot be built yet.
pub(super) fn unfilled_error(cluster: &str) -> StoreError {
    StoreError::Unfilled {
        cluster: cluster.to_owned(),
    }
}

/// Builds the keyframe that follows `from` (none: the start of history)
/// when [`threshold`] events follow it, at the index of the last of them —
/// but not past `upto`. Returns it, or the one another process built there
/// meanwhile; `None` when too few events follow.
pub(super) async fn step(
    run: &mut dyn Run,
    cluster_id: i64,
    from: Option<Keyframe>,
    upto: Option<u64>,
) -> Result<Option<Keyframe>, StoreError> {
    let style = run.style();
    let start = from.map_or((-1, 0), |k| (k.id, k.index));
    let n = threshold(from.map_or(0, |k| k.objects));
    let Some(index) = run
        .int(nth_event_after(cluster_id, start.1, n, style))
        .await?
        .map(to_u64)
    else {
        return Ok(None);
    };
    if upto.is_some_and(|upto| index > upto) {
        return Ok(None);
    }
    build_at(run, cluster_id, from, index).await
}

/// Builds the keyframe at `index` from keyframe `from` (none: the start of
/// history) and the events between them. Returns it, or the one already
/// there (another process built it meanwhile).
pub(super) async fn build_at(
    run: &mut dyn Run,
    cluster_id: i64,
    from: Option<Keyframe>,
    index: u64,
) -> Result<Option<Keyframe>, StoreError> {
    let style = run.style();
    let start = from.map_or((-1, 0), |k| (k.id, k.index));
    let delta = run
        .int(terminal_delta(cluster_id, start, index, style))
        .await?
        .unwrap_or(0);
    let before = from.map_or(0, |k| k.terminal_allocations);
    let terminal = to_u64(to_i64(before).saturating_add(delta));
    let inserted = insert_keyframe(cluster_id, index, terminal, style);
    let Some(id) = run.int(inserted).await? else {
        return run.keyframe(newest(cluster_id, index, style)).await;
    };
    let objects = run
        .execute(insert_objects(cluster_id, id, start, index, style))
        .await?;
    run.execute(set_objects(id, objects, style)).await?;
    for statement in terminal_counts::build(cluster_id, start, index, style) {
        run.execute(statement).await?;
    }
    Ok(Some(Keyframe {
        id,
        index,
        objects,
        terminal_allocations: terminal,
    }))
}

/// Where the writer stands with keyframes: read from the archive on its
/// first commit, then kept up to date commit by commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tracker {
    /// Not read yet (or after a failed commit).
    #[default]
    Unknown,
    /// Events without their time and presence are waiting to be filled
    /// in: no keyframes until the archive is opened again.
    Off,
    /// The newest keyframe, and how many events were stored after it.
    On { last: Option<Keyframe>, since: u64 },
}

impl Tracker {
    /// The newest keyframe and the events since, read from the archive
    /// (counted up to the threshold, which is all that matters).
    async fn load(run: &mut dyn Run, cluster_id: i64) -> Result<Tracker, StoreError> {
        let style = run.style();
        if run.int(unfilled(cluster_id, style)).await?.is_some() {
            return Ok(Tracker::Off);
        }
        let last = run
            .keyframe(newest(cluster_id, u64::MAX >> 1, style))
            .await?;
        let cap = threshold(last.map_or(0, |k| k.objects));
        let after = last.map_or(0, |k| k.index);
        let since = run.int(events_after(cluster_id, after, cap, style)).await?;
        Ok(Tracker::On {
            last,
            since: since.map_or(0, to_u64),
        })
    }

    /// Whether events stored since the last keyframe call for the next.
    pub fn due(&self) -> bool {
        match self {
            Tracker::On { last, since } => *since >= threshold(last.map_or(0, |k| k.objects)),
            _ => false,
        }
    }
}

/// The writer's part, inside its commit after the batch's events are
/// stored: drops keyframes the batch's new events fall below (an import
/// filling history behind the archive's end; a frame resent at a keyframe's
/// own index drops it too, to be rebuilt), then builds the keyframes that
/// are due, up to the batch's highest index.
pub(super) async fn after_insert(
    run: &mut dyn Run,
    tracker: &mut Tracker,
    cluster_id: i64,
    batch: &Batch,
    inserted: u64,
) -> Result<(), StoreError> {
    if *tracker == Tracker::Unknown {
        // Read with this batch's events stored: they are taken out here
        // and counted below like any batch's.
        *tracker = Tracker::load(run, cluster_id).await?;
        if let Tracker::On { since, .. } = tracker {
            *since = since.saturating_sub(inserted);
        }
    }
    let Tracker::On { last, since } = tracker else {
        return Ok(());
    };
    let lowest = batch.frames.iter().map(|f| f.frame.index).min();
    let below = match (lowest, *last) {
        (Some(lowest), Some(k)) if inserted > 0 && lowest <= k.index => Some(lowest),
        _ => None,
    };
    if let Some(lowest) = below {
        for statement in invalidate(cluster_id, lowest, run.style()) {
            run.execute(statement).await?;
        }
        *tracker = Tracker::Unknown;
        return Ok(());
    }
    *since += inserted;
    if !tracker.due() {
        return Ok(());
    }
    // Read again, after taking the cluster's row: a prune may have built a
    // keyframe at its cut and deleted the older ones since the tracker read
    // them ([`super::prune`]).
    if let Some(lock) = super::prune::lock_cluster(cluster_id, run.style()) {
        run.execute(lock).await?;
    }
    let mut from = run
        .keyframe(newest(cluster_id, u64::MAX >> 1, run.style()))
        .await?;
    while let Some(built) = step(run, cluster_id, from, batch.max_index()).await? {
        from = Some(built);
    }
    // The events after the newest keyframe are counted again next time.
    *tracker = Tracker::Unknown;
    Ok(())
}

/// The catch-up's own transactions, whichever the backend: one keyframe
/// each.
#[async_trait]
pub(super) trait Transactions: Send + Sync {
    /// Runs [`step`] in a transaction of its own.
    async fn step(
        &self,
        cluster_id: i64,
        from: Option<Keyframe>,
    ) -> Result<Option<Keyframe>, StoreError>;
    /// Runs a statement outside any transaction, for one integer.
    async fn int(&self, statement: Statement) -> Result<Option<i64>, StoreError>;
    /// Reads a keyframe.
    async fn keyframe(&self, statement: Statement) -> Result<Option<Keyframe>, StoreError>;
    fn style(&self) -> Placeholders;
}

/// Builds the missing keyframes of a cluster over its history, threshold by
/// threshold from the newest one; refuses while events wait for their time
/// and presence. `progress` hears each keyframe's index and the cluster's
/// last index. Returns how many were built.
pub(super) async fn catch_up(
    store: &dyn Transactions,
    cluster_id: i64,
    cluster: &str,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, StoreError> {
    let style = store.style();
    if store.int(unfilled(cluster_id, style)).await?.is_some() {
        return Err(unfilled_error(cluster));
    }
    let last_index = {
        let mut p = Params::new(style);
        let c = p.int(cluster_id);
        let s = p.statement(format!(
            "SELECT MAX(raft_index) FROM event_log WHERE cluster_id = {c}"
        ));
        store.int(s).await?.map_or(0, to_u64)
    };
    let mut from = store
        .keyframe(newest(cluster_id, u64::MAX >> 1, style))
        .await?;
    let mut built = 0;
    while let Some(next) = store.step(cluster_id, from).await? {
        built += 1;
        progress(next.index, last_index);
        from = Some(next);
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_grows_with_the_objects_a_keyframe_copies() {
        assert_eq!(threshold(0), MIN_EVENTS_BETWEEN);
        assert_eq!(threshold(25_000), 25_000);
    }

    #[test]
    fn a_tracker_is_due_once_the_events_since_reach_the_threshold() {
        let last = Keyframe {
            id: 1,
            index: 10,
            objects: 20_000,
            terminal_allocations: 0,
        };
        let due = |since| {
            Tracker::On {
                last: Some(last),
                since,
            }
            .due()
        };
        assert!(!due(19_999));
        assert!(due(20_000));
        assert!(!Tracker::Off.due());
        assert!(!Tracker::Unknown.due());
    }

    #[test]
    fn numbered_placeholders_may_repeat_in_either_style() {
        let sql = |style| terminal_delta(1, (-1, 0), 9, style).sql;
        let lite = sql(Placeholders::Question);
        assert!(
            lite.contains("b.cluster_id = ?1 AND b.raft_index <= ?3"),
            "{lite}"
        );
        assert!(lite.contains("INDEXED BY event_log_stream_order"), "{lite}");
        let pg = sql(Placeholders::Numbered);
        assert!(
            pg.contains("b.cluster_id = $1 AND b.raft_index <= $3"),
            "{pg}"
        );
        assert!(!pg.contains("INDEXED BY"), "{pg}");
        // SQLite's planner is held to the objects' handful of latest events
        // as the outer loop; PostgreSQL has statistics to choose.
        assert!(lite.contains("AS l CROSS JOIN event_log AS e"), "{lite}");
        assert!(pg.contains("AS l JOIN event_log AS e"), "{pg}");
    }
}
