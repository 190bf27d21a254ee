//! `nomad-chronicle ingest`: follow a Nomad agent's event stream into the archive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::{BatchArgs, parse_duration};
use crate::archive::Cluster;
use crate::backoff::Backoff;
use crate::config::{DbUrl, NomadConfig, Secret, default_cluster_label, parse_address, redact_url};
use crate::ingest::reconcile::{self, ReconcileConfig};
use crate::ingest::{self, FollowEnd, FollowOptions, IngestError, MAX_LINE_BYTES, Sink, Stats};
use crate::nomad::{NomadClient, Subscription};
use crate::store::{self, StoreError};

/// Follow a Nomad agent's event stream and archive every event.
///
/// Resumes from the archive's checkpoint for the cluster, reconnects with
/// backoff when the connection drops, and records a gap whenever Nomad's
/// buffer no longer held the resume point. SIGINT/SIGTERM commit what was
/// received and exit 0.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The Nomad agent's address.
    #[arg(long, env = "NOMAD_ADDR", default_value = "http://127.0.0.1:4646")]
    pub address: String,

    /// ACL token, sent as X-Nomad-Token (never logged).
    #[arg(long, env = "NOMAD_TOKEN", hide_env_values = true, value_parser = Secret::parse)]
    pub token: Option<Secret>,

    /// Region to forward the subscription to.
    #[arg(long, env = "NOMAD_REGION")]
    pub region: Option<String>,

    /// Namespace to archive; `*` means all namespaces.
    #[arg(long, env = "NOMAD_NAMESPACE", default_value = "*")]
    pub namespace: String,

    /// Topics to archive, as TOPIC or TOPIC:KEY (repeatable); default all.
    /// A token without management rights must name its topics.
    #[arg(long = "topic", value_name = "TOPIC[:KEY]", value_parser = parse_topic)]
    pub topics: Vec<(String, String)>,

    /// Index to start from when the archive holds nothing for this cluster yet.
    #[arg(long, value_name = "N")]
    pub from_index: Option<u64>,

    /// Start at --from-index even though the archive already holds this cluster.
    #[arg(long, requires = "from_index")]
    pub override_checkpoint: bool,

    /// Exit 0 once a frame with Index >= N is stored (for scripts and tests).
    #[arg(long, value_name = "N")]
    pub until_index: Option<u64>,

    /// Label stored with every event, so one archive can hold several clusters.
    /// Default: the address's host (and port unless 4646), or `default` for a local agent.
    #[arg(long)]
    pub cluster: Option<String>,

    /// Reconnect when neither data nor a heartbeat arrived for this long
    /// (Nomad sends a heartbeat every 30s).
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    #[command(flatten)]
    pub batch: BatchArgs,

    /// After a gap (a buffer overrun, `event dropped from buffer`, a server
    /// behind the archive), read the current jobs, allocations, evaluations,
    /// deployments and nodes from Nomad's list endpoints and store them as a
    /// reconstruction, which `query state` and `query snapshot` use and label.
    /// On by default; `--reconcile=false` or `--no-reconcile` turns it off.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set
    )]
    pub reconcile: bool,

    /// Do not reconstruct state after a gap (the same as --reconcile=false).
    #[arg(long, conflicts_with = "reconcile")]
    pub no_reconcile: bool,

    /// CA certificate (PEM) to verify the agent's TLS certificate.
    #[arg(long, env = "NOMAD_CACERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, env = "NOMAD_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,

    /// Client key (PEM) for mutual TLS.
    #[arg(long, env = "NOMAD_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,

    /// Server name to verify the agent's certificate against, instead of the address's host.
    #[arg(long, env = "NOMAD_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,

    /// Do not verify the agent's TLS certificate (insecure).
    #[arg(long, env = "NOMAD_SKIP_VERIFY", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub tls_skip_verify: bool,
}

