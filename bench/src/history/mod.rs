//! `bench history`: what a query costs as history grows. For each backend
//! and each archive size: the query kinds of [`kinds::KINDS`] at the
//! archive's newest moment (p50 of repeated runs of the binary, peak RSS),
//! the import rate of the events that come next into that archive and into
//! an empty one, and the archive's size next to its capture's. One backend's
//! archives are built, measured and deleted before the next backend's, and
//! captures are piped, never written, so that 10,000,000 events fit on disk.

mod archive;
mod kinds;
mod place;
mod subjects;
mod table;
mod timing;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::all::{binaries, load_average, machine};
use archive::{CLUSTER, Ingest};
use kinds::Kind;
use place::{Backend, Place};
use timing::{Repeat, Timing};

#[derive(Debug, clap::Args)]
pub struct HistoryBench {
    /// Archive sizes, in events (each archive ends with the frame that reaches its size).
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    events: Vec<usize>,
    /// Backends to measure, one after the other.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,postgres"
    )]
    backend: Vec<Backend>,
    /// Timed runs of each query on each archive, after one warm-up run.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Seconds of timed runs after which a query stops repeating (after at
    /// least 3 runs, or 1 when its warm-up run alone took longer); the table
    /// says when a query had fewer than `--runs`.
    #[arg(long, default_value_t = 60)]
    budget: u64,
    /// Events of the same history imported after each archive's own, into
    /// it and into an empty archive.
    #[arg(long, default_value_t = 200_000)]
    next_events: usize,
    /// Generator seed (the same seed gives the same history, byte for byte).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the archives and the next events' capture are written, and
    /// deleted afterwards.
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// Keep the archives in DIR instead (PostgreSQL's server in DIR/pg), and
    /// reuse the ones found there instead of building them again; each run
    /// adds `--next-events` events to each.
    #[arg(long, value_name = "DIR", conflicts_with = "dir")]
    keep: Option<PathBuf>,
    /// A PostgreSQL URL of a role that may CREATE DATABASE; without it a
    /// server of our own is started from the installed binaries.
    #[arg(long, env = "NOMAD_CHRONICLE_BENCH_PG", hide_env_values = true)]
    pg: Option<String>,
    /// Only these query kinds (default: all): snapshot, snapshot-job,
    /// snapshot-node, state-alloc, state-job, job, alloc, node,
    /// events-indexes, events-since.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// What was measured on one archive.
pub struct Measured {
    /// Events in the archive when it was queried.
    pub events: u64,
    /// What the queries asked about.
    pub subjects: String,
    /// One per selected kind; `None` when it could not run.
    pub queries: Vec<Option<Timing>>,
    pub archive_bytes: u64,
    /// Bytes of the capture the archive was built from, when known.
    pub capture_bytes: Option<u64>,
    /// Events/s of the build, when it was built in this run.
    pub build_rate: Option<f64>,
    pub ingest: Option<Ingest>,
}

/// Every archive size of one backend.
pub struct BackendResult {
    pub backend: Backend,
    /// Where its archives were.
    pub place: String,
    /// One per `--events` size, in order.
    pub sizes: Vec<Measured>,
}

pub async fn command(mut args: HistoryBench) -> anyhow::Result<()> {
    let kinds = kinds::selected(&args.only)?;
    args.events.sort_unstable();
    args.events.dedup();
    let dir = args.keep.clone().unwrap_or_else(|| args.dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir:?}"))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {dir:?}"))?;
    let bin = binaries()?;
    let started = Instant::now();
    let load_at_start = load_average();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for backend in args.backend.clone() {
        // A backend that fails is reported and left out; the others still run.
        match measure_backend(&bin, backend, &args, &dir, &kinds).await {
            Ok(result) => results.push(result),
            Err(e) => {
                say(&format!("{} left out: {e:#}", backend.shown()));
                failed.push(format!("{} left out: {e:#}", backend.shown()));
            }
        }
    }
    println!("\n# Query cost against history size\n");
    println!("{}", machine());
    println!(
        "load average at start {load_at_start}, at end {}; total {:.0} s",
        load_average(),
        started.elapsed().as_secs_f64()
    );
    for r in &results {
        println!("{}", r.place);
    }
    for f in &failed {
        println!("{f}");
    }
    let command: Vec<String> = std::env::args().collect();
    println!("command: `{}`\n", command.join(" "));
    table::print(&args.events, &kinds, &results, &args);
    Ok(())
}

