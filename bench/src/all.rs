//! `bench all`: every measurement on one capture in one run, printed as one
//! table — the transport limit, nomad-chronicle's ingest over HTTP and import
//! into SQLite and PostgreSQL, the Python baseline, and query latency with
//! `jq` over a capture of the same history for comparison. Each figure is
//! the median of `--runs` runs; ratios are taken between figures of the same
//! invocation.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nomad_sim::Generator;

use crate::child::{Run, on_path, remove_sqlite, run_measured, sqlite_bytes};
use crate::query::{self, QueryBench};
use crate::stats::{median, ms};
use crate::transport;
use testkit::pg::{self, Durability, PgServer};

#[derive(Debug, clap::Args)]
pub struct AllBench {
    /// Events in the capture that every ingest row reads.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Runs of each measurement; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Generator seed (the same seed gives the same history, byte for byte).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where captures and archives are written (and deleted afterwards).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// A PostgreSQL URL of a role that may CREATE DATABASE; without it a
    /// throwaway server is started from the installed binaries, if any.
    #[arg(long, env = "NOMAD_CHRONICLE_BENCH_PG", hide_env_values = true)]
    pg: Option<String>,
    /// The Python interpreter for the baseline.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Events in the archive the query latencies are measured on.
    #[arg(long, default_value_t = 1_000_000)]
    query_events: usize,
    /// Runs per query kind.
    #[arg(long, default_value_t = 100)]
    query_runs: usize,
    /// Runs of `jq` over the query archive's capture (each reads all of it).
    #[arg(long, default_value_t = 3)]
    jq_runs: usize,
    /// Parts to leave out: transport, sqlite, postgres, baseline, query, jq.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Keep the captures (the query archive is always kept for the next run).
    #[arg(long)]
    keep: bool,
}

impl AllBench {
    fn runs(&self, part: &str) -> bool {
        !self.skip.iter().any(|s| s == part)
    }
}

/// A generated capture, as `curl -N` would have saved the stream.
pub struct Capture {
    pub path: PathBuf,
    events: usize,
    frames: usize,
    last_index: u64,
    pub bytes: u64,
}

/// One row of the ingest table: the median of its runs.
struct Row {
    what: String,
    events_per_sec: f64,
    mb_per_sec: f64,
    peak_rss: Option<f64>,
    /// Bytes of the archive after the run (median), when there is one.
    archive_bytes: Option<f64>,
}

