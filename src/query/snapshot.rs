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
use super::state::At;
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
    pub time: String,
    /// The object exactly as archived: it is written out, never rebuilt.
    pub object: Box<RawValue>,
    /// Whether an event or a reconstruction describes it.
    pub source: Source,
    /// The reconstruction that describes it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<Label>,
}

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    at: String,
    nodes: &'a [Described],
    jobs: &'a [Described],
    allocations: &'a [Described],
    gaps: Vec<Gap>,
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
    let (to_index, until) = match query.at {
        At::Index(index) => (Some(index), None),
        At::Time(millis) => (None, Some(millis.saturating_add(1))),
    };
    let topics = ["Node", "Job", "Allocation"].map(str::to_owned);
    let latest = store
        .latest(cluster, &topics, to_index, until, &refs)
        .await?;
    let (latest, used) =
        reconstructed::combine(store, cluster, &topics, (to_index, until), &refs, latest).await?;
    let mut nodes = Vec::new();
    let mut jobs = Vec::new();
    let mut allocations = Vec::new();
    for known in latest {
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
    let point = match query.at {
        At::Index(index) => format!("index {index}"),
        At::Time(millis) => render::time(millis),
    };
    if nodes.is_empty() && jobs.is_empty() && allocations.is_empty() {
        let span = store.span(cluster).await?;
        return Err(QueryError::NotFound(format!(
            "no nodes, jobs or allocations at or before {point} ({})",
            covers(span)
        )));
    }
    let newest = [&nodes, &jobs, &allocations]
        .iter()
        .flat_map(|list| list.iter().map(|d| d.index))
        .max()
        .unwrap_or(0);
    // Anything missing before the point may have changed what it shows.
    let overlapping = gaps::overlapping(
        &store.gaps(cluster).await?,
        0,
        newest.max(to_index.unwrap_or(0)),
    );
    let written = match output {
        Output::Table => write_table(
            out,
            &point,
            &nodes,
            &jobs,
            &allocations,
            &overlapping,
            colour,
        )
        .and_then(|()| reconstructed::lines(out, &used, colour)),
        Output::Json => render::json_line(
            out,
            &Document {
                cluster: &cluster.name,
                at: point,
                nodes: &nodes,
                jobs: &jobs,
                allocations: &allocations,
                gaps: overlapping,
                reconstructions: &used,
            },
        ),
        Output::Ndjson => {
            for gap in &overlapping {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            for u in &used {
                tracing::warn!("{}", reconstructed::sentence(u));
            }
            nodes
                .iter()
                .chain(&jobs)
                .chain(&allocations)
                .try_for_each(|d| render::json_line(out, d))
        }
    };
    written.map_err(QueryError::Output)
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
        time: render::time(event.received_at),
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
        time: label.time.clone(),
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

fn write_table(
    out: &mut impl Write,
    point: &str,
    nodes: &[Described],
    jobs: &[Described],
    allocations: &[Described],
    overlapping: &[Gap],
    colour: bool,
) -> std::io::Result<()> {
    writeln!(out, "as of {point}")?;
    let sections: [Section; 3] = [
        (
            "NODES",
            nodes,
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
            jobs,
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
            allocations,
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
    render::gap_lines(out, overlapping, colour)
}
