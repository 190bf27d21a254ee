//! `nomad-chronicle replay`: stored history to stdout, in Nomad's wire format.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio_util::sync::CancellationToken;

use super::history::pick_cluster;
use super::ingest::parse_topic;
use super::parse_duration;
use super::time_arg::parse_time;
use crate::config::DbUrl;
use crate::nomad::Subscription;
use crate::replay::{FrameQuery, FrameReader, OutFrame};
use crate::store;

/// Write stored history to stdout as Nomad streamed it: one
/// `{"Index":N,"Events":[…]}` line per raft index, each event exactly as
/// received.
///
/// Filters follow Nomad's semantics. Writing to a closed pipe (`| head`) ends quietly.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The cluster to replay; needed when the archive holds several.
    #[arg(long, value_parser = super::parse_cluster)]
    pub cluster: Option<String>,

    /// First index to emit (inclusive).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from_index: u64,

    /// Last index to emit (inclusive).
    #[arg(long, value_name = "N")]
    pub to_index: Option<u64>,

    /// Only frames that happened (Nomad's clock) at or after this time: 2026-12-04T17:41:30+01:00 or …Z
    /// (RFC 3339), 2026-12-04 17:41, 2026-12-04 or 17:41 (without an offset: in
    /// the local zone, `TZ`), or a duration ago (2h, 1h30m).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<i64>,

    /// Only frames that happened before this time: 2026-12-04T17:41:30+01:00 or …Z
    /// (RFC 3339), 2026-12-04 17:41, 2026-12-04 or 17:41 (without an offset: in
    /// the local zone, `TZ`), or a duration ago (2h, 1h30m).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until: Option<i64>,

    /// Topics as TOPIC or TOPIC:KEY (repeatable); the key matches an event's Key
    /// or its FilterKeys, as in Nomad. Default: every topic.
    #[arg(long = "topic", value_name = "TOPIC[:KEY]", value_parser = parse_topic)]
    pub topics: Vec<(String, String)>,

    /// Namespace; `*` for all. Events without a namespace (Node, …) always pass.
    #[arg(long, default_value = "*")]
    pub namespace: String,

    /// After the stored history, keep emitting events as they are archived.
    #[arg(long)]
    pub follow: bool,

    /// With --follow, how often to look for new events.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// Pace frames by their original timing, X times as fast (2 = twice as fast).
    #[arg(long, value_name = "X", conflicts_with = "realtime", value_parser = parse_speed)]
    pub speed: Option<f64>,

    /// Pace frames by their original timing (same as --speed 1).
    #[arg(long)]
    pub realtime: bool,
}

fn parse_speed(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{value}` is not a positive number")),
    }
}

pub async fn run(
    args: ReplayArgs,
    db: &DbUrl,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let store = store::open(db, store::Access::Read).await?;
    let cluster = pick_cluster(store.as_ref(), args.cluster.as_deref(), &db.to_string()).await?;
    let mut subscription = Subscription::everything(args.from_index);
    subscription.namespace = args.namespace.clone();
    if !args.topics.is_empty() {
        subscription.topics = args.topics.clone();
    }
    let query = FrameQuery {
        subscription,
        to_index: args.to_index,
        since: args.since,
        until: args.until,
    };
    let speed = if args.realtime { Some(1.0) } else { args.speed };
    let mut reader = FrameReader::new(store.clone(), cluster, query);
    let result = emit(&mut reader, &args, speed, &shutdown).await;
    store.close().await;
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn emit(
    reader: &mut FrameReader,
    args: &ReplayArgs,
    speed: Option<f64>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(256 * 1024, tokio::io::stdout());
    let mut previous: Option<OutFrame> = None;
    loop {
        let next = tokio::select! {
            next = reader.next() => next?,
            _ = shutdown.cancelled() => break,
        };
        let Some(frame) = next else {
            out.flush().await?;
            if !args.follow {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(args.poll_interval) => continue,
                _ = shutdown.cancelled() => break,
            }
        };
        if let (Some(speed), Some(prev)) = (speed, &previous) {
            let gap_ms = (frame.time - prev.time).max(0) as f64 / speed;
            out.flush().await?;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(gap_ms / 1000.0)) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        out.write_all(frame.line.as_bytes()).await?;
        out.write_all(b"\n").await?;
        if args.follow || speed.is_some() {
            out.flush().await?;
        }
        previous = Some(frame);
    }
    out.flush().await?;
    Ok(())
}
