//! Reads a time window out of the archive for [`super::lanes`]: the
//! objects present when it starts (from the store's moment at that time,
//! the same path as a snapshot), then its allocations, each summed up in
//! one row, and its Job, Deployment and Node events in stream order, as
//! the details stored beside them describe them (no event is decoded),
//! the recorded gaps around them and the pruned history before them. At
//! most [`MAX_ROWS`] rows are read for one answer.

use futures_util::TryStreamExt;

use super::gaps;
use super::lanes::{Builder, By, Kind, Lanes, Sighting, Topic};
use super::sightings::{self, Seen};
use crate::archive::{Cluster, Gap, PageQuery, Prune};
use crate::query::QueryError;
use crate::query::json::{NS_PER_MS, time_ms};
use crate::store::{Fit, LaneWindow, MomentQuery, Others, Point, Rows, Store};

/// Rows (allocations, other events) read for one answer at most; past
/// them the answer says it is truncated.
pub const MAX_ROWS: usize = 1_000_000;

/// The window shown when none is asked for: the last hour of the archive.
pub const DEFAULT_SPAN_MS: i64 = 3_600_000;

/// How far from 1970 a window may reach, in Unix ms: every time of the
/// answer has its Unix nanoseconds beside it, which an `i64` holds for
/// the years 1677 to 2262.
const REACH_MS: i64 = i64::MAX / NS_PER_MS;

/// A window's bounds; either may be left open for the default.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub by: By,
    /// Unix ms by Nomad's clock, inclusive.
    pub from: Option<i64>,
    /// Unix ms by Nomad's clock, exclusive.
    pub to: Option<i64>,
    /// The pixels of the page's time axis (`0`: the default).
    pub width: u32,
    /// How its allocations are read.
    pub way: Way,
}

/// How a window's allocations are read: both ways give the same lanes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Way {
    /// Through the allocations' lives rows, those thinner than a pixel
    /// counted by the database ([`LaneWindow::fit`]): what the API does,
    /// the cheaper way for windows of every width (docs/performance.md,
    /// "The allocations crossing a window's end").
    #[default]
    Lives,
    /// Every event of the window read, each allocation summed from its
    /// own: nothing is counted or thinned by the database, and the nodes'
    /// periods are read from their events' payloads. The slowest way; what
    /// the other is held equal to.
    Events,
}

/// The lanes of a window.
pub async fn lanes(
    store: &dyn Store,
    cluster: &Cluster,
    window: Window,
) -> Result<Lanes, QueryError> {
    let (from, to) = bounds(store, cluster, window).await?;
    let mut builder = Builder::new(window.by, from, to, window.width);
    // The first time bucket starts at or before the window, and the answer
    // says where in Unix ns too.
    if builder.pixels().1.origin < -REACH_MS {
        return Err(QueryError::Usage(format!(
            "the window `{from}` to `{to}` starts too close to the earliest time Unix \
             nanoseconds can name ({}): its first time bucket would start before it; \
             start the window later or make it narrower",
            time_ms(-REACH_MS)
        )));
    }
    // The starting moment and the window's stretch of the stream are
    // read at once: neither needs the other.
    let (seeded, span) = tokio::try_join!(seed(store, cluster, from, &mut builder), async {
        Ok(store.time_span(cluster, Some(from), Some(to)).await?)
    })?;
    if window.way == Way::Events && window.by == By::Job {
        seed_markers(store, cluster, seeded, &mut builder).await?;
    }
    let mut truncated = false;
    if let Some(span) = span {
        let lanes = lane_window(&builder, (from, to), span, window.way, seeded);
        let nodes_decoded = window.way == Way::Events && window.by == By::Node;
        truncated = read_rows(store, cluster, &lanes, !nodes_decoded, &mut builder).await?;
        if nodes_decoded {
            decoded_nodes(store, cluster, (from, to), span, &mut builder).await?;
        }
    }
    let gaps = store.gaps(cluster).await?;
    for gap in gaps::reaching(&gaps, span) {
        gap_band(store, cluster, gap, (from, to), &mut builder).await?;
    }
    if let Some(prune) = store.pruned(cluster).await? {
        let kept = first_kept(store, cluster, &prune).await?;
        gaps::pruned(&prune, from, kept, &mut builder);
    }
    Ok(builder.finish(&cluster.name, truncated))
}

