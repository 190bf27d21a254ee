//! Running `ingest` as a service: connects to the agent and the archive,
//! holds the cluster's writer lease, follows the stream with the reconnect
//! policy, and stands by to resume from the checkpoint whenever the lease is
//! lost, until shutdown, `--until-index`, or a fatal error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::listen;
use super::reconcile::{self, ReconcileConfig};
use super::{FollowEnd, FollowOptions, IngestError, MAX_LINE_BYTES, Sink, Stats};
use crate::archive::Cluster;
use crate::backoff::Backoff;
use crate::config::{BatchConfig, DbUrl, NomadConfig, redact_url};
use crate::metrics::LeaseState;
use crate::nomad::client::ClientError;
use crate::nomad::{NomadClient, Subscription};
use crate::retention::background::{self as retention, Budget};
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
    /// When the writer trains dictionaries to compress events with.
    pub compression: crate::store::compress::Settings,
    /// Rebuild state from Nomad's lists after a gap.
    pub reconcile: bool,
    /// What to keep (`--retain`, `--retain-size`), pruned in the background
    /// while this process holds the lease.
    pub retention: Budget,
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
/// error; returns how it ended. With a `listener`, serves `/metrics`,
/// `/healthz` and `/readyz` on it meanwhile.
pub async fn run(
    settings: Settings,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<FollowEnd, ServiceError> {
    let token = CancellationToken::new();
    let work = serve(settings, listener, token.clone());
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
async fn serve(
    settings: Settings,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<FollowEnd, ServiceError> {
    let client = NomadClient::new(&settings.nomad).await?;
    let store = store::connect(&settings.db).await?;
    store.set_compression(settings.compression);
    let stats = Arc::new(Stats::default());
    let endpoint_stop = CancellationToken::new();
    let endpoint = listener.map(|listener| {
        let serving = listen::serve(
            listener,
            store.clone(),
            stats.clone(),
            settings.cluster.clone(),
            endpoint_stop.clone(),
        );
        tokio::spawn(serving)
    });
    let result = turns(&settings, &client, &store, &stats, &shutdown).await;
    endpoint_stop.cancel();
    if let Some(endpoint) = endpoint {
        if let Ok(Err(error)) = endpoint.await {
            tracing::warn!(%error, "The metrics and health endpoint failed");
        }
    }
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
        metrics: stats.metrics.clone(),
    });
    let options = follow_options(settings);
    let mut start = Start {
        from_index: settings.from_index,
        override_checkpoint: settings.override_checkpoint,
    };
    let mut unavailable = Backoff::default();
    loop {
        set_lease(stats, LeaseState::Standby);
        let Some(lease) = store.lease(name, shutdown).await? else {
            return Ok(FollowEnd::Stopped);
        };
        set_lease(stats, LeaseState::Active);
        let cluster = match open(settings, store, &mut unavailable).await? {
            Opened::Cluster(cluster) => cluster,
            Opened::Retry(delay) => {
                drop(lease);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(FollowEnd::Stopped),
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let (cluster, requested) = start.resolve(cluster)?;
        if let (Some(until), Some(checkpoint), None) =
            (settings.until_index, cluster.checkpoint, requested)
        {
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
        let retention = (store.clone(), settings.retention);
        let sink = Sink {
            lease,
            cluster,
            batch: settings.batch,
            stats: stats.clone(),
            reconcile: reconcile.clone(),
        };
        let ended = pruning_beside(retention, sink, shutdown, async |sink| {
            super::ingest(sink, client, options.clone(), requested, shutdown.clone()).await
        })
        .await;
        match ended {
            Err(IngestError::Store(StoreError::LeaseLost { detail })) => {
                tracing::warn!(error = %detail, "Lost the writer lock; standing by to resume from the checkpoint");
            }
            other => return Ok(other?),
        }
    }
}

/// How each turn follows the stream.
fn follow_options(settings: &Settings) -> FollowOptions {
    FollowOptions {
        subscription: settings.subscription.clone(),
        cluster: settings.cluster.clone(),
        until_index: settings.until_index,
        idle_timeout: settings.idle_timeout,
        max_line: MAX_LINE_BYTES,
        backoff: Backoff::default(),
    }
}

/// What opening the cluster after taking the lease came to.
enum Opened {
    Cluster(Cluster),
    /// PostgreSQL went away meanwhile, and the lease with its connection:
    /// stand by again after this long.
    Retry(Duration),
}

/// Opens the cluster once the lease is taken.
async fn open(
    settings: &Settings,
    store: &Arc<dyn Store>,
    unavailable: &mut Backoff,
) -> Result<Opened, ServiceError> {
    let name = &settings.cluster;
    let address = redact_url(settings.nomad.address.as_str());
    match store.open_cluster(name, Some(&address)).await {
        Ok(cluster) => {
            unavailable.reset();
            Ok(Opened::Cluster(cluster))
        }
        Err(e) if e.is_retriable() => {
            let delay = unavailable.next_delay();
            tracing::warn!(error = %e, retry_in = ?delay, "Database unavailable while opening the cluster; standing by to try again");
            Ok(Opened::Retry(delay))
        }
        Err(source) => Err(ServiceError::OpenCluster {
            cluster: name.clone(),
            db: settings.db.to_string(),
            source,
        }),
    }
}

/// Runs `ingest` on `sink` with the retention budget's pruner beside it
/// ([`retention::run`]), for as long as the lease is held: the pruner stops
/// when ingest ends (finishing a check under way, unless `shutdown` fired).
async fn pruning_beside<T>(
    (store, budget): (Arc<dyn Store>, Budget),
    sink: Sink,
    shutdown: &CancellationToken,
    ingest: impl AsyncFnOnce(Sink) -> T,
) -> T {
    let stop = CancellationToken::new();
    let cluster = sink.cluster.clone();
    let pruning = retention::run(store, cluster, budget, stop.clone(), shutdown.clone());
    let ingesting = async {
        let ended = ingest(sink).await;
        stop.cancel();
        ended
    };
    let (ended, ()) = tokio::join!(ingesting, pruning);
    ended
}

/// Reports the lease to `/metrics` and `/readyz`.
fn set_lease(stats: &Stats, state: LeaseState) {
    stats.metrics.set_lease(state);
    stats.health.set_lease(state);
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
            // The checkpoint stays: a start past it records the skipped
            // stretch as a gap ([`super::resume::Resume::new`]).
            (_, from) => Ok((cluster, from)),
        }
    }
}

#[cfg(test)]
mod tests {
    use nomad_sim::{Generator, Sim, SimConfig};

    use super::*;
    use crate::config::parse_address;

    /// A simulator holding `events` generated events, the last index, and
    /// settings that archive it into a fresh SQLite file.
    async fn archiving(dir: &tempfile::TempDir, events: usize) -> (Sim, u64, Settings) {
        let (sim, addr) = Sim::start(SimConfig {
            buffer_size: 1_000_000,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let mut last = 0;
        for frame in Generator::new(5).frames(events) {
            last = frame.index;
            sim.publish(frame);
        }
        let path = dir.path().join("archive.db");
        let settings = Settings {
            nomad: NomadConfig {
                address: parse_address(&format!("http://{addr}")).unwrap(),
                token: None,
                region: None,
                ca_cert: None,
                client_cert: None,
                client_key: None,
                tls_server_name: None,
                tls_skip_verify: false,
            },
            db: DbUrl::parse(&format!("sqlite://{}", path.display())).unwrap(),
            cluster: "test".to_owned(),
            subscription: Subscription::everything(0),
            from_index: None,
            override_checkpoint: false,
            until_index: Some(last),
            idle_timeout: Duration::from_secs(90),
            batch: BatchConfig::default(),
            compression: Default::default(),
            reconcile: false,
            retention: Budget::default(),
        };
        (sim, last, settings)
    }

    async fn checkpoint(settings: &Settings) -> Option<u64> {
        let store = store::connect(&settings.db).await.unwrap();
        let cluster = store.open_cluster(&settings.cluster, None).await.unwrap();
        store.close().await;
        cluster.checkpoint
    }

    #[tokio::test]
    async fn ingest_runs_until_the_index_asked_for_and_commits_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_sim, last, settings) = archiving(&dir, 200).await;
        let end = run(settings.clone(), None, std::future::pending())
            .await
            .unwrap();
        assert_eq!(end, FollowEnd::ReachedUntil);
        assert_eq!(checkpoint(&settings).await, Some(last));
    }

    #[tokio::test]
    async fn a_shutdown_already_requested_stops_ingest_with_nothing_archived() {
        let dir = tempfile::tempdir().unwrap();
        let (_sim, _, settings) = archiving(&dir, 200).await;
        let end = run(settings.clone(), None, std::future::ready(()))
            .await
            .unwrap();
        assert_eq!(end, FollowEnd::Stopped);
        assert_eq!(checkpoint(&settings).await, None);
    }

    #[tokio::test]
    async fn a_from_index_the_checkpoint_is_past_is_refused_with_the_override_named() {
        let dir = tempfile::tempdir().unwrap();
        let (_sim, last, settings) = archiving(&dir, 200).await;
        run(settings.clone(), None, std::future::pending())
            .await
            .unwrap();
        let again = Settings {
            from_index: Some(5),
            ..settings
        };
        let refused = run(again, None, std::future::pending()).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "the archive already holds cluster `test` up to index {last} and resumes from there; \
                 to start at index 5 anyway, add --override-checkpoint"
            )
        );
    }
}
