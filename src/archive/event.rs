//! An event as read back from the archive.

/// An event read back from the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedEvent {
    pub index: u64,
    pub position: u32,
    pub topic: String,
    pub key: String,
    pub namespace: String,
    pub received_at: i64,
    /// The event's JSON exactly as received.
    pub raw: String,
}