pub async fn command(args: AllBench) -> anyhow::Result<()> {
    let bin = binaries()?;
    println!("# nomad-chronicle benchmarks\n");
    println!("{}", machine());
    println!("load average at start: {}", load_average());
    let started = Instant::now();
    let capture = write_capture(&args.dir, args.events, args.seed)?;
    println!(
        "capture: {} events in {} frames, {:.1} MB ({:.0} bytes per event), seed {}; medians of {} runs\n",
        capture.events,
        capture.frames,
        capture.bytes as f64 / 1e6,
        capture.bytes as f64 / capture.events as f64,
        args.seed,
        args.runs
    );
    let sim = Simulator::start(&bin, &args, &capture)?;
    let mut rows = Vec::new();
    let mut transport_rows = Vec::new();
    if args.runs("transport") {
        let url = format!("{}/v1/event/stream?namespace=*", sim.address);
        let lines = capture.frames + 1;
        let mut times = Vec::new();
        for _ in 0..args.runs {
            times.push(transport::reqwest_reader(&url, lines).await?);
        }
        transport_rows.push(row_of(
            "transport: reqwest, bytes discarded",
            &capture,
            &times,
        ));
        if on_path("curl").is_some() {
            let mut times = Vec::new();
            for _ in 0..args.runs {
                times.push(transport::curl(&url, lines)?);
            }
            transport_rows.push(row_of("transport: `curl -N` > /dev/null", &capture, &times));
        }
    }
    if args.runs("sqlite") {
        let db = args.dir.join("nc-bench-ingest.db");
        rows.push(sqlite_row(
            "nomad-chronicle ingest, HTTP → SQLite",
            &args,
            &capture,
            &db,
            |url| {
                let mut cmd = Command::new(bin.join("nomad-chronicle"));
                cmd.arg("--db").arg(url).args([
                    "ingest",
                    "--address",
                    &sim.address,
                    "--until-index",
                    &capture.last_index.to_string(),
                ]);
                cmd
            },
        )?);
        rows.push(sqlite_row(
            "nomad-chronicle import, file → SQLite",
            &args,
            &capture,
            &db,
            |url| {
                let mut cmd = Command::new(bin.join("nomad-chronicle"));
                cmd.arg("--db").arg(url).arg("import").arg(&capture.path);
                cmd
            },
        )?);
        rows.push(packed_row(&bin, &args, &capture, &db)?);
    }
    if args.runs("postgres") {
        match postgres_rows(&bin, &args, &capture, &sim.address).await {
            Ok(pg_rows) => rows.extend(pg_rows),
            Err(e) => println!("PostgreSQL rows skipped: {e:#}\n"),
        }
    }
    let mut baseline = None;
    if args.runs("baseline") {
        let db = args.dir.join("nc-bench-baseline.db");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("baseline.py");
        let row = sqlite_row(
            "BASELINE: bench/baseline.py, HTTP → sqlite3",
            &args,
            &capture,
            &db,
            |_| {
                let mut cmd = Command::new(&args.python);
                cmd.arg(&script)
                    .args(["--address", &sim.address, "--db"])
                    .arg(&db)
                    .args(["--until-index", &capture.last_index.to_string()]);
                cmd
            },
        )?;
        baseline = Some(row.events_per_sec);
        rows.push(row);
    }
    drop(sim);
    let transport_limit = transport_rows
        .iter()
        .map(|r| r.events_per_sec)
        .fold(None, |best: Option<f64>, v| {
            Some(best.map_or(v, |b| b.max(v)))
        });
    print_rows(&transport_rows, &rows, &capture, baseline, transport_limit);
    if !args.keep {
        let _ = std::fs::remove_file(&capture.path);
    }
    if args.runs("query") {
        query_and_jq(&args).await?;
    }
    println!(
        "\nload average at end: {}; total {:.0} s",
        load_average(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The directory of the binaries to run, built first when run through cargo.
pub fn binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("where the bench binary is")?;
    let dir = exe
        .parent()
        .context("the bench binary's directory")?
        .to_owned();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let profile = dir.file_name().and_then(|n| n.to_str()) == Some("release");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "nomad-chronicle",
            "-p",
            "nomad-sim",
            "--bins",
        ]);
        if profile {
            cmd.arg("--release");
        }
        let status = cmd.status().context("cannot run cargo build")?;
        if !status.success() {
            bail!("cargo build failed");
        }
    }
    for name in ["nomad-chronicle", "nomad-sim"] {
        if !dir.join(name).is_file() {
            bail!(
                "`{}` is missing: run `cargo build --release --workspace --bins` first",
                dir.join(name).display()
            );
        }
    }
    Ok(dir)
}

/// `nproc`, the CPU model and memory, from /proc.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    format!("machine: {cpus} CPUs ({model}), {mem_gib:.1} GiB memory")
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Writes the capture exactly as `nomad-sim capture` does: `{}`, every
/// frame, a `{}` heartbeat every 500 frames.
pub fn write_capture(dir: &Path, events: usize, seed: u64) -> anyhow::Result<Capture> {
    let path = dir.join(format!("nc-bench-capture-{events}-{seed}.ndjson"));
    let file = std::fs::File::create(&path).with_context(|| format!("cannot create {path:?}"))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let mut generator = Generator::new(seed);
    out.write_all(b"{}\n")?;
    let (mut done, mut frames, mut last_index) = (0, 0, 0);
    while done < events {
        let frame = generator.next_frame();
        done += frame.events.len();
        frames += 1;
        last_index = frame.index;
        out.write_all(frame.to_line().as_bytes())?;
        out.write_all(b"\n")?;
        if frames % 500 == 0 {
            out.write_all(b"{}\n")?;
        }
    }
    out.flush()?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Capture {
        path,
        events: done,
        frames,
        last_index,
        bytes,
    })
}

/// `nomad-sim` serving the capture's history at full speed.
struct Simulator {
    child: Child,
    address: String,
}

