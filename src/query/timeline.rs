//! `query job|alloc|node|eval|deployment`: one object's history as a
//! timeline, one line per transition in index order, built from every event
//! that concerns it (a job's own versions, its evaluations, deployments and
//! allocations; a node's status and the allocations placed on it; …).

use std::io::Write;

use serde::Serialize;

use super::describe::{TaskDetail, Tracker};
use super::gaps::{self, Looked};
use super::render::{self, Output};
use super::resolve::{noun, resolve};
use super::{QueryError, covers};
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
    /// The ID, a unique prefix, or for nodes also the name.
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
    #[serde(flatten)]
    pub time: render::Dated,
    pub change: String,
}

/// An object's timeline, ready to render.
#[derive(Debug, Clone)]
struct Timeline {
    /// The object's full ID, as resolved from what was given.
    pub id: String,
    pub entries: Vec<Entry>,
    /// Recorded gaps the timeline's index range overlaps.
    pub gaps: Vec<Gap>,
    /// Whether more events matched than `--limit` allowed.
    pub truncated: bool,
}

/// What the archive holds for a timeline query, read before anything is built.
#[derive(Debug, Clone, Default)]
struct Fetched {
    /// The object's full ID.
    pub id: String,
    /// Its events in index order, at most one more than the query's limit.
    pub events: Vec<ArchivedEvent>,
    /// The cluster's recorded gaps.
    pub gaps: Vec<Gap>,
    /// The stretch of the stream the read looked at.
    pub looked: Looked,
    /// The archive's extent (read only when there are no events, for the message).
    pub span: Option<(u64, u64)>,
}

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    subject: &'static str,
    id: &'a str,
    timeline: &'a [Entry],
    gaps: &'a [Gap],
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
    let fetched = fetch(store, cluster, query).await?;
    let timeline = build(query, fetched)?;
    render(&timeline, &cluster.name, query, output, out, colour).map_err(QueryError::Output)
}

