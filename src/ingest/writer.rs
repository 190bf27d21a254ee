//! The writer: receives frames from the reader over a bounded channel, groups
//! them into batches as [`Batcher`] decides (by events, by bytes, by time
//! since the batch's first message; a frame is never split) and commits each
//! batch with its checkpoint (and the cluster's identity, when one came with
//! the frames) in one transaction, retrying what [`StoreError::is_retriable`]
//! calls passing. While a batch commits, the next one is filled, so the
//! reader is not held up by the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::batcher::{Batcher, Sealed};
use super::channel::Receiver;
use super::stats::Stats;
use crate::archive::{Cluster, CommitStats, ReconcileScope};
use crate::backoff::Backoff;
use crate::config::BatchConfig;
use crate::store::{Lease, StoreError};

/// How the writer batches, and what it asks for after a gap.
pub struct Settings {
    pub batch: BatchConfig,
    /// With a scope, gaps are committed with pending reconstructions, and
    /// the notifier (the reconciler) is woken after such a commit.
    pub reconcile: Option<(ReconcileScope, Option<Arc<Notify>>)>,
}

/// How long a failing commit is still retried once shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Commits everything received until the channel closes. A store error that
/// retrying cannot fix ends the writer; what was committed before stays.
/// After shutdown, a failing commit is retried for [`SHUTDOWN_GRACE`] more.
pub async fn run(
    mut lease: Box<dyn Lease>,
    cluster: Cluster,
    mut rx: Receiver,
    settings: Settings,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    let (scope, wake) = settings.reconcile.unzip();
    let wake = wake.flatten();
    let mut batcher = Batcher::new(settings.batch, scope);
    let mut closed = false;
    let mut checkpoint = cluster.checkpoint;
    loop {
        closed = fill(&mut batcher, &mut rx, closed).await;
        if batcher.is_empty() {
            return Ok(());
        }
        let sealed = batcher.take();
        let committing = commit(lease.as_mut(), &cluster, &sealed, &stats, &shutdown);
        tokio::pin!(committing);
        // While the batch commits, the next one fills.
        loop {
            tokio::select! {
                biased;
                committed = &mut committing => {
                    let (outcome, took) = committed?;
                    stats.metrics.committed(&sealed.batch, outcome, checkpoint, sealed.bytes, took);
                    checkpoint = checkpoint.max(sealed.batch.max_index());
                    if sealed.batch.gaps.iter().any(|g| g.kind.is_reconciled()) {
                        if let Some(wake) = &wake {
                            wake.notify_one();
                        }
                    }
                    break;
                }
                received = rx.recv(), if !closed && !batcher.is_full() => match received {
                    Some((msg, reserved)) => batcher.push(msg, reserved),
                    None => closed = true,
                },
            }
        }
    }
}

/// Receives into the batch until it is due (full, or its interval is over)
/// or the channel is closed; returns whether it is closed.
async fn fill(batcher: &mut Batcher, rx: &mut Receiver, mut closed: bool) -> bool {
    while !closed && !batcher.is_full() {
        let received = match batcher.deadline() {
            None => rx.recv().await,
            Some(deadline) => tokio::select! {
                biased;
                received = rx.recv() => received,
                _ = sleep_until(deadline) => break,
            },
        };
        match received {
            Some((msg, reserved)) => batcher.push(msg, reserved),
            None => closed = true,
        }
    }
    closed
}

/// Commits a batch, retrying passing failures; what it stored and how long
/// the successful attempt took.
async fn commit(
    lease: &mut dyn Lease,
    cluster: &Cluster,
    sealed: &Sealed,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<(CommitStats, Duration), StoreError> {
    let batch = &sealed.batch;
    let mut backoff = Backoff::default();
    let mut give_up_at: Option<Instant> = None;
    loop {
        let started = std::time::Instant::now();
        match lease.commit(cluster, batch).await {
            Ok(outcome) => {
                let took = started.elapsed();
                Stats::add(&stats.events_stored, outcome.inserted);
                Stats::add(&stats.duplicates, outcome.duplicates);
                if let Some(index) = batch.max_index() {
                    Stats::raise(&stats.committed_index, index);
                }
                let newest = batch.frames.iter().flat_map(|f| &f.frame.events);
                Stats::raise_time(
                    &stats.stored_nomad_time,
                    newest.filter_map(|e| e.nomad_time).max(),
                );
                stats.health.committed();
                tracing::debug!(
                    events = outcome.inserted,
                    duplicates = outcome.duplicates,
                    bytes = sealed.bytes,
                    checkpoint = batch.max_index(),
                    "Committed"
                );
                return Ok((outcome, took));
            }
            Err(e) if e.is_retriable() && give_up_at.is_none_or(|at| Instant::now() < at) => {
                stats.health.commit_failed(&e.to_string());
                stats.metrics.commit_retries.inc();
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "Commit failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled(), if give_up_at.is_none() => {}
                }
                if shutdown.is_cancelled() && give_up_at.is_none() {
                    give_up_at = Some(Instant::now() + SHUTDOWN_GRACE);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::channel;
    use crate::ingest::msg::Msg;

    fn batcher(max_events: usize, timeout: Duration) -> Batcher {
        let config = BatchConfig {
            max_events,
            max_bytes: 1 << 20,
            timeout,
        };
        Batcher::new(config, None)
    }

    fn indexes(sealed: &Sealed) -> Vec<u64> {
        sealed.batch.frames.iter().map(|f| f.frame.index).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_committed_the_interval_after_its_first_event_not_its_last() {
        let (tx, mut rx) = channel::bounded(16, 1 << 20);
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            tx.send(Msg::test_frame(1, 1, 10)).await.expect("sent");
            tokio::time::sleep(Duration::from_millis(700)).await;
            tx.send(Msg::test_frame(2, 1, 10)).await.expect("sent");
            // The reader stays open: only the interval can end the batch.
            std::future::pending::<()>().await;
        });
        let mut batcher = batcher(100, Duration::from_secs(1));

        let closed = fill(&mut batcher, &mut rx, false).await;

        assert!(!closed);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(indexes(&batcher.take()), vec![1, 2]);
        reader.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_committed_before_the_interval_ends() {
        let (tx, mut rx) = channel::bounded(16, 1 << 20);
        tx.send(Msg::test_frame(1, 1, 10)).await.expect("sent");
        let mut batcher = batcher(100, Duration::from_secs(600));

        let waited =
            tokio::time::timeout(Duration::from_secs(599), fill(&mut batcher, &mut rx, false))
                .await;

        assert!(waited.is_err(), "the batch was due before its interval");
        assert!(!batcher.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_committed_without_waiting_for_the_interval() {
        let (tx, mut rx) = channel::bounded(16, 1 << 20);
        for index in 1..=4 {
            tx.send(Msg::test_frame(index, 1, 10)).await.expect("sent");
        }
        let start = Instant::now();
        let mut batcher = batcher(3, Duration::from_secs(600));

        let closed = fill(&mut batcher, &mut rx, false).await;

        assert!(!closed);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(indexes(&batcher.take()), vec![1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_the_stream_commits_what_was_received_at_once() {
        let (tx, mut rx) = channel::bounded(16, 1 << 20);
        tx.send(Msg::test_frame(1, 1, 10)).await.expect("sent");
        drop(tx);
        let start = Instant::now();
        let mut batcher = batcher(100, Duration::from_secs(600));

        let closed = fill(&mut batcher, &mut rx, false).await;

        assert!(closed);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(indexes(&batcher.take()), vec![1]);
        assert!(batcher.is_empty());
    }
}
