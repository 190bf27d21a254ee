//! A batch's events as the backends write them: one row each, with the
//! raft index in the databases' integer type.

use crate::archive::{Batch, EventTime, frame_times};
use crate::nomad::Event;

/// One event as a row of the `events` table.
pub struct EventRow<'a> {
    pub index: i64,
    pub position: i32,
    pub received_at: i64,
    /// When it happened: Nomad's clock, or the receipt time.
    pub time: EventTime,
    pub event: &'a Event,
}

impl EventRow<'_> {
    /// The `presence` column.
    pub fn presence(&self) -> Option<i16> {
        self.event.presence.map(|p| p.code())
    }
}

/// Every event of `batch` with what its row needs from its frame.
pub fn event_rows(batch: &Batch) -> impl Iterator<Item = EventRow<'_>> {
    batch.frames.iter().flat_map(|f| {
        f.frame.events.iter().zip(frame_times(f)).enumerate().map(
            move |(position, (event, time))| EventRow {
                index: to_i64(f.frame.index),
                position: i32::try_from(position).unwrap_or(i32::MAX),
                received_at: f.received_at,
                time,
                event,
            },
        )
    })
}

/// Raft indexes as the databases store them (BIGINT). Indexes never come
/// near 2^63; the conversion saturates rather than wraps.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}
