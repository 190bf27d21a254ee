//! Which recorded gaps an answer overlaps, so no timeline pretends to be
//! complete where the archive is not; and the stretch retention pruned,
//! which reads of history start after and name when they reach into it.

use crate::archive::{Cluster, Gap, GapKind, PageQuery, Prune};
use crate::store::{Moment, Store, StoreError};

/// What an answer of events names around them: the cluster's gaps when
/// events were `found` (to pick those they overlap), else the archive's
/// extent for the "not found" message. Each is read only when needed.
pub async fn around(
    store: &dyn Store,
    cluster: &Cluster,
    found: bool,
) -> Result<(Vec<Gap>, Option<(u64, u64)>), StoreError> {
    if found {
        Ok((store.gaps(cluster).await?, None))
    } else {
        Ok((Vec::new(), store.span(cluster).await?))
    }
}

/// Gaps that intersect the index range `first..=last` of an answer.
pub fn overlapping(gaps: &[Gap], first: u64, last: u64) -> Vec<Gap> {
    gaps.iter()
        .filter(|g| g.from_index < last && g.to_index > first)
        .cloned()
        .collect()
}

/// Starts `page` at the first index the cluster keeps when it asks for
/// history before it (the events kept before the cut are for snapshots
/// only); returns whether it did, so the answer names the pruned stretch.
pub async fn from_cut(
    store: &dyn Store,
    cluster: &Cluster,
    page: &mut PageQuery,
) -> Result<bool, StoreError> {
    match store.pruned(cluster).await? {
        Some(cut) if page.from_index < cut.before_index => {
            page.from_index = cut.before_index;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Leaves the pruned stretch among `gaps` only when the read `reached`
/// before the cut ([`from_cut`]).
pub fn keep_cut(gaps: &mut Vec<Gap>, reached: bool) {
    gaps.retain(|g| reached || g.kind != GapKind::Pruned);
}

/// The gaps an answer of events from `first` to `last` names: those
/// between them, and the pruned stretch its read reached into (left among
/// `gaps` by [`keep_cut`] only then).
pub fn answered(gaps: &[Gap], first: u64, last: u64) -> Vec<Gap> {
    gaps.iter()
        .filter(|g| g.kind == GapKind::Pruned || (g.from_index < last && g.to_index > first))
        .cloned()
        .collect()
}

/// Drops the pruned stretch from a snapshot's `gaps` unless the snapshot
/// reads history before the cut: the keyframe at the cut holds every
/// object present then, and only a window of terminal allocations (or
/// `--all`) reaching before the cut misses what was pruned.
pub fn for_snapshot(mut gaps: Vec<Gap>, moment: &Moment, cut: Option<&Prune>) -> Vec<Gap> {
    let reads_before = cut.is_some_and(|cut| {
        moment.read_after.saturating_add(1) < cut.before_index
            || matches!((moment.terminal_since, cut.before_time), (Some(since), Some(at)) if since < at)
    });
    if !reads_before {
        gaps.retain(|g| g.kind != GapKind::Pruned);
    }
    gaps
}

/// The sentence every human answer carries for a gap.
pub fn sentence(gap: &Gap) -> String {
    if gap.kind == GapKind::Pruned {
        return gap.reason.clone();
    }
    format!(
        "archive has no events between index {} and {} ({}: {})",
        gap.from_index,
        gap.to_index,
        gap.kind.as_str(),
        gap.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(from_index: u64, to_index: u64) -> Gap {
        Gap::buffer_overrun(from_index, to_index)
    }

    fn cut(before_index: u64, before_time: Option<i64>) -> Prune {
        Prune {
            before_index,
            before_time,
            started_at: 0,
            finished_at: Some(1),
            events: 10,
        }
    }

    fn moment(read_after: u64, terminal_since: Option<i64>) -> Moment {
        Moment {
            index: 500,
            time: Some(9_000),
            keyframe: None,
            read_after,
            terminal_since,
            refs: Vec::new(),
        }
    }

    #[test]
    fn an_answer_names_the_pruned_stretch_only_when_its_read_reached_into_it() {
        let all = vec![cut(100, None).gap(), gap(150, 160), gap(300, 310)];
        let mut reached = all.clone();
        keep_cut(&mut reached, true);
        let kinds: Vec<_> = answered(&reached, 100, 200)
            .iter()
            .map(|g| (g.kind, g.from_index))
            .collect();
        assert_eq!(kinds, vec![(GapKind::Pruned, 0), (GapKind::Buffer, 150)]);
        let mut short = all;
        keep_cut(&mut short, false);
        assert_eq!(answered(&short, 100, 200).len(), 1);
        assert_eq!(
            sentence(&reached[0]),
            "history before (index 100) was pruned"
        );
    }

    #[test]
    fn a_snapshot_names_the_pruned_stretch_when_it_reads_before_the_cut() {
        let pruned = cut(100, Some(5_000));
        let gaps = || vec![pruned.gap(), gap(150, 160)];
        let named = |m: &Moment| {
            for_snapshot(gaps(), m, Some(&pruned))
                .iter()
                .any(|g| g.kind == GapKind::Pruned)
        };
        // From the keyframe at the cut, terminal window after it: whole.
        assert!(!named(&moment(99, Some(6_000))));
        // `--all` reads from the start; a window reaching before the cut.
        assert!(named(&moment(0, None)));
        assert!(named(&moment(99, Some(4_000))));
        assert_eq!(for_snapshot(gaps(), &moment(0, None), None).len(), 1);
    }

    #[test]
    fn only_gaps_inside_the_answer_are_reported() {
        let gaps = [gap(10, 20), gap(50, 60), gap(100, 200)];
        let hit: Vec<_> = overlapping(&gaps, 15, 55)
            .iter()
            .map(|g| g.from_index)
            .collect();
        assert_eq!(hit, vec![10, 50]);
        assert!(
            overlapping(&gaps, 20, 50).is_empty(),
            "a gap ending where the answer starts hides nothing"
        );
        assert_eq!(
            sentence(&gaps[0]),
            "archive has no events between index 10 and 20 (buffer: event dropped from buffer)"
        );
    }
}
