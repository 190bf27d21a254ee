//! `bench web`: what the web timeline waits for, on the archive `bench
//! query` builds (1,000,000 events by default). The page's routes and the
//! JSON API are served in this process exactly as `serve` mounts and runs
//! them (the archive opened for serving, a runtime with a thread per
//! core), on a loopback port, and requested over HTTP as the browser does:
//! the first view (the newest hour, as the page opens), the newest day,
//! zooms and pans at random widths and places (5 minutes to 7 days wide),
//! the whole history at once, the cursor's snapshot, an allocation's page,
//! and the page's own files. Timeline requests send the width of the
//! page's time axis, [`AXIS_PX`], as the page does. Each row is the p50
//! and p99 of the wall time from request to the last byte, and the
//! largest answer in bytes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nomad_chronicle::config::DbUrl;
use nomad_chronicle::store;
use nomad_chronicle::web;

use crate::stats::percentile;

#[derive(Debug, clap::Args)]
pub struct WebBench {
    /// The archive, as `bench query` builds it (run that first).
    #[arg(long, default_value = "sqlite:///tmp/nomad-chronicle-bench.db")]
    db: String,
    /// The cluster the page shows.
    #[arg(long, default_value = "bench")]
    cluster: String,
    /// Requests per row.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Generator of the random windows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const HOUR_MS: i64 = 3_600_000;

/// The pixels of the time axis the page sends: a 1,280-pixel wide window
/// less the lane labels.
const AXIS_PX: u32 = 1_060;

/// One row of the table: the requests of one kind.
struct Row {
    what: String,
    times: Vec<Duration>,
    largest: usize,
}

pub async fn command(args: WebBench) -> anyhow::Result<()> {
    let db = DbUrl::parse(&args.db)?;
    let store = store::connect(&db).await?;
    let status = store.status().await?;
    let Some(cluster) = status.clusters.iter().find(|c| c.cluster == args.cluster) else {
        bail!(
            "no cluster `{}` in {}: run `bench query` first to build the archive",
            args.cluster,
            db
        );
    };
    let (Some(first), Some(last)) = (cluster.first_event_at, cluster.last_event_at) else {
        bail!("cluster `{}` has no event dated by Nomad", args.cluster);
    };
    let events = cluster.events;
    store.close().await;
    let base = serve(db.clone(), args.cluster.clone()).await?;
    let client = reqwest::Client::new();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    println!(
        "# web timeline on {} ({events} events, {:.1} days of Nomad's time), {} requests a row\n",
        db,
        (last - first) as f64 / (24.0 * HOUR_MS as f64),
        args.runs
    );
    let timeline = format!("{base}/api/v1/timeline?width={AXIS_PX}");
    let newest = format!("{timeline}&by=job");
    let alloc = first_alloc(&client, &newest).await?;
    let mut rows = Vec::new();
    let fixed = [
        ("first view: newest hour, by job", newest.clone()),
        ("newest hour, by node", format!("{timeline}&by=node")),
        (
            "newest day, by job",
            format!(
                "{timeline}&by=job&from={}&to={}",
                last + 1 - 24 * HOUR_MS,
                last + 1
            ),
        ),
        (
            "whole history, by job",
            format!("{timeline}&by=job&from={first}&to={}", last + 1),
        ),
        (
            "allocation page",
            format!("{base}/api/v1/object/alloc/{alloc}"),
        ),
        ("page: /ui/", format!("{base}/ui/")),
        ("page: app.js", format!("{base}/ui/app.js")),
    ];
    for (what, url) in fixed {
        rows.push(time(&client, what, args.runs, || url.clone()).await?);
    }
    for width in [
        HOUR_MS / 12,
        HOUR_MS,
        6 * HOUR_MS,
        24 * HOUR_MS,
        7 * 24 * HOUR_MS,
    ] {
        let what = format!(
            "zoom or pan, {} wide",
            humantime::format_duration(ms(width))
        );
        let span = (last - first - width).max(1);
        let row = time(&client, &what, args.runs, || {
            let from = first + rng.i64(0..span);
            format!("{timeline}&by=job&from={from}&to={}", from + width)
        })
        .await?;
        rows.push(row);
    }
    let row = time(&client, "cursor: snapshot", args.runs, || {
        format!(
            "{base}/api/v1/snapshot?at={}",
            first + rng.i64(0..(last - first).max(1))
        )
    })
    .await?;
    rows.push(row);
    print_rows(&mut rows);
    Ok(())
}

/// Serves the page and the API as `serve` does: from the archive opened
/// for serving (read-only, with `serve`'s connections), on a runtime of
/// its own with a thread per core (this process's runtime has one thread,
/// for ingest's measurements, and sends the requests). Returns the base
/// URL once the archive is open.
async fn serve(db: DbUrl, cluster: String) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    // Built last: dropped on an error above, inside this process's
    // runtime, it would panic.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (opened, open) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let started = async {
                let store = store::open(&db, store::Access::Serve).await?;
                let routes =
                    web::api_routes(web::ApiState { store, cluster }).merge(web::page_routes());
                anyhow::Ok((tokio::net::TcpListener::from_std(listener)?, routes))
            };
            match started.await {
                Ok((listener, routes)) => {
                    let _ = opened.send(Ok(()));
                    let _ = axum::serve(listener, routes).await;
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            }
        });
    });
    open.await.context("the server's thread ended")??;
    Ok(format!("http://{address}"))
}

/// The ID of an allocation the newest hour shows.
async fn first_alloc(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let body = client.get(url).send().await?.bytes().await?;
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    answer["Bars"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|bar| bar["ID"].as_str())
        .map(str::to_owned)
        .context("no allocation in the newest hour")
}

/// Requests `runs` URLs made by `url`, each read to its last byte.
async fn time(
    client: &reqwest::Client,
    what: &str,
    runs: usize,
    mut url: impl FnMut() -> String,
) -> anyhow::Result<Row> {
    let mut row = Row {
        what: what.to_owned(),
        times: Vec::with_capacity(runs),
        largest: 0,
    };
    for _ in 0..runs {
        let url = url();
        let started = Instant::now();
        let answer = client.get(&url).send().await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        row.times.push(started.elapsed());
        if !status.is_success() {
            bail!("{url}: {status}: {}", String::from_utf8_lossy(&body));
        }
        row.largest = row.largest.max(body.len());
    }
    Ok(row)
}

fn print_rows(rows: &mut [Row]) {
    println!("| request | p50 ms | p99 ms | largest answer KB |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        let p50 = percentile(&mut row.times, 0.5);
        let p99 = percentile(&mut row.times, 0.99);
        println!(
            "| {} | {:.1} | {:.1} | {:.0} |",
            row.what,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            row.largest as f64 / 1024.0
        );
    }
}

fn ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}
