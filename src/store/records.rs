//! Rows as both backends read them back, mapped by column name
//! (`#[derive(sqlx::FromRow)]`: a missing column or a value of another type
//! is an error, never a panic), and their conversion into the archive's
//! types. The SQL selects these names, with aliases where a column is
//! computed.

use super::to_u64;
use crate::archive::reconstruction::endpoint;
use crate::archive::{
    ArchivedEvent, Cluster, ClusterStatus, Gap, GapKind, PartStatus, PartSummary, PendingPart,
    ReconstructedObject, Reconstruction, TimeSource, TopicCount,
};
use crate::nomad::ClusterIdentity;

/// An event as [`super::filter`]'s selects read it: its stored value as it
/// is, decoded by [`super::dictionaries::Dictionaries::decode`].
#[derive(Debug, sqlx::FromRow)]
pub struct EventRecord {
    pub raft_index: i64,
    pub position: i32,
    pub topic: String,
    pub key: String,
    pub namespace: String,
    received_at: i64,
    /// Nomad's time, or the receipt time for a row not dated yet.
    event_at: i64,
    time_source: Option<String>,
    /// The event's JSON (`dictionary_id` NULL), its zstd frame, or nothing
    /// (`block_id` set).
    pub event: Vec<u8>,
    /// The dictionary the frame was compressed with; NULL for plain JSON.
    pub dictionary_id: Option<i64>,
    /// The block the event was packed into (migration 0032; `event` is
    /// then empty), if any.
    pub block_id: Option<i64>,
}

impl EventRecord {
    /// The archived event, with `raw` its decoded JSON.
    pub fn into_event(self, raw: String) -> ArchivedEvent {
        ArchivedEvent {
            index: to_u64(self.raft_index),
            position: u32::try_from(self.position).unwrap_or_default(),
            topic: self.topic,
            key: self.key,
            namespace: self.namespace,
            received_at: self.received_at,
            time: self.event_at,
            time_source: TimeSource::parse(self.time_source.as_deref()),
            raw,
        }
    }
}

/// A `clusters` row: `id, name, checkpoint, identity, address`.
#[derive(Debug, sqlx::FromRow)]
pub struct ClusterRecord {
    id: i64,
    name: String,
    checkpoint: Option<i64>,
    identity: Option<String>,
    address: Option<String>,
}

impl From<ClusterRecord> for Cluster {
    fn from(r: ClusterRecord) -> Self {
        Cluster {
            id: r.id,
            name: r.name,
            checkpoint: r.checkpoint.map(to_u64),
            identity: r.identity.as_deref().and_then(ClusterIdentity::from_json),
            address: r.address,
        }
    }
}

/// A `gaps` row: `from_index, to_index, kind, reason, detected_at`.
#[derive(Debug, sqlx::FromRow)]
pub struct GapRecord {
    from_index: i64,
    to_index: i64,
    kind: String,
    reason: String,
    detected_at: i64,
}

impl From<GapRecord> for Gap {
    fn from(r: GapRecord) -> Self {
        Gap {
            from_index: to_u64(r.from_index),
            to_index: to_u64(r.to_index),
            kind: GapKind::parse(&r.kind).unwrap_or(GapKind::Buffer),
            reason: r.reason,
            detected_at: r.detected_at,
        }
    }
}

/// Events of one topic: `topic, events`.
#[derive(Debug, sqlx::FromRow)]
pub struct TopicRecord {
    topic: String,
    events: i64,
}

impl From<TopicRecord> for TopicCount {
    fn from(r: TopicRecord) -> Self {
        TopicCount {
            topic: r.topic,
            events: to_u64(r.events),
        }
    }
}

/// The lowest and highest raft index of some events: `first, last`.
#[derive(Debug, sqlx::FromRow)]
pub struct SpanRecord {
    first: Option<i64>,
    last: Option<i64>,
}

impl SpanRecord {
    /// Whether the window `[since, until)` (either end open) holds every
    /// value from `first` to `last`: read as the earliest and latest time
    /// of a cluster's dated events, the events dated in the window are
    /// then all of them.
    pub fn within(&self, since: Option<i64>, until: Option<i64>) -> bool {
        match (self.first, self.last) {
            (Some(first), Some(last)) => {
                since.is_none_or(|s| s <= first) && until.is_none_or(|u| u > last)
            }
            _ => false,
        }
    }

    /// Both ends, unless there were no events.
    pub fn range(self) -> Option<(u64, u64)> {
        self.first
            .zip(self.last)
            .map(|(a, b)| (to_u64(a), to_u64(b)))
    }
}

/// A cluster as status reports it: `id, name, address, checkpoint,
/// malformed_lines, identity`.
#[derive(Debug, sqlx::FromRow)]
pub struct StatusClusterRecord {
    pub id: i64,
    name: String,
    address: Option<String>,
    checkpoint: Option<i64>,
    malformed_lines: i64,
    identity: Option<String>,
}

