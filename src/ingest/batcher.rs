//! The batching policy, apart from any I/O: what goes into the batch being
//! filled and when it is due. A batch is due once it holds `max_events`
//! events, once the next frame would take it past `max_bytes` (that frame
//! starts the next batch), or when the interval started by its first message
//! is over; at the end of the stream, whatever it holds. A frame is never
//! split: one larger than `max_bytes` makes a batch on its own.

use tokio::time::Instant;

use super::channel::Reserved;
use super::msg::Msg;
use crate::archive::{Batch, Gap, ReceivedFrame, ReconcileScope};
use crate::config::BatchConfig;
use crate::nomad::ClusterIdentity;

/// Groups the writer's messages into batches.
#[derive(Debug)]
pub struct Batcher {
    config: BatchConfig,
    /// Copied into every batch (see [`Batch::reconcile`]).
    reconcile: Option<ReconcileScope>,
    filling: Filling,
    /// What came since the batch's last frame: it goes with the next frame,
    /// into whichever batch that frame goes, so a frame that starts the next
    /// batch takes its gap and identity along. A batch ended by its interval
    /// or by the end of the stream takes it as it is.
    tail: Tail,
    /// A frame that did not fit, with the tail before it: the start of the
    /// next batch. While there is one, the batch is due.
    spill: Option<Spill>,
}

/// Gaps, skipped lines and an identity received since the last frame.
#[derive(Debug, Default)]
struct Tail {
    gaps: Vec<Gap>,
    malformed_lines: u64,
    identity: Option<ClusterIdentity>,
    /// When its first message arrived.
    since: Option<Instant>,
}

/// A batch being filled, and what it holds of the channel's budget.
#[derive(Debug, Default)]
struct Filling {
    batch: Batch,
    /// [`Batch::event_count`], kept as frames are added.
    events: usize,
    bytes: usize,
    /// The batch interval after its first message.
    deadline: Option<Instant>,
    reserved: Reserved,
}

#[derive(Debug)]
struct Spill {
    tail: Tail,
    frame: ReceivedFrame,
    bytes: usize,
    reserved: Reserved,
    /// When the next batch started: its tail's first message, or the frame.
    since: Instant,
}

/// A batch ready to commit, with the bytes of the channel's budget its
/// frames hold until it is dropped.
#[derive(Debug)]
pub struct Sealed {
    pub batch: Batch,
    /// Bytes of events in the batch.
    pub bytes: usize,
    /// Given back to the reader when the batch is dropped (committed).
    pub reserved: Reserved,
}

impl Batcher {
    pub fn new(config: BatchConfig, reconcile: Option<ReconcileScope>) -> Self {
        Batcher {
            config,
            reconcile: reconcile.clone(),
            filling: Filling::new(reconcile),
            tail: Tail::default(),
            spill: None,
        }
    }

    /// Adds a message received now. Call only while the batch is not full.
    pub fn push(&mut self, msg: Msg, reserved: Reserved) {
        let now = Instant::now();
        self.filling
            .deadline
            .get_or_insert(now + self.config.timeout);
        let bytes = msg.bytes();
        let Some(frame) = self.tail.keep(msg, now) else {
            self.filling.reserved.merge(reserved);
            return;
        };
        let has_frames = !self.filling.batch.frames.is_empty();
        if has_frames && self.filling.bytes.saturating_add(bytes) > self.config.max_bytes {
            let tail = std::mem::take(&mut self.tail);
            self.spill = Some(Spill {
                since: tail.since.unwrap_or(now),
                tail,
                frame,
                bytes,
                reserved,
            });
            return;
        }
        self.filling.add_tail(std::mem::take(&mut self.tail));
        self.filling.add_frame(frame, bytes);
        self.filling.reserved.merge(reserved);
    }

    /// Whether the batch must be committed before anything more is added.
    pub fn is_full(&self) -> bool {
        self.spill.is_some()
            || self.filling.events >= self.config.max_events
            || self.filling.bytes >= self.config.max_bytes
    }

    /// When the batch's interval is over; `None` while it is empty.
    pub fn deadline(&self) -> Option<Instant> {
        self.filling.deadline
    }

    pub fn is_empty(&self) -> bool {
        self.filling.batch.is_empty() && self.tail.since.is_none()
    }

