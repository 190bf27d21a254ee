//! Gaps: stretches of a cluster's history the archive cannot vouch for.

use serde::Serialize;

/// What kind of hole in the history a gap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// The resume point had left Nomad's event buffer: events between the two
    /// indexes may be lost for good.
    Buffer,
    /// A line of the stream could not be parsed; the events it held are missing.
    Malformed,
    /// The server's history was behind the archive (a restore, a restarted dev
    /// agent, or another cluster at the same address).
    ServerBehind,
    /// Ingest was told to start past the checkpoint
    /// (`--from-index … --override-checkpoint`): the events between were
    /// never read.
    Skipped,
    /// History before the second index was pruned (retention): never a row
    /// of `gaps`, read from `prunes` ([`super::Prune::gap`]).
    Pruned,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Buffer => "buffer",
            GapKind::Malformed => "malformed",
            GapKind::ServerBehind => "server_behind",
            GapKind::Skipped => "skipped",
            GapKind::Pruned => "pruned",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            GapKind::Buffer,
            GapKind::Malformed,
            GapKind::ServerBehind,
            GapKind::Skipped,
            GapKind::Pruned,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }
}

/// A stretch of history the archive cannot vouch for: events with
/// `from_index < Index < to_index` may be missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    pub from_index: u64,
    pub to_index: u64,
    pub kind: GapKind,
    /// Why, in words, for `status` and the query commands.
    pub reason: String,
    /// Unix time in milliseconds.
    pub detected_at: i64,
}

#[cfg(test)]
impl Gap {
    /// A buffer overrun between two indexes, as unit tests build answers from.
    pub(crate) fn buffer_overrun(from_index: u64, to_index: u64) -> Gap {
        Gap {
            from_index,
            to_index,
            kind: GapKind::Buffer,
            reason: "event dropped from buffer".to_owned(),
            detected_at: 0,
        }
    }
}
