//! `query events`: the raw archive, filtered, newest last.
//!
//! The answer is streamed, never held: a first pass reads the matching
//! events newest first, a page at a time, only to find where the newest
//! `--limit` of them start ([`Scan`]); a second reads them oldest first
//! from there, a page at a time, and writes each as it comes ([`Sink`]),
//! so any limit runs in the memory of one page.

use std::io::Write;

use super::render::{self, Look, Output};
use super::resolve::resolve;
use super::sink::Sink;
use super::{QueryError, covers, gaps};
use crate::archive::RefColumn;
use crate::archive::{ArchivedEvent, Cluster, Gap, PageQuery};
use crate::store::{Store, StoreError};

/// Events read from the store at a time, in either pass.
const PAGE: u32 = 500;

/// What to select. IDs of allocations, nodes, evaluations and deployments
/// may be prefixes.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    pub topics: Vec<String>,
    pub types: Vec<String>,
    pub key: Option<String>,
    pub refs: Vec<(RefColumn, String)>,
    /// `None` for every namespace.
    pub namespace: Option<String>,
    pub from_index: u64,
    pub to_index: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The newest this many events are shown.
    pub limit: u32,
}

/// Where the newest `limit` matching events lie, found by reading them
/// newest first; no event is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    limit: usize,
    /// Events counted, at most `limit`.
    count: usize,
    /// The newest event's index.
    last: Option<u64>,
    /// The oldest event counted: (index, position).
    first: Option<(u64, u32)>,
    /// Whether an older event matched too.
    truncated: bool,
    /// The newest event left out, when one was.
    left_out: Option<u64>,
}

impl Scan {
    fn new(limit: u32) -> Self {
        Scan {
            limit: limit as usize,
            count: 0,
            last: None,
            first: None,
            truncated: false,
            left_out: None,
        }
    }

    /// Counts a page read newest first; `false` once no more are needed.
    fn add(&mut self, page: &[ArchivedEvent]) -> bool {
        for event in page {
            if self.count == self.limit {
                self.truncated = true;
                self.left_out = Some(event.index);
                return false;
            }
            self.last.get_or_insert(event.index);
            self.first = Some((event.index, event.position));
            self.count += 1;
        }
        true
    }
}

/// Runs the query and writes the answer as it is read; returns how many
/// events were written.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &EventsQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> Result<usize, QueryError> {
    let mut page = page_query(store, cluster, query).await?;
    let range = (query.from_index, query.to_index);
    let looked = gaps::looked_at(store, cluster, range, (query.since, query.until)).await?;
    let found = within_window(store, cluster, &mut page).await?;
    if found {
        // History before the cut is kept for snapshots only.
        gaps::from_cut(store, cluster, &mut page).await?;
    }
    let scan = match found {
        true => scan(store, cluster, &page, query.limit).await?,
        false => Scan::new(query.limit),
    };
    let all = store.gaps(cluster).await?;
    let (Some((first, position)), Some(last)) = (scan.first, scan.last) else {
        let span = store.span(cluster).await?;
        return Err(not_found(&cluster.name, query, span, &looked.named(&all)));
    };
    // Newest first: a read past its limit looked back only as far as the
    // first event it left out.
    let looked = match scan.left_out {
        Some(index) => looked.started_at(index),
        None => looked,
    };
    let overlapping = looked.named(&all);
    // Oldest first, from the first event counted to the newest.
    page.newest_first = false;
    page.from_index = page.from_index.max(first);
    page.after = position.checked_sub(1).map(|p| (first, p));
    page.to_index = Some(last);
    let mut sink = Sink::new(output, out, *look, &TABLE, "Events");
    sink.start(&Head {
        cluster: &cluster.name,
    })?;
    let written = copy(store, cluster, page, scan.count, &mut sink).await?;
    let tail = Tail {
        gaps: &overlapping,
        truncated: scan.truncated,
    };
    let note = scan.truncated.then(|| {
        format!("(showing the newest {written}; use --limit, --from-index or --since for more)")
    });
    sink.finish(&tail, &overlapping, note.as_deref())?;
    Ok(written)
}

/// The store's read the query asks for, with the IDs given resolved.
async fn page_query(
    store: &dyn Store,
    cluster: &Cluster,
    query: &EventsQuery,
) -> Result<PageQuery, QueryError> {
    let mut refs = Vec::new();
    for (column, given) in &query.refs {
        let id = match column {
            RefColumn::Job => given.clone(),
            RefColumn::Alloc => resolve(store, cluster, "Allocation", given).await?,
            RefColumn::Node => resolve(store, cluster, "Node", given).await?,
            RefColumn::Eval => resolve(store, cluster, "Evaluation", given).await?,
            RefColumn::Deployment => resolve(store, cluster, "Deployment", given).await?,
        };
        refs.push((*column, id));
    }
    Ok(PageQuery {
        from_index: query.from_index,
        to_index: query.to_index,
        since: query.since,
        until: query.until,
        topics: (!query.topics.is_empty()).then(|| query.topics.clone()),
        types: (!query.types.is_empty()).then(|| query.types.clone()),
        key: query.key.clone(),
        namespace: query.namespace.clone(),
        refs,
        newest_first: true,
        ..PageQuery::default()
    })
}

