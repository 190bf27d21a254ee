//! An event as read back from the archive.

use super::TimeSource;

/// An event read back from the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedEvent {
    pub index: u64,
    pub position: u32,
    pub topic: String,
    pub key: String,
    pub namespace: String,
    pub received_at: i64,
    /// When it happened (Unix ms): Nomad's clock, or the receipt time when
    /// its frame carried none ([`TimeSource`]).
    pub time: i64,
    pub time_source: TimeSource,
    /// The event's JSON exactly as received.
    pub raw: String,
}
