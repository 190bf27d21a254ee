//! What has been published: the bounded event buffer subscribers read, the
//! full history tests compare an archive with, and the raft index reached;
//! every publish wakes the subscribers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::buffer::{Buffer, Cursor, Entry, Fetch};
use super::frame::SimFrame;
use super::sync::lock;

/// The published frames and the signal that announces new ones.
pub(crate) struct Published {
    /// How many raft entries the buffer keeps (Nomad's `event_buffer_size`).
    capacity: usize,
    /// The buffer, the history and the last index, changed together.
    state: Mutex<State>,
    /// Bumped on every publish so waiting streams wake up.
    updates: watch::Sender<u64>,
}

/// What one lock covers.
struct State {
    /// The last `capacity` entries, what subscribers read from.
    buffer: Buffer,
    /// Every entry ever published (when `record_history` is on).
    history: Vec<Arc<Entry>>,
    /// Whether `history` grows; a long-running demo turns it off.
    record_history: bool,
    /// The newest raft index taken, to reject out-of-order publishes.
    last_index: Option<u64>,
}

impl Published {
    /// Nothing published yet; the buffer keeps `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Published {
        Published {
            capacity,
            state: Mutex::new(State {
                buffer: Buffer::new(capacity),
                history: Vec::new(),
                record_history: true,
                last_index: None,
            }),
            updates: watch::Sender::new(0),
        }
    }

    /// The buffer's configured capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends a frame to the buffer and the history and wakes subscribers;
    /// `take_in` sees the entry first, in publish order. A frame without
    /// events is ignored, as Nomad never buffers one; one whose index is not
    /// above the last is a caller bug (a debug assertion, otherwise ignored).
    pub(crate) fn publish(&self, frame: SimFrame, take_in: impl FnOnce(&Arc<Entry>)) {
        if frame.events.is_empty() {
            return;
        }
        let index = frame.index;
        let entry = Arc::new(Entry::new(frame));
        {
            let mut state = lock(&self.state);
            if state.last_index.is_some_and(|last| index <= last) {
                debug_assert!(false, "published index {index} is not above the last one");
                return;
            }
            state.last_index = Some(index);
            // After a restart, frames the history already holds come again.
            let new = state.history.last().is_none_or(|last| last.index < index);
            take_in(&entry);
            if state.record_history && new {
                state.history.push(entry.clone());
            }
            state.buffer.push(entry);
        }
        self.updates.send_modify(|n| *n += 1);
    }

    /// Every frame in the history, in order.
    pub(crate) fn history(&self) -> Vec<SimFrame> {
        let state = lock(&self.state);
        state.history.iter().map(|e| e.to_frame()).collect()
    }

    /// Turns the history off or back on.
    pub(crate) fn set_record_history(&self, on: bool) {
        lock(&self.state).record_history = on;
    }

    /// Takes the next raft index above both the last published one and
    /// `floor`, for a change that produces no event.
    pub(crate) fn take_index_above(&self, floor: u64) -> u64 {
        let mut state = lock(&self.state);
        let index = state.last_index.unwrap_or(0).max(floor) + 1;
        state.last_index = Some(index);
        index
    }

    /// A new leader: the buffer starts empty and the next publishes may
    /// start below the last index; the history stays.
    pub(crate) fn restart(&self) {
        let mut state = lock(&self.state);
        state.buffer = Buffer::new(self.capacity);
        state.last_index = None;
    }

    /// Another cluster: as [`Published::restart`], and the history starts over.
    pub(crate) fn start_over(&self) {
        let mut state = lock(&self.state);
        state.buffer = Buffer::new(self.capacity);
        state.last_index = None;
        state.history.clear();
    }

    /// Moves up to `max` buffered entries after `cursor` into `out`.
    pub(crate) fn fetch(
        &self,
        cursor: &mut Cursor,
        max: usize,
        out: &mut VecDeque<Arc<Entry>>,
    ) -> Fetch {
        lock(&self.state).buffer.fetch(cursor, max, out)
    }

    /// Tells a subscriber when something is published.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(index: u64) -> SimFrame {
        SimFrame::job_registered(index)
    }

    fn buffered(published: &Published) -> Vec<u64> {
        let mut out = VecDeque::new();
        published.fetch(&mut Cursor::Start(0), 100, &mut out);
        out.iter().map(|e| e.index).collect()
    }

    fn indexes(frames: &[SimFrame]) -> Vec<u64> {
        frames.iter().map(|f| f.index).collect()
    }

    #[test]
    fn an_index_without_an_event_is_taken_above_the_last_publish_and_the_floor() {
        let published = Published::new(10);
        assert_eq!(published.take_index_above(0), 1);
        published.publish(frame(20), |_| {});
        assert_eq!(published.take_index_above(5), 21);
        assert_eq!(published.take_index_above(40), 41);
        published.publish(frame(42), |_| {});
        assert_eq!(indexes(&published.history()), [20, 42]);
    }

    #[test]
    fn a_restart_empties_the_buffer_and_a_republished_frame_is_kept_once() {
        let published = Published::new(10);
        let mut seen = Vec::new();
        for i in [10, 12] {
            published.publish(frame(i), |e| seen.push(e.index));
        }
        published.restart();
        assert!(buffered(&published).is_empty());
        for i in [11, 12, 14] {
            published.publish(frame(i), |e| seen.push(e.index));
        }
        assert_eq!(buffered(&published), [11, 12, 14]);
        assert_eq!(indexes(&published.history()), [10, 12, 14]);
        assert_eq!(seen, [10, 12, 11, 12, 14], "every publish is taken in");
        published.start_over();
        published.publish(frame(1), |_| {});
        assert_eq!(indexes(&published.history()), [1]);
    }

    #[test]
    fn a_frame_without_events_and_frames_off_the_record_stay_out_of_the_history() {
        let published = Published::new(10);
        published.publish(
            SimFrame {
                index: 5,
                events: vec![],
            },
            |_| panic!("an empty frame is not taken in"),
        );
        published.set_record_history(false);
        published.publish(frame(6), |_| {});
        published.set_record_history(true);
        published.publish(frame(7), |_| {});
        assert_eq!(indexes(&published.history()), [7]);
        assert_eq!(buffered(&published), [6, 7]);
    }
}
