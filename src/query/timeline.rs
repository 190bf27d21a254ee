//! `query job|alloc|node|eval|deployment`: one object's history as a
//! timeline, one line per transition in index order, built from every event
//! that concerns it (a job's own versions, its evaluations, deployments and
//! allocations; a node's status and the allocations placed on it; …).

use std::collections::BTreeSet;
use std::io::Write;

use serde::Serialize;

use super::describe::{TaskDetail, Tracker};
use super::json;
use super::render::{self, Look, Output};
use super::resolve::{noun, resolve};
use super::sink::Sink;
use super::table::Column;
use super::{QueryError, covers, gaps};
use crate::archive::RefColumn;
use crate::archive::{ArchivedEvent, Cluster, Gap, PageQuery};
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
    /// The ID or a unique prefix, or for nodes also the name.
    pub id: String,
    pub namespace: Option<String>,
    pub from_index: u64,
    pub to_index: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Events read at most.
    pub limit: u32,
}

/// One transition: the event's identity, and the change as fields and as
/// a sentence (`Summary`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub index: u64,
    pub topic: String,
    #[serde(rename = "Type")]
    pub event_type: String,
    pub key: String,
    /// The name a person knows the event's object by (a node's), if known.
    pub name: Option<String>,
    pub namespace: String,
    #[serde(flatten)]
    pub time: render::Dated,
    pub object: String,
    pub field: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub message: Option<String>,
    pub summary: String,
}

impl Entry {
    /// The entry's table row; its object is named by the name a person
    /// knows it by, or its (short) ID.
    fn row(&self, look: &Look) -> Vec<String> {
        let object = match &self.name {
            Some(name) => format!("{} {name}", self.topic),
            None => format!("{} {}", self.topic, look.id(&self.key)),
        };
        vec![
            self.index.to_string(),
            self.time.cell(),
            object,
            self.summary.clone(),
        ]
    }
}

/// Events read from the store at a time.
const PAGE: u32 = 500;

/// The members of the JSON document before its entries.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Head<'a> {
    cluster: &'a str,
    subject: &'static str,
    #[serde(rename = "ID")]
    id: &'a str,
}

/// The members of the JSON document after its entries.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tail<'a> {
    #[serde(serialize_with = "json::gaps")]
    gaps: &'a [Gap],
    truncated: bool,
}

/// A timeline's table: the change last, wrapped.
const COLUMNS: [Column; 4] = [
    Column::fixed("INDEX", 90),
    Column::fixed("TIME", 80),
    Column::shrinks("OBJECT", 70, 12),
    Column::shrinks("CHANGE", 0, 30),
];

/// Builds the timeline and writes each entry as its event is read, a page
/// of events at a time; nothing is written before the first event is
/// read (none is "not found").
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &TimelineQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> Result<(), QueryError> {
    let id = resolve_id(store, cluster, query).await?;
    if query.subject == Subject::Job && query.namespace.is_none() {
        let namespaces = job_namespaces(store, cluster, &id).await?;
        one_namespace(&id, namespaces)?;
    }
    let mut page = PageQuery {
        from_index: query.from_index,
        to_index: query.to_index,
        since: query.since,
        until: query.until,
        namespace: query.namespace.clone(),
        refs: vec![(query.subject.column(), id.clone())],
        limit: PAGE.min(query.limit.saturating_add(1)),
        ..PageQuery::default()
    };
    let range = (query.from_index, query.to_index);
    let looked = gaps::looked_at(store, cluster, range, (query.since, query.until)).await?;
    let found = super::events::within_window(store, cluster, &mut page).await?;
    if found {
        // History before the cut is kept for snapshots only.
        gaps::from_cut(store, cluster, &mut page).await?;
    }
    let events = match found {
        true => store.page(cluster, &page).await?,
        false => Vec::new(),
    };
    let all = store.gaps(cluster).await?;
    if events.is_empty() {
        let span = store.span(cluster).await?;
        return Err(not_found(query, &id, span, &looked.named(&all)));
    }
    let mut sink = Sink::new(output, out, *look, &COLUMNS, "Timeline");
    let head = Head {
        cluster: &cluster.name,
        subject: query.subject.topic(),
        id: &id,
    };
    sink.start(&head)?;
    let past_limit = copy(store, cluster, query, page, events, &mut sink).await?;
    let truncated = past_limit.is_some();
    let looked = match past_limit {
        Some(index) => looked.stopped_at(index),
        None => looked,
    };
    let named = looked.named(&all);
    let note = truncated.then(|| {
        format!(
            "(stopped after {} events; use --limit or --from-index for more)",
            query.limit
        )
    });
    let tail = Tail {
        gaps: &named,
        truncated,
    };
    sink.finish(&tail, &named, note.as_deref())
}