    /// Ends the batch being filled and starts the next one (with the frame
    /// that did not fit, if one did not).
    pub fn take(&mut self) -> Sealed {
        self.filling.add_tail(std::mem::take(&mut self.tail));
        let mut next = Filling::new(self.reconcile.clone());
        if let Some(spill) = self.spill.take() {
            next.deadline = Some(spill.since + self.config.timeout);
            next.add_tail(spill.tail);
            next.add_frame(spill.frame, spill.bytes);
            next.reserved.merge(spill.reserved);
        }
        let done = std::mem::replace(&mut self.filling, next);
        Sealed {
            batch: done.batch,
            bytes: done.bytes,
            reserved: done.reserved,
        }
    }
}

impl Filling {
    fn new(reconcile: Option<ReconcileScope>) -> Self {
        Filling {
            batch: Batch {
                reconcile,
                ..Batch::default()
            },
            ..Filling::default()
        }
    }

    /// Adds a frame of `bytes` bytes of events.
    fn add_frame(&mut self, frame: ReceivedFrame, bytes: usize) {
        self.bytes += bytes;
        self.events += frame.frame.events.len();
        self.batch.frames.push(frame);
    }

    fn add_tail(&mut self, tail: Tail) {
        self.batch.gaps.extend(tail.gaps);
        self.batch.malformed_lines += tail.malformed_lines;
        if tail.identity.is_some() {
            self.batch.identity = tail.identity;
        }
    }
}

