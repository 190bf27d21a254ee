//! Benchmarks, run by hand (never in tests): `cargo run --release -p bench -- --help`.
//!
//! - `all` runs everything on one generated capture and prints one table:
//!   the transport limit, nomad-chronicle's ingest over HTTP and import into
//!   SQLite and PostgreSQL, the Python baseline (bench/baseline.py), and
//!   query latency next to `jq` over the same history;
//! - `query` times the query commands alone, on an archive of generated
//!   history;
//! - `history` times the query binary on archives of growing history (by
//!   default 1,000,000 and 10,000,000 events) on SQLite and PostgreSQL, with
//!   the import rate into them, for docs/performance.md;
//! - `compression` measures candidate compressions of the archived events
//!   and where today's archive spends its bytes;
//! - `web` times the web timeline's requests on the archive `query` builds.

/// The nomad-chronicle binary's allocator (its `src/main.rs`): `web` serves
/// the timeline in this process, and should allocate as `serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod all;
mod child;
mod compression;
mod history;
mod query;
mod stats;
mod transport;
mod web;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "nomad-chronicle benchmarks")]
enum Bench {
    /// Everything, side by side with the transport limit and the Python baseline.
    All(all::AllBench),
    /// Query latency on an archive of generated history.
    Query(query::QueryBench),
    /// Query cost and ingest rate against history size.
    History(history::HistoryBench),
    /// Candidate compressions of the archived events, and today's archive by table.
    Compression(compression::CompressionBench),
    /// The web timeline's requests on the archive `query` builds.
    Web(web::WebBench),
}

// One thread, as ingest and import run: the transport reader then pays for
// no thread wake-up per chunk, which would understate the transport limit.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Bench::parse() {
        Bench::All(args) => all::command(args).await,
        Bench::Query(args) => query::command(args).await,
        Bench::History(args) => history::command(args).await,
        Bench::Compression(args) => compression::command(args).await,
        Bench::Web(args) => web::command(args).await,
    }
}