/// Writes the entries of `events` and of the pages after it, up to the
/// query's limit; returns the index of the first event past the limit, if
/// one matched.
async fn copy(
    store: &dyn Store,
    cluster: &Cluster,
    query: &TimelineQuery,
    mut page: PageQuery,
    mut events: Vec<ArchivedEvent>,
    sink: &mut Sink<'_, impl Write>,
) -> Result<Option<u64>, QueryError> {
    let look = sink.look();
    let mut tracker = Tracker::new(query.subject.detail());
    let mut read = 0_u32;
    loop {
        for event in &events {
            if read == query.limit {
                return Ok(Some(event.index));
            }
            read += 1;
            for entry in entries(&mut tracker, event) {
                sink.item(&entry, || entry.row(&look))?;
            }
        }
        match events.last() {
            Some(newest) if events.len() == page.limit as usize => {
                page.after = Some((newest.index, newest.position));
                page.limit = PAGE.min((query.limit - read).saturating_add(1));
                events = store.page(cluster, &page).await?;
            }
            _ => return Ok(None),
        }
    }
}

/// The namespaces a job ID has Job events in, read a page at a time.
async fn job_namespaces(
    store: &dyn Store,
    cluster: &Cluster,
    id: &str,
) -> Result<BTreeSet<String>, QueryError> {
    let mut page = PageQuery {
        topics: Some(vec!["Job".to_owned()]),
        key: Some(id.to_owned()),
        limit: PAGE,
        ..PageQuery::default()
    };
    let mut namespaces = BTreeSet::new();
    loop {
        let events = store.page(cluster, &page).await?;
        namespaces.extend(events.iter().map(|e| e.namespace.clone()));
        match events.last() {
            Some(e) if events.len() == PAGE as usize => page.after = Some((e.index, e.position)),
            _ => return Ok(namespaces),
        }
    }
}

/// A job ID in several namespaces needs one chosen; no I/O.
fn one_namespace(id: &str, namespaces: BTreeSet<String>) -> Result<(), QueryError> {
    if namespaces.len() > 1 {
        let names: Vec<String> = namespaces.into_iter().collect();
        return Err(QueryError::Ambiguous(format!(
            "job `{id}` exists in several namespaces ({}): choose one with --namespace",
            names.join(", ")
        )));
    }
    Ok(())
}

/// "No events for …", with the namespace asked about, the archive's extent
/// and the gaps of the stretch looked at.
fn not_found(
    query: &TimelineQuery,
    id: &str,
    span: Option<(u64, u64)>,
    gaps: &[crate::archive::Gap],
) -> QueryError {
    let namespace = query
        .namespace
        .as_ref()
        .map(|ns| format!(" in namespace `{ns}`"))
        .unwrap_or_default();
    QueryError::NotFound(format!(
        "no events for {} `{id}`{namespace} ({}){}",
        noun(query.subject.topic()),
        covers(span),
        gaps::not_found_note(gaps)
    ))
}

/// The full ID the query names: an ID or a unique prefix; a node may be named.
async fn resolve_id(
    store: &dyn Store,
    cluster: &Cluster,
    query: &TimelineQuery,
) -> Result<String, QueryError> {
    match query.subject {
        Subject::Job => super::resolve::job(store, cluster, &query.id).await,
        Subject::Node => super::resolve::node(store, cluster, &query.id).await,
        _ => resolve(store, cluster, query.subject.topic(), &query.id).await,
    }
}

