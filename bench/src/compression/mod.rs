//! `bench compression`: how small the archive's events get under each
//! candidate encoding, what each costs to write and to read back (one event,
//! as `query state` reads it; every event in order, as `replay` does), what
//! SQLite and PostgreSQL make of the stored values, and where today's
//! archive spends its bytes.

mod breakdown;
mod codec;
mod corpus;
mod cpu;
mod dicts;
mod measure;
mod storage;

use std::collections::BTreeMap;
use std::path::PathBuf;

use codec::Scheme;
use measure::Measured;

#[derive(Debug, clap::Args)]
pub struct CompressionBench {
    /// Events in the generated history.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Generator seed (the same seed gives the same history, byte for byte).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random events decoded alone per candidate (point lookups).
    #[arg(long, default_value_t = 2_000)]
    lookups: usize,
    /// Where the capture and the SQLite files are written (and deleted).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// A PostgreSQL URL of a role that may CREATE DATABASE; without it a
    /// throwaway server is started from the installed binaries, if any.
    #[arg(long, env = "NOMAD_CHRONICLE_BENCH_PG", hide_env_values = true)]
    pg: Option<String>,
    /// Parts to leave out: storage, breakdown, postgres.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

impl CompressionBench {
    fn runs(&self, part: &str) -> bool {
        !self.skip.iter().any(|s| s == part)
    }
}

/// Candidates whose stored values are written into SQLite and PostgreSQL.
const STORED: [&str; 5] = [
    "raw JSON",
    "zstd-3 per event",
    "zstd-3 + topic dict 64 KiB",
    "zstd-3 blocks of 64",
    "zstd-3 delta vs previous version, base every 16",
];

pub async fn command(args: CompressionBench) -> anyhow::Result<()> {
    println!("# nomad-chronicle compression candidates\n");
    let (events, previous) = corpus::generate(args.events, args.seed);
    let raw: u64 = events.iter().map(|e| e.json.len() as u64).sum();
    print_corpus(&events, raw, args.seed);
    let mut stored: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    stored.insert(
        STORED[0].to_owned(),
        events.iter().map(|e| e.json.clone()).collect(),
    );
    let mut rows = Vec::new();
    let mut keep = |m: Measured, values: Vec<Vec<u8>>| {
        if STORED.contains(&m.name.as_str()) {
            stored.insert(m.name.clone(), values);
        }
        rows.push(m);
    };
    for level in [1, 3] {
        let (m, v) = measure::candidate(
            &format!("zstd-{level} per event"),
            &Scheme::Plain { level },
            &events,
            args.lookups,
        )?;
        keep(m, v);
    }
    let mut dict_rows = Vec::new();
    for (shared, kib) in [(false, 16), (false, 64), (false, 112), (true, 112)] {
        let (m, v, d) = measure::dictionary(&events, shared, kib * 1024, args.lookups)?;
        keep(m, v);
        dict_rows.push(d);
    }
    for k in [16, 64, 256] {
        let scheme = Scheme::Block {
            level: 3,
            events: k,
        };
        let (m, v) = measure::candidate(
            &format!("zstd-3 blocks of {k}"),
            &scheme,
            &events,
            args.lookups,
        )?;
        keep(m, v);
    }
    for restart in [4, 16, 64] {
        let scheme = Scheme::Delta {
            level: 3,
            depths: corpus::chain_depths(&previous, restart),
            previous: previous.clone(),
        };
        let (m, v) = measure::candidate(
            &format!("zstd-3 delta vs previous version, base every {restart}"),
            &scheme,
            &events,
            args.lookups,
        )?;
        keep(m, v);
    }
    measure::print_candidates(&rows, raw);
    measure::print_dictionaries(&dict_rows);
    if args.runs("storage") {
        breakdown::storage_table(&args, &stored, raw).await?;
    }
    if args.runs("breakdown") {
        breakdown::today(&args, raw).await?;
    }
    Ok(())
}

fn print_corpus(events: &[corpus::Event], raw: u64, seed: u64) {
    let mut topics: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for e in events {
        let t = topics.entry(&e.topic).or_default();
        t.0 += 1;
        t.1 += e.json.len() as u64;
    }
    println!(
        "{} events, {:.1} MB of event JSON ({:.0} bytes per event), seed {seed}\n",
        events.len(),
        raw as f64 / 1e6,
        raw as f64 / events.len() as f64
    );
    println!("| topic | events | MB | bytes/event |");
    println!("|---|---:|---:|---:|");
    for (topic, (n, bytes)) in topics {
        println!(
            "| {topic} | {n} | {:.1} | {:.0} |",
            bytes as f64 / 1e6,
            bytes as f64 / n as f64
        );
    }
    println!();
}