/// The first pass: counts the matching events newest first, a page at a
/// time, up to one more than `limit`.
async fn scan(
    store: &dyn Store,
    cluster: &Cluster,
    page: &PageQuery,
    limit: u32,
) -> Result<Scan, StoreError> {
    let mut scan = Scan::new(limit);
    let mut page = page.clone();
    loop {
        let wanted = limit.saturating_sub(scan.count as u32).saturating_add(1);
        page.limit = wanted.min(PAGE);
        let events = store.page(cluster, &page).await?;
        let more = scan.add(&events) && events.len() == page.limit as usize;
        match events.last() {
            Some(oldest) if more => page.after = Some((oldest.index, oldest.position)),
            _ => return Ok(scan),
        }
    }
}

/// The second pass: writes `count` events oldest first, a page at a time;
/// returns how many were written.
async fn copy(
    store: &dyn Store,
    cluster: &Cluster,
    mut page: PageQuery,
    count: usize,
    sink: &mut Sink<'_, impl Write>,
) -> Result<usize, QueryError> {
    let look = sink.look();
    let mut written = 0;
    while written < count {
        page.limit = PAGE.min((count - written) as u32);
        let events = store.page(cluster, &page).await?;
        for event in &events {
            if let Some(record) = render::record(event) {
                sink.item(&record, || cells(event, look))?;
            }
        }
        written += events.len();
        match events.last() {
            Some(newest) if events.len() == page.limit as usize => {
                page.after = Some((newest.index, newest.position))
            }
            _ => break,
        }
    }
    Ok(written.min(count))
}

/// The table of events: the summary last, wrapped.
const TABLE: [crate::query::table::Column; 7] = {
    use crate::query::table::Column;
    [
        Column::fixed("INDEX", 90),
        Column::fixed("TIME", 80),
        Column::fixed("TOPIC", 60),
        Column::shrinks("TYPE", 50, 12),
        Column::shrinks("NAMESPACE", 10, 9).or_hidden(),
        Column::shrinks("KEY", 70, 8),
        Column::shrinks("SUMMARY", 0, 30),
    ]
};

/// An event's table row; a node is keyed by its name when its event gives one.
fn cells(e: &ArchivedEvent, look: Look) -> Vec<String> {
    let key = match e.topic.as_str() {
        "Node" => super::summary::node_name(&e.raw).unwrap_or_else(|| look.id(&e.key).to_owned()),
        _ => look.id(&e.key).to_owned(),
    };
    vec![
        e.index.to_string(),
        render::Dated::of(e).cell(),
        e.topic.clone(),
        render::event_type(&e.raw),
        e.namespace.clone(),
        key,
        super::summary::summarize(&e.topic, &e.raw),
    ]
}

/// The members of the JSON document before its events.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Head<'a> {
    cluster: &'a str,
}

/// The members of the JSON document after its events.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tail<'a> {
    #[serde(serialize_with = "super::json::gaps")]
    gaps: &'a [Gap],
    truncated: bool,
}

/// "Not found", naming the cluster, the namespace, the archive's extent
/// and the gaps of the stretch looked at.
fn not_found(
    cluster: &str,
    query: &EventsQuery,
    span: Option<(u64, u64)>,
    gaps: &[Gap],
) -> QueryError {
    QueryError::NotFound(format!(
        "no events match in cluster `{cluster}`{} ({}){}",
        query
            .namespace
            .as_ref()
            .map(|ns| format!(", namespace `{ns}`"))
            .unwrap_or_default(),
        covers(span),
        gaps::not_found_note(gaps)
    ))
}

/// Narrows `page` to the stretch of the stream dated in its time window,
/// if it has one; `false` when nothing happened then.
pub(crate) async fn within_window(
    store: &dyn Store,
    cluster: &Cluster,
    page: &mut PageQuery,
) -> Result<bool, StoreError> {
    if page.since.is_none() && page.until.is_none() {
        return Ok(true);
    }
    match store.time_span(cluster, page.since, page.until).await? {
        Some((first, last)) => {
            page.within(first, Some(last));
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, position: u32) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position,
            topic: "Node".to_owned(),
            key: "node-1".to_owned(),
            namespace: String::new(),
            received_at: 1_700_000_000_000,
            time: 1_700_000_000_000,
            time_source: crate::archive::TimeSource::Nomad,
            raw: r#"{"Topic":"Node","Type":"NodeRegistration"}"#.to_owned(),
        }
    }

    #[test]
    fn a_scan_finds_where_the_newest_events_start_across_pages() {
        let mut scan = Scan::new(3);
        assert!(scan.add(&[event(30, 1), event(30, 0)]));
        assert!(!scan.add(&[event(20, 0), event(10, 0)]));
        assert_eq!(
            (scan.count, scan.first, scan.last, scan.truncated),
            (3, Some((20, 0)), Some(30), true)
        );
    }

    #[test]
    fn a_scan_of_fewer_events_than_the_limit_is_not_truncated() {
        let mut scan = Scan::new(10);
        assert!(scan.add(&[event(30, 0), event(20, 2)]));
        assert!(scan.add(&[]));
        assert_eq!(
            (scan.count, scan.first, scan.truncated),
            (2, Some((20, 2)), false)
        );
    }

    #[test]
    fn no_match_is_not_found_naming_the_cluster_namespace_and_extent() {
        let asked = EventsQuery {
            namespace: Some("batch".to_owned()),
            limit: 100,
            ..EventsQuery::default()
        };
        let gap = Gap::buffer_overrun(10, 20);
        match not_found("prod", &asked, Some((1, 50)), &[gap]) {
            QueryError::NotFound(message) => assert_eq!(
                message,
                "no events match in cluster `prod`, namespace `batch` (archive covers index 1–50); \
                 archive has no events between index 10 and 20 (buffer: event dropped from buffer)"
            ),
            other => panic!("expected not found, got {other:?}"),
        }
    }
}
