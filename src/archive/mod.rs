//! The archive's domain model: what ingest hands the store and what the
//! store hands back, in the archive's own words and free of SQL. A
//! [`ReceivedFrame`] is a raft entry's events with their receipt time; a
//! [`Batch`] is what one transaction stores (whole frames, the [`Gap`]s
//! found while receiving them, the cluster's identity); a [`Cluster`] is a
//! history and its checkpoint; an [`ArchivedEvent`] is an event read back,
//! chosen by a [`PageQuery`]; a [`StatusReport`] summarises it all; a
//! [`Reconstruction`] is what Nomad's lists said after a gap; a [`Prune`]
//! is history given up to retention.

mod batch;
mod cluster;
mod event;
mod frame;
mod gap;
mod page;
mod prune;
pub mod reconstruction;
mod status;
mod time;

pub use batch::{Batch, CommitStats};
pub use cluster::Cluster;
pub use event::ArchivedEvent;
pub use frame::{ReceivedFrame, now_millis};
pub use gap::{Gap, GapKind};
pub use page::{PageQuery, RefColumn};
pub use prune::{Cut, Prune, PruneReport};
pub use reconstruction::{
    ClosedPart, ObjectRow, PartStatus, PartSummary, PendingPart, ReconcileScope,
    ReconstructedObject, Reconstruction, StoredPart,
};
pub use status::{ClusterStatus, StatusReport, TopicCount};
pub use time::{EventTime, TimeSource, frame_times, newest_time};
