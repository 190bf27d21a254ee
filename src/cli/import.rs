//! `nomad-chronicle import`: load an NDJSON capture of the event stream.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

use super::BatchArgs;
use crate::archive::Cluster;
use crate::config::DbUrl;
use crate::ingest::resume::capture::LiveLabel;
use crate::ingest::{self, ImportEnd, Sink, Stats};
use crate::store::{self, Store};

/// Import a capture of the event stream, as `curl -N $NOMAD_ADDR/v1/event/stream > capture.ndjson` saves it.
///
/// Frames and `{}` heartbeats are read line by line; events already in the
/// archive are skipped, so importing the same capture twice stores nothing
/// twice. Older captures fill in history behind the checkpoint.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The capture file; `-` reads standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    pub input: PathBuf,

    /// Label of the cluster the capture came from (by default `default`).
    /// A capture does not say which cluster it is of, so it joins a label
    /// that `ingest` followed live only when this names it.
    #[arg(long, value_parser = super::parse_cluster)]
    pub cluster: Option<String>,

    #[command(flatten)]
    pub batch: BatchArgs,
}

/// The label of a capture imported without `--cluster`.
const DEFAULT_LABEL: &str = "default";

pub async fn run(
    args: ImportArgs,
    db: &DbUrl,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let (reader, length, source_name) = open_capture(&args.input).await?;
    let label = args.cluster.as_deref().unwrap_or(DEFAULT_LABEL);
    let store = store::connect(db).await?;
    store.set_compression(args.batch.compression());
    let Some(lease) = store.lease(label, &shutdown).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let existing = store.find_cluster(label).await?;
    if let Err(refusal) = LiveLabel::check(existing.as_ref(), args.cluster.is_some()) {
        drop(lease);
        store.close().await;
        return Err(refusal.into());
    }
    let cluster = store
        .open_cluster(label, None)
        .await
        .with_context(|| format!("cannot open cluster `{label}` in `{db}`"))?;
    let stats = Arc::new(Stats::default());
    let started = std::time::Instant::now();
    let sink = Sink {
        lease,
        cluster: cluster.clone(),
        batch: args.batch.config(),
        stats: stats.clone(),
        reconcile: None,
    };
    let progress = Progress::start(length, &stats);
    let result = ingest::import(sink, reader, &source_name, shutdown).await;
    progress.finish();
    let after = match &result {
        Ok((_, covered)) => after_import(store.as_ref(), &cluster, covered).await,
        Err(_) => Ok(0),
    };
    store.close().await;
    let (end, _) = result?;
    let narrowed = after?;
    log_totals(&stats, narrowed, started.elapsed().as_secs_f64(), end);
    Ok(ExitCode::SUCCESS)
}

/// The capture to read, its length when known, and its name for messages.
async fn open_capture(
    input: &std::path::Path,
) -> anyhow::Result<(Box<dyn AsyncRead + Unpin + Send>, Option<u64>, String)> {
    if input.as_os_str() == "-" {
        return Ok((
            Box::new(tokio::io::stdin()),
            None,
            "standard input".to_owned(),
        ));
    }
    let name = input.display().to_string();
    let file = tokio::fs::File::open(input)
        .await
        .with_context(|| format!("cannot open capture `{name}`"))?;
    let length = file.metadata().await.ok().map(|m| m.len());
    Ok((Box::new(file), length, name))
}

/// What an import leaves to do once its batches are committed: narrow the
/// gaps the capture filled (returns how many), and rebuild the keyframes
/// that history imported behind the archive's end dropped, so reads need
/// not read more events (a failure there is only logged).
async fn after_import(
    store: &dyn Store,
    cluster: &Cluster,
    covered: &[(u64, u64)],
) -> anyhow::Result<u64> {
    let narrowed = store
        .fill_gaps(cluster, covered)
        .await
        .context("the capture was imported, but the gaps it fills were not narrowed")?;
    // Keyframes only make reads faster: one that cannot be built now (an
    // event another program stored undated) waits for the next writer.
    if let Err(error) = store::backfill::keyframes(store).await {
        tracing::warn!(%error, "The keyframes the import dropped were not rebuilt; the next writer builds them");
    }
    Ok(narrowed)
}

fn log_totals(stats: &Stats, narrowed: u64, elapsed: f64, end: ImportEnd) {
    let stored = Stats::get(&stats.events_stored);
    tracing::info!(
        events_stored = stored,
        duplicates_skipped = Stats::get(&stats.duplicates),
        last_index = Stats::get(&stats.committed_index),
        malformed_lines = Stats::get(&stats.malformed_lines),
        gaps = Stats::get(&stats.gaps),
        gaps_narrowed = narrowed,
        seconds = format!("{elapsed:.2}"),
        events_per_sec = (stored as f64 / elapsed.max(1e-9)) as u64,
        complete = end == ImportEnd::Complete,
        "Imported"
    );
}

/// A byte-based progress bar on a terminal, updated from the totals.
struct Progress {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(length: Option<u64>, stats: &Arc<Stats>) -> Progress {
        let bar = progress_bar(length);
        let ticker = bar.clone().map(|bar| {
            let stats = stats.clone();
            tokio::spawn(async move {
                loop {
                    bar.set_position(Stats::get(&stats.bytes_read));
                    bar.set_message(format!("{} events", Stats::get(&stats.events_stored)));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        Progress { bar, ticker }
    }

    fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A byte-based progress bar when stderr is a terminal and the size is known.
fn progress_bar(length: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let length = length?;
    let bar = ProgressBar::new(length);
    let style = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}
