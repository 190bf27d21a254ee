//! `status --output json`: the archive's summary in the JSON convention of
//! every answer (docs/json.md): PascalCase keys, times in RFC 3339 with
//! nanoseconds, and Unix nanoseconds beside the times Nomad gave.

use serde::Serialize;

use crate::archive::{
    ClusterStatus, PartStatus, PartSummary, Prune, PruneReport, StatusReport, TopicCount,
};
use crate::query::json;

/// The whole report.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Report<'a> {
    database: &'a str,
    backend: &'a str,
    database_bytes: u64,
    clusters: Vec<Cluster<'a>>,
}

impl<'a> From<&'a StatusReport> for Report<'a> {
    fn from(r: &'a StatusReport) -> Self {
        Report {
            database: &r.database,
            backend: r.backend,
            database_bytes: r.database_bytes,
            clusters: r.clusters.iter().map(Cluster::from).collect(),
        }
    }
}

/// One cluster.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Cluster<'a> {
    cluster: &'a str,
    address: Option<&'a str>,
    events: u64,
    first_index: Option<u64>,
    last_index: Option<u64>,
    checkpoint: Option<u64>,
    identity: Option<Identity<'a>>,
    topics: Vec<Topic<'a>>,
    #[serde(serialize_with = "json::gaps")]
    gaps: &'a [crate::archive::Gap],
    malformed_lines: u64,
    /// By Nomad's clock.
    #[serde(serialize_with = "json::ms_opt")]
    first_event_at: Option<i64>,
    #[serde(serialize_with = "json::ms_as_ns")]
    first_event_at_ns: Option<i64>,
    #[serde(serialize_with = "json::ms_opt")]
    last_event_at: Option<i64>,
    #[serde(serialize_with = "json::ms_as_ns")]
    last_event_at_ns: Option<i64>,
    /// By the archive's clock.
    #[serde(serialize_with = "json::ms_opt")]
    first_received_at: Option<i64>,
    #[serde(serialize_with = "json::ms_opt")]
    last_received_at: Option<i64>,
    reconstructions: Vec<Reconstruction<'a>>,
    pruned: Option<Pruned>,
}

impl<'a> From<&'a ClusterStatus> for Cluster<'a> {
    fn from(c: &'a ClusterStatus) -> Self {
        Cluster {
            cluster: &c.cluster,
            address: c.address.as_deref(),
            events: c.events,
            first_index: c.first_index,
            last_index: c.last_index,
            checkpoint: c.checkpoint,
            identity: c.identity.as_ref().map(|i| Identity {
                region: &i.region,
                servers: i.servers.iter().map(String::as_str).collect(),
            }),
            topics: c.topics.iter().map(Topic::from).collect(),
            gaps: &c.gaps,
            malformed_lines: c.malformed_lines,
            first_event_at: c.first_event_at,
            first_event_at_ns: c.first_event_at,
            last_event_at: c.last_event_at,
            last_event_at_ns: c.last_event_at,
            first_received_at: c.first_received_at,
            last_received_at: c.last_received_at,
            reconstructions: c.reconstructions.iter().map(Reconstruction::from).collect(),
            pruned: c.pruned.as_ref().map(Pruned::from),
        }
    }
}

/// The Nomad cluster the history came from.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Identity<'a> {
    region: &'a str,
    servers: Vec<&'a str>,
}

/// Events of one topic.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Topic<'a> {
    topic: &'a str,
    events: u64,
}

impl<'a> From<&'a TopicCount> for Topic<'a> {
    fn from(t: &'a TopicCount) -> Self {
        Topic {
            topic: &t.topic,
            events: t.events,
        }
    }
}

/// What was reconstructed after a gap, for one topic.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Reconstruction<'a> {
    gap_from_index: u64,
    gap_to_index: u64,
    topic: &'a str,
    status: PartStatus,
    index: Option<u64>,
    objects: u64,
    detail: Option<&'a str>,
}

impl<'a> From<&'a PartSummary> for Reconstruction<'a> {
    fn from(p: &'a PartSummary) -> Self {
        Reconstruction {
            gap_from_index: p.gap_from_index,
            gap_to_index: p.gap_to_index,
            topic: &p.topic,
            status: p.status,
            index: p.index,
            objects: p.objects,
            detail: p.detail.as_deref(),
        }
    }
}

/// What `prune --output json` writes: the cut now in force and what the
/// prune did.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReportJson {
    pruned: Pruned,
    kept: u64,
    space_returned: bool,
    bytes_before: u64,
    bytes_after: u64,
}

impl From<&PruneReport> for PruneReportJson {
    fn from(r: &PruneReport) -> Self {
        PruneReportJson {
            pruned: Pruned::from(&r.prune),
            kept: r.kept,
            space_returned: r.space_returned,
            bytes_before: r.bytes_before,
            bytes_after: r.bytes_after,
        }
    }
}

/// The cut in force.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Pruned {
    before_index: u64,
    /// The cut by Nomad's clock, when known.
    #[serde(serialize_with = "json::ms_opt")]
    before_time: Option<i64>,
    #[serde(serialize_with = "json::ms_as_ns")]
    before_time_ns: Option<i64>,
    #[serde(serialize_with = "json::ms")]
    started_at: i64,
    #[serde(serialize_with = "json::ms_opt")]
    finished_at: Option<i64>,
    events: u64,
}

impl From<&Prune> for Pruned {
    fn from(p: &Prune) -> Self {
        Pruned {
            before_index: p.before_index,
            before_time: p.before_time,
            before_time_ns: p.before_time,
            started_at: p.started_at,
            finished_at: p.finished_at,
            events: p.events,
        }
    }
}