/// One entry per change `event` brings, told against what `tracker`
/// remembers; a change with a time of its own (a task event) shows it.
fn entries(tracker: &mut Tracker, event: &ArchivedEvent) -> Vec<Entry> {
    let (event_type, changes) = tracker.changes(&event.topic, &event.key, &event.raw);
    let name = tracker.name(&event.topic, &event.key).map(str::to_owned);
    changes
        .into_iter()
        .map(|change| Entry {
            index: event.index,
            topic: event.topic.clone(),
            event_type: event_type.clone(),
            key: event.key.clone(),
            name: name.clone(),
            namespace: event.namespace.clone(),
            time: match change.at {
                Some(at) => render::Dated::of(event).happened_at(at),
                None => render::Dated::of(event),
            },
            object: change.object,
            field: change.field,
            from: change.from,
            to: change.to,
            message: change.message,
            summary: change.text,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(subject: Subject, id: &str) -> TimelineQuery {
        TimelineQuery {
            subject,
            id: id.to_owned(),
            namespace: None,
            from_index: 0,
            to_index: None,
            since: None,
            until: None,
            limit: 100,
        }
    }

    fn job_event(index: u64, event_type: &str, job: &str) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: "Job".to_owned(),
            key: "web".to_owned(),
            namespace: "default".to_owned(),
            received_at: 1_700_000_000_000 + index as i64,
            time: 1_700_000_000_000 + index as i64,
            time_source: crate::archive::TimeSource::Nomad,
            raw: format!(
                r#"{{"Topic":"Job","Type":"{event_type}","Key":"web","Index":{index},"Payload":{{"Job":{job}}}}}"#
            ),
        }
    }

    /// The entries of `events`, told in order.
    fn timeline(subject: Subject, events: &[ArchivedEvent]) -> Vec<Entry> {
        let mut tracker = Tracker::new(subject.detail());
        events
            .iter()
            .flat_map(|e| entries(&mut tracker, e))
            .collect()
    }

    #[test]
    fn a_timeline_has_one_entry_per_change_in_index_order() {
        let events = [
            job_event(10, "JobRegistered", r#"{"Version":0,"Status":"pending"}"#),
            job_event(12, "JobRegistered", r#"{"Version":0,"Status":"running"}"#),
            job_event(
                20,
                "JobRegistered",
                r#"{"Version":1,"Status":"running","Stop":true}"#,
            ),
        ];
        let entries = timeline(Subject::Job, &events);
        let changes: Vec<(u64, &str, &str)> = entries
            .iter()
            .map(|e| (e.index, e.event_type.as_str(), e.summary.as_str()))
            .collect();
        assert_eq!(
            changes,
            vec![
                (10, "JobRegistered", "version 0 registered"),
                (12, "JobRegistered", "status pending → running"),
                (20, "JobRegistered", "version 1 registered"),
                (20, "JobRegistered", "stopped"),
            ]
        );
        let status = &entries[1];
        assert_eq!(
            (
                status.object.as_str(),
                status.field.as_deref(),
                status.from.as_deref(),
                status.to.as_deref()
            ),
            ("Job", Some("Status"), Some("pending"), Some("running"))
        );
        let first = &entries[0];
        assert_eq!(
            (
                first.topic.as_str(),
                first.key.as_str(),
                first.namespace.as_str()
            ),
            ("Job", "web", "default")
        );
        assert_eq!(first.time.time(), "2023-11-14T22:13:20.010Z");
    }

    #[test]
    fn an_object_without_events_is_not_found_with_the_archives_extent() {
        let mut asked = query(Subject::Alloc, "3f1c");
        asked.namespace = Some("prod".to_owned());
        let id = "3f1c2a9e-0000-4000-8000-000000000001";
        match not_found(&asked, id, Some((1, 50)), &[]) {
            QueryError::NotFound(message) => assert_eq!(
                message,
                "no events for allocation `3f1c2a9e-0000-4000-8000-000000000001` in namespace \
                 `prod` (archive covers index 1–50)"
            ),
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[test]
    fn a_job_in_several_namespaces_needs_one_chosen() {
        let namespaces = BTreeSet::from(["prod".to_owned(), "default".to_owned()]);
        match one_namespace("web", namespaces) {
            Err(QueryError::Ambiguous(message)) => assert_eq!(
                message,
                "job `web` exists in several namespaces (default, prod): choose one with --namespace"
            ),
            other => panic!("expected ambiguous, got {other:?}"),
        }
        assert!(one_namespace("web", BTreeSet::from(["prod".to_owned()])).is_ok());
    }

    #[test]
    fn a_task_event_is_dated_by_its_own_time() {
        let raw = r#"{"Topic":"Allocation","Type":"AllocationUpdated","Key":"a1","Index":30,"Payload":{"Allocation":{"ID":"a1","ClientStatus":"failed","TaskStates":{"web":{"State":"dead","Events":[{"Type":"Terminated","Time":1700000000500000000,"DisplayMessage":"OOM Killed"}]}}}}}"#;
        let event = ArchivedEvent {
            index: 30,
            position: 0,
            topic: "Allocation".to_owned(),
            key: "a1".to_owned(),
            namespace: "default".to_owned(),
            received_at: 1_800_000_000_000,
            time: 1_700_000_009_000,
            time_source: crate::archive::TimeSource::Nomad,
            raw: raw.to_owned(),
        };
        let entries = timeline(Subject::Alloc, &[event]);
        let task = entries
            .iter()
            .find(|e| e.summary.starts_with("task web: Terminated"))
            .expect("the task event");
        assert_eq!(task.time.at_ns, 1_700_000_000_500_000_000);
        assert_eq!(task.time.received, 1_800_000_000_000);
        assert_eq!(
            (
                task.object.as_str(),
                task.to.as_deref(),
                task.message.as_deref()
            ),
            ("Task web", Some("Terminated"), Some("OOM Killed"))
        );
        assert_eq!(entries[0].time.time(), "2023-11-14T22:13:29.000Z");
    }
}
