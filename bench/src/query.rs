//! Query latency: builds (once) an archive of N generated events and times
//! the query commands in-process, through the same code the CLI uses, with
//! output written to a sink.

use std::time::{Duration, Instant};

use anyhow::Context;
use nomad_chronicle::archive::{Batch, ReceivedFrame, now_millis};
use nomad_chronicle::config::DbUrl;
use nomad_chronicle::nomad::{Line, parse_line};
use nomad_chronicle::query::QueryError;
use nomad_chronicle::query::lists::jobs::JobsQuery;
use nomad_chronicle::query::lists::{self, ListKind, ListQuery};
use nomad_chronicle::query::render::{Look, Output};
use nomad_chronicle::query::snapshot::{self, SnapshotQuery};
use nomad_chronicle::query::state::{self, At, StateQuery};
use nomad_chronicle::query::timeline::{self, Subject, TimelineQuery};
use nomad_chronicle::store::{self, MomentQuery, Point, Store};
use nomad_sim::Generator;

use crate::stats::{ms, percentile};

#[derive(Debug, Clone, clap::Args)]
pub struct QueryBench {
    /// The archive; built when it does not hold the `bench` cluster yet.
    #[arg(long, default_value = "sqlite:///tmp/nomad-chronicle-bench.db")]
    pub db: String,
    /// Events in the archive.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Runs per query kind (snapshot: at most 20).
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Which queries to time.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "job,alloc,node,state,snapshot,allocs,deployments,evals,jobs"
    )]
    pub only: Vec<String>,
}

/// IDs to ask about, sampled from the generated history.
#[derive(Default)]
pub struct Samples {
    /// (namespace, job ID)
    pub jobs: Vec<(String, String)>,
    pub allocs: Vec<String>,
    pub nodes: Vec<String>,
    pub last_index: u64,
}

/// One query kind's latencies.
pub struct Latency {
    pub kind: String,
    pub p50: Duration,
    pub p99: Duration,
    pub runs: usize,
}

/// What a query benchmark measured.
pub struct QueryReport {
    pub archive_events: u64,
    pub archive_bytes: u64,
    pub latencies: Vec<Latency>,
    pub samples: Samples,
}

/// An archive's URL as `DbUrl` writes it: without its password.
pub fn shown(db: &str) -> String {
    DbUrl::parse(db).map_or_else(|_| "(the archive)".to_owned(), |url| url.to_string())
}

/// `bench query`: prints the table.
pub async fn command(args: QueryBench) -> anyhow::Result<()> {
    let report = measure(&args, |line| println!("{line}")).await?;
    println!(
        "archive: {} ({} events, {:.1} MiB)",
        shown(&args.db),
        report.archive_events,
        report.archive_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "{:<10} {:>10} {:>10} {:>6}",
        "query", "p50 ms", "p99 ms", "runs"
    );
    for l in &report.latencies {
        println!(
            "{:<10} {:>10.2} {:>10.2} {:>6}",
            l.kind,
            ms(l.p50),
            ms(l.p99),
            l.runs
        );
    }
    Ok(())
}

/// Builds the archive if needed and times every kind in `args.only`.
pub async fn measure(
    args: &QueryBench,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<QueryReport> {
    let db = DbUrl::parse(&args.db)?;
    let store = store::connect(&db).await?;
    let samples = build(store.as_ref(), args, &mut progress).await?;
    let cluster = store
        .find_cluster("bench")
        .await?
        .context("the bench cluster")?;
    let status = store.status().await?;
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let last_time = last_time(store.as_ref(), &cluster, samples.last_index).await?;
    let pick = |rng: &mut fastrand::Rng, list: &[String]| list[rng.usize(..list.len())].clone();
    let mut latencies = Vec::new();
    for kind in args.only.iter().map(String::as_str) {
        let runs = if kind == "snapshot" {
            args.runs.min(20)
        } else {
            args.runs
        };
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut sink = std::io::sink();
            let started = Instant::now();
            let timeline_of = |subject, id: String, namespace: Option<String>| TimelineQuery {
                subject,
                id,
                namespace,
                from_index: 0,
                to_index: None,
                since: None,
                until: None,
                limit: 10_000,
            };
            let timeline = match kind {
                "job" => {
                    let (ns, job) = samples.jobs[rng.usize(..samples.jobs.len())].clone();
                    Some(timeline_of(Subject::Job, job, Some(ns)))
                }
                "alloc" => Some(timeline_of(
                    Subject::Alloc,
                    pick(&mut rng, &samples.allocs),
                    None,
                )),
                "node" => Some(timeline_of(
                    Subject::Node,
                    pick(&mut rng, &samples.nodes),
                    None,
                )),
                _ => None,
            };
            let result = match (kind, timeline) {
                (_, Some(q)) => {
                    timeline::run(
                        store.as_ref(),
                        &cluster,
                        &q,
                        Output::Table,
                        &mut sink,
                        &Look::default(),
                    )
                    .await
                }
                ("state", None) => {
                    let q = StateQuery {
                        topic: "Allocation".to_owned(),
                        key: pick(&mut rng, &samples.allocs),
                        at: At::Index(rng.u64(1..=samples.last_index)),
                    };
                    // An index before the allocation existed is a valid "not found".
                    match state::run(
                        store.as_ref(),
                        &cluster,
                        &q,
                        Output::Json,
                        &mut sink,
                        &Look::default(),
                    )
                    .await
                    {
                        Err(nomad_chronicle::query::QueryError::NotFound(_)) => Ok(()),
                        other => other,
                    }
                }
                ("snapshot", None) => {
                    let q = SnapshotQuery {
                        at: At::Index(rng.u64(1..=samples.last_index)),
                        job: None,
                        node: None,
                        // `query snapshot`'s default window, an hour.
                        terminal_within: Some(3_600_000),
                    };
                    snapshot::run(
                        store.as_ref(),
                        &cluster,
                        &q,
                        Output::Json,
                        &mut sink,
                        &Look::default(),
                    )
                    .await
                }
                (list, None) if LISTS.contains(&list) => {
                    run_list(store.as_ref(), &cluster, list, last_time, &mut sink).await
                }
                (other, None) => anyhow::bail!(
                    "unknown query kind `{other}`: use job, alloc, node, state, snapshot, allocs, \
                     deployments, evals or jobs"
                ),
            };
            result.with_context(|| format!("a {kind} query failed"))?;
            times.push(started.elapsed());
        }
        latencies.push(Latency {
            kind: kind.to_owned(),
            p50: percentile(&mut times, 0.5),
            p99: percentile(&mut times, 0.99),
            runs,
        });
    }
    store.close().await;
    Ok(QueryReport {
        archive_events: status.clusters.iter().map(|c| c.events).sum(),
        archive_bytes: status.database_bytes,
        latencies,
        samples,
    })
}