impl Simulator {
    fn start(bin: &Path, args: &AllBench, capture: &Capture) -> anyhow::Result<Simulator> {
        let port = pg::free_port().map_err(anyhow::Error::msg)?;
        let child = Command::new(bin.join("nomad-sim"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--preload", &args.events.to_string()])
            .args(["--rate", "0", "--seed", &args.seed.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nomad-sim")?;
        let sim = Simulator {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nomad-sim did not start listening");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = capture;
        Ok(sim)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn row_of(what: &str, capture: &Capture, times: &[Duration]) -> Row {
    let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    let secs = median(&secs).unwrap_or(f64::NAN);
    Row {
        what: what.to_owned(),
        events_per_sec: capture.events as f64 / secs,
        mb_per_sec: capture.bytes as f64 / 1e6 / secs,
        peak_rss: None,
        archive_bytes: None,
    }
}

fn row_of_runs(what: &str, capture: &Capture, runs: &[Run], bytes: &[f64]) -> Row {
    let times: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    let rss: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.peak_rss.map(|b| b as f64))
        .collect();
    Row {
        peak_rss: median(&rss),
        archive_bytes: median(bytes),
        ..row_of(what, capture, &times)
    }
}

/// Runs `cmd(url)` `--runs` times, each into a new SQLite archive at `db`.
fn sqlite_row(
    what: &str,
    args: &AllBench,
    capture: &Capture,
    db: &Path,
    cmd: impl Fn(&str) -> Command,
) -> anyhow::Result<Row> {
    let url = format!("sqlite://{}", db.display());
    let (mut runs, mut bytes) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        remove_sqlite(db);
        runs.push(run_measured(&mut cmd(&url)).with_context(|| what.to_owned())?);
        bytes.push(sqlite_bytes(db) as f64);
    }
    remove_sqlite(db);
    Ok(row_of_runs(what, capture, &runs, &bytes))
}

/// Import into SQLite, then every event packed into blocks and the file
/// rewritten (`compact --pack-older-than 0s --vacuum`): the rate counts
/// both commands, the peak is the larger of the two, the size is after
/// both.
fn packed_row(bin: &Path, args: &AllBench, capture: &Capture, db: &Path) -> anyhow::Result<Row> {
    let what = "import, then `compact --pack-older-than 0s --vacuum`";
    let url = format!("sqlite://{}", db.display());
    let (mut runs, mut bytes) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        remove_sqlite(db);
        let mut import = Command::new(bin.join("nomad-chronicle"));
        import
            .arg("--db")
            .arg(&url)
            .arg("import")
            .arg(&capture.path);
        let mut compact = Command::new(bin.join("nomad-chronicle"));
        compact
            .arg("--db")
            .arg(&url)
            .args(["compact", "--pack-older-than", "0s", "--vacuum"]);
        let first = run_measured(&mut import).with_context(|| what.to_owned())?;
        let second = run_measured(&mut compact).with_context(|| what.to_owned())?;
        runs.push(Run {
            wall: first.wall + second.wall,
            peak_rss: first.peak_rss.max(second.peak_rss),
        });
        bytes.push(sqlite_bytes(db) as f64);
    }
    remove_sqlite(db);
    Ok(row_of_runs(what, capture, &runs, &bytes))
}

async fn postgres_rows(
    bin: &Path,
    args: &AllBench,
    capture: &Capture,
    address: &str,
) -> anyhow::Result<Vec<Row>> {
    let server;
    let admin = match &args.pg {
        Some(url) => url.clone(),
        None => {
            server =
                PgServer::start_in(&args.dir, Durability::Stock).map_err(anyhow::Error::msg)?;
            println!("PostgreSQL: a throwaway server, {}", server.version());
            server.url("postgres")
        }
    };
    let name = "nc_bench";
    let mut rows = Vec::new();
    for (what, import) in [
        ("nomad-chronicle ingest, HTTP → PostgreSQL", false),
        ("nomad-chronicle import, file → PostgreSQL", true),
    ] {
        let (mut runs, mut bytes) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let url = pg::recreate_database(&admin, name)
                .await
                .map_err(anyhow::Error::msg)?;
            let mut cmd = Command::new(bin.join("nomad-chronicle"));
            cmd.arg("--db").arg(&url);
            if import {
                cmd.arg("import").arg(&capture.path);
            } else {
                cmd.args(["ingest", "--address", address, "--until-index"])
                    .arg(capture.last_index.to_string());
            }
            runs.push(run_measured(&mut cmd).context(what)?);
            bytes.push(pg::archive_bytes(&url).await.map_err(anyhow::Error::msg)? as f64);
        }
        rows.push(row_of_runs(what, capture, &runs, &bytes));
    }
    pg::drop_database(&admin, name)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(rows)
}

fn print_rows(
    transport: &[Row],
    rows: &[Row],
    capture: &Capture,
    baseline: Option<f64>,
    transport_limit: Option<f64>,
) {
    println!(
        "| what | events/s | MB/s | peak RSS MB | archive bytes/event | archive / capture | × baseline | % of transport |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("–".to_owned(), f);
    for row in transport.iter().chain(rows) {
        println!(
            "| {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
            row.what,
            row.events_per_sec,
            row.mb_per_sec,
            opt(row.peak_rss, &|b| format!("{:.0}", b / 1e6)),
            opt(row.archive_bytes, &|b| format!(
                "{:.0}",
                b / capture.events as f64
            )),
            opt(row.archive_bytes, &|b| format!(
                "{:.2}",
                b / capture.bytes as f64
            )),
            opt(baseline, &|b| format!("{:.1}", row.events_per_sec / b)),
            opt(transport_limit, &|t| format!(
                "{:.0} %",
                100.0 * row.events_per_sec / t
            )),
        );
    }
}

/// Query latency on the (cached) archive of `--query-events` events, and the
/// job timeline answered by `jq` over a capture of the same history.
async fn query_and_jq(args: &AllBench) -> anyhow::Result<()> {
    let bench = QueryBench {
        db: format!(
            "sqlite://{}",
            args.dir
                .join(format!(
                    "nc-bench-query-{}-{}.db",
                    args.query_events, args.seed
                ))
                .display()
        ),
        events: args.query_events,
        runs: args.query_runs,
        seed: args.seed,
        only: ["job", "alloc", "node", "state", "snapshot"]
            .map(str::to_owned)
            .to_vec(),
    };
    let report = query::measure(&bench, |line| println!("{line}")).await?;
    println!(
        "\nquery latency at {} events ({}; {:.0} MiB):\n",
        report.archive_events,
        query::shown(&bench.db),
        report.archive_bytes as f64 / (1024.0 * 1024.0)
    );
    println!("| query | p50 ms | p99 ms | runs |");
    println!("|---|---:|---:|---:|");
    for l in &report.latencies {
        println!(
            "| `query {}` | {:.2} | {:.2} | {} |",
            l.kind,
            ms(l.p50),
            ms(l.p99),
            l.runs
        );
    }
    let Some(job) = report.latencies.iter().find(|l| l.kind == "job") else {
        return Ok(());
    };
    if !args.runs("jq") || on_path("jq").is_none() || report.samples.jobs.is_empty() {
        println!("\n(jq comparison skipped)");
        return Ok(());
    }
    let capture = write_capture(&args.dir, args.query_events, args.seed)?;
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut times = Vec::new();
    for _ in 0..args.jq_runs {
        let (namespace, id) = &report.samples.jobs[rng.usize(..report.samples.jobs.len())];
        let run = run_measured(
            Command::new("jq")
                .args(["-c", "--arg", "ns", namespace, "--arg", "job", id, JQ_JOB])
                .arg(&capture.path),
        )?;
        times.push(run.wall.as_secs_f64());
    }
    if !args.keep {
        let _ = std::fs::remove_file(&capture.path);
    }
    let jq = median(&times).unwrap_or(f64::NAN);
    println!(
        "\njob timeline: `query job` p50 {:.1} ms; `jq` over the {:.0} MB capture {:.0} ms (median of {}): jq takes {:.0} × as long\n\njq program: `jq -c --arg ns NS --arg job ID '{JQ_JOB}' capture.ndjson`",
        ms(job.p50),
        capture.bytes as f64 / 1e6,
        jq * 1000.0,
        times.len(),
        jq / job.p50.as_secs_f64()
    );
    Ok(())
}

/// Every event of a job: its own Job events and the evaluations,
/// allocations and deployments that name it, in its namespace.
const JQ_JOB: &str = r#".Events[]? | select(.Namespace == $ns and ((.Topic == "Job" and .Key == $job) or ((.Payload.Evaluation // .Payload.Allocation // .Payload.Deployment // {}).JobID == $job)))"#;
