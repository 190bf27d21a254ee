//! `query snapshot`: the cluster as of a point in history — every node, job
//! and allocation as Nomad last described it at or before that point, which
//! is what `/v1/nodes`, `/v1/jobs` and `/v1/allocations` would have answered
//! then (objects garbage-collected since are still here: the archive keeps
//! what the stream said). After a gap, the newest reconstruction at or before
//! the point fills in what the stream could not say ([`super::reconstructed`]),
//! and every object taken from it is labelled.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use super::payload::{Envelope, SnapshotFields};
use super::reconstructed::{self, Known, Label, Source, Used};
use super::render::{self, Output, short_id};
use super::resolve::resolve;
use super::state::{At, bounds, point};
use super::{QueryError, covers, gaps};
use crate::archive::RefColumn;
use crate::archive::{ArchivedEvent, Cluster, Gap};
use crate::store::Store;

/// What to include.
#[derive(Debug, Clone)]
pub struct SnapshotQuery {
    pub at: At,
    /// Only this job and its allocations.
    pub job: Option<String>,
    /// Only this node (ID, prefix or name) and its allocations.
    pub node: Option<String>,
}

/// One object in a snapshot.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Described {
    /// The index of the event that last described it.
    pub index: u64,
    pub topic: String,
    #[serde(rename = "Type")]
    pub event_type: String,
    pub key: String,
    pub namespace: String,
    #[serde(flatten)]
    pub time: render::Dated,
    /// The object exactly as archived: it is written out, never rebuilt.
    pub object: Box<RawValue>,
    /// Whether an event or a reconstruction describes it.
    pub source: Source,
    /// The reconstruction that describes it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<Label>,
}

/// What the archive holds for a snapshot, read before anything is built.
#[derive(Debug, Default)]
struct Fetched {
    /// What last described each node, job and allocation at the point.
    pub known: Vec<Known>,
    /// The reconstructions that filled in what the stream could not say.
    pub used: Vec<Used>,
    /// The cluster's recorded gaps.
    pub gaps: Vec<Gap>,
    /// The archive's extent, for the "not found" message.
    pub span: Option<(u64, u64)>,
}

/// The cluster as of a point, ready to render.
#[derive(Debug)]
struct Snapshot {
    /// The point asked for, in words.
    pub point: String,
    pub nodes: Vec<Described>,
    pub jobs: Vec<Described>,
    pub allocations: Vec<Described>,
    /// Recorded gaps before the point, which may have changed what it shows.
    pub gaps: Vec<Gap>,
    pub used: Vec<Used>,
}

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    at: &'a str,
    nodes: &'a [Described],
    jobs: &'a [Described],
    allocations: &'a [Described],
    gaps: &'a [Gap],
    reconstructions: &'a [Used],
}

/// Builds and writes the snapshot.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &SnapshotQuery,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> Result<(), QueryError> {
    let fetched = fetch(store, cluster, query).await?;
    let snapshot = build(query, fetched)?;
    render(&snapshot, &cluster.name, output, out, colour).map_err(QueryError::Output)
}

/// Resolves the node asked about and reads what last described each
/// object at the point, with the cluster's gaps and extent.
async fn fetch(
    store: &dyn Store,
    cluster: &Cluster,
    query: &SnapshotQuery,
) -> Result<Fetched, QueryError> {
    let mut refs = Vec::new();
    if let Some(job) = &query.job {
        refs.push((RefColumn::Job, job.clone()));
    }
    if let Some(node) = &query.node {
        let id = match store.node_ids_named(cluster, node).await?.as_slice() {
            [one] => one.clone(),
            _ => resolve(store, cluster, "Node", node).await?,
        };
        refs.push((RefColumn::Node, id));
    }
    let (to_index, until) = bounds(query.at);
    let topics = ["Node", "Job", "Allocation"].map(str::to_owned);
    let latest = store
        .latest(cluster, &topics, to_index, until, &refs)
        .await?;
    let (known, used) =
        reconstructed::combine(store, cluster, &topics, (to_index, until), &refs, latest).await?;
    Ok(Fetched {
        known,
        used,
        gaps: store.gaps(cluster).await?,
        span: store.span(cluster).await?,
    })
}

/// Sorts what describes each object into nodes, jobs and allocations,
/// leaving out objects gone by then; no I/O.
fn build(query: &SnapshotQuery, fetched: Fetched) -> Result<Snapshot, QueryError> {
    let (mut nodes, mut jobs, mut allocations) = (Vec::new(), Vec::new(), Vec::new());
    for known in fetched.known {
        let described = match known {
            Known::Event(event) => describe(event),
            Known::Reconstructed(object, label) => Some(from_reconstruction(object, label)),
        };
        let Some(described) = described else {
            continue;
        };
        match described.topic.as_str() {
            "Node" => nodes.push(described),
            "Job" => jobs.push(described),
            _ => allocations.push(described),
        }
    }
    let point = point(query.at);
    if nodes.is_empty() && jobs.is_empty() && allocations.is_empty() {
        return Err(QueryError::NotFound(format!(
            "no nodes, jobs or allocations at or before {point} ({})",
            covers(fetched.span)
        )));
    }
    let newest = [&nodes, &jobs, &allocations]
        .iter()
        .flat_map(|list| list.iter().map(|d| d.index))
        .max()
        .unwrap_or(0);
    // Anything missing before the point may have changed what it shows.
    let to_index = bounds(query.at).0.unwrap_or(0);
    let gaps = gaps::overlapping(&fetched.gaps, 0, newest.max(to_index));
    Ok(Snapshot {
        point,
        nodes,
        jobs,
        allocations,
        gaps,
        used: fetched.used,
    })
}

