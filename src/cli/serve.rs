//! `nomad-chronicle serve`: the archive as a Nomad event stream endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::history::pick_cluster;
use super::parse_duration;
use crate::config::{DbUrl, Secret};
use crate::replay::serve::{self, Metrics, ServeOptions};
use crate::store;

/// Serve stored history as Nomad's `GET /v1/event/stream`, so existing
/// consumers replay it by pointing NOMAD_ADDR here.
///
/// Same `index`, `topic` and `namespace` semantics, `{}` heartbeats, and
/// streams that stay open for newly archived events. Also `/healthz` and
/// Prometheus `/metrics`. Read-only.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (Nomad itself uses 4646).
    #[arg(long, default_value = "127.0.0.1:4747")]
    pub listen: SocketAddr,

    /// The cluster to serve; needed when the archive holds several.
    #[arg(long)]
    pub cluster: Option<String>,

    /// Require this token from clients (X-Nomad-Token or Authorization: Bearer).
    #[arg(long, env = "NOMAD_CHRONICLE_SERVE_TOKEN", hide_env_values = true, value_parser = Secret::parse, conflicts_with = "token_file")]
    pub token: Option<Secret>,

    /// Read the required token from this file.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Send `{}` when a stream has been idle this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub heartbeat: Duration,

    /// How often caught-up streams look for newly archived events.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
}

pub async fn run(
    args: ServeArgs,
    db: &DbUrl,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("cannot read the token file `{}`", path.display()))?;
            Some(Secret::new(text.trim()))
        }
        (None, None) => None,
    };
    let store = store::connect(db).await?;
    let cluster = pick_cluster(store.as_ref(), args.cluster.as_deref(), &db.to_string()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        cluster = %cluster.name,
        database = %db,
        token_required = token.is_some(),
        "Serving the archive as /v1/event/stream"
    );
    let options = ServeOptions {
        cluster: cluster.name,
        token,
        heartbeat: args.heartbeat,
        poll: args.poll_interval,
    };
    let served = serve::serve(
        listener,
        store.clone(),
        options,
        Arc::new(Metrics::default()),
        shutdown,
    )
    .await;
    store.close().await;
    served.context("the server failed")?;
    Ok(ExitCode::SUCCESS)
}
