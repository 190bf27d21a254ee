//! What the reader hands to the writer: a frame, a gap, a skipped line, or
//! the identity of the cluster the next frames come from.

use crate::archive::{Gap, ReceivedFrame};
use crate::nomad::ClusterIdentity;

/// What the reader hands to the writer.
#[derive(Debug)]
pub enum Msg {
    Frame(ReceivedFrame),
    Gap(Gap),
    /// A line was skipped as malformed.
    Malformed,
    /// The identity of the cluster the next frames come from, to record
    /// with the checkpoint.
    Identity(ClusterIdentity),
}

impl Msg {
    /// Bytes of events the message carries: what counts against the byte
    /// budgets of a batch and of the channel.
    pub fn bytes(&self) -> usize {
        match self {
            Msg::Frame(frame) => frame.frame.events.iter().map(|e| e.raw.len()).sum(),
            Msg::Gap(_) | Msg::Malformed | Msg::Identity(_) => 0,
        }
    }
}

#[cfg(test)]
impl Msg {
    /// A frame of `events` events of `bytes_each` bytes each.
    pub(crate) fn test_frame(index: u64, events: usize, bytes_each: usize) -> Msg {
        let event = crate::nomad::Event {
            raw: "x".repeat(bytes_each).into(),
            ..crate::nomad::Event::default()
        };
        Msg::Frame(ReceivedFrame {
            frame: crate::nomad::Frame {
                index,
                events: vec![event; events],
            },
            received_at: crate::archive::now_millis(),
            preceding: None,
        })
    }
}
