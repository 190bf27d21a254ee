//! Ingest: the reader (live stream or capture file) hands whole frames over a
//! bounded channel to the writer, which commits them in batches together with
//! the checkpoint. The reader never waits on the database except through that
//! channel, so a slow commit does not stall reading the socket.
//!
//! - [`resume`] decides, frame by frame, what is new, what is a resend and
//!   where a gap must be recorded;
//! - [`behind`] tells a restarted server of the archived cluster from
//!   another cluster at the same address;
//! - [`pump`] turns lines into messages for the writer;
//! - [`follow`] keeps a subscription alive across reconnects;
//! - [`namespaces`] watches for namespaces a `namespace=*` subscription does
//!   not cover yet;
//! - [`rejection`] explains, from Nomad's view of the token, why it will not
//!   stream;
//! - [`channel`] carries the reader's messages to the writer, bounded in
//!   frames and in bytes;
//! - [`writer`] batches (as [`batcher`] decides) and commits;
//! - [`reconcile`] rebuilds state after a gap from Nomad's list endpoints;
//! - [`service`] runs `ingest`: the writer lease, turn after turn, until
//!   shutdown;
//! - [`stats`] and [`health`] say how it is going, [`scrape`] turns the
//!   counters into metrics, and [`listen`] serves them as `/metrics`,
//!   `/healthz` and `/readyz`.

pub mod batcher;
pub mod behind;
pub mod channel;
pub mod follow;
pub mod health;
pub mod listen;
pub mod msg;
pub mod namespaces;
pub mod pump;
pub mod reconcile;
pub mod rejection;
pub mod resume;
pub mod scrape;
pub mod service;
pub mod stats;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use crate::archive::Cluster;
use crate::config::BatchConfig;
use crate::nomad::subscription::ALL;
use crate::nomad::{CloseReason, LineReader, NomadClient};
use crate::store::{Lease, StoreError};
pub use follow::{FollowEnd, FollowError, FollowOptions};
use namespaces::NamespaceWatch;
use pump::{Pump, PumpEnd, PumpSeen, Undated};
pub use reconcile::{ReconcileConfig, Reconciler};
pub use resume::{Mode, Resume};
pub use stats::Stats;

/// Frames that may wait between the reader and the writer.
const CHANNEL_FRAMES: usize = 1024;
/// How often the progress line is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// The longest line a capture may hold before it is skipped.
pub const MAX_LINE_BYTES: usize = 256 * 1024 * 1024;
/// How long, once the stream is done, a reconstruction under way may take
/// to finish; what is left is completed by the next run.
const RECONCILE_GRACE: Duration = Duration::from_secs(30);

/// Why ingest or import stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Follow(#[from] FollowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read `{source_name}`: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
}

/// The reader's end of a running writer.
struct Pipeline {
    tx: channel::Sender,
    writer: JoinHandle<Result<(), StoreError>>,
    progress: JoinHandle<()>,
    progress_stop: CancellationToken,
}

use msg::Msg;

/// Where events go: the archive, the cluster they belong to, how they are
/// batched, and the counters that report on it.
pub struct Sink {
    /// This process's right to write the cluster.
    pub lease: Box<dyn Lease>,
    pub cluster: Cluster,
    pub batch: BatchConfig,
    pub stats: Arc<Stats>,
    /// Rebuild state after gaps (live ingest only; `None` for imports and
    /// with `--no-reconcile`).
    pub reconcile: Option<ReconcileConfig>,
}

impl Pipeline {
    /// Starts the writer; `wake` is notified after each commit that
    /// requested reconstructions.
    fn start(sink: Sink, shutdown: &CancellationToken, wake: Option<Arc<Notify>>) -> Self {
        let (tx, rx) = channel::bounded(CHANNEL_FRAMES, sink.batch.in_flight_bytes());
        let reconcile = sink.reconcile.map(|config| (config.scope, wake));
        let writer = tokio::spawn(writer::run(
            sink.lease,
            sink.cluster,
            rx,
            writer::Settings {
                batch: sink.batch,
                reconcile,
            },
            sink.stats.clone(),
            shutdown.clone(),
        ));
        let progress_stop = CancellationToken::new();
        let progress = tokio::spawn(log_progress(sink.stats, progress_stop.clone()));
        Pipeline {
            tx,
            writer,
            progress,
            progress_stop,
        }
    }