/// Resolves the object's ID and reads its events, and the gaps or the
/// archive's extent that the answer will mention.
async fn fetch(
    store: &dyn Store,
    cluster: &Cluster,
    query: &TimelineQuery,
) -> Result<Fetched, QueryError> {
    let id = resolve_id(store, cluster, query).await?;
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
    let span = match events.is_empty() {
        true => store.span(cluster).await?,
        false => None,
    };
    Ok(Fetched {
        id,
        events,
        gaps: store.gaps(cluster).await?,
        looked,
        span,
    })
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

/// Turns the object's events into transitions; no I/O.
fn build(query: &TimelineQuery, fetched: Fetched) -> Result<Timeline, QueryError> {
    let Fetched {
        id,
        mut events,
        gaps,
        looked,
        span,
    } = fetched;
    let topic = query.subject.topic();
    let truncated = events.len() > query.limit as usize;
    let looked = match events.get(query.limit as usize) {
        Some(past_limit) => looked.stopped_at(past_limit.index),
        None => looked,
    };
    let gaps = looked.named(&gaps);
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
    if events.is_empty() {
        let namespace = query
            .namespace
            .as_ref()
            .map(|ns| format!(" in namespace `{ns}`"))
            .unwrap_or_default();
        return Err(QueryError::NotFound(format!(
            "no events for {} `{id}`{namespace} ({}){}",
            noun(topic),
            covers(span),
            gaps::not_found_note(&gaps)
        )));
    }
    let entries = transitions(query.subject, &events);
    Ok(Timeline {
        id,
        entries,
        gaps,
        truncated,
    })
}

/// One entry per change each event brings, in index order; a change with
/// a time of its own (a task event) shows that time.
fn transitions(subject: Subject, events: &[ArchivedEvent]) -> Vec<Entry> {
    let mut tracker = Tracker::new(subject.detail());
    let mut entries = Vec::new();
    for event in events {
        let (event_type, changes) = tracker.changes(&event.topic, &event.key, &event.raw);
        for change in changes {
            entries.push(Entry {
                index: event.index,
                topic: event.topic.clone(),
                event_type: event_type.clone(),
                key: event.key.clone(),
                namespace: event.namespace.clone(),
                time: match change.at {
                    Some(at) => render::Dated::of(event).happened_at(at),
                    None => render::Dated::of(event),
                },
                change: change.text,
            });
        }
    }
    entries
}

/// Writes the timeline as a table, one JSON document, or NDJSON entries
/// (gaps then go to the log).
fn render(
    timeline: &Timeline,
    cluster: &str,
    query: &TimelineQuery,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> std::io::Result<()> {
    match output {
        Output::Table => {
            let mut rows = vec![
                ["INDEX", "TIME", "OBJECT", "CHANGE"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for e in &timeline.entries {
                rows.push(vec![
                    e.index.to_string(),
                    e.time.cell(),
                    format!("{} {}", e.topic, render::short_id(&e.key)),
                    e.change.clone(),
                ]);
            }
            render::table(out, &rows, colour)?;
            render::gap_lines(out, &timeline.gaps, colour)?;
            if timeline.truncated {
                writeln!(
                    out,
                    "(stopped after {} events; use --limit or --from-index for more)",
                    query.limit
                )?;
            }
            Ok(())
        }
        Output::Json => render::json_line(
            out,
            &Document {
                cluster,
                subject: query.subject.topic(),
                id: &timeline.id,
                timeline: &timeline.entries,
                gaps: &timeline.gaps,
                truncated: timeline.truncated,
            },
        ),
        Output::Ndjson => {
            for gap in &timeline.gaps {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            timeline
                .entries
                .iter()
                .try_for_each(|e| render::json_line(out, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(subject: Subject, id: &str, limit: u32) -> TimelineQuery {
        TimelineQuery {
            subject,
            id: id.to_owned(),
            namespace: None,
            from_index: 0,
            to_index: None,
            since: None,
            until: None,
            limit,
        }
    }

    fn job_event(index: u64, namespace: &str, event_type: &str, job: &str) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: "Job".to_owned(),
            key: "web".to_owned(),
            namespace: namespace.to_owned(),
            received_at: 1_700_000_000_000 + index as i64,
            time: 1_700_000_000_000 + index as i64,
            time_source: crate::archive::TimeSource::Nomad,
            raw: format!(
                r#"{{"Topic":"Job","Type":"{event_type}","Key":"web","Index":{index},"Payload":{{"Job":{job}}}}}"#
            ),
        }
    }

    fn gap(from_index: u64, to_index: u64) -> Gap {
        Gap::buffer_overrun(from_index, to_index)
    }

    fn web_history() -> Vec<ArchivedEvent> {
        vec![
            job_event(
                10,
                "default",
                "JobRegistered",
                r#"{"Version":0,"Status":"pending"}"#,
            ),
            job_event(
                12,
                "default",
                "JobRegistered",
                r#"{"Version":0,"Status":"running"}"#,
            ),
            job_event(
                20,
                "default",
                "JobRegistered",
                r#"{"Version":1,"Status":"running","Stop":true}"#,
            ),
        ]
    }

    fn changes(timeline: &Timeline) -> Vec<(u64, &str, &str)> {
        timeline
            .entries
            .iter()
            .map(|e| (e.index, e.event_type.as_str(), e.change.as_str()))
            .collect()
    }

    #[test]
    fn a_timeline_has_one_entry_per_change_in_index_order() {
        let fetched = Fetched {
            id: "web".to_owned(),
            events: web_history(),
            ..Fetched::default()
        };
        let timeline = build(&query(Subject::Job, "web", 100), fetched).unwrap();
        assert_eq!(
            changes(&timeline),
            vec![
                (10, "JobRegistered", "version 0 registered"),
                (12, "JobRegistered", "status pending → running"),
                (20, "JobRegistered", "version 1 registered"),
                (20, "JobRegistered", "stopped"),
            ]
        );
        let first = &timeline.entries[0];
        assert_eq!(
            (
                first.topic.as_str(),
                first.key.as_str(),
                first.namespace.as_str()
            ),
            ("Job", "web", "default")
        );
        assert_eq!(first.time.time, "2023-11-14T22:13:20.010Z");
        assert!(!timeline.truncated);
        assert!(timeline.gaps.is_empty());
    }

    #[test]
    fn a_timeline_names_the_gaps_of_the_stretch_it_read_up_to_where_its_limit_stopped_it() {
        let fetched = Fetched {
            id: "web".to_owned(),
            events: web_history(),
            gaps: vec![gap(2, 10), gap(11, 15), gap(20, 30)],
            ..Fetched::default()
        };
        let timeline = build(&query(Subject::Job, "web", 2), fetched).unwrap();
        let gaps: Vec<_> = timeline
            .gaps
            .iter()
            .map(|g| (g.from_index, g.to_index))
            .collect();
        assert_eq!(gaps, vec![(2, 10), (11, 15)]);
    }

    #[test]
    fn a_timeline_past_its_limit_keeps_the_oldest_events_and_says_it_stopped() {
        let fetched = Fetched {
            id: "web".to_owned(),
            events: web_history(),
            ..Fetched::default()
        };
        let timeline = build(&query(Subject::Job, "web", 2), fetched).unwrap();
        assert!(timeline.truncated);
        assert_eq!(
            changes(&timeline),
            vec![
                (10, "JobRegistered", "version 0 registered"),
                (12, "JobRegistered", "status pending → running"),
            ]
        );
    }

    #[test]
    fn an_object_without_events_is_not_found_with_the_archives_extent() {
        let fetched = Fetched {
            id: "3f1c2a9e-0000-4000-8000-000000000001".to_owned(),
            span: Some((1, 50)),
            ..Fetched::default()
        };
        let mut asked = query(Subject::Alloc, "3f1c", 100);
        asked.namespace = Some("prod".to_owned());
        match build(&asked, fetched) {
            Err(QueryError::NotFound(message)) => assert_eq!(
                message,
                "no events for allocation `3f1c2a9e-0000-4000-8000-000000000001` in namespace \
                 `prod` (archive covers index 1–50)"
            ),
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[test]
    fn a_job_in_several_namespaces_needs_one_chosen() {
        let fetched = Fetched {
            id: "web".to_owned(),
            events: vec![
                job_event(10, "prod", "JobRegistered", r#"{"Version":0}"#),
                job_event(11, "default", "JobRegistered", r#"{"Version":0}"#),
            ],
            ..Fetched::default()
        };
        match build(&query(Subject::Job, "web", 100), fetched) {
            Err(QueryError::Ambiguous(message)) => assert_eq!(
                message,
                "job `web` exists in several namespaces (default, prod): choose one with --namespace"
            ),
            other => panic!("expected ambiguous, got {other:?}"),
        }
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
        let entries = transitions(Subject::Alloc, &[event]);
        let task = entries
            .iter()
            .find(|e| e.change.starts_with("task web: Terminated"))
            .expect("the task event");
        assert_eq!(task.time.time, "2023-11-14T22:13:20.500Z");
        assert_eq!(task.time.received, "2027-01-15T08:00:00.000Z");
        let first = &entries[0];
        assert_eq!(first.time.time, "2023-11-14T22:13:29.000Z");
    }
}
