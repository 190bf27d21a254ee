//! A wide window's markers from the changes summed up per lane and slot
//! of [`SLOT_MS`] (`marker_slots`, migration 0031, kept by triggers on
//! `marker_changes`): each slot that lies wholly inside the window, and
//! whose changes all lie in its stretch of the stream, is taken as it is
//! summed up (its number of changes and its last); the changes of the
//! other slots (those at the window's two ends, and those a change of
//! which might lie outside the stretch or in the starting moment) are
//! read one by one and summed up per slot the way [`super::markers`]
//! sums up a bucket. A time bucket of the page is a whole number of
//! slots, so each bucket's last change is then the latest of its slots'
//! lasts, and its number of changes their sum: the same answer as
//! grouping every change of the window, from a few slots a lane and day.

use super::markers::{Within, last_of_each, marker_rows};
use super::{Bounds, Fit, LaneWindow};
use crate::store::statement::{Placeholders, Statement};
use crate::store::to_i64;

/// The length of a slot, in ms (2^22, about 70 minutes), and its shift:
/// a slot is `event_at >> SLOT_SHIFT`, counted from the Unix epoch.
pub const SLOT_SHIFT: u32 = 22;
pub const SLOT_MS: i64 = 1 << SLOT_SHIFT;

/// The whole slots of `[since, until)`, `[first, end)`, when there are any
/// and each of the page's buckets is a whole number of slots.
pub fn whole_slots(window: &LaneWindow, fit: &Fit) -> Option<(i64, i64)> {
    let aligned = fit.bucket_ms >= SLOT_MS
        && fit.bucket_ms % SLOT_MS == 0
        && fit.origin.rem_euclid(SLOT_MS) == 0;
    let first = window.since.div_euclid(SLOT_MS) + i64::from(window.since.rem_euclid(SLOT_MS) != 0);
    let end = window.until.div_euclid(SLOT_MS);
    (aligned && first < end).then_some((first, end))
}

/// The window's markers as [`super::markers::statement`] gives them, read
/// by slots: `slots` are the window's whole ones ([`whole_slots`]).
pub fn statement(
    cluster_id: i64,
    window: &LaneWindow,
    fit: &Fit,
    (first, end): (i64, i64),
    style: Placeholders,
) -> Statement {
    let mut b = Bounds::new(cluster_id, window, style, None);
    let origin = b.p.int(fit.origin);
    let bucket_ms = b.p.int(fit.bucket_ms);
    let after = b.p.int(to_i64(fit.after_index));
    let (first, end) = (b.p.int(first), b.p.int(end));
    let within = Within::new(&b, &after);
    let Bounds {
        c,
        lo,
        hi,
        since,
        until,
        ..
    } = &b;
    let by_time = b.p.changes_by_time();
    let start_of = |slot: &str| format!("({slot} << {SLOT_SHIFT})");
    let summed =
        format!("r.least_index >= {lo} AND r.least_index > {after} AND r.most_index <= {hi}");
    let slots = format!("r.cluster_id = {c} AND r.slot >= {first} AND r.slot < {end}");
    // The changes read one by one: those of the slots at the window's ends,
    // and those of whole slots not taken as summed up.
    let g_within = within.of("g");
    let change = "g.raft_index, g.position, g.event_at, g.topic, g.namespace, g.lane_ref";
    let (first_ms, end_ms) = (start_of(&first), start_of(&end));
    let (r_start, r_end) = (start_of("r.slot"), start_of("(r.slot + 1)"));
    let read = format!(
        "SELECT {change} FROM marker_changes AS g{by_time} \
         WHERE {g_within} AND g.event_at >= {since} AND g.event_at < {first_ms} \
         UNION ALL SELECT {change} FROM marker_changes AS g{by_time} \
         WHERE {g_within} AND g.event_at >= {end_ms} AND g.event_at < {until} \
         UNION ALL SELECT {change} FROM marker_slots AS r CROSS JOIN marker_changes AS g{by_time} \
         WHERE {slots} AND NOT ({summed}) AND {g_within} \
           AND g.event_at >= {r_start} AND g.event_at < {r_end} AND g.topic = r.topic \
           AND g.namespace = r.namespace AND g.lane_ref = r.lane_ref"
    );
    let groups = format!(
        "SELECT g.topic, g.namespace, g.lane_ref, MAX(g.event_at) AS at, COUNT(*) AS changes \
         FROM ({read}) AS g GROUP BY g.lane_ref, g.event_at >> {SLOT_SHIFT}, g.topic, g.namespace"
    );
    let last = last_of_each(style, &|m| within.of(m), by_time);
    let units = format!(
        "SELECT r.lane_ref, r.topic, r.namespace, ({r_start} - {origin}) / {bucket_ms} AS bucket, \
           r.changes, r.last_at AS at, r.last_index AS ri, r.last_position AS pos \
         FROM marker_slots AS r WHERE {slots} AND {summed} \
         UNION ALL SELECT s.lane_ref, s.topic, s.namespace, (s.at - {origin}) / {bucket_ms}, \
           s.changes, s.at, m.raft_index, m.position \
         FROM ({groups}) AS s {} WHERE {}",
        last.join, last.condition
    );
    let buckets = latest_of_each_bucket(style, &units);
    let (last, found) = look_up_last(style, c);
    let sql = marker_rows(&format!("({buckets}) AS s {last}"), &found);
    b.p.statement(sql)
}

