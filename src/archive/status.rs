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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::GapKind;

    #[test]
    fn a_prune_leads_the_gaps_and_starts_the_history_shown() {
        let status = ClusterStatus {
            cluster: "prod".into(),
            address: None,
            events: 10,
            first_index: Some(5),
            last_index: Some(900),
            checkpoint: Some(900),
            identity: None,
            topics: Vec::new(),
            gaps: vec![Gap::buffer_overrun(300, 310)],
            malformed_lines: 0,
            first_event_at: None,
            last_event_at: None,
            first_received_at: None,
            last_received_at: None,
            reconstructions: Vec::new(),
            pruned: None,
        };
        let prune = Prune {
            before_index: 200,
            before_time: None,
            started_at: 1,
            finished_at: Some(2),
            events: 150,
        };
        let pruned = status.clone().with_prune(Some(prune.clone()));
        assert_eq!(pruned.first_index, Some(200));
        assert_eq!(pruned.gaps[0].kind, GapKind::Pruned);
        assert_eq!(pruned.gaps.len(), 2);
        assert_eq!(pruned.pruned, Some(prune));
        assert_eq!(status.clone().with_prune(None), status);
    }
}
