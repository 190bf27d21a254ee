//! Reconstructions in the archive's words: after a gap, what Nomad's list
//! endpoints said the cluster held, stored apart from the events (tables
//! `reconstructions` and `reconstructed_objects`, migration 0005) so that
//! nothing that reads events can take them for events.
//!
//! The life of one: the transaction that records a gap also records one
//! `pending` reconstruction per topic the archive follows
//! ([`ReconcileScope`]); the ingest process reads the list and stores it
//! ([`StoredPart`]) or says why it could not ([`ClosedPart`]). Queries read
//! the newest stored one at or before a point ([`Reconstruction`]) and its
//! objects ([`ReconstructedObject`]).

use serde::Serialize;

use super::{Gap, GapKind};

/// The topics a reconstruction can cover, in the order they are read.
pub const TOPICS: [&str; 5] = ["Job", "Allocation", "Evaluation", "Deployment", "Node"];

/// What to reconstruct after a gap: the topics and the namespace the archive
/// follows, so a reconstruction covers what the stream would have carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileScope {
    /// A subset of [`TOPICS`].
    pub topics: Vec<String>,
    /// `*` for every namespace, as the subscription says.
    pub namespace: String,
}

impl GapKind {
    /// Whether the cluster's state after a gap of this kind is worth reading
    /// from Nomad's lists: a buffer overrun or a server whose history differs
    /// can hide any number of changes. A malformed line hides one frame;
    /// reading every list for each one could turn a flood of bad lines into a
    /// flood of list calls.
    pub fn is_reconciled(self) -> bool {
        matches!(
            self,
            GapKind::Buffer | GapKind::ServerBehind | GapKind::Skipped
        )
    }
}

/// Where a reconstruction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    /// Requested with its gap; the list has not been read yet.
    Pending,
    /// The list was read and its objects stored.
    Stored,
    /// Nomad refused the list (the token lacks the capability).
    Refused,
    /// Reading the list failed (network, server error, unreadable answer).
    Failed,
    /// A later gap's reconstruction of the same topic was read instead.
    Superseded,
}

impl PartStatus {
    pub fn parse(value: &str) -> Option<Self> {
        [
            PartStatus::Pending,
            PartStatus::Stored,
            PartStatus::Refused,
            PartStatus::Failed,
            PartStatus::Superseded,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PartStatus::Pending => "pending",
            PartStatus::Stored => "stored",
            PartStatus::Refused => "refused",
            PartStatus::Failed => "failed",
            PartStatus::Superseded => "superseded",
        }
    }
}

/// A reconstruction waiting for its list to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingPart {
    pub id: i64,
    pub topic: String,
    pub namespace: String,
    /// The gap it follows.
    pub gap: Gap,
}

/// One listed object, ready to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectRow {
    /// `''` for nodes.
    pub namespace: String,
    /// The object's ID.
    pub key: String,
    pub job_id: Option<String>,
    pub node_id: Option<String>,
    pub eval_id: Option<String>,
    pub deployment_id: Option<String>,
    pub modify_index: Option<u64>,
    /// What Nomad returned: `AllocationListStub`, `Job`, …
    pub shape: &'static str,
    /// The object's JSON exactly as listed.
    pub raw: String,
}

/// A list that was read, to store in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPart {
    /// The pending reconstruction it completes.
    pub id: i64,
    /// The list's `X-Nomad-Index`.
    pub index: u64,
    /// Unix milliseconds when the list was read.
    pub recorded_at: i64,
    pub objects: Vec<ObjectRow>,
}

/// One reconstruction as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartSummary {
    /// The gap it follows.
    pub gap_from_index: u64,
    pub gap_to_index: u64,
    pub topic: String,
    pub status: PartStatus,
    /// The list's `X-Nomad-Index`, once stored.
    pub index: Option<u64>,
    pub objects: u64,
    /// Why it was refused, failed or superseded.
    pub detail: Option<String>,
}

/// A pending reconstruction that ends without objects.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedPart {
    pub id: i64,
    /// `Refused`, `Failed` or `Superseded`.
    pub status: PartStatus,
    /// Why, in words.
    pub detail: String,
}

/// A stored reconstruction of one topic, as queries use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reconstruction {
    #[serde(skip)]
    pub id: i64,
    /// The list's `X-Nomad-Index`: the objects are as of this index.
    pub index: u64,
    #[serde(skip)]
    pub topic: String,
    /// The namespace listed (`*` for all).
    pub namespace: String,
    /// The list endpoint it was read from.
    pub endpoint: String,
    /// Unix milliseconds when the list was read.
    #[serde(skip)]
    pub recorded_at: i64,
    /// The gap it follows.
    pub gap: Gap,
}

impl Reconstruction {
    /// Whether this reconstruction speaks for objects of `namespace`: an
    /// object of a namespace it did not list is neither confirmed nor gone.
    pub fn covers(&self, namespace: &str) -> bool {
        self.namespace == "*" || self.namespace == namespace || namespace.is_empty()
    }
}

/// One object of a stored reconstruction.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconstructedObject {
    pub namespace: String,
    pub key: String,
    pub modify_index: Option<u64>,
    pub shape: String,
    /// The object's JSON exactly as listed.
    pub raw: String,
}

/// The list endpoint that reconstructs `topic`.
pub fn endpoint(topic: &str) -> &'static str {
    match topic {
        "Job" => "/v1/jobs",
        "Allocation" => "/v1/allocations",
        "Evaluation" => "/v1/evaluations",
        "Deployment" => "/v1/deployments",
        _ => "/v1/nodes",
    }
}
