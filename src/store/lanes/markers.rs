//! A window's job versions and deployment statuses, found and thinned by
//! the database ([`statement`]) rather than read one event a row: the
//! changes the writer judged (`marker_changes`, [`crate::store::marker_changes`])
//! within the window, and of those, on each lane and bucket of the page's
//! time axis ([`Fit::bucket_ms`]), only the last (by time, then stream
//! order) with the number of the others it stands for. The changes are
//! grouped as the time index gives them, and each group's last is looked
//! up by its time; a window whose buckets are whole slots of 2^22 ms takes
//! most of them already summed up per slot ([`super::slots`]).

use super::slots::{self, whole_slots};
use super::{Bounds, Fit, LaneWindow, bucket};
use crate::store::statement::{Placeholders, Statement};
use crate::store::to_i64;

/// The window's markers (lanes per job), in stream order, as
/// [`super::LaneRow`]s, `hidden` the number of earlier changes within
/// their bucket each stands for.
pub fn statement(
    cluster_id: i64,
    window: &LaneWindow,
    fit: &Fit,
    style: Placeholders,
) -> Statement {
    if let Some(slots) = whole_slots(window, fit) {
        return slots::statement(cluster_id, window, fit, slots, style);
    }
    let mut b = Bounds::new(cluster_id, window, style, None);
    let bucket = bucket(&mut b, fit, "g.event_at");
    let after = b.p.int(to_i64(fit.after_index));
    let within = Within::new(&b, &after);
    let (since, until) = (&b.since, &b.until);
    let g_within = within.of("g");
    let by_time = b.p.changes_by_time();
    // Integers first: the sort that groups them compares its first key
    // most, and compares integers faster than text.
    let groups = format!(
        "SELECT g.topic, g.namespace, g.lane_ref, {bucket} AS bucket, MAX(g.event_at) AS at, \
           COUNT(*) AS changes \
         FROM marker_changes AS g{by_time} \
         WHERE {g_within} AND g.event_at >= {since} AND g.event_at < {until} \
         GROUP BY g.lane_ref, bucket, g.topic, g.namespace"
    );
    let last = last_of_each(style, &|m| within.of(m), by_time);
    let sql = marker_rows(&format!("({groups}) AS s {}", last.join), &last.condition);
    b.p.statement(sql)
}

/// The markers' rows ([`super::LaneRow`]s) in stream order, of each group
/// `s` (its number of changes in `s.changes`) its last change `m`, as
/// `from` (with `s` and `m`) and `condition` find them.
pub(super) fn marker_rows(from: &str, condition: &str) -> String {
    format!(
        "SELECT m.raft_index, m.position, m.topic, m.namespace, k.name AS key, \
           j.name AS job_id, CAST(NULL AS TEXT) AS node_id, m.event_at, m.status, \
           CAST(NULL AS BIGINT) AS ended_at, CAST(NULL AS TEXT) AS node_name, \
           CAST(NULL AS TEXT) AS task_group, m.version, CAST(NULL AS TEXT) AS eligibility, \
           CAST(NULL AS BOOLEAN) AS drain, s.changes - 1 AS hidden, \
           CAST(NULL AS BIGINT) AS bucket, CAST(NULL AS BIGINT) AS count \
         FROM {from} \
         JOIN names AS k ON k.id = m.key_ref \
         JOIN names AS j ON j.id = m.lane_ref \
         WHERE {condition} \
         ORDER BY m.raft_index, m.position"
    )
}

/// The condition on a change (by its alias) of lying in a window's
/// stretch of the stream, after its starting moment: the changes the
/// moment holds (those at the window's very start) are the versions the
/// page starts from, not changes within.
pub(super) struct Within<'a> {
    c: &'a str,
    lo: &'a str,
    hi: &'a str,
    after: &'a str,
}

impl<'a> Within<'a> {
    /// Of the window's cluster and stretch, and the placeholder of the
    /// moment's raft index.
    pub(super) fn new(b: &'a Bounds, after: &'a str) -> Self {
        Within {
            c: &b.c,
            lo: &b.lo,
            hi: &b.hi,
            after,
        }
    }

    pub(super) fn of(&self, m: &str) -> String {
        let Within { c, lo, hi, after } = self;
        format!(
            "{m}.cluster_id = {c} AND {m}.raft_index >= {lo} AND {m}.raft_index <= {hi} \
               AND {m}.raft_index > {after}"
        )
    }
}

/// How each group `s` finds its last change, as alias `m`: the change at
/// the group's last time, of several the last in the stream, looked up
/// by its time. PostgreSQL takes it from a `LATERAL` subquery (with a join
/// on the time it would rather read every change into a hash table);
/// SQLite, which has no `LATERAL`, keeps the change no later one at that
/// time follows, and takes the `CROSS JOIN` in the order written.
pub(super) struct Last {
    pub(super) join: String,
    pub(super) condition: String,
}

pub(super) fn last_of_each(
    style: Placeholders,
    within: &dyn Fn(&str) -> String,
    by_time: &str,
) -> Last {
    let same = |m: &str| {
        format!(
            "{} AND {m}.event_at = s.at AND {m}.topic = s.topic \
               AND {m}.namespace = s.namespace AND {m}.lane_ref = s.lane_ref",
            within(m)
        )
    };
    match style {
        Placeholders::Numbered => Last {
            join: format!(
                "CROSS JOIN LATERAL (SELECT * FROM marker_changes AS m WHERE {} \
                   ORDER BY m.raft_index DESC, m.position DESC LIMIT 1) AS m",
                same("m")
            ),
            condition: "1 = 1".to_owned(),
        },
        Placeholders::Question => Last {
            join: format!("CROSS JOIN marker_changes AS m{by_time}"),
            condition: format!(
                "{} AND NOT EXISTS (SELECT 1 FROM marker_changes AS y{by_time} WHERE {} \
                   AND (y.raft_index > m.raft_index \
                     OR (y.raft_index = m.raft_index AND y.position > m.position)))",
                same("m"),
                same("y")
            ),
        },
    }
}