/// Writes the snapshot as tables, one JSON document, or NDJSON objects
/// (gaps and reconstructions then go to the log).
fn render(
    snapshot: &Snapshot,
    cluster: &str,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> std::io::Result<()> {
    let s = snapshot;
    match output {
        Output::Table => {
            write_table(out, s, colour)?;
            reconstructed::lines(out, &s.used, colour)
        }
        Output::Json => render::json_line(
            out,
            &Document {
                cluster,
                at: &s.point,
                nodes: &s.nodes,
                jobs: &s.jobs,
                allocations: &s.allocations,
                gaps: &s.gaps,
                reconstructions: &s.used,
            },
        ),
        Output::Ndjson => {
            for gap in &s.gaps {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            for u in &s.used {
                tracing::warn!("{}", reconstructed::sentence(u));
            }
            s.nodes
                .iter()
                .chain(&s.jobs)
                .chain(&s.allocations)
                .try_for_each(|d| render::json_line(out, d))
        }
    }
}

/// The object an event describes; `None` for an object gone by then (a
/// deregistered job or node). Only the event's type is parsed; the payload
/// is kept as raw JSON.
fn describe(event: ArchivedEvent) -> Option<Described> {
    let parsed: Envelope<HashMap<String, Box<RawValue>>> = serde_json::from_str(&event.raw).ok()?;
    let event_type = parsed.event_type.unwrap_or_default();
    if matches!(
        event_type.as_str(),
        "JobDeregistered" | "JobBatchDeregistered" | "NodeDeregistration"
    ) {
        return None;
    }
    let object = parsed
        .payload
        .and_then(|mut payload| payload.remove(&event.topic))
        .unwrap_or_default();
    Some(Described {
        index: event.index,
        object,
        time: render::Dated::of(&event),
        topic: event.topic,
        event_type,
        key: event.key,
        namespace: event.namespace,
        source: Source::Event,
        reconstruction: None,
    })
}

/// An object as a reconstruction listed it.
fn from_reconstruction(object: crate::archive::ReconstructedObject, label: Label) -> Described {
    Described {
        index: label.index,
        topic: label.topic.clone(),
        event_type: reconstructed::RECONSTRUCTED.to_owned(),
        object: RawValue::from_string(object.raw.clone()).unwrap_or_default(),
        time: render::Dated::read_at(&label.time),
        key: object.key,
        namespace: object.namespace,
        source: Source::Reconstruction,
        reconstruction: Some(label),
    }
}

/// The INDEX cell: the index, marked when a reconstruction describes it.
fn index_cell(d: &Described) -> String {
    match d.source {
        Source::Event => d.index.to_string(),
        Source::Reconstruction => format!("{} (reconstructed)", d.index),
    }
}

/// The fields a table row shows, read from the raw object.
fn fields(d: &Described) -> SnapshotFields {
    serde_json::from_str(d.object.get()).unwrap_or_default()
}

fn text(value: Option<String>) -> String {
    value.unwrap_or_default()
}

/// A table of the snapshot: title, objects, column names, and one row each.
type Section<'a> = (
    &'a str,
    &'a [Described],
    &'a [&'a str],
    fn(&Described) -> Vec<String>,
);

