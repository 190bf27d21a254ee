//! How many allocations of each job and node were terminal, at each
//! keyframe where that number changed (migration 0013), so that a snapshot
//! narrowed to one job or node counts the terminal allocations it leaves
//! out from the newest row at or before its keyframe and the allocations
//! changed after it ([`keyframe::terminal_terms`]), not from every
//! allocation the job or node ever had. Each keyframe adds, in its own
//! transaction, a row for each job and node whose count changed since the
//! keyframe before; rows are never copied forward, so they cost what the
//! history changed, not what it holds.

use super::keyframe::{self, Keyframe, Params};
use super::statement::{Bind, Placeholders, Statement};
use super::to_i64;
use crate::archive::RefColumn;

/// The references counted, by their column in `event_log`.
const COUNTED: [&str; 2] = ["job_ref", "node_ref"];

/// The column a reference is counted under, if it is.
pub(super) fn counted(column: RefColumn) -> Option<&'static str> {
    match column {
        RefColumn::Job => Some("job_ref"),
        RefColumn::Node => Some("node_ref"),
        _ => None,
    }
}

/// The statements that add keyframe `index`'s rows, the keyframe before it
/// being `from` (its id and index; `-1` and 0 for none).
pub(super) fn build(
    cluster_id: i64,
    from: (i64, u64),
    index: u64,
    style: Placeholders,
) -> Vec<Statement> {
    COUNTED
        .iter()
        .map(|column| changed(cluster_id, from, index, column, style))
        .collect()
}

/// A row at `index` for each job or node (by `column`) whose allocations
/// changed terminal count since keyframe `from`: its newest row before,
/// moved by the change. A row left at that index (the keyframes were
/// deleted and built again) is replaced.
fn changed(
    cluster_id: i64,
    from: (i64, u64),
    index: u64,
    column: &str,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let [c, kf, after, upto] = keyframe::bind_window(&mut p, cluster_id, from, index);
    let terms = keyframe::terminal_terms(&p, &c, &kf, &after, &upto);
    let before = newest_before(&c, column, "d.ref", &after);
    p.statement(format!(
        "INSERT INTO terminal_counts (cluster_id, ref_column, ref, raft_index, terminal) \
         SELECT CAST({c} AS BIGINT), '{column}', d.ref, CAST({upto} AS BIGINT), \
           COALESCE({before}, 0) + d.delta \
         FROM (SELECT t.{column} AS ref, SUM(t.term) AS delta FROM ({terms}) AS t \
           WHERE t.{column} IS NOT NULL GROUP BY t.{column}) AS d \
         WHERE d.delta <> 0 \
         ON CONFLICT (cluster_id, ref_column, ref, raft_index) DO UPDATE SET terminal = excluded.terminal"
    ))
}

/// `(SELECT terminal …)`: the newest count of `reference` (an SQL
/// expression for a names ID) at or before index `upto`, if any.
fn newest_before(c: &str, column: &str, reference: &str, upto: &str) -> String {
    format!(
        "(SELECT r.terminal FROM terminal_counts AS r WHERE r.cluster_id = {c} \
           AND r.ref_column = '{column}' AND r.ref = {reference} AND r.raft_index <= {upto} \
           ORDER BY r.raft_index DESC LIMIT 1)"
    )
}

/// The terminal allocations of the one job or node `id` (its ID, counted
/// under `column`) at `upto`: its newest count at or before `keyframe` (none:
/// the start of history), and the allocations changed after it.
pub(super) fn at(
    cluster_id: i64,
    keyframe: Option<&Keyframe>,
    column: &str,
    id: &str,
    upto: u64,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let from = keyframe.map_or((-1, 0), |k| (k.id, k.index));
    let [c, kf, after, upto] = keyframe::bind_window(&mut p, cluster_id, from, upto);
    let reference = format!(
        "(SELECT id FROM names WHERE name = {})",
        p.push(Bind::Text(id.to_owned()))
    );
    let terms = keyframe::terminal_terms(&p, &c, &kf, &after, &upto);
    let before = newest_before(&c, column, &reference, &after);
    p.statement(format!(
        "SELECT CAST(COALESCE({before}, 0) + (SELECT COALESCE(SUM(t.term), 0) \
           FROM ({terms}) AS t WHERE t.{column} = {reference}) AS BIGINT) AS terminal"
    ))
}

/// Drops the rows at or after `index` (keyframes there are dropped too).
pub(super) fn invalidate(cluster_id: i64, index: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
    p.statement(format!(
        "DELETE FROM terminal_counts WHERE cluster_id = {c} AND raft_index >= {i}"
    ))
}
