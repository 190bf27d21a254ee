//! The Job and Deployment events that change what the web timeline draws
//! on a job's lane, `marker_changes` (migration 0028): a Job event whose
//! version differs from the job's previous archived event with one, a
//! Deployment event whose status differs from the deployment's previous
//! archived event, and each object's first. The writer judges a batch's
//! events in its transaction ([`after_batch`]), against what is archived
//! before each, so a wide window of the timeline groups its changes by lane
//! and time bucket from one index ([`super::lanes`]) instead of comparing
//! each of its events with the one before.
//!
//! An event's judgement depends on it and on its object's previous event
//! only. A batch behind what is stored (an import of older history, a
//! resent batch) may hold the new previous event of an object's next
//! stored one: that next event is judged again too. A prune deletes the
//! rows of the events it deletes, and makes the first event it leaves of
//! each object that lost some a change ([`before_prune`]): the first the
//! archive holds. Written once for both backends.

use super::params::Params;
use super::prune;
use super::rows::EventRow;
use super::statement::{Placeholders, Statement};
use super::{to_i64, to_u64};

/// The columns of `marker_changes`, in the order the judging statements
/// select them.
const COLUMNS: &str = "cluster_id, raft_index, position, event_at, topic, namespace, lane_ref, key_ref, version, status";

/// The statements that keep `marker_changes` right for a batch of
/// `rows`, run after its events and their details are stored
/// ([`after_batch`]); none for a batch without Job or Deployment events.
pub fn of_batch(cluster_id: i64, rows: &[EventRow], style: Placeholders) -> Vec<Statement> {
    let marked = rows
        .iter()
        .filter(|r| matches!(r.event.topic.as_str(), "Job" | "Deployment"))
        .map(|r| r.index);
    let (lo, hi) = marked.fold((i64::MAX, i64::MIN), |(lo, hi), i| (lo.min(i), hi.max(i)));
    if lo > hi {
        return Vec::new();
    }
    after_batch(cluster_id, (to_u64(lo), to_u64(hi)), style).into()
}

/// The statements that keep `marker_changes` right for a batch whose
/// events lie in `[lo, hi]` (raft indexes), run after its events and
/// their details are stored: the batch's events judged again, then each
/// of their objects' next stored event.
pub fn after_batch(cluster_id: i64, (lo, hi): (u64, u64), style: Placeholders) -> [Statement; 4] {
    let start = || {
        let mut p = Params::new(style);
        let range = Range::bind(&mut p, cluster_id, (lo, hi));
        (p, range)
    };
    let (p, r) = start();
    let forget = p.statement(format!(
        "DELETE FROM marker_changes WHERE cluster_id = {} AND raft_index >= {} \
           AND raft_index <= {}",
        r.c, r.lo, r.hi
    ));
    let (p, r) = start();
    let judge = insert(p, &r, &r.batch(), Judged::Changes);
    let (p, r) = start();
    let next = r.next_events();
    let forget_next = p.statement(format!(
        "DELETE FROM marker_changes WHERE cluster_id = {} AND (raft_index, position) IN \
           (SELECT e.raft_index, e.position FROM {} WHERE {})",
        r.c, next.from, next.condition
    ));
    let (p, r) = start();
    let next = r.next_events();
    let judge_next = insert(p, &r, &next, Judged::Changes);
    [forget, judge, forget_next, judge_next]
}

/// A cluster's raft indexes `[lo, hi]`, as placeholders, and SQLite's
/// hints to read events by them and by key.
struct Range {
    c: String,
    lo: String,
    hi: String,
    stream_order: &'static str,
    by_key: &'static str,
}

/// Events read as alias `e`: `FROM {from} WHERE {condition}`.
struct Events {
    from: String,
    condition: String,
}

impl Range {
    /// Binds the cluster and the range's ends to `p`.
    fn bind(p: &mut Params, cluster_id: i64, (lo, hi): (u64, u64)) -> Range {
        Range {
            c: p.int(cluster_id),
            lo: p.int(to_i64(lo)),
            hi: p.int(to_i64(hi)),
            stream_order: p.stream_order(),
            by_key: p.by_key(),
        }
    }

