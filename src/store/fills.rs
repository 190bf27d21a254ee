//! Gaps narrowed by history stored later: an import whose capture spans
//! part of a gap stored the events it held there, so the gap keeps only
//! what is still missing on either side, or goes away with its
//! reconstructions (the events now tell what they stood in for). Written
//! once for both backends on a [`Run`], in the caller's transaction.

use super::StoreError;
use super::keyframe::Run;
use super::params::Params;
use super::to_i64;

/// What is left of the gap `(from, to)` (events with `from < Index < to`
/// missing) once every index in `[first, last]` is known whole: none, one
/// or two gaps.
pub fn remainder(gap: (u64, u64), covered: (u64, u64)) -> Vec<(u64, u64)> {
    let (from, to) = gap;
    let (first, last) = covered;
    if last <= from || first >= to {
        return vec![gap];
    }
    let mut left = Vec::new();
    // Nothing lies strictly between two adjacent indexes.
    if first > from.saturating_add(1) {
        left.push((from, first));
    }
    if to > last.saturating_add(1) {
        left.push((last, to));
    }
    left
}

/// Narrows or removes the gaps of the cluster that `covered` (a closed
/// index range stored whole) reaches into; returns how many it changed.
pub async fn fill(
    run: &mut dyn Run,
    cluster_id: i64,
    covered: (u64, u64),
) -> Result<u64, StoreError> {
    let mut changed = 0;
    let mut after = 0;
    let style = run.style();
    while let Some(id) = run
        .int(next_overlapping(run, cluster_id, covered, after))
        .await?
    {
        after = id;
        let bound = |column: &str| {
            let mut p = Params::new(style);
            let id = p.int(id);
            p.statement(format!("SELECT {column} FROM gaps WHERE id = {id}"))
        };
        let from = run.int(bound("from_index")).await?.unwrap_or_default();
        let to = run.int(bound("to_index")).await?.unwrap_or_default();
        let gap = (super::to_u64(from), super::to_u64(to));
        let pieces = remainder(gap, covered);
        if pieces == [gap] {
            continue;
        }
        changed += 1;
        if let Some(second) = pieces.get(1) {
            run.execute(copy(run, id, *second)).await?;
        }
        let narrowed = match pieces.first() {
            Some(first) => run.execute(narrow(run, id, *first)).await? == 1,
            None => false,
        };
        if !narrowed {
            for statement in remove(run, id) {
                run.execute(statement).await?;
            }
        }
    }
    Ok(changed)
}

/// The id of the cluster's next gap after `after` that `covered` reaches into.
fn next_overlapping(
    run: &dyn Run,
    cluster_id: i64,
    (first, last): (u64, u64),
    after: i64,
) -> super::statement::Statement {
    let mut p = Params::new(run.style());
    let (c, first, last, after) = (
        p.int(cluster_id),
        p.int(to_i64(first)),
        p.int(to_i64(last)),
        p.int(after),
    );
    p.statement(format!(
        "SELECT MIN(id) FROM gaps WHERE cluster_id = {c} AND from_index < {last} \
         AND to_index > {first} AND id > {after}"
    ))
}

/// Sets gap `id` to `(from, to)`, unless the same gap is recorded already
/// (then this one is redundant and removed).
fn narrow(run: &dyn Run, id: i64, (from, to): (u64, u64)) -> super::statement::Statement {
    let mut p = Params::new(run.style());
    let (from, to, id) = (p.int(to_i64(from)), p.int(to_i64(to)), p.int(id));
    p.statement(format!(
        "UPDATE gaps SET from_index = {from}, to_index = {to} WHERE id = {id} \
         AND NOT EXISTS (SELECT 1 FROM gaps AS o WHERE o.cluster_id = gaps.cluster_id \
           AND o.from_index = {from} AND o.to_index = {to} AND o.kind = gaps.kind)"
    ))
}

/// Records `(from, to)` as a gap like gap `id` (its kind, reason and time).
fn copy(run: &dyn Run, id: i64, (from, to): (u64, u64)) -> super::statement::Statement {
    let mut p = Params::new(run.style());
    let (from, to, id) = (p.int(to_i64(from)), p.int(to_i64(to)), p.int(id));
    p.statement(format!(
        "INSERT INTO gaps (cluster_id, from_index, to_index, kind, reason, detected_at) \
         SELECT cluster_id, {from}, {to}, kind, reason, detected_at FROM gaps WHERE id = {id} \
         ON CONFLICT DO NOTHING"
    ))
}

/// Removes gap `id` with its reconstructions, their objects first.
fn remove(run: &dyn Run, id: i64) -> [super::statement::Statement; 3] {
    let statement = |sql: &str| {
        let mut p = Params::new(run.style());
        let id = p.int(id);
        p.statement(sql.replace("{id}", &id))
    };
    [
        statement(
            "DELETE FROM reconstructed_objects WHERE reconstruction_id IN \
             (SELECT id FROM reconstructions WHERE gap_id = {id})",
        ),
        statement("DELETE FROM reconstructions WHERE gap_id = {id}"),
        statement("DELETE FROM gaps WHERE id = {id}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_stored_whole_leaves_only_the_rest_of_a_gap() {
        assert_eq!(remainder((300, 800), (300, 800)), vec![]);
        assert_eq!(remainder((300, 800), (250, 900)), vec![]);
        assert_eq!(
            remainder((300, 800), (500, 600)),
            vec![(300, 500), (600, 800)]
        );
        assert_eq!(remainder((300, 800), (300, 500)), vec![(500, 800)]);
        assert_eq!(remainder((300, 800), (600, 900)), vec![(300, 600)]);
        assert_eq!(remainder((300, 800), (301, 799)), vec![]);
        assert_eq!(remainder((300, 800), (800, 900)), vec![(300, 800)]);
        assert_eq!(remainder((300, 800), (100, 300)), vec![(300, 800)]);
    }
}
