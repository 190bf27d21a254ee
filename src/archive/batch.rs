//! A batch: what one transaction stores, and what storing it changed.

use crate::nomad::ClusterIdentity;

use super::{Gap, ReceivedFrame, ReconcileScope};

/// One transaction's worth of work: whole frames, the gaps found while
/// receiving them, the count of malformed lines skipped, and the identity
/// of the cluster the frames came from when it was read.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub frames: Vec<ReceivedFrame>,
    pub gaps: Vec<Gap>,
    pub malformed_lines: u64,
    /// Recorded with the checkpoint, replacing the cluster's identity.
    pub identity: Option<ClusterIdentity>,
    /// With a scope, each gap of a kind worth reconciling is committed with
    /// a pending reconstruction per topic of the scope.
    pub reconcile: Option<ReconcileScope>,
}

impl Batch {
    pub fn event_count(&self) -> usize {
        self.frames.iter().map(|f| f.frame.events.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
            && self.gaps.is_empty()
            && self.malformed_lines == 0
            && self.identity.is_none()
    }

    /// The highest index in the batch, which becomes the checkpoint.
    pub fn max_index(&self) -> Option<u64> {
        self.frames.iter().map(|f| f.frame.index).max()
    }
}

/// What a commit changed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CommitStats {
    /// Events newly stored.
    pub inserted: u64,
    /// Events already in the archive (a resend), skipped.
    pub duplicates: u64,
}