/// The time of the first event a prune whose cut has no known time kept
/// (`None`: its time is known, or it kept none).
async fn first_kept(
    store: &dyn Store,
    cluster: &Cluster,
    prune: &Prune,
) -> Result<Option<i64>, QueryError> {
    if prune.before_time.is_some() {
        return Ok(None);
    }
    let kept = store.events(cluster, prune.before_index, 1).await?;
    Ok(kept.first().map(|e| e.time))
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
    if from < -REACH_MS || to > REACH_MS {
        return Err(QueryError::Usage(format!(
            "the window `{from}` to `{to}` reaches past what Unix nanoseconds can name: \
             keep it between {} and {}",
            time_ms(-REACH_MS),
            time_ms(REACH_MS)
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

/// The nodes, jobs and allocations present when the window starts; the
/// raft index of that moment (0: nothing was archived before it).
async fn seed(
    store: &dyn Store,
    cluster: &Cluster,
    from: i64,
    builder: &mut Builder,
) -> Result<u64, QueryError> {
    let query = MomentQuery {
        point: Point::Time(from),
        terminal_within: Some(0),
        refs: Vec::new(),
    };
    let Some(moment) = store.moment(cluster, &query).await? else {
        return Ok(0);
    };
    let mut rows = store.moment_objects(cluster, &moment, Rows::Shown);
    while let Some(row) = rows.try_next().await? {
        if let Some((topic, object)) = sightings::from_event(&row.event.topic, &row.event.raw) {
            builder.add(topic, object, from, true);
        }
    }
    Ok(moment.index)
}

/// Events read a page at a time by [`decoded`].
const PAGE: u32 = 1_000;

/// The version of each job and the status of each deployment in their
/// last event up to the window's starting moment (raft index `seeded`),
/// read from every Job and Deployment event before it: the window's first
/// events are judged against them, as the writer judges each event
/// against its object's previous one (`marker_changes`), which the other
/// way reads. Only the way read from every event does this (the slowest,
/// what the other is held equal to), so that its markers are found
/// without what the writer stored.
async fn seed_markers(
    store: &dyn Store,
    cluster: &Cluster,
    seeded: u64,
    builder: &mut Builder,
) -> Result<(), QueryError> {
    let query = PageQuery {
        to_index: Some(seeded),
        topics: Some(vec!["Job".to_owned(), "Deployment".to_owned()]),
        ..PageQuery::default()
    };
    decoded(store, cluster, query, |topic, object, at| {
        builder.add(topic, object, at, true);
    })
    .await
}

/// The window's Node events, in stream order, as their payloads show
/// them: the way read from every event reads the nodes' periods this way,
/// not from the details the other way reads (`node_details`).
async fn decoded_nodes(
    store: &dyn Store,
    cluster: &Cluster,
    (since, until): (i64, i64),
    (from_index, to_index): (u64, u64),
    builder: &mut Builder,
) -> Result<(), QueryError> {
    let query = PageQuery {
        from_index,
        to_index: Some(to_index),
        topics: Some(vec!["Node".to_owned()]),
        ..PageQuery::default()
    };
    decoded(store, cluster, query, |topic, object, at| {
        if (since..until).contains(&at) {
            builder.add(topic, object, at, false);
        }
    })
    .await
}

/// Every event `query` reads, a page at a time, decoded into what the
/// lanes take of it: `take` gets its topic, object and time.
async fn decoded(
    store: &dyn Store,
    cluster: &Cluster,
    mut query: PageQuery,
    mut take: impl FnMut(Topic, Sighting, i64),
) -> Result<(), QueryError> {
    query.limit = PAGE;
    loop {
        let page = store.page(cluster, &query).await?;
        for event in &page {
            if let Some((topic, object)) = sightings::from_event(&event.topic, &event.raw) {
                take(topic, object, event.time);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => {
                query.after = Some((last.index, last.position));
            }
            _ => return Ok(()),
        }
    }
}

/// What the window reads: its events span the raft indexes `span` (from
/// the index by time); `seeded` is the index of the moment it starts
/// from.
fn lane_window(
    builder: &Builder,
    (since, until): (i64, i64),
    (from_index, to_index): (u64, u64),
    way: Way,
    seeded: u64,
) -> LaneWindow {
    let (width, grid) = builder.pixels();
    LaneWindow {
        from_index,
        to_index,
        since,
        until,
        by_lives: way == Way::Lives,
        // Lanes per job draw no node's periods, lanes per node no job's
        // versions or deployments (the builder drops what it is given).
        others: match builder.by() {
            By::Job => Others::Markers,
            By::Node => Others::Nodes,
        },
        fit: (way != Way::Events).then_some(Fit {
            width,
            origin: grid.origin,
            bucket_ms: grid.bucket_ms,
            after_index: seeded,
        }),
    }
}

/// Feeds the window's rows to `builder` (its Node events only if
/// `nodes`); whether [`MAX_ROWS`] cut them short.
async fn read_rows(
    store: &dyn Store,
    cluster: &Cluster,
    window: &LaneWindow,
    nodes: bool,
    builder: &mut Builder,
) -> Result<bool, QueryError> {
    let mut rows = store.lane_rows(cluster, window);
    let mut count = 0usize;
    while let Some(row) = rows.try_next().await? {
        if count == MAX_ROWS {
            return Ok(true);
        }
        count += 1;
        match sightings::from_row(row) {
            Some(Seen::Object(Topic::Node, _, _)) if !nodes => {}
            Some(Seen::Object(topic, object, at)) => builder.add(topic, object, at, false),
            Some(Seen::Counted(lane, bucket, count)) => builder.add_counted(&lane, bucket, count),
            None => {}
        }
    }
    Ok(false)
}

/// A recorded gap's band, by the times of the events around it.
async fn gap_band(
    store: &dyn Store,
    cluster: &Cluster,
    gap: &Gap,
    window: (i64, i64),
    builder: &mut Builder,
) -> Result<(), QueryError> {
    let last_before = PageQuery {
        to_index: Some(gap.from_index),
        newest_first: true,
        limit: 1,
        ..PageQuery::default()
    };
    let before = store.page(cluster, &last_before).await?;
    let after = store.events(cluster, gap.to_index, 1).await?;
    let times = (
        before.first().map(|e| e.time),
        after.first().map(|e| e.time),
    );
    if let Some((from, to)) = gaps::band(times.0, times.1, window) {
        builder.across(Kind::Gap, from, to, gaps::label(gap));
    }
    Ok(())
}
