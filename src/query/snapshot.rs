//! `query snapshot`: the cluster as of a point in history — every node, job
//! and allocation present then, as Nomad last described it, which is what
//! `/v1/nodes`, `/v1/jobs` and `/v1/allocations` would have answered (a
//! stopped job is still there, dead; a purged job and a deregistered node
//! are gone). Allocations that had completed, failed or were lost by then
//! are shown only when their last change is within `--terminal-within` of
//! the moment (or all of them with `--all`); the others are counted.
//!
//! The store reads the newest keyframe at or before the point and the
//! events after it ([`crate::store::Store::moment_objects`]), and the rows
//! are written out as they come ([`write`]). After a gap, the newest
//! reconstruction at or before the point fills in what the stream could not
//! say ([`super::reconstructed`]): that path collects the rows to overlay
//! them, and labels every object taken from a reconstruction.

mod write;

use std::collections::{HashMap, HashSet};
use std::io::Write;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::value::RawValue;

use super::payload::Envelope;
use super::reconstructed::{self, Known, Label, Source, Used};
use super::render::{self, Look, Output};
use super::resolve::resolve;
use super::state::{At, point};
use super::{QueryError, covers, gaps};
use crate::archive::{ArchivedEvent, Cluster, Gap, RefColumn};
use crate::store::{Moment, MomentObject, MomentQuery, Point, Rows, Store};

/// What to include.
#[derive(Debug, Clone)]
pub struct SnapshotQuery {
    pub at: At,
    /// Only this job and its allocations.
    pub job: Option<String>,
    /// Only this node (ID, prefix or name) and its allocations.
    pub node: Option<String>,
    /// Terminal allocations last changed at most this long (ms) before the
    /// moment are shown; `None`: every terminal allocation (`--all`).
    pub terminal_within: Option<i64>,
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

/// What a snapshot says besides its objects, known before the first one.
#[derive(Debug)]
pub(super) struct Header<'a> {
    pub cluster: &'a str,
    /// The point asked for, in words.
    pub point: String,
    /// The time asked for, if the point is a time (Unix ms).
    pub at_time: Option<i64>,
    /// The index of the moment shown.
    pub at_index: u64,
    /// Terminal allocations left out; `None` with `--all`.
    pub left_out: Option<u64>,
    /// The window of terminal allocations shown, in ms.
    pub terminal_within: Option<i64>,
    /// Recorded gaps before the point, which may have changed what it shows.
    pub gaps: Vec<Gap>,
    /// The reconstructions that filled in what the stream could not say.
    pub used: Vec<Used>,
}

/// The objects shown, as they come.
type Objects<'a> = stream::BoxStream<'a, Result<Described, QueryError>>;

/// The topics of a snapshot, in the order it lists them.
const TOPICS: [&str; 3] = ["Node", "Job", "Allocation"];

/// Reads the snapshot and writes it out as its rows come.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &SnapshotQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> Result<(), QueryError> {
    let moment_query = MomentQuery {
        point: match query.at {
            At::Index(index) => Point::Index(index),
            At::Time(time) => Point::Time(time),
        },
        terminal_within: query.terminal_within,
        refs: refs(store, cluster, query).await?,
    };
    let not_found = || async {
        let looked = match query.at {
            At::Index(index) => gaps::Looked::ALL.stopped_at(index.saturating_add(1)),
            At::Time(_) => gaps::Looked::ALL,
        };
        Ok::<_, QueryError>(QueryError::NotFound(format!(
            "no nodes, jobs or allocations at or before {} ({}){}",
            point(query.at),
            covers(store.span(cluster).await?),
            gaps::not_found_note(&looked.named(&store.gaps(cluster).await?))
        )))
    };
    let Some(moment) = store.moment(cluster, &moment_query).await? else {
        return Err(not_found().await?);
    };
    let cut = store.pruned(cluster).await?;
    if let Some(cut) = cut
        .as_ref()
        .filter(|c| moment.index.saturating_add(1) < c.before_index)
    {
        return Err(QueryError::NotFound(format!(
            "no snapshot at {}: {}; the earliest moment the archive can show is index {}",
            point(query.at),
            cut.sentence(),
            cut.before_index - 1
        )));
    }
    let gaps = gaps::overlapping(&store.gaps(cluster).await?, 0, moment.index);
    let gaps = gaps::for_snapshot(gaps, &moment, cut.as_ref());
    let left_out = match query.terminal_within {
        Some(_) => Some(store.terminal_left_out(cluster, &moment).await?),
        None => None,
    };
    let (mut objects, used) = objects(store, cluster, &moment).await?;
    // The first object is read before anything is written: none is "not found".
    let Some(first) = objects.next().await.transpose()? else {
        drop(objects);
        return Err(not_found().await?);
    };
    let header = Header {
        cluster: &cluster.name,
        point: point(query.at),
        at_time: match query.at {
            At::Time(ms) => Some(ms),
            At::Index(_) => None,
        },
        at_index: moment.index,
        left_out,
        terminal_within: query.terminal_within,
        gaps,
        used,
    };
    let objects = stream::once(async { Ok(first) }).chain(objects).boxed();
    write::write(&header, objects, output, out, look).await
}

