//! The bands across every lane: where the archive cannot vouch for the
//! history. A recorded gap runs from the last event before it to the first
//! one after it (of any topic), clamped to the window ([`band`]), so a gap
//! that begins before the window, ends after it, or covers it whole is
//! drawn too. Pruned history is a band of its own, up to the cut
//! ([`pruned`]).

use super::lanes::{Builder, Kind};
use crate::archive::{Gap, GapKind, Prune};
use crate::query::json::time_ms;

/// The recorded gaps that may reach into a window whose events span the
/// raft indexes `span` (`None`: it has none, and any gap may hold it);
/// the pruned stretch is [`pruned`]'s.
pub fn reaching(gaps: &[Gap], span: Option<(u64, u64)>) -> impl Iterator<Item = &Gap> {
    gaps.iter().filter(move |g| {
        g.kind != GapKind::Pruned
            && span.is_none_or(|(first, last)| g.to_index >= first && g.from_index <= last)
    })
}

/// A gap's band in the window `[from, to)`: from `before`, the time of
/// the last event at or before its start (`None`: there is none), to
/// `after`, the time of the first event at or after its end (`None`:
/// there is none yet); `None` when it misses the window.
pub fn band(
    before: Option<i64>,
    after: Option<i64>,
    (from, to): (i64, i64),
) -> Option<(i64, Option<i64>)> {
    let began = before.unwrap_or(i64::MIN);
    if began >= to || after.is_some_and(|after| after <= from) {
        return None;
    }
    Some((began.max(from), after.filter(|after| *after < to)))
}

/// What a gap's band says.
pub fn label(gap: &Gap) -> String {
    format!(
        "gap: {} (events {} to {} may be missing)",
        gap.reason,
        gap.from_index + 1,
        gap.to_index.saturating_sub(1)
    )
}

/// The band of pruned history in a window `[from, to)`: from the window's
/// start up to the cut, when the cut is after the start. A cut whose time
/// is unknown is drawn up to `first_kept`, the time of the first event
/// the prune kept (`None`: none, so past the window).
pub fn pruned(prune: &Prune, from: i64, first_kept: Option<i64>, builder: &mut Builder) {
    let (until, label) = match prune.before_time {
        Some(cut) => (Some(cut), format!("pruned before {}", short_time(cut))),
        None => (
            first_kept,
            format!("pruned before index {}", prune.before_index),
        ),
    };
    if until.is_some_and(|until| until <= from) {
        return;
    }
    builder.across(Kind::Pruned, from, until, label);
}

/// `2026-12-04T16:41:30Z`: to the second, as a person reads a label.
fn short_time(ms: i64) -> String {
    let full = time_ms(ms);
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::lanes::By;

    fn bands(builder: Builder) -> Vec<(Kind, i64, Option<i64>)> {
        let lanes = builder.finish("test", false);
        lanes.bands.iter().map(|b| (b.kind, b.from, b.to)).collect()
    }

    const WINDOW: (i64, i64) = (1_000, 10_000);

    #[test]
    fn a_gap_within_the_window_runs_from_the_event_before_it_to_the_one_after() {
        assert_eq!(
            band(Some(2_000), Some(4_500), WINDOW),
            Some((2_000, Some(4_500)))
        );
    }

    #[test]
    fn a_gap_that_begins_before_the_window_is_drawn_from_its_start() {
        assert_eq!(
            band(Some(500), Some(4_500), WINDOW),
            Some((1_000, Some(4_500)))
        );
        assert_eq!(band(None, Some(4_500), WINDOW), Some((1_000, Some(4_500))));
    }

    #[test]
    fn a_gap_that_ends_after_the_window_or_covers_it_lasts_past_it() {
        assert_eq!(band(Some(2_000), Some(12_000), WINDOW), Some((2_000, None)));
        assert_eq!(band(Some(500), None, WINDOW), Some((1_000, None)));
    }

    #[test]
    fn a_gap_outside_the_window_is_not_drawn() {
        assert_eq!(band(Some(100), Some(1_000), WINDOW), None);
        assert_eq!(band(Some(10_000), Some(12_000), WINDOW), None);
    }

    #[test]
    fn only_the_recorded_gaps_around_the_window_s_events_may_reach_it() {
        let gaps = [
            Gap::buffer_overrun(5, 10),
            Gap::buffer_overrun(30, 40),
            Gap::buffer_overrun(90, 95),
        ];
        let near: Vec<_> = reaching(&gaps, Some((20, 50)))
            .map(|g| g.from_index)
            .collect();
        assert_eq!(near, [30]);
        assert_eq!(reaching(&gaps, None).count(), 3);
    }

    #[test]
    fn pruned_history_is_a_band_up_to_the_cut_labelled_with_it() {
        let prune = Prune {
            before_index: 40,
            before_time: Some(1_767_225_630_500),
            started_at: 0,
            finished_at: None,
            events: 10,
        };
        let from = 1_767_225_600_000;
        let mut builder = Builder::new(By::Job, from, from + 3_600_000, 1_000);
        pruned(&prune, from, None, &mut builder);
        let lanes = builder.finish("test", false);
        let band = &lanes.bands[0];
        assert_eq!(
            (band.kind, band.from, band.to, band.label.as_str()),
            (
                Kind::Pruned,
                from,
                Some(1_767_225_630_500),
                "pruned before 2026-01-01T00:00:30Z"
            )
        );
        // A window after the cut has no such band.
        let mut builder = Builder::new(By::Job, from + 60_000, from + 120_000, 1_000);
        pruned(&prune, from + 60_000, None, &mut builder);
        assert!(bands(builder).is_empty());
    }
}