/// The list queries timed, as an on-call engineer asks them.
const LISTS: [&str; 4] = ["allocs", "deployments", "evals", "jobs"];

/// The Nomad time of the archive's newest event: list windows end there.
async fn last_time(
    store: &dyn Store,
    cluster: &nomad_chronicle::archive::Cluster,
    last_index: u64,
) -> anyhow::Result<i64> {
    let query = MomentQuery {
        point: Point::Index(last_index),
        terminal_within: None,
        refs: Vec::new(),
    };
    let moment = store.moment(cluster, &query).await?;
    Ok(moment.and_then(|m| m.time).unwrap_or_else(now_millis))
}

/// `query allocs --status failed,lost --since 2h`, `query deployments
/// --status failed --since 1d`, `query evals --status blocked,failed
/// --since 1d` (before the newest event) or `query jobs` (now); an empty
/// list is an answer.
async fn run_list(
    store: &dyn Store,
    cluster: &nomad_chronicle::archive::Cluster,
    kind: &str,
    last_time: i64,
    sink: &mut std::io::Sink,
) -> Result<(), QueryError> {
    const HOUR: i64 = 3_600_000;
    let list = |kind, statuses: &[&str], window: i64| ListQuery {
        kind,
        statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
        job: None,
        node: None,
        namespace: None,
        since: Some(last_time - window),
        until: None,
    };
    let answered = match kind {
        "allocs" => {
            let q = list(ListKind::Allocations, &["failed", "lost"], 2 * HOUR);
            lists::run(store, cluster, &q, Output::Json, sink, &Look::default()).await
        }
        "deployments" => {
            let q = list(ListKind::Deployments, &["failed"], 24 * HOUR);
            lists::run(store, cluster, &q, Output::Json, sink, &Look::default()).await
        }
        "evals" => {
            let q = list(ListKind::Evaluations, &["blocked", "failed"], 24 * HOUR);
            lists::run(store, cluster, &q, Output::Json, sink, &Look::default()).await
        }
        _ => {
            let q = JobsQuery {
                at: None,
                namespace: None,
            };
            lists::jobs::run(store, cluster, &q, Output::Json, sink, &Look::default()).await
        }
    };
    match answered {
        Err(QueryError::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// Generates the history, archiving it unless the archive already has it,
/// and samples IDs from it either way (the generator is deterministic).
async fn build(
    store: &dyn Store,
    args: &QueryBench,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<Samples> {
    let existing = store.find_cluster("bench").await?;
    let build = existing.as_ref().and_then(|c| c.checkpoint).is_none();
    let cluster = store.open_cluster("bench", None).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut lease = match store.lease("bench", &shutdown).await? {
        Some(lease) => lease,
        None => anyhow::bail!("no writer lease"),
    };
    let mut generator = Generator::new(args.seed);
    let mut samples = Samples::default();
    let (mut done, mut batch) = (0, Batch::default());
    let started = Instant::now();
    while done < args.events {
        let frame = generator.next_frame();
        samples.last_index = frame.index;
        for e in &frame.events {
            let sample = fastrand::u8(..) < 4;
            match e.topic.as_str() {
                "Job" if sample || samples.jobs.is_empty() => {
                    samples.jobs.push((e.namespace.clone(), e.key.clone()))
                }
                "Allocation" if sample => samples.allocs.push(e.key.clone()),
                "Node" if samples.nodes.len() < 1000 => samples.nodes.push(e.key.clone()),
                _ => {}
            }
        }
        done += frame.events.len();
        if !build {
            continue;
        }
        if let Ok(Line::Frame(parsed)) = parse_line(frame.to_line().as_bytes()) {
            batch.frames.push(ReceivedFrame {
                frame: parsed,
                received_at: now_millis(),
                preceding: None,
            });
        }
        if batch.event_count() >= 5_000 {
            lease.commit(&cluster, &batch).await?;
            batch = Batch::default();
            if done / 100_000 != (done - frame.events.len()) / 100_000 {
                progress(&format!("building the archive: {done} events"));
            }
        }
    }
    if build {
        lease.commit(&cluster, &batch).await?;
        progress(&format!(
            "built the archive: {done} events in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    samples.allocs.dedup();
    Ok(samples)
}
