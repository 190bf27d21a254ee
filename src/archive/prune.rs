//! Retention: a prune of a cluster's history before a cut, as the archive
//! records it (migration 0017), and the cut a prune is asked for.

use serde::Serialize;

use super::{Gap, GapKind};

/// Where a prune cuts a cluster's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Events with a raft index below this one are pruned.
    Index(u64),
    /// Events up to the moment at this time by Nomad's clock (Unix ms) are
    /// pruned: the moment `query snapshot --at TIME` shows.
    Time(i64),
}

/// A recorded prune: the cluster's history before `before_index` is gone,
/// except the latest event of each object present at the cut, which
/// snapshots after it read (and nothing else shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prune {
    /// The first raft index kept.
    pub before_index: u64,
    /// The cut by Nomad's clock (Unix ms), when known.
    pub before_time: Option<i64>,
    /// When the prune started (Unix ms).
    pub started_at: i64,
    /// When it finished; `None` while it runs, or if it stopped half way
    /// (the next prune finishes the work).
    pub finished_at: Option<i64>,
    /// Events deleted.
    pub events: u64,
}

impl Prune {
    /// The pruned stretch as the gap every answer reaching before the cut
    /// names: no events between index 0 and the first index kept.
    pub fn gap(&self) -> Gap {
        Gap {
            from_index: 0,
            to_index: self.before_index,
            kind: GapKind::Pruned,
            reason: self.sentence(),
            detected_at: self.started_at,
        }
    }

    /// `history before 2026-12-04T16:41:30Z (index 1234) was pruned`.
    pub fn sentence(&self) -> String {
        let when = self
            .before_time
            .and_then(|t| jiff::Timestamp::from_millisecond(t).ok())
            .map(|t| format!("{} ", t.strftime("%Y-%m-%dT%H:%M:%SZ")))
            .unwrap_or_default();
        format!(
            "history before {when}(index {}) was pruned",
            self.before_index
        )
    }
}

/// What one prune did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// The cut now in force.
    pub prune: Prune,
    /// Events kept before the cut because the snapshot at the cut lists
    /// their objects.
    pub kept: u64,
    /// Whether the archive gives the freed space back to the file system as
    /// it goes (SQLite: `auto_vacuum = INCREMENTAL`; PostgreSQL reuses it
    /// after vacuum); `false` tells the user to run `VACUUM`.
    pub space_returned: bool,
    /// The archive's size before and after, in bytes.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prune_reads_as_a_gap_from_the_start_to_the_first_index_kept() {
        let prune = Prune {
            before_index: 1234,
            before_time: Some(1_796_402_490_000),
            started_at: 5,
            finished_at: None,
            events: 0,
        };
        let gap = prune.gap();
        assert_eq!((gap.from_index, gap.to_index), (0, 1234));
        assert_eq!(
            gap.reason,
            "history before 2026-12-04T16:41:30Z (index 1234) was pruned"
        );
        let untimed = Prune {
            before_time: None,
            ..prune
        };
        assert_eq!(untimed.sentence(), "history before (index 1234) was pruned");
    }
}
