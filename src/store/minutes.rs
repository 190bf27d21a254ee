//! The stretch of the stream each minute of the events' time holds,
//! `event_minutes` (migration 0029): per cluster and minute, the lowest and
//! highest raft index of the events dated in it. A time window's stretch of
//! the stream ([`span`], what `Store::time_span` answers) is read from the
//! whole minutes inside the window and from the index by time only at its
//! two ends, so its cost is the window's minutes rather than its events.
//!
//! The writer widens the minutes of each batch in its transaction
//! ([`of_batch`]); the dating backfill those of the events it dates
//! ([`of_times`]); a prune recomputes the minutes of the events it is about
//! to delete without them ([`before_prune`]). Written once for both
//! backends.

use std::collections::BTreeMap;

use super::params::Params;
use super::prune;
use super::rows::EventRow;
use super::statement::{Placeholders, Statement};

/// A minute in Unix ms.
pub const MINUTE_MS: i64 = 60_000;

/// Minutes written by one statement: three values each and the cluster's,
/// well under either backend's limit of bound values.
const MINUTES_PER_STATEMENT: usize = 1_000;

/// Widens a stored minute to the span of a new row for it.
const WIDEN: &str = "ON CONFLICT (cluster_id, minute) DO UPDATE SET \
     first_index = CASE WHEN excluded.first_index < event_minutes.first_index \
       THEN excluded.first_index ELSE event_minutes.first_index END, \
     last_index = CASE WHEN excluded.last_index > event_minutes.last_index \
       THEN excluded.last_index ELSE event_minutes.last_index END";

/// The minute the time `at` (Unix ms) falls in, rounded down.
pub fn minute_of(at: i64) -> i64 {
    at.div_euclid(MINUTE_MS)
}

/// The SQL of [`minute_of`] for the expression `at`: `%` and `/` round
/// toward zero on both backends, so the remainder is made positive first.
fn minute_sql(at: &str) -> String {
    format!("({at} - (({at} % {MINUTE_MS}) + {MINUTE_MS}) % {MINUTE_MS}) / {MINUTE_MS}")
}

/// The statements that widen `event_minutes` for a batch of `rows` once
/// they are stored, of which `inserted` were new: from the rows' times
/// when every one was; else from the events stored in the batch's stretch
/// of the stream, since an event sent again keeps the time it was stored
/// with.
pub fn of_batch(
    cluster_id: i64,
    rows: &[EventRow],
    inserted: u64,
    style: Placeholders,
) -> Vec<Statement> {
    if u64::try_from(rows.len()).is_ok_and(|n| n == inserted) {
        return of_times(cluster_id, rows.iter().map(|r| (r.index, r.time.at)), style);
    }
    let indexes = rows.iter().map(|r| r.index);
    match (indexes.clone().min(), indexes.max()) {
        (Some(lo), Some(hi)) => vec![stored(cluster_id, (lo, hi), style)],
        _ => Vec::new(),
    }
}

/// The statements that widen `event_minutes` for events now dated, given
/// as their raft index and time.
pub fn of_times(
    cluster_id: i64,
    times: impl Iterator<Item = (i64, i64)>,
    style: Placeholders,
) -> Vec<Statement> {
    let mut minutes: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (index, at) in times {
        let span = minutes.entry(minute_of(at)).or_insert((index, index));
        *span = (span.0.min(index), span.1.max(index));
    }
    let minutes: Vec<_> = minutes.into_iter().collect();
    minutes
        .chunks(MINUTES_PER_STATEMENT)
        .map(|chunk| widen(cluster_id, chunk, style))
        .collect()
}

/// Widens the minutes of `chunk` (each minute with its lowest and highest
/// index).
fn widen(cluster_id: i64, chunk: &[(i64, (i64, i64))], style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    let values: Vec<String> = chunk
        .iter()
        .map(|&(minute, (lo, hi))| {
            format!("({c}, {}, {}, {})", p.int(minute), p.int(lo), p.int(hi))
        })
        .collect();
    p.statement(format!(
        "INSERT INTO event_minutes (cluster_id, minute, first_index, last_index) VALUES {} {WIDEN}",
        values.join(", ")
    ))
}

/// Widens the minutes of the events stored in `[lo, hi]`.
fn stored(cluster_id: i64, (lo, hi): (i64, i64), style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, lo, hi) = (p.int(cluster_id), p.int(lo), p.int(hi));
    let stream_order = p.stream_order();
    p.statement(format!(
        "INSERT INTO event_minutes (cluster_id, minute, first_index, last_index) \
         SELECT cluster_id, {}, MIN(raft_index), MAX(raft_index) FROM event_log{stream_order} \
         WHERE cluster_id = {c} AND raft_index >= {lo} AND raft_index <= {hi} \
           AND event_at IS NOT NULL \
         GROUP BY 1, 2 {WIDEN}",
        minute_sql("event_at")
    ))
}

