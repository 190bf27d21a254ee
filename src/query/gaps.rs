//! Which recorded gaps an answer overlaps, so no timeline pretends to be
//! complete where the archive is not; and the stretch retention pruned,
//! which reads of history start after and name when they reach into it.

use crate::archive::{Cluster, Gap, GapKind, PageQuery, Prune};
use crate::store::{Moment, Store, StoreError, index_at_time};

/// The stretch of the stream an answer looked at, as raft indexes: an
/// event it could have shown lies strictly between `after` and `before`.
/// A gap whose missing indexes reach into it may hide such events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Looked {
    pub after: u64,
    pub before: u64,
}

impl Looked {
    /// The whole stream.
    pub const ALL: Looked = Looked {
        after: 0,
        before: u64::MAX,
    };

    /// Stops the stretch at `index`, where an answer read oldest first
    /// stopped (the first event past its limit).
    pub fn stopped_at(self, index: u64) -> Looked {
        Looked {
            before: self.before.min(index),
            ..self
        }
    }

    /// Starts the stretch at `index`, where an answer read newest first
    /// stopped (the first event past its limit).
    pub fn started_at(self, index: u64) -> Looked {
        Looked {
            after: self.after.max(index),
            ..self
        }
    }

    /// The recorded gaps (the pruned stretch among them) that reach into
    /// the stretch: a gap `(from, to)` misses the indexes between them.
    pub fn named(self, gaps: &[Gap]) -> Vec<Gap> {
        gaps.iter()
            .filter(|g| {
                let first_missing = g.from_index.max(self.after).saturating_add(1);
                first_missing < g.to_index.min(self.before)
            })
            .cloned()
            .collect()
    }
}

impl Default for Looked {
    fn default() -> Self {
        Looked::ALL
    }
}

/// The stretch a read of indexes `from..=to` (`to` open: to the end),
/// dated in `[since, until)` (either open), looks at. A time window reaches
/// back to the last event dated before it and on past the last dated
/// within it: what a gap between those lost may have happened within the
/// window. Each end is one lookup in the index by time.
pub async fn looked_at(
    store: &dyn Store,
    cluster: &Cluster,
    (from, to): (u64, Option<u64>),
    (since, until): (Option<i64>, Option<i64>),
) -> Result<Looked, StoreError> {
    let mut looked = Looked {
        after: from.saturating_sub(1),
        before: to.map_or(u64::MAX, |to| to.saturating_add(1)),
    };
    if let Some(since) = since {
        let before_window = index_at_time(store, cluster, since.saturating_sub(1)).await?;
        looked.after = looked.after.max(before_window.unwrap_or(0));
    }
    if let Some(until) = until {
        if let Some(last) = index_at_time(store, cluster, until.saturating_sub(1)).await? {
            looked.before = looked.before.min(last.saturating_add(1));
        }
    }
    Ok(looked)
}

/// The gaps a "not found" answer names after its message: `; ` and one
/// sentence each (the pruned stretch "may have" held what was asked for),
/// or nothing.
pub fn not_found_note(gaps: &[Gap]) -> String {
    gaps.iter()
        .map(|g| match g.kind {
            GapKind::Pruned => format!("; {}, so it may have been there", sentence(g)),
            _ => format!("; {}", sentence(g)),
        })
        .collect()
}

/// A "not found" message naming the gaps of the whole stream: what was
/// asked for may have been lost in any of them.
pub async fn whole_stream_note(store: &dyn Store, cluster: &Cluster) -> Result<String, StoreError> {
    Ok(not_found_note(
        &Looked::ALL.named(&store.gaps(cluster).await?),
    ))
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
    fn an_answer_names_the_gaps_whose_missing_indexes_reach_into_the_stretch_it_read() {
        let all = vec![cut(100, None).gap(), gap(150, 160), gap(300, 310)];
        let named = |looked: Looked| -> Vec<_> {
            looked
                .named(&all)
                .iter()
                .map(|g| (g.kind, g.from_index))
                .collect()
        };
        assert_eq!(named(Looked::ALL).len(), 3);
        // From index 100, the first kept: nothing pruned is missed.
        let from_cut = Looked {
            after: 99,
            before: 300,
        };
        assert_eq!(named(from_cut), vec![(GapKind::Buffer, 150)]);
        let before_cut = Looked {
            after: 98,
            before: 150,
        };
        assert_eq!(named(before_cut), vec![(GapKind::Pruned, 0)]);
        // A gap ending where the stretch starts, or starting where it ends, hides nothing.
        assert!(
            Looked {
                after: 159,
                before: 301
            }
            .named(&all)
            .is_empty()
        );
        assert_eq!(sentence(&all[0]), "history before (index 100) was pruned");
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