/// Validates `TOPIC` or `TOPIC:KEY` as Nomad does.
pub(super) fn parse_topic(value: &str) -> Result<(String, String), String> {
    match Subscription::parse_topic(value) {
        Ok((topic, _)) if topic.is_empty() => Err("the topic name is empty".to_owned()),
        Ok(pair) => Ok(pair),
        Err(_) => Err("use TOPIC or TOPIC:KEY, with at most one `:`".to_owned()),
    }
}

pub async fn run(
    args: IngestArgs,
    db: &DbUrl,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let address = parse_address(&args.address)?;
    let config = NomadConfig {
        address: address.clone(),
        token: args.token.filter(|t| !t.expose().is_empty()),
        region: args.region,
        ca_cert: args.ca_cert,
        client_cert: args.client_cert,
        client_key: args.client_key,
        tls_server_name: args.tls_server_name,
        tls_skip_verify: args.tls_skip_verify,
    };
    let cluster_name = args
        .cluster
        .unwrap_or_else(|| default_cluster_label(&address));
    let client = NomadClient::new(&config).await?;
    let store = store::connect(db).await?;
    let mut subscription = Subscription::everything(0);
    subscription.namespace = args.namespace;
    if !args.topics.is_empty() {
        subscription.topics = args.topics;
    }
    let reconcile = (args.reconcile && !args.no_reconcile).then(|| ReconcileConfig {
        store: store.clone(),
        scope: reconcile::scope(&subscription),
    });
    let options = FollowOptions {
        subscription,
        cluster: cluster_name.clone(),
        until_index: args.until_index,
        idle_timeout: args.idle_timeout,
        max_line: MAX_LINE_BYTES,
        backoff: Backoff::default(),
    };
    let stats = Arc::new(Stats::default());
    let mut start = Start {
        from_index: args.from_index,
        override_checkpoint: args.override_checkpoint,
    };
    // Each turn holds the cluster's writer lease from the start; losing it
    // (PostgreSQL went away under us) means standing by again and resuming
    // from whatever the archive holds by then.
    let result = loop {
        let Some(lease) = store.lease(&cluster_name, &shutdown).await? else {
            break Ok(FollowEnd::Stopped);
        };
        let cluster = store
            .open_cluster(&cluster_name, Some(&redact_url(address.as_str())))
            .await
            .with_context(|| format!("cannot open cluster `{cluster_name}` in `{db}`"))?;
        let (cluster, requested) = start.resolve(cluster)?;
        if let (Some(until), Some(checkpoint)) = (args.until_index, cluster.checkpoint) {
            if checkpoint >= until {
                tracing::info!(
                    checkpoint,
                    until,
                    "The archive already reaches --until-index"
                );
                break Ok(FollowEnd::ReachedUntil);
            }
        }
        tracing::info!(
            cluster = %cluster.name,
            database = %db,
            checkpoint = cluster.checkpoint,
            "Archiving the event stream"
        );
        let sink = Sink {
            lease,
            cluster,
            batch: args.batch.config(),
            stats: stats.clone(),
            reconcile: reconcile.clone(),
        };
        match ingest::ingest(sink, &client, options.clone(), requested, shutdown.clone()).await {
            Err(IngestError::Store(StoreError::LeaseLost { detail })) => {
                tracing::warn!(error = %detail, "Lost the writer lock; standing by to resume from the checkpoint");
            }
            other => break other,
        }
    };
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
    Ok(ExitCode::SUCCESS)
}

/// `--from-index` and `--override-checkpoint`, applied to the first turn only.
struct Start {
    from_index: Option<u64>,
    override_checkpoint: bool,
}

impl Start {
    /// The cluster to ingest into and the index to request when it is empty.
    fn resolve(&mut self, cluster: Cluster) -> anyhow::Result<(Cluster, Option<u64>)> {
        let from = self.from_index.take();
        let override_checkpoint = std::mem::take(&mut self.override_checkpoint);
        match (cluster.checkpoint, from) {
            (Some(checkpoint), Some(from)) if !override_checkpoint => bail!(
                "the archive already holds cluster `{}` up to index {checkpoint} and resumes from there; \
                 to start at index {from} anyway, add --override-checkpoint",
                cluster.name
            ),
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
