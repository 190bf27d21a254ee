//! The channel from the reader to the writer, bounded twice: in messages, and
//! in bytes of events held between the reader and the store. A frame takes
//! its share of the byte budget before it is sent and gives it back once the
//! writer has committed it (or dropped it), so a flood of multi-megabyte
//! frames waits in Nomad's buffer rather than in memory. A frame larger than
//! the whole budget takes the whole budget.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::msg::Msg;

/// Opens a channel holding at most `frames` messages and `bytes` of events
/// (from 1 to `u32::MAX`; larger budgets count as `u32::MAX`).
pub fn bounded(frames: usize, bytes: usize) -> (Sender, Receiver) {
    let total = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
    let budget = Arc::new(Semaphore::new(total as usize));
    let (tx, rx) = mpsc::channel(frames);
    (
        Sender {
            tx,
            budget: budget.clone(),
            total,
        },
        Receiver { rx, budget },
    )
}

/// The reader's end.
#[derive(Debug)]
pub struct Sender {
    tx: mpsc::Sender<(Msg, Reserved)>,
    budget: Arc<Semaphore>,
    /// The whole budget, which caps what one frame takes.
    total: u32,
}

/// The writer is gone: nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Sender {
    /// Waits for room (a message slot and the frame's bytes), then sends.
    pub async fn send(&self, msg: Msg) -> Result<(), Closed> {
        let want = u32::try_from(msg.bytes())
            .unwrap_or(u32::MAX)
            .min(self.total);
        let reserved = if want == 0 {
            Reserved::default()
        } else {
            let permit = self.budget.clone().acquire_many_owned(want).await;
            Reserved(Some(permit.map_err(|_| Closed)?))
        };
        self.tx.send((msg, reserved)).await.map_err(|_| Closed)
    }

    /// Completes when the writer is gone.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// The writer's end. Dropping it (the writer ended) wakes a sender waiting
/// for bytes.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::Receiver<(Msg, Reserved)>,
    budget: Arc<Semaphore>,
}

impl Receiver {
    /// The next message and the bytes it holds; `None` once every sender is
    /// gone and everything sent was received.
    pub async fn recv(&mut self) -> Option<(Msg, Reserved)> {
        self.rx.recv().await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.budget.close();
    }
}

/// The share of the byte budget one message holds, given back when dropped.
/// Messages without events hold none.
#[derive(Debug, Default)]
pub struct Reserved(Option<OwnedSemaphorePermit>);

impl Reserved {
    /// How many bytes of the budget this holds.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Takes over what `other` holds, so a batch gives back its frames'
    /// bytes at once. Both must come from the same channel.
    pub fn merge(&mut self, other: Reserved) {
        match (&mut self.0, other.0) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn frame(index: u64, bytes: usize) -> Msg {
        Msg::test_frame(index, 1, bytes)
    }

    #[tokio::test]
    async fn a_frame_waits_until_the_bytes_before_it_are_given_back() {
        let (tx, mut rx) = bounded(16, 100);
        tx.send(frame(1, 60)).await.expect("room for the first");
        let mut second = Box::pin(tx.send(frame(2, 60)));
        assert!(
            (&mut second).now_or_never().is_none(),
            "60 + 60 bytes exceed the budget of 100"
        );
        let (_, first) = rx.recv().await.expect("the first frame");
        assert_eq!(first.bytes(), 60);
        assert!(
            (&mut second).now_or_never().is_none(),
            "received is not committed: the first frame still holds its bytes"
        );
        drop(first);
        assert_eq!(second.await, Ok(()));
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_takes_all_of_it() {
        let (tx, mut rx) = bounded(16, 100);
        tx.send(frame(1, 250))
            .await
            .expect("an oversized frame is sent");
        let (_, held) = rx.recv().await.expect("the frame");
        assert_eq!(held.bytes(), 100);
        let mut gap = Box::pin(tx.send(frame(2, 1)));
        assert!((&mut gap).now_or_never().is_none());
        drop(held);
        assert_eq!(gap.await, Ok(()));
    }

    #[tokio::test]
    async fn merged_shares_are_given_back_together() {
        let (tx, mut rx) = bounded(16, 100);
        tx.send(frame(1, 30)).await.expect("sent");
        tx.send(Msg::Malformed).await.expect("sent");
        tx.send(frame(2, 70)).await.expect("sent");
        let mut batch = Reserved::default();
        for _ in 0..3 {
            let (_, held) = rx.recv().await.expect("a message");
            batch.merge(held);
        }
        assert_eq!(batch.bytes(), 100);
        let mut next = Box::pin(tx.send(frame(3, 1)));
        assert!((&mut next).now_or_never().is_none());
        drop(batch);
        assert_eq!(next.await, Ok(()));
    }

    #[tokio::test]
    async fn messages_without_events_need_no_bytes() {
        let (tx, mut rx) = bounded(16, 10);
        tx.send(frame(1, 10)).await.expect("the whole budget");
        tx.send(Msg::Malformed).await.expect("no bytes needed");
        let _frame = rx.recv().await;
        let (msg, held) = rx.recv().await.expect("the skipped line");
        assert!(matches!(msg, Msg::Malformed));
        assert_eq!(held.bytes(), 0);
    }

    #[tokio::test]
    async fn a_sender_waiting_for_bytes_learns_that_the_writer_is_gone() {
        let (tx, rx) = bounded(16, 10);
        tx.send(frame(1, 10)).await.expect("the whole budget");
        let mut waiting = Box::pin(tx.send(frame(2, 10)));
        assert!((&mut waiting).now_or_never().is_none());
        drop(rx);
        assert_eq!(waiting.await, Err(Closed));
    }
}