    /// The range's events.
    fn batch(&self) -> Events {
        let Range { c, lo, hi, .. } = self;
        Events {
            from: format!("event_log AS e{}", self.stream_order),
            condition: format!(
                "e.cluster_id = {c} AND e.raft_index >= {lo} AND e.raft_index <= {hi}"
            ),
        }
    }

    /// The event after the range of each Job and Deployment object with
    /// an event in it.
    fn next_events(&self) -> Events {
        let Range { c, lo, hi, .. } = self;
        let objects = format!(
            "SELECT DISTINCT b.topic, b.namespace, b.key_ref FROM event_log AS b \
             WHERE b.cluster_id = {c} AND b.raft_index >= {lo} AND b.raft_index <= {hi} \
               AND b.topic IN ('Job', 'Deployment')"
        );
        self.first_of_each(&objects, &format!("x.raft_index > {hi}"))
    }

    /// The first event `remaining` (a condition on alias `x`) of each
    /// object `objects` selects (`topic, namespace, key_ref`), of a Job
    /// the first with a version.
    fn first_of_each(&self, objects: &str, remaining: &str) -> Events {
        let c = &self.c;
        let first = format!(
            "(SELECT MIN(x.raft_index) FROM event_log AS x{} \
               LEFT JOIN job_details AS v ON x.topic = 'Job' AND v.cluster_id = x.cluster_id \
                 AND v.raft_index = x.raft_index AND v.position = x.position \
             WHERE x.topic = o.topic AND x.key_ref = o.key_ref AND x.cluster_id = {c} \
               AND x.namespace = o.namespace AND {remaining} \
               AND (x.topic <> 'Job' OR v.version IS NOT NULL))",
            self.by_key
        );
        Events {
            from: format!(
                "({objects}) AS o JOIN event_log AS e ON e.cluster_id = {c} \
                   AND e.raft_index = {first} AND e.topic = o.topic \
                   AND e.namespace = o.namespace AND e.key_ref = o.key_ref"
            ),
            condition: "1 = 1".to_owned(),
        }
    }
}

/// The statement a prune step runs before it deletes the events of
/// `[lo, hi)` that keyframe `keyframe` does not list: the first event
/// left of each Job and Deployment object losing some becomes its first
/// archived one, and so a change (the history it was judged against is
/// gone, as for the page, which reads no earlier event of it).
pub fn before_prune(
    cluster_id: i64,
    keyframe: i64,
    (lo, hi): (u64, u64),
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let kf = p.int(keyframe);
    let range = Range::bind(&mut p, cluster_id, (lo, hi));
    let Range { c, lo, hi, .. } = &range;
    let objects = format!(
        "SELECT DISTINCT b.topic, b.namespace, b.key_ref FROM event_log AS b \
         WHERE b.cluster_id = {c} AND b.raft_index >= {lo} AND b.raft_index < {hi} \
           AND b.topic IN ('Job', 'Deployment') AND NOT {}",
        prune::listed("b", &kf)
    );
    let remaining = format!(
        "(x.raft_index >= {hi} OR (x.raft_index >= {lo} AND {}))",
        prune::listed("x", &kf)
    );
    let first = range.first_of_each(&objects, &remaining);
    insert(p, &range, &first, Judged::All)
}

/// Which of the events judged are inserted.
#[derive(Clone, Copy)]
enum Judged {
    Changes,
    All,
}

/// `INSERT` of the changes among `events` (or all of them, as changes),
/// leaving those already in.
fn insert(p: Params, range: &Range, events: &Events, judged: Judged) -> Statement {
    let kept = |a: &str| match judged {
        Judged::Changes => format!("{a}.changed = 1"),
        Judged::All => "1 = 1".to_owned(),
    };
    p.statement(format!(
        "INSERT INTO marker_changes ({COLUMNS}) SELECT {COLUMNS} FROM ({}) AS j \
         WHERE {} UNION ALL SELECT {COLUMNS} FROM ({}) AS d WHERE {} \
         ON CONFLICT (cluster_id, raft_index, position) DO NOTHING",
        judged_jobs(range, events),
        kept("j"),
        judged_deployments(range, events),
        kept("d"),
    ))
}

