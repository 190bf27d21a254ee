//! A frame as the archive receives it: the wire frame and its receipt time.

use crate::nomad::Frame;

/// A frame as the archive stores it: the events of one raft entry and when
/// they were received (the stream itself carries no wall-clock time).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedFrame {
    pub frame: Frame,
    /// Unix time in milliseconds.
    pub received_at: i64,
    /// Read from a capture, whose receipt time says nothing of when its
    /// events happened: the newest time Nomad gave the frames before it
    /// there, which dates the frame if it carries no time of its own.
    /// `None` on the live stream (the receipt time dates it).
    pub preceding: Option<i64>,
}

/// The current time as Unix milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
