//! `nomad-chronicle ingest`: follow a Nomad agent's event stream into the archive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{BatchArgs, parse_duration};
use crate::config::{
    DbUrl, NomadConfig, Secret, default_cluster_label, parse_address, read_secret_file,
};
use crate::ingest::service::{self, Settings};
use crate::nomad::Subscription;
use crate::nomad::wire::MAX_INDEX;
use crate::retention::background::Budget;

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

    /// Read the ACL token from this file instead (one line), so it is not
    /// on the command line, where `ps` shows it; it takes precedence over
    /// --token and NOMAD_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

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
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(..=MAX_INDEX))]
    pub from_index: Option<u64>,

    /// Start at --from-index even though the archive already holds this cluster.
    #[arg(long, requires = "from_index")]
    pub override_checkpoint: bool,

    /// Exit 0 once a frame with Index >= N is stored (for scripts and tests).
    #[arg(long, value_name = "N")]
    pub until_index: Option<u64>,

    /// Label stored with every event, so one archive can hold several clusters.
    /// Default: the address's host (and port unless 4646), or `default` for a local agent.
    #[arg(long, value_parser = super::parse_cluster)]
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

    /// Serve /metrics (Prometheus), /healthz and /readyz on this address,
    /// e.g. 127.0.0.1:9464; off unless given.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

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

    /// Keep this much history by Nomad's clock (e.g. 90d, 12w); older
    /// history is pruned in the background, in small transactions, while
    /// ingest goes on. Checked when ingest starts and every 5 minutes.
    /// Objects still present (a job registered long ago and still running)
    /// keep their latest event, so snapshots after the cut stay whole.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retain: Option<Duration>,

    /// Keep the archive at most this large (e.g. 50GB, 500MiB), pruning the
    /// oldest history in the background when it is over. Measured as the
    /// pages in use (SQLite) or the size of the archive's tables with their
    /// indexes (PostgreSQL); checked as often as --retain.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub retain_size: Option<u64>,

    /// Pack the history older than this (e.g. 30d, by Nomad's clock) into
    /// blocks of events compressed
    /// together, about a quarter of their size compressed one by one, in
    /// the background, in small transactions, while ingest goes on; checked
    /// as often as --retain. Reading one packed event decodes its whole
    /// block, so keep the history you query most, the newest, outside.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub pack_older_than: Option<Duration>,
}

/// Parses `--retain-size`: bytes or with a unit (`50GB`, `500MiB`).
fn parse_size(value: &str) -> Result<u64, String> {
    match value.parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() > 0 => Ok(size.as_u64()),
        _ => Err(format!(
            "`{value}` is not a size; use e.g. 50GB, 500MiB or 1073741824"
        )),
    }
}

/// Validates `TOPIC` or `TOPIC:KEY` as Nomad does.
pub(super) fn parse_topic(value: &str) -> Result<(String, String), String> {
    match Subscription::parse_topic(value) {
        Ok((topic, _)) if topic.is_empty() => Err("the topic name is empty".to_owned()),
        Ok((topic, key)) => Ok((crate::query::canonical_topic(&topic), key)),
        Err(_) => Err("use TOPIC or TOPIC:KEY, with at most one `:`".to_owned()),
    }
}

impl IngestArgs {
    /// The validated settings these options ask for; no connection is opened.
    fn settings(self, db: &DbUrl) -> anyhow::Result<Settings> {
        let address = parse_address(&self.address)?;
        let cluster = self
            .cluster
            .unwrap_or_else(|| default_cluster_label(&address));
        let token = match &self.token_file {
            Some(path) => Some(read_secret_file(path, "token")?),
            // An empty NOMAD_TOKEN means none, as for the Nomad CLI.
            None => self.token.filter(|t| !t.expose().is_empty()),
        };
        let nomad = NomadConfig {
            address,
            token,
            region: self.region,
            ca_cert: self.ca_cert,
            client_cert: self.client_cert,
            client_key: self.client_key,
            tls_server_name: self.tls_server_name,
            tls_skip_verify: self.tls_skip_verify,
        };
        let mut subscription = Subscription::everything(0);
        subscription.namespace = self.namespace;
        if !self.topics.is_empty() {
            subscription.topics = self.topics;
        }
        Ok(Settings {
            nomad,
            db: db.clone(),
            cluster,
            subscription,
            from_index: self.from_index,
            override_checkpoint: self.override_checkpoint,
            until_index: self.until_index,
            idle_timeout: self.idle_timeout,
            batch: self.batch.config(),
            compression: self.batch.compression(),
            reconcile: self.reconcile && !self.no_reconcile,
            retention: Budget {
                age: self.retain,
                size: self.retain_size,
                pack: self.pack_older_than,
            },
        })
    }
}

pub async fn run(
    args: IngestArgs,
    db: &DbUrl,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let listen = args.listen;
    let settings = args.settings(db)?;
    let listener = match listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on `{addr}`"))?;
            tracing::info!(address = %addr, "Serving /metrics, /healthz and /readyz");
            Some(listener)
        }
        None => None,
    };
    service::run(settings, listener, shutdown.cancelled_owned()).await?;
    Ok(ExitCode::SUCCESS)
}