/// `JOIN {table} AS {d}` on event `e`'s place.
fn details(join: &str, table: &str, d: &str, e: &str) -> String {
    format!(
        "{join} {table} AS {d} ON {d}.cluster_id = {e}.cluster_id \
           AND {d}.raft_index = {e}.raft_index AND {d}.position = {e}.position"
    )
}

/// The Job events among `events` with a version, each with `changed`: 1
/// when the job's previous event with a version had another, or there is
/// none.
fn judged_jobs(range: &Range, events: &Events) -> String {
    let Range { c, by_key, .. } = range;
    let previous = format!(
        "(SELECT pd.version FROM event_log AS x{by_key} {} WHERE x.topic = 'Job' \
           AND x.key_ref = e.key_ref AND x.cluster_id = {c} AND x.namespace = e.namespace \
           AND x.raft_index < e.raft_index AND pd.version IS NOT NULL \
         ORDER BY x.raft_index DESC LIMIT 1)",
        details("JOIN", "job_details", "pd", "x")
    );
    format!(
        "SELECT e.cluster_id, e.raft_index, e.position, \
           COALESCE(e.event_at, e.received_at) AS event_at, e.topic, e.namespace, \
           e.key_ref AS lane_ref, e.key_ref, d.version, CAST(NULL AS TEXT) AS status, \
           CASE WHEN {previous} = d.version THEN 0 ELSE 1 END AS changed \
         FROM {} {} WHERE {} AND e.topic = 'Job' AND d.version IS NOT NULL",
        events.from,
        details("JOIN", "job_details", "d", "e"),
        events.condition
    )
}

/// The Deployment events of a job among `events`, each with `changed`: 1
/// when the deployment's previous event had another status (no status
/// counting as `''`), or there is none.
fn judged_deployments(range: &Range, events: &Events) -> String {
    let Range { c, by_key, .. } = range;
    let previous = format!(
        "(SELECT COALESCE(pd.status, '') FROM event_log AS x{by_key} {} \
           WHERE x.topic = 'Deployment' AND x.key_ref = e.key_ref AND x.cluster_id = {c} \
             AND x.raft_index < e.raft_index \
         ORDER BY x.raft_index DESC LIMIT 1)",
        details("LEFT JOIN", "deployment_details", "pd", "x")
    );
    format!(
        "SELECT e.cluster_id, e.raft_index, e.position, \
           COALESCE(e.event_at, e.received_at) AS event_at, e.topic, e.namespace, \
           e.job_ref AS lane_ref, e.key_ref, d.job_version AS version, \
           COALESCE(d.status, '') AS status, \
           CASE WHEN {previous} = COALESCE(d.status, '') THEN 0 ELSE 1 END AS changed \
         FROM {} {} WHERE {} AND e.topic = 'Deployment' AND e.job_ref IS NOT NULL",
        events.from,
        details("LEFT JOIN", "deployment_details", "d", "e"),
        events.condition
    )
}

/// Dates again the rows of a cluster's events in `[lo, hi]`, which the
/// backfill has just dated (their `event_at` was the receipt time until
/// then), after it.
pub fn dated(cluster_id: i64, (lo, hi): (i64, i64), style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, lo, hi) = (p.int(cluster_id), p.int(lo), p.int(hi));
    p.statement(format!(
        "UPDATE marker_changes SET event_at = (SELECT COALESCE(e.event_at, e.received_at) \
           FROM event_log AS e WHERE e.cluster_id = marker_changes.cluster_id \
             AND e.raft_index = marker_changes.raft_index \
             AND e.position = marker_changes.position) \
         WHERE cluster_id = {c} AND raft_index >= {lo} AND raft_index <= {hi}"
    ))
}
