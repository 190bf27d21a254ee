//! `query events`: the raw archive, filtered, newest last.

use std::io::Write;

use serde::Serialize;

use super::render::{self, EventRecord, Output};
use super::resolve::resolve;
use super::summary::summarize;
use super::{QueryError, covers, gaps};
use crate::archive::RefColumn;
use crate::archive::{Cluster, Gap, PageQuery};
use crate::store::{Store, StoreError};

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

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    events: Vec<EventRecord<'a>>,
    gaps: Vec<Gap>,
    truncated: bool,
}

/// Runs the query and writes the answer; returns how many events matched.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &EventsQuery,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> Result<usize, QueryError> {
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
    let mut page = PageQuery {
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
        limit: query.limit.saturating_add(1),
        ..PageQuery::default()
    };
    let mut events = match within_window(store, cluster, &mut page).await? {
        true => store.page(cluster, &page).await?,
        false => Vec::new(),
    };
    let truncated = events.len() > query.limit as usize;
    events.truncate(query.limit as usize);
    events.reverse();
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        let span = store.span(cluster).await?;
        return Err(QueryError::NotFound(format!(
            "no events match in cluster `{}`{} ({})",
            cluster.name,
            query
                .namespace
                .as_ref()
                .map(|ns| format!(", namespace `{ns}`"))
                .unwrap_or_default(),
            covers(span)
        )));
    };
    let overlapping = gaps::overlapping(&store.gaps(cluster).await?, first.index, last.index);
    let written = match output {
        Output::Table => {
            let mut rows = vec![
                [
                    "INDEX",
                    "TIME",
                    "TOPIC",
                    "TYPE",
                    "NAMESPACE",
                    "KEY",
                    "SUMMARY",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            for e in &events {
                rows.push(vec![
                    e.index.to_string(),
                    render::time(e.received_at),
                    e.topic.clone(),
                    render::event_type(&e.raw),
                    e.namespace.clone(),
                    render::short_id(&e.key).to_owned(),
                    summarize(&e.topic, &e.raw),
                ]);
            }
            render::table(out, &rows, colour)
                .and_then(|()| render::gap_lines(out, &overlapping, colour))
                .and_then(|()| {
                    if truncated {
                        writeln!(
                            out,
                            "(showing the newest {}; use --limit, --from-index or --since for more)",
                            events.len()
                        )
                    } else {
                        Ok(())
                    }
                })
        }
        Output::Json => {
            let document = Document {
                cluster: &cluster.name,
                events: events.iter().filter_map(render::record).collect(),
                gaps: overlapping,
                truncated,
            };
            render::json_line(out, &document)
        }
        Output::Ndjson => {
            for gap in &overlapping {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            events
                .iter()
                .filter_map(render::record)
                .try_for_each(|record| render::json_line(out, &record))
        }
    };
    written.map_err(QueryError::Output)?;
    Ok(events.len())
}

/// Narrows `page` to the stretch of the stream received in its time window,
/// if it has one; `false` when nothing was received then.
pub(crate) async fn within_window(
    store: &dyn Store,
    cluster: &Cluster,
    page: &mut PageQuery,
) -> Result<bool, StoreError> {
    if page.since.is_none() && page.until.is_none() {
        return Ok(true);
    }
    match store.received_span(cluster, page.since, page.until).await? {
        Some((first, last)) => {
            page.within(first, Some(last));
            Ok(true)
        }
        None => Ok(false),
    }
}
