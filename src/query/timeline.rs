//! `query job|alloc|node|eval|deployment`: one object's history as a
//! timeline, one line per transition in index order, built from every event
//! that concerns it (a job's own versions, its evaluations, deployments and
//! allocations; a node's status and the allocations placed on it; …).

use std::io::Write;

use serde::Serialize;

use super::describe::{TaskDetail, Tracker};
use super::render::{self, Output};
use super::resolve::{noun, resolve};
use super::{QueryError, covers, gaps};
use crate::archive::RefColumn;
use crate::archive::{Cluster, Gap, PageQuery};
use crate::store::Store;

/// Which kind of object a timeline is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Job,
    Alloc,
    Node,
    Eval,
    Deployment,
}

impl Subject {
    fn topic(self) -> &'static str {
        match self {
            Subject::Job => "Job",
            Subject::Alloc => "Allocation",
            Subject::Node => "Node",
            Subject::Eval => "Evaluation",
            Subject::Deployment => "Deployment",
        }
    }

    fn column(self) -> RefColumn {
        match self {
            Subject::Job => RefColumn::Job,
            Subject::Alloc => RefColumn::Alloc,
            Subject::Node => RefColumn::Node,
            Subject::Eval => RefColumn::Eval,
            Subject::Deployment => RefColumn::Deployment,
        }
    }

    fn detail(self) -> TaskDetail {
        match self {
            Subject::Alloc => TaskDetail::All,
            Subject::Node => TaskDetail::None,
            _ => TaskDetail::Failures,
        }
    }
}

/// What to show.
#[derive(Debug, Clone)]
pub struct TimelineQuery {
    pub subject: Subject,
    /// The ID, a unique prefix, or for nodes also the name; job IDs are exact.
    pub id: String,
    pub namespace: Option<String>,
    pub from_index: u64,
    pub to_index: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Events read at most.
    pub limit: u32,
}

/// One transition.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub index: u64,
    pub topic: String,
    #[serde(rename = "Type")]
    pub event_type: String,
    pub key: String,
    pub namespace: String,
    pub time: String,
    pub change: String,
}

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    subject: &'static str,
    id: &'a str,
    timeline: &'a [Entry],
    gaps: Vec<Gap>,
    truncated: bool,
}

/// Builds and writes the timeline.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &TimelineQuery,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> Result<(), QueryError> {
    let topic = query.subject.topic();
    let id = match query.subject {
        Subject::Job => query.id.clone(),
        Subject::Node => match store.node_ids_named(cluster, &query.id).await?.as_slice() {
            [one] => one.clone(),
            [] => resolve(store, cluster, topic, &query.id).await?,
            many => {
                return Err(QueryError::Ambiguous(format!(
                    "several nodes were called `{}`: {}; give the node ID",
                    query.id,
                    many.join(", ")
                )));
            }
        },
        _ => resolve(store, cluster, topic, &query.id).await?,
    };
    let mut page = PageQuery {
        from_index: query.from_index,
        to_index: query.to_index,
        since: query.since,
        until: query.until,
        namespace: query.namespace.clone(),
        refs: vec![(query.subject.column(), id.clone())],
        limit: query.limit.saturating_add(1),
        ..PageQuery::default()
    };
    let mut events = match super::events::within_window(store, cluster, &mut page).await? {
        true => store.page(cluster, &page).await?,
        false => Vec::new(),
    };
    let truncated = events.len() > query.limit as usize;
    events.truncate(query.limit as usize);
    if query.subject == Subject::Job && query.namespace.is_none() {
        let mut namespaces: Vec<&str> = events
            .iter()
            .filter(|e| e.topic == "Job")
            .map(|e| e.namespace.as_str())
            .collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        if namespaces.len() > 1 {
            return Err(QueryError::Ambiguous(format!(
                "job `{id}` exists in several namespaces ({}): choose one with --namespace",
                namespaces.join(", ")
            )));
        }
    }
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        let span = store.span(cluster).await?;
        let namespace = query
            .namespace
            .as_ref()
            .map(|ns| format!(" in namespace `{ns}`"))
            .unwrap_or_default();
        return Err(QueryError::NotFound(format!(
            "no events for {} `{id}`{namespace} ({})",
            noun(topic),
            covers(span)
        )));
    };
    let overlapping = gaps::overlapping(&store.gaps(cluster).await?, first.index, last.index);
    let mut tracker = Tracker::new(query.subject.detail());
    let mut entries = Vec::new();
    for event in &events {
        let (event_type, changes) = tracker.changes(&event.topic, &event.key, &event.raw);
        for change in changes {
            entries.push(Entry {
                index: event.index,
                topic: event.topic.clone(),
                event_type: event_type.clone(),
                key: event.key.clone(),
                namespace: event.namespace.clone(),
                time: render::time(event.received_at),
                change,
            });
        }
    }
    let written = match output {
        Output::Table => {
            let mut rows = vec![
                ["INDEX", "TIME", "OBJECT", "CHANGE"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for e in &entries {
                rows.push(vec![
                    e.index.to_string(),
                    e.time.clone(),
                    format!("{} {}", e.topic, render::short_id(&e.key)),
                    e.change.clone(),
                ]);
            }
            render::table(out, &rows, colour)
                .and_then(|()| render::gap_lines(out, &overlapping, colour))
                .and_then(|()| {
                    if truncated {
                        writeln!(
                            out,
                            "(stopped after {} events; use --limit or --from-index for more)",
                            query.limit
                        )
                    } else {
                        Ok(())
                    }
                })
        }
        Output::Json => render::json_line(
            out,
            &Document {
                cluster: &cluster.name,
                subject: topic,
                id: &id,
                timeline: &entries,
                gaps: overlapping,
                truncated,
            },
        ),
        Output::Ndjson => {
            for gap in &overlapping {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            entries.iter().try_for_each(|e| render::json_line(out, e))
        }
    };
    written.map_err(QueryError::Output)
}
