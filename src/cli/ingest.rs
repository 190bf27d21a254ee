//! `nomad-chronicle ingest`: follow a Nomad agent's event stream into the archive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::{BatchArgs, parse_duration};
use crate::config::{DbUrl, NomadConfig, Secret, default_cluster_label, parse_address};
use crate::ingest::backoff::Backoff;
use crate::ingest::{self, FollowEnd, FollowOptions, MAX_LINE_BYTES, Sink, Stats};
use crate::nomad::NomadClient;
use crate::store;

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
    #[arg(long, env = "NOMAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Region to forward the subscription to.
    #[arg(long, env = "NOMAD_REGION")]
    pub region: Option<String>,

    /// Namespace to archive; `*` means all namespaces.
    #[arg(long, env = "NOMAD_NAMESPACE", default_value = "*")]
    pub namespace: String,

    /// Topics to archive, as TOPIC or TOPIC:KEY (repeatable); default all.
    /// A token without management rights must name its topics.
    #[arg(long = "topic", value_name = "TOPIC[:KEY]", value_parser = parse_topic)]
    pub topics: Vec<String>,

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
fn parse_topic(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split(':').collect();
    match parts.as_slice() {
        [topic] | [topic, _] if !topic.is_empty() => Ok(value.to_owned()),
        [_, _] | [_] => Err("the topic name is empty".to_owned()),
        _ => Err("use TOPIC or TOPIC:KEY, with at most one `:`".to_owned()),
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
        token: args.token.filter(|t| !t.is_empty()).map(Secret::new),
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
    let cluster = store
        .open_cluster(&cluster_name, Some(address.as_str()))
        .await
        .with_context(|| format!("cannot open cluster `{cluster_name}` in `{db}`"))?;
    let requested = match (cluster.checkpoint, args.from_index) {
        (Some(checkpoint), Some(from)) if !args.override_checkpoint => bail!(
            "the archive already holds cluster `{cluster_name}` up to index {checkpoint} and resumes from there; \
             to start at index {from} anyway, add --override-checkpoint"
        ),
        (_, from) => from,
    };
    let cluster = if args.override_checkpoint {
        store::Cluster {
            checkpoint: None,
            ..cluster
        }
    } else {
        cluster
    };
    tracing::info!(
        cluster = %cluster.name,
        database = %db,
        checkpoint = cluster.checkpoint,
        "Archiving the event stream"
    );
    let options = FollowOptions {
        topics: args.topics,
        namespace: args.namespace,
        until_index: args.until_index,
        idle_timeout: args.idle_timeout,
        max_line: MAX_LINE_BYTES,
        backoff: Backoff::default(),
    };
    let stats = Arc::new(Stats::default());
    let sink = Sink {
        store: store.clone(),
        cluster,
        batch: args.batch.config(),
        stats: stats.clone(),
    };
    let result = ingest::ingest(sink, &client, options, requested, shutdown).await;
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