fn write_table(out: &mut impl Write, snapshot: &Snapshot, colour: bool) -> std::io::Result<()> {
    writeln!(out, "as of {}", snapshot.point)?;
    let sections: [Section; 3] = [
        (
            "NODES",
            &snapshot.nodes,
            &["ID", "NAME", "STATUS", "ELIGIBILITY", "DRAIN", "INDEX"],
            |d| {
                let f = fields(d);
                vec![
                    short_id(&d.key).to_owned(),
                    text(f.name),
                    text(f.status),
                    text(f.scheduling_eligibility),
                    text(f.drain),
                    index_cell(d),
                ]
            },
        ),
        (
            "JOBS",
            &snapshot.jobs,
            &["ID", "NAMESPACE", "VERSION", "STATUS", "STOP", "INDEX"],
            |d| {
                let f = fields(d);
                vec![
                    d.key.clone(),
                    d.namespace.clone(),
                    text(f.version),
                    text(f.status),
                    text(f.stop),
                    index_cell(d),
                ]
            },
        ),
        (
            "ALLOCATIONS",
            &snapshot.allocations,
            &["ID", "JOB", "GROUP", "NODE", "DESIRED", "CLIENT", "INDEX"],
            |d| {
                let f = fields(d);
                vec![
                    short_id(&d.key).to_owned(),
                    text(f.job_id),
                    text(f.task_group),
                    text(f.node_name),
                    text(f.desired_status),
                    text(f.client_status),
                    index_cell(d),
                ]
            },
        ),
    ];
    for (title, list, header, row) in sections {
        if list.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}")?;
        let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
        rows.extend(list.iter().map(row));
        render::table(out, &rows, colour)?;
    }
    render::gap_lines(out, &snapshot.gaps, colour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ReconstructedObject;

    fn event(index: u64, topic: &str, event_type: &str, key: &str) -> Known {
        Known::Event(ArchivedEvent {
            index,
            position: 0,
            topic: topic.to_owned(),
            key: key.to_owned(),
            namespace: "default".to_owned(),
            received_at: 1_700_000_000_000,
            time: 1_700_000_000_000,
            time_source: crate::archive::TimeSource::Nomad,
            raw: format!(
                r#"{{"Topic":"{topic}","Type":"{event_type}","Key":"{key}","Payload":{{"{topic}":{{"ID":"{key}"}}}}}}"#
            ),
        })
    }

    fn gap(from_index: u64, to_index: u64) -> Gap {
        Gap::buffer_overrun(from_index, to_index)
    }

    fn reconstructed_alloc(key: &str) -> Known {
        let object = ReconstructedObject {
            namespace: "default".to_owned(),
            key: key.to_owned(),
            modify_index: Some(70),
            shape: "AllocationListStub".to_owned(),
            raw: format!(r#"{{"ID":"{key}"}}"#),
        };
        let label = Label {
            topic: "Allocation".to_owned(),
            index: 80,
            endpoint: "/v1/allocations".to_owned(),
            shape: Some("AllocationListStub".to_owned()),
            time: "2023-11-14T22:13:21.000Z".to_owned(),
            present: true,
            gap: gap(50, 60),
        };
        Known::Reconstructed(object, label)
    }

    fn keys(list: &[Described]) -> Vec<(&str, u64, Source)> {
        list.iter()
            .map(|d| (d.key.as_str(), d.index, d.source))
            .collect()
    }

    fn at_index(index: u64) -> SnapshotQuery {
        SnapshotQuery {
            at: At::Index(index),
            job: None,
            node: None,
        }
    }

    #[test]
    fn objects_are_sorted_by_kind_and_those_gone_by_then_left_out() {
        let fetched = Fetched {
            known: vec![
                event(10, "Node", "NodeRegistration", "node-1"),
                event(11, "Node", "NodeDeregistration", "node-2"),
                event(20, "Job", "JobRegistered", "web"),
                event(21, "Job", "JobDeregistered", "old"),
                event(30, "Allocation", "AllocationUpdated", "alloc-1"),
                reconstructed_alloc("alloc-2"),
            ],
            ..Fetched::default()
        };
        let snapshot = build(&at_index(100), fetched).unwrap();
        assert_eq!(snapshot.point, "index 100");
        assert_eq!(keys(&snapshot.nodes), vec![("node-1", 10, Source::Event)]);
        assert_eq!(keys(&snapshot.jobs), vec![("web", 20, Source::Event)]);
        assert_eq!(
            keys(&snapshot.allocations),
            vec![
                ("alloc-1", 30, Source::Event),
                ("alloc-2", 80, Source::Reconstruction)
            ]
        );
        assert_eq!(snapshot.jobs[0].object.get(), r#"{"ID":"web"}"#);
        assert_eq!(snapshot.allocations[1].event_type, "Reconstructed");
    }

    #[test]
    fn gaps_before_the_point_asked_for_or_the_newest_object_are_named() {
        let gaps = vec![gap(5, 8), gap(90, 95), gap(120, 130)];
        let fetched = Fetched {
            known: vec![event(10, "Node", "NodeRegistration", "node-1")],
            gaps: gaps.clone(),
            ..Fetched::default()
        };
        let snapshot = build(&at_index(100), fetched).unwrap();
        assert_eq!(snapshot.gaps, vec![gap(5, 8), gap(90, 95)]);
        let at_time = SnapshotQuery {
            at: At::Time(1_700_000_000_000),
            ..at_index(0)
        };
        let fetched = Fetched {
            known: vec![event(10, "Node", "NodeRegistration", "node-1")],
            gaps,
            ..Fetched::default()
        };
        let snapshot = build(&at_time, fetched).unwrap();
        assert_eq!(snapshot.point, "2023-11-14T22:13:20.000Z");
        assert_eq!(snapshot.gaps, vec![gap(5, 8)]);
    }

    #[test]
    fn a_snapshot_of_only_deregistered_objects_is_not_found() {
        let fetched = Fetched {
            known: vec![event(21, "Job", "JobDeregistered", "old")],
            span: Some((1, 50)),
            ..Fetched::default()
        };
        match build(&at_index(40), fetched) {
            Err(QueryError::NotFound(message)) => assert_eq!(
                message,
                "no nodes, jobs or allocations at or before index 40 (archive covers index 1–50)"
            ),
            other => panic!("expected not found, got {other:?}"),
        }
    }
}