    /// Closes the channel, waits for the writer to commit what it holds, and
    /// returns its verdict.
    async fn finish(self) -> Result<(), StoreError> {
        drop(self.tx);
        let written = match self.writer.await {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        self.progress_stop.cancel();
        let _ = self.progress.await;
        written
    }
}

/// Follows a live stream into the archive until shutdown, `--until-index`, or
/// a fatal error. What was committed stays committed whatever the outcome.
/// With every namespace subscribed, the namespace list is watched beside it.
pub async fn ingest(
    sink: Sink,
    client: &NomadClient,
    mut options: FollowOptions,
    requested_index: Option<u64>,
    shutdown: CancellationToken,
) -> Result<FollowEnd, IngestError> {
    let mut resume = Resume::new(Mode::Follow, sink.cluster.checkpoint, requested_index)
        .with_archived_identity(sink.cluster.identity.clone());
    let mut watch = if options.subscription.namespace == ALL {
        NamespaceWatch::start(client, &shutdown).await
    } else {
        None
    };
    let stats = sink.stats.clone();
    let reconciler = sink
        .reconcile
        .clone()
        .map(|config| Reconciler::spawn(config, client.clone(), sink.cluster.clone()));
    let pipeline = Pipeline::start(sink, &shutdown, reconciler.as_ref().map(Reconciler::wake));
    let followed = follow::follow(
        client,
        &mut options,
        &mut resume,
        watch.as_mut().map(NamespaceWatch::receiver),
        &pipeline.tx,
        &stats,
        &shutdown,
    )
    .await;
    if let Some(watch) = watch {
        watch.stop().await;
    }
    let written = pipeline.finish().await;
    if let Some(reconciler) = reconciler {
        reconciler.finish(RECONCILE_GRACE).await;
    }
    // A writer failure explains a WriterGone, so it comes first.
    written?;
    Ok(followed?)
}

/// How an import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportEnd {
    /// The whole capture was read.
    Complete,
    /// Shutdown was requested; what was read so far is stored.
    Stopped,
}

/// Reads an NDJSON capture (frames and `{}` heartbeats, as `curl -N` saves the
/// stream) into the archive; returns how it ended and the stretches of
/// stream it stored whole (closed index ranges, all committed), which may
/// fill gaps recorded before.
pub async fn import<R>(
    sink: Sink,
    reader: R,
    source_name: &str,
    shutdown: CancellationToken,
) -> Result<(ImportEnd, Vec<(u64, u64)>), IngestError>
where
    R: AsyncRead + Unpin + Send,
{
    let mut resume = Resume::new(Mode::Backfill, sink.cluster.checkpoint, None);
    let stats = sink.stats.clone();
    let pipeline = Pipeline::start(sink, &shutdown, None);
    let mut lines = LineReader::new(
        ReaderStream::with_capacity(reader, 256 * 1024),
        MAX_LINE_BYTES,
    );
    let mut pump = Pump {
        resume: &mut resume,
        tx: &pipeline.tx,
        stats: &stats,
        shutdown: &shutdown,
        until_index: None,
        idle_timeout: None,
        source: source_name,
        seen: PumpSeen::default(),
        new_namespaces: None,
        undated: Undated::ByPreceding(None),
    };
    let end = pump.run(&mut lines).await;
    let outcome = match end {
        PumpEnd::Eof | PumpEnd::ReachedUntil | PumpEnd::Idle => Ok(ImportEnd::Complete),
        PumpEnd::Stopped => Ok(ImportEnd::Stopped),
        // A capture is neither checked against an identity nor watched.
        PumpEnd::WriterGone | PumpEnd::Foreign(_) | PumpEnd::Resubscribe(_) => {
            Ok(ImportEnd::Complete)
        }
        PumpEnd::Closed(fragment) => {
            if CloseReason::parse(&fragment).is_some() {
                tracing::warn!(source = source_name, reason = %fragment, "The capture ends with the server's close reason");
            } else {
                tracing::warn!(source = source_name, preview = %fragment, "The capture ends with an incomplete line; skipped it");
                Stats::add(&stats.malformed_lines, 1);
                let _ = pipeline.tx.send(Msg::Malformed).await;
            }
            Ok(ImportEnd::Complete)
        }
        PumpEnd::Failed(error) => Err(IngestError::Read {
            source_name: source_name.to_owned(),
            error,
        }),
    };
    pipeline.finish().await?;
    Ok((outcome?, resume.covered().to_vec()))
}

async fn log_progress(stats: Arc<Stats>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    let mut last_stored = Stats::get(&stats.events_stored);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let stored = Stats::get(&stats.events_stored);
        let received = Stats::get(&stats.received_index);
        let committed = Stats::get(&stats.committed_index);
        tracing::info!(
            events_per_sec = (stored - last_stored) / PROGRESS_EVERY.as_secs(),
            events_stored = stored,
            last_index = committed,
            lag = received.saturating_sub(committed),
            malformed_lines = Stats::get(&stats.malformed_lines),
            gaps = Stats::get(&stats.gaps),
            "Progress"
        );
        last_stored = stored;
    }
}
