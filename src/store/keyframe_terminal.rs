//! Per keyframe, how many allocations of each job and node it holds were
//! terminal then (migration 0013), so that a snapshot narrowed to one job
//! or node counts the terminal allocations it leaves out from the keyframe
//! and the events after it, not from every allocation the job or node ever
//! had. A job or node gets its row in the first keyframe that holds it,
//! counted from its history once; later keyframes carry it forward by the
//! allocations changed in between ([`keyframe::terminal_terms`]). A job or
//! node without a row in the moment's keyframe (gone by then, or a
//! keyframe older than the table) is counted from its history.

use super::keyframe::{self, Keyframe, Params};
use super::statement::{Bind, Placeholders, Statement};
use super::to_i64;
use crate::archive::RefColumn;

/// The references counted: the column of `event_log` and the topic of the
/// objects it names.
const COUNTED: [(&str, &str); 2] = [("job_ref", "Job"), ("node_ref", "Node")];

/// The column a reference is counted under, if it is.
pub(super) fn counted(column: RefColumn) -> Option<&'static str> {
    match column {
        RefColumn::Job => Some("job_ref"),
        RefColumn::Node => Some("node_ref"),
        _ => None,
    }
}

/// The statements that fill keyframe `id` at `index`, which follows
/// keyframe `from` (its id and index; `-1` and 0 for none), in order.
pub(super) fn build(
    cluster_id: i64,
    id: i64,
    from: (i64, u64),
    index: u64,
    style: Placeholders,
) -> Vec<Statement> {
    COUNTED
        .iter()
        .flat_map(|&(column, topic)| {
            [
                carried(cluster_id, id, from, index, (column, topic), style),
                first_counted(cluster_id, id, index, (column, topic), style),
            ]
        })
        .collect()
}

/// The rows of keyframe `from` whose job or node keyframe `id` still
/// holds, moved by the allocations changed in between.
fn carried(
    cluster_id: i64,
    id: i64,
    from: (i64, u64),
    index: u64,
    (column, topic): (&str, &str),
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let (new, c, kf, after, upto) = (
        p.int(id),
        p.int(cluster_id),
        p.int(from.0),
        p.int(to_i64(from.1)),
        p.int(to_i64(index)),
    );
    let terms = keyframe::terminal_terms(&p, &c, &kf, &after, &upto);
    p.statement(format!(
        "INSERT INTO keyframe_terminal (keyframe_id, ref_column, ref, terminal) \
         SELECT CAST({new} AS BIGINT), r.ref_column, r.ref, r.terminal + COALESCE(d.delta, 0) \
         FROM keyframe_terminal AS r LEFT JOIN ( \
           SELECT t.{column} AS ref, SUM(t.term) AS delta FROM ({terms}) AS t \
           WHERE t.{column} IS NOT NULL GROUP BY t.{column}) AS d ON d.ref = r.ref \
         WHERE r.keyframe_id = {kf} AND r.ref_column = '{column}' AND EXISTS ( \
           SELECT 1 FROM keyframe_objects AS o WHERE o.keyframe_id = {new} \
           AND o.topic = '{topic}' AND o.key_ref = r.ref)"
    ))
}

/// A row for each job or node keyframe `id` holds that got none from the
/// keyframe before: counted from its history.
fn first_counted(
    cluster_id: i64,
    id: i64,
    index: u64,
    (column, topic): (&str, &str),
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let (new, c, upto) = (p.int(id), p.int(cluster_id), p.int(to_i64(index)));
    let count = history_count(&p, &c, &upto, column, "o.ref");
    p.statement(format!(
        "INSERT INTO keyframe_terminal (keyframe_id, ref_column, ref, terminal) \
         SELECT CAST({new} AS BIGINT), '{column}', o.ref, {count} \
         FROM (SELECT DISTINCT key_ref AS ref FROM keyframe_objects \
           WHERE keyframe_id = {new} AND topic = '{topic}') AS o \
         WHERE NOT EXISTS (SELECT 1 FROM keyframe_terminal AS r WHERE r.keyframe_id = {new} \
           AND r.ref_column = '{column}' AND r.ref = o.ref)"
    ))
}

/// `(SELECT COUNT(*) …)`: the allocations referencing `reference` (an SQL
/// expression for a names ID) through `column` whose latest event at or
/// before `upto` says they are terminal.
fn history_count(p: &Params, c: &str, upto: &str, column: &str, reference: &str) -> String {
    let (by_key, topic) = (p.by_key(), p.unindexed("e.topic"));
    format!(
        "(SELECT COUNT(*) FROM event_log AS e WHERE e.cluster_id = {c} AND {topic} = 'Allocation' \
           AND e.{column} = {reference} AND e.raft_index <= {upto} AND e.presence = 1 \
           AND NOT EXISTS (SELECT 1 FROM event_log AS n{by_key} WHERE n.topic = 'Allocation' \
             AND n.key_ref = e.key_ref AND n.cluster_id = {c} AND n.raft_index > e.raft_index \
             AND n.raft_index <= {upto} AND n.namespace = e.namespace))"
    )
}

/// The terminal allocations of the one job or node `id` (its ID) at
/// `upto`, from `keyframe`'s row and the allocations changed after it;
/// `None` when the keyframe has no row for it.
pub(super) fn from_keyframe(
    cluster_id: i64,
    keyframe: &Keyframe,
    column: &str,
    id: &str,
    upto: u64,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let (c, kf, after, upto) = (
        p.int(cluster_id),
        p.int(keyframe.id),
        p.int(to_i64(keyframe.index)),
        p.int(to_i64(upto)),
    );
    let reference = p.push(Bind::Text(id.to_owned()));
    let terms = keyframe::terminal_terms(&p, &c, &kf, &after, &upto);
    p.statement(format!(
        "SELECT CAST(r.terminal + (SELECT COALESCE(SUM(t.term), 0) FROM ({terms}) AS t \
           WHERE t.{column} = r.ref) AS BIGINT) AS terminal \
         FROM keyframe_terminal AS r WHERE r.keyframe_id = {kf} AND r.ref_column = '{column}' \
           AND r.ref = (SELECT id FROM names WHERE name = {reference})"
    ))
}

/// The terminal allocations of the one job or node `id` at `upto`, counted
/// from its history.
pub(super) fn from_history(
    cluster_id: i64,
    column: &str,
    id: &str,
    upto: u64,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let (c, upto) = (p.int(cluster_id), p.int(to_i64(upto)));
    let reference = p.push(Bind::Text(id.to_owned()));
    let count = history_count(
        &p,
        &c,
        &upto,
        column,
        &format!("(SELECT id FROM names WHERE name = {reference})"),
    );
    p.statement(format!("SELECT CAST({count} AS BIGINT) AS terminal"))
}
