//! The writer: receives frames from the reader over a bounded channel, groups
//! them into batches (by event count or by time since the batch's first
//! message, whichever comes first; a frame is never split) and commits each
//! batch with its checkpoint (and the cluster's identity, when one came with
//! the frames) in one transaction. While a batch commits, the next one is
//! filled, so the reader is not held up by the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::stats::Stats;
use crate::archive::{Batch, Cluster, Gap, ReceivedFrame, ReconcileScope};
use crate::backoff::Backoff;
use crate::config::BatchConfig;
use crate::nomad::ClusterIdentity;
use crate::store::{Lease, StoreError};

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

/// A batch being filled.
struct Filling {
    batch: Batch,
    events: usize,
    /// When it must be committed: the batch interval after its first message.
    deadline: Option<Instant>,
}

impl Filling {
    fn new(reconcile: Option<ReconcileScope>) -> Self {
        Filling {
            batch: Batch {
                reconcile,
                ..Batch::default()
            },
            events: 0,
            deadline: None,
        }
    }

    fn add(&mut self, msg: Msg, config: &BatchConfig) {
        self.deadline
            .get_or_insert_with(|| Instant::now() + config.timeout);
        self.events += add(&mut self.batch, msg);
    }

    fn is_full(&self, config: &BatchConfig) -> bool {
        self.events >= config.max_events
    }
}

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
    let mut filling = Filling::new(scope.clone());
    loop {
        // Fill until the batch is full, its interval is over, or the reader
        // is done.
        while !closed && !filling.is_full(&config) {
            let msg = match filling.deadline {
                None => rx.recv().await,
                Some(deadline) => tokio::select! {
                    biased;
                    msg = rx.recv() => msg,
                    _ = sleep_until(deadline) => break,
                },
            };
            match msg {
                Some(msg) => filling.add(msg, &config),
                None => closed = true,
            }
        }
        if filling.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut filling, Filling::new(scope.clone())).batch;
        let committing = commit(lease.as_mut(), &cluster, &batch, &stats, &shutdown);
        tokio::pin!(committing);
        loop {
            tokio::select! {
                biased;
                committed = &mut committing => {
                    committed?;
                    if batch.gaps.iter().any(|g| g.kind.is_reconciled()) {
                        if let Some(wake) = &wake {
                            wake.notify_one();
                        }
                    }
                    break;
                }
                msg = rx.recv(), if !closed && !filling.is_full(&config) => match msg {
                    Some(msg) => filling.add(msg, &config),
                    None => closed = true,
                },
            }
        }
    }
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