/// The statements a prune step runs before deleting the events of
/// `[from, below)` that keyframe `keyframe` does not list: each minute
/// holding one of the step's events is recomputed from the events it keeps,
/// and deleted when it keeps none.
pub fn before_prune(
    cluster_id: i64,
    keyframe: i64,
    range: (u64, u64),
    style: Placeholders,
) -> [Statement; 2] {
    let build = |sql: &dyn Fn(&str, &str) -> String| {
        let mut p = Params::new(style);
        let prune::StepBinds { c, lo, hi, kf } =
            prune::StepBinds::bind(&mut p, cluster_id, keyframe, range);
        let (stream_order, by_time) = (p.stream_order(), p.by_time());
        let affected = format!(
            "event_minutes.cluster_id = {c} AND event_minutes.minute IN \
             (SELECT {} FROM event_log AS e{stream_order} WHERE e.cluster_id = {c} \
                AND e.raft_index >= {lo} AND e.raft_index < {hi} AND e.event_at IS NOT NULL)",
            minute_sql("e.event_at")
        );
        let kept = format!(
            "FROM event_log AS x{by_time} WHERE x.cluster_id = {c} \
               AND x.event_at >= event_minutes.minute * {MINUTE_MS} \
               AND x.event_at < event_minutes.minute * {MINUTE_MS} + {MINUTE_MS} \
               AND (x.raft_index < {lo} OR x.raft_index >= {hi} OR {})",
            prune::listed("x", &kf)
        );
        p.statement(sql(&affected, &kept))
    };
    [
        build(&|affected, kept| {
            format!("DELETE FROM event_minutes WHERE {affected} AND NOT EXISTS (SELECT 1 {kept})")
        }),
        build(&|affected, kept| {
            format!(
                "UPDATE event_minutes SET first_index = (SELECT MIN(x.raft_index) {kept}), \
                   last_index = (SELECT MAX(x.raft_index) {kept}) WHERE {affected}"
            )
        }),
    ]
}

/// The lowest and highest index (`first`, `last`) of the events dated in
/// `[since, until)`: the whole minutes inside the window from
/// `event_minutes`, the parts of a minute at either end from the index by
/// time. Both are `NULL` when nothing is dated in the window.
pub fn span(cluster_id: i64, since: i64, until: i64, style: Placeholders) -> Statement {
    let first_whole = since
        .div_euclid(MINUTE_MS)
        .saturating_add(i64::from(since.rem_euclid(MINUTE_MS) != 0));
    let past_whole = until.div_euclid(MINUTE_MS);
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    let (minutes_from, minutes_to) = (p.int(first_whole), p.int(past_whole));
    let head = dated(
        &mut p,
        &c,
        (since, first_whole.saturating_mul(MINUTE_MS).min(until)),
        style,
    );
    let tail = dated(
        &mut p,
        &c,
        (past_whole.saturating_mul(MINUTE_MS).max(since), until),
        style,
    );
    p.statement(format!(
        "SELECT MIN(s.first) AS first, MAX(s.last) AS last FROM \
         (SELECT MIN(first_index) AS first, MAX(last_index) AS last FROM event_minutes \
          WHERE cluster_id = {c} AND minute >= {minutes_from} AND minute < {minutes_to} \
          UNION ALL {head} UNION ALL {tail}) AS s"
    ))
}

/// The lowest and highest index of the events dated in `[since, until)`,
/// read from the index by time: a part of a minute. On PostgreSQL the
/// events are a subquery of their own (`OFFSET 0`): over the bare table it
/// answers `MIN(raft_index)` by walking the stream order from the first
/// event until one is dated in the window, through all history before it.
fn dated(p: &mut Params, c: &str, (since, until): (i64, i64), style: Placeholders) -> String {
    let (since, until) = (p.int(since), p.int(until));
    let within = format!("cluster_id = {c} AND event_at >= {since} AND event_at < {until}");
    match style {
        Placeholders::Question => format!(
            "SELECT MIN(raft_index), MAX(raft_index) FROM event_log{} WHERE {within}",
            p.by_time()
        ),
        Placeholders::Numbered => format!(
            "SELECT MIN(raft_index), MAX(raft_index) \
             FROM (SELECT raft_index FROM event_log WHERE {within} OFFSET 0) AS w"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{MINUTE_MS, minute_of};

    #[test]
    fn a_minute_holds_its_first_millisecond_and_not_the_next_minutes() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(MINUTE_MS - 1), 0);
        assert_eq!(minute_of(MINUTE_MS), 1);
        assert_eq!(minute_of(-1), -1);
        assert_eq!(minute_of(-MINUTE_MS), -1);
        assert_eq!(minute_of(-MINUTE_MS - 1), -2);
        assert_eq!(minute_of(i64::MIN), i64::MIN / MINUTE_MS - 1);
    }
}