/// How each bucket `s` finds its last change (`ri`, `pos`) as alias `m`,
/// one key lookup each: SQLite joins in the order written; PostgreSQL,
/// which misjudges how many buckets there are, would rather read every
/// change into a hash table, unless the lookup is a `LATERAL` subquery it
/// cannot merge into the join (`LIMIT`).
fn look_up_last(style: Placeholders, c: &str) -> (String, String) {
    let key = format!("m.cluster_id = {c} AND m.raft_index = s.ri AND m.position = s.pos");
    match style {
        Placeholders::Question => ("CROSS JOIN marker_changes AS m".to_owned(), key),
        Placeholders::Numbered => (
            format!(
                "CROSS JOIN LATERAL (SELECT * FROM marker_changes AS m WHERE {key} LIMIT 1) AS m"
            ),
            "1 = 1".to_owned(),
        ),
    }
}

/// Per lane and bucket, the sum of its `units`' changes and the latest of
/// their lasts (`ri`, `pos`). The units of a bucket are each of another
/// slot, so no two share a time: SQLite takes the last's columns from the
/// row with the greatest time (its documented rule for a lone `MAX`);
/// PostgreSQL, which has no such rule, compares whole arrays.
fn latest_of_each_bucket(style: Placeholders, units: &str) -> String {
    let (ri, pos) = match style {
        Placeholders::Question => ("u.ri".to_owned(), "u.pos".to_owned()),
        Placeholders::Numbered => {
            let latest = "MAX(ARRAY[u.at, u.ri, CAST(u.pos AS BIGINT)])";
            (format!("({latest})[2]"), format!("({latest})[3]"))
        }
    };
    format!(
        "SELECT u.lane_ref, u.bucket, u.topic, u.namespace, CAST(SUM(u.changes) AS BIGINT) AS changes, \
           MAX(u.at) AS at, {ri} AS ri, {pos} AS pos \
         FROM ({units}) AS u GROUP BY u.lane_ref, u.bucket, u.topic, u.namespace"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lanes::Others;

    fn window(since: i64, until: i64) -> LaneWindow {
        LaneWindow {
            from_index: 1,
            to_index: 100,
            since,
            until,
            by_lives: true,
            others: Others::Markers,
            fit: None,
        }
    }

    fn fit(origin: i64, bucket_ms: i64) -> Fit {
        Fit {
            width: 100,
            origin,
            bucket_ms,
            after_index: 0,
        }
    }

    #[test]
    fn whole_slots_are_those_inside_the_window() {
        let s = SLOT_MS;
        let wide = fit(0, 4 * s);
        // Ends on slot boundaries: every slot between them is whole.
        assert_eq!(whole_slots(&window(8 * s, 20 * s), &wide), Some((8, 20)));
        // Ends inside slots: those slots are not.
        assert_eq!(
            whole_slots(&window(8 * s + 1, 20 * s - 1), &wide),
            Some((9, 19))
        );
        assert_eq!(
            whole_slots(&window(8 * s - 1, 20 * s + 1), &wide),
            Some((8, 20))
        );
        // Before the epoch too.
        assert_eq!(
            whole_slots(&window(-3 * s - 5, -s), &fit(-4 * s, 4 * s)),
            Some((-3, -1))
        );
        // No whole slot.
        assert_eq!(whole_slots(&window(8 * s + 1, 9 * s + 1), &wide), None);
        assert_eq!(whole_slots(&window(8 * s + 1, 9 * s - 1), &wide), None);
    }

    #[test]
    fn only_buckets_of_whole_slots_are_read_by_slots() {
        let s = SLOT_MS;
        let inside = window(8 * s, 20 * s);
        assert!(whole_slots(&inside, &fit(0, s)).is_some());
        assert!(whole_slots(&inside, &fit(0, s / 2)).is_none());
        assert!(whole_slots(&inside, &fit(0, 3 * s)).is_some());
        assert!(whole_slots(&inside, &fit(0, s + s / 2)).is_none());
        assert!(whole_slots(&inside, &fit(s / 2, 4 * s)).is_none());
    }
}