impl Tail {
    /// Keeps a message received `now` unless it is a frame, which it
    /// gives back.
    fn keep(&mut self, msg: Msg, now: Instant) -> Option<ReceivedFrame> {
        match msg {
            Msg::Frame(frame) => return Some(frame),
            Msg::Gap(gap) => self.gaps.push(gap),
            Msg::Malformed => self.malformed_lines += 1,
            Msg::Identity(identity) => self.identity = Some(identity),
        }
        self.since.get_or_insert(now);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;
    use crate::ingest::channel;

    const INTERVAL: Duration = Duration::from_secs(1);

    fn batcher(max_events: usize, max_bytes: usize) -> Batcher {
        let config = BatchConfig {
            max_events,
            max_bytes,
            timeout: INTERVAL,
        };
        Batcher::new(config, None)
    }

    fn push(batcher: &mut Batcher, msg: Msg) {
        assert!(!batcher.is_full(), "pushed into a full batch");
        batcher.push(msg, Reserved::default());
    }

    /// The frames of a sealed batch, as (index, events).
    fn frames(sealed: &Sealed) -> Vec<(u64, usize)> {
        let frames = sealed.batch.frames.iter();
        frames
            .map(|f| (f.frame.index, f.frame.events.len()))
            .collect()
    }

    fn gap(to_index: u64) -> Msg {
        Msg::Gap(Gap::buffer_overrun(0, to_index))
    }

    #[test]
    fn a_batch_is_due_at_max_events_and_the_frame_that_reaches_it_stays_whole() {
        let mut batcher = batcher(5, usize::MAX);
        push(&mut batcher, Msg::test_frame(1, 2, 10));
        push(&mut batcher, Msg::test_frame(2, 2, 10));
        assert!(!batcher.is_full());
        push(&mut batcher, Msg::test_frame(3, 4, 10));

        assert!(batcher.is_full());
        assert_eq!(frames(&batcher.take()), vec![(1, 2), (2, 2), (3, 4)]);
        assert!(batcher.is_empty());
        assert!(!batcher.is_full());
    }

    #[test]
    fn a_frame_that_would_pass_the_byte_budget_starts_the_next_batch() {
        let mut batcher = batcher(usize::MAX, 100);
        push(&mut batcher, Msg::test_frame(1, 1, 40));
        push(&mut batcher, Msg::test_frame(2, 2, 20));
        assert!(!batcher.is_full(), "80 of 100 bytes");
        push(&mut batcher, Msg::test_frame(3, 1, 40));

        assert!(batcher.is_full());
        let first = batcher.take();
        assert_eq!(frames(&first), vec![(1, 1), (2, 2)]);
        assert_eq!(first.bytes, 80);
        assert!(!batcher.is_full());
        push(&mut batcher, Msg::test_frame(4, 1, 60));
        assert!(batcher.is_full(), "100 of 100 bytes");
        let second = batcher.take();
        assert_eq!(frames(&second), vec![(3, 1), (4, 1)]);
        assert_eq!(second.bytes, 100);
        assert!(batcher.is_empty());
    }

    #[test]
    fn a_frame_larger_than_the_byte_budget_is_a_batch_of_its_own() {
        let mut batcher = batcher(usize::MAX, 100);
        push(&mut batcher, Msg::test_frame(1, 1, 10));
        push(&mut batcher, Msg::test_frame(2, 3, 100));

        assert_eq!(frames(&batcher.take()), vec![(1, 1)]);
        assert!(batcher.is_full(), "the oversized frame is due at once");
        let alone = batcher.take();
        assert_eq!(frames(&alone), vec![(2, 3)]);
        assert_eq!(alone.bytes, 300);
        assert!(batcher.is_empty());
    }

    #[test]
    fn gaps_go_with_the_frame_after_them_into_the_next_batch() {
        let mut batcher = batcher(usize::MAX, 100);
        push(&mut batcher, Msg::test_frame(1, 1, 60));
        push(&mut batcher, gap(5));
        push(&mut batcher, Msg::Malformed);
        push(&mut batcher, Msg::test_frame(5, 1, 60));

        let first = batcher.take();
        assert_eq!(frames(&first), vec![(1, 1)]);
        assert!(first.batch.gaps.is_empty());
        assert_eq!(first.batch.malformed_lines, 0);
        let second = batcher.take();
        assert_eq!(frames(&second), vec![(5, 1)]);
        assert_eq!(second.batch.gaps.len(), 1);
        assert_eq!(second.batch.malformed_lines, 1);
    }

    #[test]
    fn a_gap_with_no_frame_after_it_is_committed_with_the_batch() {
        let mut batcher = batcher(usize::MAX, 100);
        push(&mut batcher, Msg::test_frame(1, 1, 60));
        push(&mut batcher, gap(5));

        let sealed = batcher.take();
        assert_eq!(frames(&sealed), vec![(1, 1)]);
        assert_eq!(sealed.batch.gaps.len(), 1);
        assert!(batcher.is_empty());
    }

    #[tokio::test]
    async fn a_batch_holds_its_frames_bytes_of_the_channel_until_it_is_dropped() {
        let (tx, mut rx) = channel::bounded(16, 200);
        let mut batcher = batcher(usize::MAX, 100);
        for (index, bytes) in [(1, 60), (2, 30), (3, 50)] {
            tx.send(Msg::test_frame(index, 1, bytes))
                .await
                .expect("sent");
            let (msg, reserved) = rx.recv().await.expect("received");
            batcher.push(msg, reserved);
        }

        let first = batcher.take();
        assert_eq!(first.reserved.bytes(), 90);
        drop(first);
        let second = batcher.take();
        assert_eq!(second.reserved.bytes(), 50, "the frame that did not fit");
        let sent = tx.send(Msg::test_frame(4, 1, 150)).now_or_never();
        assert_eq!(
            sent,
            Some(Ok(())),
            "200 - 50 bytes are free once the first batch is gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_interval_runs_from_the_batch_s_first_message() {
        let mut batcher = batcher(usize::MAX, usize::MAX);
        assert_eq!(batcher.deadline(), None);
        let first = Instant::now();
        push(&mut batcher, Msg::test_frame(1, 1, 10));
        tokio::time::advance(Duration::from_millis(700)).await;
        push(&mut batcher, Msg::test_frame(2, 1, 10));

        assert_eq!(batcher.deadline(), Some(first + INTERVAL));
        batcher.take();
        assert_eq!(batcher.deadline(), None, "an empty batch has no interval");
        // The next interval starts with the next batch's first message, not
        // when the last one was taken.
        tokio::time::advance(Duration::from_secs(5)).await;
        let next = Instant::now();
        push(&mut batcher, Msg::test_frame(3, 1, 10));
        assert_eq!(batcher.deadline(), Some(next + INTERVAL));
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_did_not_fit_starts_its_batch_s_interval_when_it_arrived() {
        let mut batcher = batcher(usize::MAX, 100);
        push(&mut batcher, Msg::test_frame(1, 1, 60));
        tokio::time::advance(Duration::from_millis(300)).await;
        let spilled = Instant::now();
        push(&mut batcher, gap(2));
        push(&mut batcher, Msg::test_frame(2, 1, 60));
        tokio::time::advance(Duration::from_millis(200)).await;

        batcher.take();
        assert_eq!(batcher.deadline(), Some(spilled + INTERVAL));
    }
}
