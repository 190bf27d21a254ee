//! A cluster as the archive knows it.

use crate::nomad::ClusterIdentity;

/// A cluster's identity in the archive and where ingest resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    /// The highest index whose frame is fully stored; `None` for an empty archive.
    pub checkpoint: Option<u64>,
    /// The Nomad cluster the history came from, as last recorded; `None`
    /// until ingest could read it (imports never record one).
    pub identity: Option<ClusterIdentity>,
    /// The agent's address `ingest` last followed (credentials masked);
    /// `None` for history only ever imported.
    pub address: Option<String>,
}
