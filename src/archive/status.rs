//! The archive's summary, as `status` reports it.

use serde::Serialize;

use crate::nomad::ClusterIdentity;

use super::{Gap, PartSummary, Prune};

/// One cluster's summary, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub address: Option<String>,
    pub events: u64,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub checkpoint: Option<u64>,
    /// The Nomad cluster the history came from, as last recorded.
    pub identity: Option<ClusterIdentity>,
    pub topics: Vec<TopicCount>,
    pub gaps: Vec<Gap>,
    pub malformed_lines: u64,
    /// The earliest and latest time of its events by Nomad's clock, Unix ms
    /// (events dated by their receipt left out: an import's receipt is
    /// today, whenever its history happened).
    pub first_event_at: Option<i64>,
    pub last_event_at: Option<i64>,
    /// When the first and last event (in stream order) were received, Unix ms.
    pub first_received_at: Option<i64>,
    pub last_received_at: Option<i64>,
    /// What was reconstructed after each gap (filled in by `status`).
    pub reconstructions: Vec<PartSummary>,
    /// The cut in force: history before it was pruned (retention).
    pub pruned: Option<Prune>,
}

impl ClusterStatus {
    /// Adds the cluster's newest prune: its stretch leads the gaps, and the
    /// history shown starts at the first index kept (the events kept before
    /// it, for snapshots, are counted but not shown as history).
    pub fn with_prune(mut self, prune: Option<Prune>) -> Self {
        if let Some(prune) = &prune {
            self.gaps.insert(0, prune.gap());
            self.first_index = self.first_index.map(|i| i.max(prune.before_index));
        }
        self.pruned = prune;
        self
    }
}

/// Events per topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicCount {
    pub topic: String,
    pub events: u64,
}

/// The whole archive's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub database: String,
    pub backend: &'static str,
    pub database_bytes: u64,
    pub clusters: Vec<ClusterStatus>,
}