/// The extent of a cluster's events: `first_index, last_index,
/// first_event_at, last_event_at, first_received_at, last_received_at`.
#[derive(Debug, sqlx::FromRow)]
pub struct TotalsRecord {
    first_index: Option<i64>,
    last_index: Option<i64>,
    first_event_at: Option<i64>,
    last_event_at: Option<i64>,
    first_received_at: Option<i64>,
    last_received_at: Option<i64>,
}

/// A cluster and the extent of its events in one row.
#[derive(Debug, sqlx::FromRow)]
pub struct StatusRecord {
    #[sqlx(flatten)]
    pub cluster: StatusClusterRecord,
    #[sqlx(flatten)]
    pub totals: TotalsRecord,
}

/// One cluster's status from its row, the extent of its events, its
/// topics and its gaps.
pub fn cluster_status(
    cluster: StatusClusterRecord,
    totals: TotalsRecord,
    topics: Vec<TopicCount>,
    gaps: Vec<Gap>,
) -> ClusterStatus {
    ClusterStatus {
        cluster: cluster.name,
        address: cluster.address,
        events: topics.iter().map(|t| t.events).sum(),
        first_index: totals.first_index.map(to_u64),
        last_index: totals.last_index.map(to_u64),
        checkpoint: cluster.checkpoint.map(to_u64),
        identity: cluster
            .identity
            .as_deref()
            .and_then(ClusterIdentity::from_json),
        topics,
        gaps,
        malformed_lines: to_u64(cluster.malformed_lines),
        first_event_at: totals.first_event_at,
        last_event_at: totals.last_event_at,
        first_received_at: totals.first_received_at,
        last_received_at: totals.last_received_at,
        reconstructions: Vec::new(),
        pruned: None,
    }
}

/// A pending reconstruction with its gap: `id, topic, namespace` and the
/// gap's columns.
#[derive(Debug, sqlx::FromRow)]
pub struct PendingRecord {
    id: i64,
    topic: String,
    namespace: String,
    #[sqlx(flatten)]
    gap: GapRecord,
}

impl From<PendingRecord> for PendingPart {
    fn from(r: PendingRecord) -> Self {
        PendingPart {
            id: r.id,
            topic: r.topic,
            namespace: r.namespace,
            gap: r.gap.into(),
        }
    }
}

/// A stored reconstruction with its gap: `id, raft_index, topic,
/// namespace, recorded_at` and the gap's columns.
#[derive(Debug, sqlx::FromRow)]
pub struct ReconstructionRecord {
    id: i64,
    raft_index: i64,
    topic: String,
    namespace: String,
    recorded_at: Option<i64>,
    #[sqlx(flatten)]
    gap: GapRecord,
}

impl From<ReconstructionRecord> for Reconstruction {
    fn from(r: ReconstructionRecord) -> Self {
        Reconstruction {
            id: r.id,
            index: to_u64(r.raft_index),
            endpoint: endpoint(&r.topic).to_owned(),
            topic: r.topic,
            namespace: r.namespace,
            recorded_at: r.recorded_at.unwrap_or_default(),
            gap: r.gap.into(),
        }
    }
}

/// A reconstructed object: `namespace, key, modify_index, shape, object`
/// (its JSON as text).
#[derive(Debug, sqlx::FromRow)]
pub struct ObjectRecord {
    namespace: String,
    key: String,
    modify_index: Option<i64>,
    shape: String,
    object: String,
}

impl From<ObjectRecord> for ReconstructedObject {
    fn from(r: ObjectRecord) -> Self {
        ReconstructedObject {
            namespace: r.namespace,
            key: r.key,
            modify_index: r.modify_index.map(to_u64),
            shape: r.shape,
            raw: r.object,
        }
    }
}

/// A reconstruction by gap: `from_index, to_index, topic, status,
/// raft_index, objects, detail`.
#[derive(Debug, sqlx::FromRow)]
pub struct SummaryRecord {
    from_index: i64,
    to_index: i64,
    topic: String,
    status: String,
    raft_index: Option<i64>,
    objects: i64,
    detail: Option<String>,
}

impl From<SummaryRecord> for PartSummary {
    fn from(r: SummaryRecord) -> Self {
        PartSummary {
            gap_from_index: to_u64(r.from_index),
            gap_to_index: to_u64(r.to_index),
            topic: r.topic,
            status: PartStatus::parse(&r.status).unwrap_or(PartStatus::Failed),
            index: r.raft_index.map(to_u64),
            objects: to_u64(r.objects),
            detail: r.detail,
        }
    }
}

/// A `prunes` row: `before_index, before_time, started_at, finished_at, events`.
#[derive(Debug, sqlx::FromRow)]
pub struct PruneRecord {
    before_index: i64,
    before_time: Option<i64>,
    started_at: i64,
    finished_at: Option<i64>,
    events: i64,
}

impl From<PruneRecord> for crate::archive::Prune {
    fn from(r: PruneRecord) -> Self {
        crate::archive::Prune {
            before_index: to_u64(r.before_index),
            before_time: r.before_time,
            started_at: r.started_at,
            finished_at: r.finished_at,
            events: to_u64(r.events),
        }
    }
}
