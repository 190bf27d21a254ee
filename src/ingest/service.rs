//! Running `ingest` as a service: connects to the agent and the archive,
//! holds the cluster's writer lease, follows the stream with the reconnect
//! policy, and stands by to resume from the checkpoint whenever the lease is
//! lost, until shutdown, `--until-index`, or a fatal error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::reconcile::{self, ReconcileConfig};
use super::{FollowEnd, FollowOptions, IngestError, MAX_LINE_BYTES, Sink, Stats};
use crate::archive::Cluster;
use crate::backoff::Backoff;
use crate::config::{BatchConfig, DbUrl, NomadConfig, redact_url};
use crate::nomad::client::ClientError;
use crate::nomad::{NomadClient, Subscription};
use crate::store::{self, Store, StoreError};

/// Everything `ingest` needs, validated before any connection opens.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How to reach the agent.
    pub nomad: NomadConfig,
    /// The archive.
    pub db: DbUrl,
    /// The archive's label for the cluster.
    pub cluster: String,
    /// What to subscribe to; its index is replaced by the resume point.
    pub subscription: Subscription,
    /// Where to start when the archive holds nothing for the cluster yet.
    pub from_index: Option<u64>,
    /// Start at `from_index` even though the archive holds the cluster.
    pub override_checkpoint: bool,
    /// Stop once a frame with at least this index is stored.
    pub until_index: Option<u64>,
    /// Silence longer than this means the connection is dead.
    pub idle_timeout: Duration,
    pub batch: BatchConfig,
    /// Rebuild state from Nomad's lists after a gap.
    pub reconcile: bool,
}

/// Why `ingest` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open cluster `{cluster}` in `{db}`")]
    OpenCluster {
        cluster: String,
        db: String,
        #[source]
        source: StoreError,
    },
    /// `--from-index` names a start the checkpoint is already past.
    #[error(
        "the archive already holds cluster `{cluster}` up to index {checkpoint} and resumes from there; \
         to start at index {from} anyway, add --override-checkpoint"
    )]
    CheckpointAhead {
        cluster: String,
        checkpoint: u64,
        from: u64,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Archives the agent's event stream until `shutdown` completes (what was
/// received is then committed), `--until-index` is reached, or a fatal
/// error; returns how it ended.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<FollowEnd, ServiceError> {
    let token = CancellationToken::new();
    let work = serve(settings, token.clone());
    tokio::pin!(work);
    tokio::select! {
        ended = &mut work => ended,
        () = shutdown => {
            token.cancel();
            work.await
        }
    }
}

/// Connects, follows the stream turn after turn, closes the archive and
/// logs the totals.
async fn serve(settings: Settings, shutdown: CancellationToken) -> Result<FollowEnd, ServiceError> {
    let client = NomadClient::new(&settings.nomad).await?;
    let store = store::connect(&settings.db).await?;
    let stats = Arc::new(Stats::default());
    let result = turns(&settings, &client, &store, &stats, &shutdown).await;
    store.close().await;
    let end = result?;
    tracing::info!(
        events_stored = Stats::get(&stats.events_stored),
        duplicates_skipped = Stats::get(&stats.duplicates),
        last_index = Stats::get(&stats.committed_index),
        malformed_lines = Stats::get(&stats.malformed_lines),
        gaps = Stats::get(&stats.gaps),
        reason = match end {
            FollowEnd::Stopped => "shutdown",
            FollowEnd::ReachedUntil => "until-index reached",
        },
        "Stopped"
    );
    Ok(end)
}

/// Each turn holds the cluster's writer lease from the start; losing it
/// (PostgreSQL went away under us) means standing by again and resuming
/// from whatever the archive holds by then.
async fn turns(
    settings: &Settings,
    client: &NomadClient,
    store: &Arc<dyn Store>,
    stats: &Arc<Stats>,
    shutdown: &CancellationToken,
) -> Result<FollowEnd, ServiceError> {
    let name = &settings.cluster;
    let reconcile = settings.reconcile.then(|| ReconcileConfig {
        store: store.clone(),
        scope: reconcile::scope(&settings.subscription),
    });
    let options = FollowOptions {
        subscription: settings.subscription.clone(),
        cluster: name.clone(),
        until_index: settings.until_index,
        idle_timeout: settings.idle_timeout,
        max_line: MAX_LINE_BYTES,
        backoff: Backoff::default(),
    };
    let mut start = Start {
        from_index: settings.from_index,
        override_checkpoint: settings.override_checkpoint,
    };
    loop {
        let Some(lease) = store.lease(name, shutdown).await? else {
            return Ok(FollowEnd::Stopped);
        };
        let address = redact_url(settings.nomad.address.as_str());
        let cluster = store
            .open_cluster(name, Some(&address))
            .await
            .map_err(|source| ServiceError::OpenCluster {
                cluster: name.clone(),
                db: settings.db.to_string(),
                source,
            })?;
        let (cluster, requested) = start.resolve(cluster)?;
        if let (Some(until), Some(checkpoint)) = (settings.until_index, cluster.checkpoint) {
            if checkpoint >= until {
                tracing::info!(
                    checkpoint,
                    until,
                    "The archive already reaches --until-index"
                );
                return Ok(FollowEnd::ReachedUntil);
            }
        }
        tracing::info!(
            cluster = %cluster.name,
            database = %settings.db,
            checkpoint = cluster.checkpoint,
            "Archiving the event stream"
        );
        let sink = Sink {
            lease,
            cluster,
            batch: settings.batch,
            stats: stats.clone(),
            reconcile: reconcile.clone(),
        };
        match super::ingest(sink, client, options.clone(), requested, shutdown.clone()).await {
            Err(IngestError::Store(StoreError::LeaseLost { detail })) => {
                tracing::warn!(error = %detail, "Lost the writer lock; standing by to resume from the checkpoint");
            }
            other => return Ok(other?),
        }
    }
}

/// `--from-index` and `--override-checkpoint`, applied to the first turn only.
struct Start {
    from_index: Option<u64>,
    override_checkpoint: bool,
}

impl Start {
    /// The cluster to ingest into and the index to request when it is empty.
    fn resolve(&mut self, cluster: Cluster) -> Result<(Cluster, Option<u64>), ServiceError> {
        let from = self.from_index.take();
        let override_checkpoint = std::mem::take(&mut self.override_checkpoint);
        match (cluster.checkpoint, from) {
            (Some(checkpoint), Some(from)) if !override_checkpoint => {
                Err(ServiceError::CheckpointAhead {
                    cluster: cluster.name,
                    checkpoint,
                    from,
                })
            }
            (_, Some(from)) if override_checkpoint => Ok((
                Cluster {
                    checkpoint: None,
                    ..cluster
                },
                Some(from),
            )),
            (_, from) => Ok((cluster, from)),
        }
    }
}
