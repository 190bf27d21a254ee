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
use crate::config::{DbUrl, Secret, read_secret_file};
use crate::replay::connections::ConnectionLimits;
use crate::replay::serve::{self, Metrics, MoreRoutes, ServeOptions};
use crate::{store, web};

/// Serve stored history as Nomad's `GET /v1/event/stream`, so existing
/// consumers replay it by pointing NOMAD_ADDR here.
///
/// Same `index`, `topic` and `namespace` semantics, `{}` heartbeats, and
/// streams that stay open for newly archived events. Also `/healthz` and
/// Prometheus `/metrics`, and a web timeline at `/ui/` with its JSON API
/// under `/api/v1/`. Read-only. With a token, the stream, /metrics and the
/// API require it; /healthz and the page itself never do.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (Nomad itself uses 4646).
    #[arg(long, default_value = "127.0.0.1:4747")]
    pub listen: SocketAddr,

    /// The cluster to serve; needed when the archive holds several.
    #[arg(long, value_parser = super::parse_cluster)]
    pub cluster: Option<String>,

    /// Require this token from clients (X-Nomad-Token or Authorization: Bearer);
    /// it may not be empty.
    #[arg(long, env = "NOMAD_CHRONICLE_SERVE_TOKEN", hide_env_values = true, value_parser = Secret::parse, conflicts_with = "token_file")]
    pub token: Option<Secret>,

    /// Read the required token from this file (one line), so it is not on
    /// the command line, where `ps` shows it.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Streams open at once; a client beyond them is answered 503.
    #[arg(long, value_name = "N", default_value_t = ServeOptions::DEFAULT_MAX_CLIENTS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_clients: u32,

    /// Bytes of frames one stream may hold before the client has read them
    /// (a single larger frame is held alone).
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_client_buffer)]
    pub client_buffer: usize,

    /// Close a connection that has not sent a whole request this long
    /// after it opened or after its last response (slow or idle clients).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Close a stream whose client has read nothing for this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub stall_timeout: Duration,

    /// Send `{}` when a stream has been idle this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub heartbeat: Duration,

    /// How often caught-up streams look for newly archived events.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
}

/// Parses `--client-buffer`: bytes, or a size with a unit (`1MiB`, `256KiB`).
fn parse_client_buffer(value: &str) -> Result<usize, String> {
    let bytes = value
        .parse::<bytesize::ByteSize>()
        .ok()
        .and_then(|size| usize::try_from(size.as_u64()).ok());
    match bytes {
        Some(n) if (1..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{value}` is not a size from 1 byte to 1 GiB; use e.g. 1MiB, 256KiB or 1048576"
        )),
    }
}

impl ServeArgs {
    /// The token clients must send, from `--token`, its variable or
    /// `--token-file`. An empty one is an error, not "no token": it would
    /// let in any client that sends an empty header.
    fn token(&self) -> anyhow::Result<Option<Secret>> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.clone(),
            (None, Some(path)) => read_secret_file(path, "token")?,
            (None, None) => return Ok(None),
        };
        // HTTP drops white space around header values: it cannot be sent.
        let token = token.expose().trim();
        if token.is_empty() {
            anyhow::bail!(
                "the serve token is empty: set --token-file, --token or NOMAD_CHRONICLE_SERVE_TOKEN \
                 to a non-empty token, or set none of them to serve without one"
            );
        }
        Ok(Some(Secret::new(token)))
    }
}

pub async fn run(
    args: ServeArgs,
    db: &DbUrl,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let token = args.token()?;
    let store = store::open(db, store::Access::Serve).await?;
    let cluster = pick_cluster(store.as_ref(), args.cluster.as_deref(), &db.to_string()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        cluster = %cluster.name,
        database = %db,
        token_required = token.is_some(),
        max_clients = args.max_clients,
        "Serving the archive as /v1/event/stream"
    );
    let options = ServeOptions {
        cluster: cluster.name,
        token,
        heartbeat: args.heartbeat,
        poll: args.poll_interval,
        max_clients: args.max_clients,
        client_buffer: args.client_buffer,
        limits: ConnectionLimits {
            header_timeout: args.header_timeout,
            stall_timeout: args.stall_timeout,
        },
    };
    let routes = MoreRoutes {
        guarded: web::api_routes(web::ApiState {
            store: store.clone(),
            cluster: options.cluster.clone(),
        }),
        open: web::page_routes(),
    };
    let metrics = Arc::new(Metrics::default());
    let served =
        serve::serve_with(listener, store.clone(), options, metrics, shutdown, routes).await;
    store.close().await;
    served.context("the server failed")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_default_limits_are_the_servers() {
        let args = Cli::try_parse_from(["serve"]).expect("parses").serve;
        assert_eq!(args.max_clients, ServeOptions::DEFAULT_MAX_CLIENTS);
        assert_eq!(args.client_buffer, ServeOptions::DEFAULT_CLIENT_BUFFER);
        let limits = ConnectionLimits::default();
        assert_eq!(
            (args.header_timeout, args.stall_timeout),
            (limits.header_timeout, limits.stall_timeout)
        );
    }
}