/// The IDs the snapshot is narrowed to: the job, and the node resolved
/// from its ID, prefix or name.
async fn refs(
    store: &dyn Store,
    cluster: &Cluster,
    query: &SnapshotQuery,
) -> Result<Vec<(RefColumn, String)>, QueryError> {
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
    Ok(refs)
}

/// The objects of the snapshot: streamed from the store, or, when a
/// reconstruction at or before the point exists, collected and overlaid on
/// it; with the reconstructions used.
async fn objects<'a>(
    store: &'a dyn Store,
    cluster: &'a Cluster,
    moment: &'a Moment,
) -> Result<(Objects<'a>, Vec<Used>), QueryError> {
    let at = (Some(moment.index), None);
    let mut any = false;
    for topic in TOPICS {
        any |= store
            .reconstructions()
            .at(cluster, topic, at.0, at.1)
            .await?
            .is_some();
    }
    if !any {
        let rows = store
            .moment_objects(cluster, moment, Rows::Shown)
            .map_err(QueryError::from)
            .try_filter_map(|o| async move { Ok(describe(o.event)) })
            .boxed();
        return Ok((rows, Vec::new()));
    }
    let rows: Vec<MomentObject> = store
        .moment_objects(cluster, moment, Rows::Every)
        .try_collect()
        .await?;
    let (known, used) = overlaid(store, cluster, moment, rows).await?;
    let described: Vec<Result<Described, QueryError>> = known
        .into_iter()
        .filter_map(|known| match known {
            Known::Event(event) => describe(event),
            Known::Reconstructed(object, label) => Some(from_reconstruction(object, label)),
        })
        .map(Ok)
        .collect();
    Ok((stream::iter(described).boxed(), used))
}

/// Every object read, overlaid on the reconstructions; an event wins only
/// when the snapshot shows what it says (present, or terminal within the
/// window), and objects a reconstruction lists are left out when events the
/// rows did not include changed them since ([`reconstructed::combine`]).
async fn overlaid(
    store: &dyn Store,
    cluster: &Cluster,
    moment: &Moment,
    rows: Vec<MomentObject>,
) -> Result<(Vec<Known>, Vec<Used>), QueryError> {
    let hidden: HashSet<(String, String, String)> = rows
        .iter()
        .filter(|o| !o.shown(moment))
        .map(|o| identity(&o.event))
        .collect();
    let events = rows.into_iter().map(|o| o.event).collect();
    let topics = TOPICS.map(str::to_owned);
    let window = reconstructed::Window {
        index: moment.index,
        read_after: moment.read_after,
    };
    let (known, used) =
        reconstructed::combine(store, cluster, &topics, window, &moment.refs, events).await?;
    let known = known
        .into_iter()
        .filter(|k| !matches!(k, Known::Event(e) if hidden.contains(&identity(e))))
        .collect();
    Ok((known, used))
}

/// An object's identity: topic, namespace, key.
fn identity(event: &ArchivedEvent) -> (String, String, String) {
    (
        event.topic.clone(),
        event.namespace.clone(),
        event.key.clone(),
    )
}

/// The object an event describes; `None` when its stored JSON is not
/// valid (which ingest never stores). Only the event's type is parsed;
/// the payload is kept as raw JSON.
fn describe(event: ArchivedEvent) -> Option<Described> {
    let parsed: Envelope<HashMap<String, Box<RawValue>>> = serde_json::from_str(&event.raw).ok()?;
    let event_type = parsed.event_type.unwrap_or_default();
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
        time: render::Dated::read_at(label.time),
        key: object.key,
        namespace: object.namespace,
        source: Source::Reconstruction,
        reconstruction: Some(label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, topic: &str, event_type: &str, key: &str) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: topic.to_owned(),
            key: key.to_owned(),
            namespace: "default".to_owned(),
            received_at: 1_700_000_000_000,
            time: 1_700_000_000_000,
            time_source: crate::archive::TimeSource::Nomad,
            raw: format!(
                r#"{{"Topic":"{topic}","Type":"{event_type}","Key":"{key}","Payload":{{"{topic}":{{"ID":"{key}","Stop":true}}}}}}"#
            ),
        }
    }

    #[test]
    fn an_event_describes_its_object_from_the_payload_of_its_topic() {
        let d = describe(event(21, "Job", "JobDeregistered", "web")).expect("valid");
        assert_eq!(
            (
                d.index,
                d.topic.as_str(),
                d.event_type.as_str(),
                d.key.as_str()
            ),
            (21, "Job", "JobDeregistered", "web")
        );
        assert_eq!(d.object.get(), r#"{"ID":"web","Stop":true}"#);
        assert_eq!(d.source, Source::Event);
    }

    #[test]
    fn an_event_whose_json_is_not_valid_describes_nothing() {
        let mut broken = event(3, "Node", "NodeRegistration", "n1");
        broken.raw = "{".to_owned();
        assert!(describe(broken).is_none());
    }
}
