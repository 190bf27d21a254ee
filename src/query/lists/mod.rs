//! `query allocs|deployments|evals|jobs`: the lists asked for after an
//! incident. One row per object, as its latest event in the window (or, for
//! jobs, at the moment) describes it, read from indexed columns only
//! ([`crate::store::lists`]) and written as the rows arrive ([`write`]);
//! every answer names the recorded gaps of the stretch it read.

pub mod jobs;
pub mod records;
pub mod write;

use std::io::Write;

use futures_util::StreamExt;
use serde::Serialize;

use self::records::{AllocationRecord, DeploymentRecord, EvaluationRecord};
use self::write::Frame;
use super::gaps::{self, Looked};
use super::render::{Look, Output};
use super::{QueryError, resolve};
use crate::archive::{Cluster, RefColumn};
use crate::store::Store;
use crate::store::lists::ListFilter;

/// What a list is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Allocations,
    Deployments,
    Evaluations,
}

impl ListKind {
    /// The statuses Nomad gives objects of the kind (an allocation's client
    /// status): a status outside them is a typo, not an empty answer.
    pub fn statuses(self) -> &'static [&'static str] {
        match self {
            ListKind::Allocations => &[
                "pending", "running", "complete", "failed", "lost", "unknown",
            ],
            ListKind::Deployments => &[
                "initializing",
                "pending",
                "running",
                "paused",
                "blocked",
                "unblocking",
                "successful",
                "failed",
                "cancelled",
            ],
            ListKind::Evaluations => &["pending", "blocked", "complete", "failed", "canceled"],
        }
    }

    fn plural(self) -> &'static str {
        match self {
            ListKind::Allocations => "allocations",
            ListKind::Deployments => "deployments",
            ListKind::Evaluations => "evaluations",
        }
    }
}

/// A list question.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub kind: ListKind,
    /// Statuses matched; empty: any.
    pub statuses: Vec<String>,
    /// A job ID or a unique prefix.
    pub job: Option<String>,
    /// A node ID, a unique prefix or its name (allocations only).
    pub node: Option<String>,
    pub namespace: Option<String>,
    /// Nomad's time window, `[since, until)` in Unix ms.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// What a list answer says it looked at, beside its rows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Window {
    pub statuses: Vec<String>,
    pub since: Option<String>,
    pub since_ns: Option<i64>,
    pub until: Option<String>,
    pub until_ns: Option<i64>,
}

impl Window {
    fn of(query: &ListQuery) -> Self {
        let ns = |t: Option<i64>| t.map(|ms| ms.saturating_mul(1_000_000));
        Window {
            statuses: query.statuses.clone(),
            since: query.since.map(records::nanos),
            since_ns: ns(query.since),
            until: query.until.map(records::nanos),
            until_ns: ns(query.until),
        }
    }
}

/// Answers a list question into `out`, row by row.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &ListQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> Result<(), QueryError> {
    check_statuses(query)?;
    let filter = filter(store, cluster, query).await?;
    let looked = gaps::looked_at(store, cluster, (0, None), (query.since, query.until)).await?;
    let gaps = looked.named(&store.gaps(cluster).await?);
    let window = Window::of(query);
    let frame = Frame {
        cluster: &cluster.name,
        context: &window,
        gaps: &gaps,
        output,
        look,
        note: None,
    };
    let lists = store.lists();
    let count = match query.kind {
        ListKind::Allocations => {
            let rows = lists.allocations(cluster, &filter);
            write::rows(&frame, rows.map(|r| r.map(AllocationRecord::from)), out).await?
        }
        ListKind::Deployments => {
            let rows = lists.deployments(cluster, &filter);
            write::rows(&frame, rows.map(|r| r.map(DeploymentRecord::from)), out).await?
        }
        ListKind::Evaluations => {
            let rows = lists.evaluations(cluster, &filter);
            write::rows(&frame, rows.map(|r| r.map(EvaluationRecord::from)), out).await?
        }
    };
    match count {
        0 => Err(QueryError::NotFound(nothing(cluster, query, &gaps))),
        _ => Ok(()),
    }
}

/// A status outside the kind's is refused, naming the ones there are.
fn check_statuses(query: &ListQuery) -> Result<(), QueryError> {
    let known = query.kind.statuses();
    match query.statuses.iter().find(|s| !known.contains(&s.as_str())) {
        Some(unknown) => Err(QueryError::Usage(format!(
            "`{unknown}` is not a status of {}; use one of {}",
            query.kind.plural(),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The store's filter for `query`, with its IDs resolved and its window
/// turned into the stretch of the stream dated in it (none when nothing
/// is dated in the window).
async fn filter(
    store: &dyn Store,
    cluster: &Cluster,
    query: &ListQuery,
) -> Result<ListFilter, QueryError> {
    let mut refs = Vec::new();
    if let Some(job) = &query.job {
        refs.push((RefColumn::Job, resolve::job(store, cluster, job).await?));
    }
    if let Some(node) = &query.node {
        refs.push((RefColumn::Node, resolve::node(store, cluster, node).await?));
    }
    let mut filter = ListFilter {
        statuses: query.statuses.clone(),
        since: query.since,
        until: query.until,
        refs,
        namespace: query.namespace.clone(),
        ..ListFilter::default()
    };
    if query.since.is_none() && query.until.is_none() {
        return Ok(filter);
    }
    let (first, last) = store
        .time_span(cluster, query.since, query.until)
        .await?
        .unwrap_or((1, 0));
    filter.from_index = first;
    filter.to_index = Some(last);
    Ok(filter)
}

/// The "nothing found" message: what was asked, and the gaps it may hide in.
fn nothing(cluster: &Cluster, query: &ListQuery, gaps: &[crate::archive::Gap]) -> String {
    let statuses = match query.statuses.as_slice() {
        [] => String::new(),
        some => format!(" with status {}", some.join(" or ")),
    };
    let mut window = String::new();
    if let Some(since) = query.since {
        window.push_str(&format!(" since {}", super::render::time_seconds(since)));
    }
    if let Some(until) = query.until {
        window.push_str(&format!(" before {}", super::render::time_seconds(until)));
    }
    let mut about = String::new();
    for (name, value) in [
        ("job", &query.job),
        ("node", &query.node),
        ("namespace", &query.namespace),
    ] {
        if let Some(value) = value {
            about.push_str(&format!(", {name} `{value}`"));
        }
    }
    format!(
        "no {}{statuses}{window} in cluster `{}`{about}{}",
        query.kind.plural(),
        cluster.name,
        gaps::not_found_note(gaps)
    )
}

/// The whole stream, for answers at a moment (jobs): gaps up to it.
pub(crate) fn up_to(index: u64) -> Looked {
    Looked::ALL.stopped_at(index.saturating_add(1))
}
