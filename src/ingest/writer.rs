//! The writer: receives frames from the reader over a bounded channel, groups
//! them into batches (by event count or by time since the batch's first
//! message, whichever comes first; a frame is never split) and commits each
//! batch with its checkpoint (and the cluster's identity, when one came with
//! the frames) in one transaction.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::stats::Stats;
use crate::config::BatchConfig;
use crate::nomad::ClusterIdentity;
use crate::store::{Batch, Cluster, Gap, Lease, ReceivedFrame, ReconcileScope, StoreError};

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
    mut rx: mpsc::Receiver<Msg>,
    settings: Settings,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    let config = settings.batch;
    let (scope, wake) = settings.reconcile.unzip();
    let wake = wake.flatten();
    let mut closed = false;
    while !closed {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Batch {
            reconcile: scope.clone(),
            ..Batch::default()
        };
        let mut events = add(&mut batch, first);
        let deadline = Instant::now() + config.timeout;
        while events < config.max_events {
            tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    Some(msg) => events += add(&mut batch, msg),
                    None => { closed = true; break; }
                },
                _ = sleep_until(deadline) => break,
            }
        }
        commit(lease.as_mut(), &cluster, &batch, &stats, &shutdown).await?;
        if batch.gaps.iter().any(|g| g.kind.is_reconciled()) {
            if let Some(wake) = &wake {
                wake.notify_one();
            }
        }
    }
    Ok(())
}

fn add(batch: &mut Batch, msg: Msg) -> usize {
    match msg {
        Msg::Frame(frame) => {
            let n = frame.frame.events.len();
            batch.frames.push(frame);
            n
        }
        Msg::Gap(gap) => {
            batch.gaps.push(gap);
            0
        }
        Msg::Malformed => {
            batch.malformed_lines += 1;
            0
        }
        Msg::Identity(identity) => {
            batch.identity = Some(identity);
            0
        }
    }
}

async fn commit(
    lease: &mut dyn Lease,
    cluster: &Cluster,
    batch: &Batch,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let mut backoff = Backoff::default();
    let mut give_up_at: Option<Instant> = None;
    loop {
        match lease.commit(cluster, batch).await {
            Ok(outcome) => {
                Stats::add(&stats.events_stored, outcome.inserted);
                Stats::add(&stats.duplicates, outcome.duplicates);
                if let Some(index) = batch.max_index() {
                    Stats::raise(&stats.committed_index, index);
                }
                tracing::debug!(
                    events = outcome.inserted,
                    duplicates = outcome.duplicates,
                    checkpoint = batch.max_index(),
                    "Committed"
                );
                return Ok(());
            }
            Err(e) if e.is_retriable() && give_up_at.is_none_or(|at| Instant::now() < at) => {
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
