//! Reads a time window out of the archive for [`super::lanes`]: the
//! objects present when it starts (from the store's moment at that time,
//! the same path as a snapshot), then its events page by page in stream
//! order, and the recorded gaps among them. At most [`MAX_EVENTS`] events
//! are read for one answer.

use futures_util::TryStreamExt;

use super::lanes::{Builder, By, Lanes};
use crate::archive::{Cluster, Gap, PageQuery};
use crate::query::QueryError;
use crate::store::{MomentQuery, Point, Rows, Store};

/// Events read per page.
const PAGE: u32 = 2_000;

/// Events read for one answer at most; past them the answer says it is
/// truncated.
pub const MAX_EVENTS: usize = 1_000_000;

/// The window shown when none is asked for: the last hour of the archive.
pub const DEFAULT_SPAN_MS: i64 = 3_600_000;

/// The topics the lanes are drawn from.
const TOPICS: [&str; 4] = ["Allocation", "Job", "Deployment", "Node"];

/// A window's bounds; either may be left open for the default.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub by: By,
    /// Unix ms by Nomad's clock, inclusive.
    pub from: Option<i64>,
    /// Unix ms by Nomad's clock, exclusive.
    pub to: Option<i64>,
}

/// The lanes of a window.
pub async fn lanes(
    store: &dyn Store,
    cluster: &Cluster,
    window: Window,
) -> Result<Lanes, QueryError> {
    let (from, to) = bounds(store, cluster, window).await?;
    let mut builder = Builder::new(window.by, from, to);
    seed(store, cluster, from, &mut builder).await?;
    let gaps = store.gaps(cluster).await?;
    let truncated = read_events(store, cluster, (from, to), &gaps, &mut builder).await?;
    Ok(builder.finish(&cluster.name, truncated))
}

/// The window asked for, its open ends filled in: it ends just after the
/// archive's newest event and spans [`DEFAULT_SPAN_MS`].
async fn bounds(
    store: &dyn Store,
    cluster: &Cluster,
    window: Window,
) -> Result<(i64, i64), QueryError> {
    let (from, to) = match (window.from, window.to) {
        (Some(from), Some(to)) => (from, to),
        (Some(from), None) => (from, from.saturating_add(DEFAULT_SPAN_MS)),
        (None, Some(to)) => (to.saturating_sub(DEFAULT_SPAN_MS), to),
        (None, None) => {
            let to = newest_time(store, cluster).await?.saturating_add(1);
            (to.saturating_sub(DEFAULT_SPAN_MS), to)
        }
    };
    if from >= to {
        return Err(QueryError::Usage(format!(
            "the window is empty: `from` ({from}) must be before `to` ({to})"
        )));
    }
    Ok((from, to))
}

/// The time of the archive's newest event.
async fn newest_time(store: &dyn Store, cluster: &Cluster) -> Result<i64, QueryError> {
    let Some((_, last)) = store.span(cluster).await? else {
        return Err(QueryError::NotFound(
            "the archive holds no events for this cluster".to_owned(),
        ));
    };
    let newest = store.events(cluster, last, 1).await?;
    Ok(newest.first().map_or(0, |e| e.time))
}

/// The nodes, jobs and allocations present when the window starts.
async fn seed(
    store: &dyn Store,
    cluster: &Cluster,
    from: i64,
    builder: &mut Builder,
) -> Result<(), QueryError> {
    let query = MomentQuery {
        point: Point::Time(from),
        terminal_within: Some(0),
        refs: Vec::new(),
    };
    let Some(moment) = store.moment(cluster, &query).await? else {
        return Ok(());
    };
    let mut rows = store.moment_objects(cluster, &moment, Rows::Shown);
    while let Some(row) = rows.try_next().await? {
        builder.add(&row.event.topic, &row.event.raw, from, true);
    }
    Ok(())
}

/// Feeds the window's events to `builder`, with a band for each recorded
/// gap between two of them; `true` when [`MAX_EVENTS`] cut it short.
async fn read_events(
    store: &dyn Store,
    cluster: &Cluster,
    (from, to): (i64, i64),
    gaps: &[Gap],
    builder: &mut Builder,
) -> Result<bool, QueryError> {
    let mut page = PageQuery {
        since: Some(from),
        until: Some(to),
        topics: Some(TOPICS.map(str::to_owned).to_vec()),
        limit: PAGE,
        ..PageQuery::default()
    };
    if !crate::query::events::within_window(store, cluster, &mut page).await? {
        return Ok(false);
    }
    let mut cursor = GapCursor::new(gaps);
    let mut read = 0usize;
    loop {
        let events = store.page(cluster, &page).await?;
        for event in &events {
            cursor.pass(event.index, event.time, builder);
            builder.add(&event.topic, &event.raw, event.time, false);
        }
        read += events.len();
        match events.last() {
            Some(last) if events.len() == PAGE as usize => {
                if read >= MAX_EVENTS {
                    return Ok(true);
                }
                page.after = Some((last.index, last.position));
            }
            _ => return Ok(false),
        }
    }
}

/// Walks the recorded gaps alongside the events: a gap's band runs from
/// the last event read before it to the first one after it.
struct GapCursor<'a> {
    /// The gaps, oldest first.
    gaps: &'a [Gap],
    /// The first gap not yet passed.
    next: usize,
    /// The index and time of the last event read.
    previous: Option<(u64, i64)>,
}

impl<'a> GapCursor<'a> {
    fn new(gaps: &'a [Gap]) -> Self {
        GapCursor {
            gaps,
            next: 0,
            previous: None,
        }
    }

    fn pass(&mut self, index: u64, time: i64, builder: &mut Builder) {
        while let Some(gap) = self.gaps.get(self.next) {
            if index < gap.to_index {
                break;
            }
            match self.previous {
                Some((before, at)) if before <= gap.from_index => {
                    builder.gap(at, time, &gap.reason);
                }
                _ => {}
            }
            self.next += 1;
        }
        self.previous = Some((index, time));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_a_band_from_the_last_event_before_it_to_the_first_after_it() {
        let gaps = [
            Gap::buffer_overrun(5, 10),
            Gap::buffer_overrun(30, 40),
            Gap::buffer_overrun(100, 120),
        ];
        let mut builder = Builder::new(By::Job, 0, 100_000);
        let mut cursor = GapCursor::new(&gaps);
        // The first gap ends before the first event read: nothing to draw.
        for (index, time) in [(12, 1_200), (20, 2_000), (45, 4_500), (50, 5_000)] {
            cursor.pass(index, time, &mut builder);
        }
        let lanes = builder.finish("test", false);
        let bands: Vec<_> = lanes.bands.iter().map(|b| (b.kind, b.from, b.to)).collect();
        assert_eq!(bands, vec![("gap", 2_000, Some(4_500))]);
    }
}