/// Every size on one backend, one archive at a time.
async fn measure_backend(
    bin: &Path,
    backend: Backend,
    args: &HistoryBench,
    dir: &Path,
    kinds: &[&Kind],
) -> anyhow::Result<BackendResult> {
    let place = Place::open(backend, dir, args.keep.is_some(), args.pg.as_deref())?;
    let mut sizes = Vec::new();
    for &events in &args.events {
        let measured = measure(bin, &place, args, dir, kinds, events).await;
        if measured.is_err() && args.keep.is_none() {
            // Not left behind to fill the disk the next backend needs.
            let _ = place.remove(&archive_name(events, args.seed)).await;
        }
        sizes.push(measured?);
    }
    Ok(BackendResult {
        backend,
        place: place.shown(),
        sizes,
    })
}

/// Builds (or, with `--keep`, finds) the archive of `events` events on
/// `place`, and measures it.
async fn measure(
    bin: &Path,
    place: &Place,
    args: &HistoryBench,
    dir: &Path,
    kinds: &[&Kind],
    events: usize,
) -> anyhow::Result<Measured> {
    let name = archive_name(events, args.seed);
    // The size of the capture a kept archive holds, for the next run.
    let sidecar = dir.join(format!("{name}.{}.capture-bytes", place.backend()));
    let found = match &args.keep {
        Some(_) => place.holding(&name, CLUSTER).await,
        None => None,
    };
    let url = place.url(&name);
    let (capture_bytes, build_rate) = match found {
        Some(held) if held.events >= events as u64 => {
            say(&format!("reusing `{url}`: {} events", held.events));
            let bytes = std::fs::read_to_string(&sidecar).ok();
            (bytes.and_then(|b| b.trim().parse().ok()), None)
        }
        _ => {
            say(&format!("building `{url}`: {events} events"));
            let url = place.recreate(&name).await?;
            let piped = archive::import_generated(bin, &url, args.seed, events, 0)?;
            let _ = std::fs::write(&sidecar, piped.bytes.to_string());
            let secs = piped.run.wall.as_secs_f64();
            say(&format!("built in {secs:.0} s"));
            let settling = Instant::now();
            place.settle(&name).await?;
            say(&format!(
                "settled (PostgreSQL: VACUUM (ANALYZE)) in {:.0} s",
                settling.elapsed().as_secs_f64()
            ));
            (Some(piped.bytes), Some(events as f64 / secs))
        }
    };
    let held = place
        .holding(&name, CLUSTER)
        .await
        .with_context(|| format!("the archive `{url}` holds no cluster `{CLUSTER}`"))?;
    let subjects = subjects::pick(bin, &url, held.checkpoint)?;
    let queries = time_kinds(bin, &url, &subjects, kinds, args);
    let archive_bytes = place.bytes(&name).await?;
    say(&format!("importing the next {} events", args.next_events));
    let ingest = archive::next_events(bin, place, &name, dir, args.seed, args.next_events)
        .await
        .map_err(|e| say(&format!("the ingest measurement failed: {e:#}")))
        .ok();
    match (&args.keep, capture_bytes, &ingest) {
        (None, ..) => {
            place.remove(&name).await?;
            let _ = std::fs::remove_file(&sidecar);
        }
        // The archive keeps the next events: so does its capture's size.
        (Some(_), Some(bytes), Some(next)) => {
            let _ = std::fs::write(&sidecar, (bytes + next.bytes).to_string());
        }
        (Some(_), ..) => {}
    }
    Ok(Measured {
        events: held.events,
        subjects: subjects::describe(&subjects),
        queries,
        archive_bytes,
        capture_bytes,
        build_rate,
        ingest,
    })
}

/// The name of the archive of `events` events of seed `seed`'s history.
fn archive_name(events: usize, seed: u64) -> String {
    format!("nc-history-{events}-{seed}")
}

/// Times each kind on the archive at `url`; a kind that fails is reported
/// and left out.
fn time_kinds(
    bin: &Path,
    url: &str,
    subjects: &subjects::Subjects,
    kinds: &[&Kind],
    args: &HistoryBench,
) -> Vec<Option<Timing>> {
    let repeat = Repeat {
        runs: args.runs,
        budget: Duration::from_secs(args.budget),
    };
    kinds
        .iter()
        .map(|kind| {
            let query = (kind.args)(subjects)?;
            match timing::time_query(bin, url, &query, repeat) {
                Ok(t) => {
                    say(&format!(
                        "{}: p50 {:.1} ms over {} runs",
                        kind.name,
                        t.p50.as_secs_f64() * 1000.0,
                        t.runs
                    ));
                    Some(t)
                }
                Err(e) => {
                    say(&format!("{} failed: {e:#}", kind.name));
                    None
                }
            }
        })
        .collect()
}

/// Progress, on stderr so that stdout is the report.
fn say(line: &str) {
    eprintln!("bench history: {line}");
}
