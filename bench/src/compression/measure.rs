//! Measuring one candidate: its stored bytes, compression CPU per event,
//! point lookups and a sequential read, each decode checked byte for byte;
//! for dictionaries, training cost and how the ratio holds as shapes drift.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};

use super::codec::{Packed, Scheme};
use super::corpus::Event;
use super::cpu::{CpuClock, micros_per};
use super::dicts;
use crate::stats::percentile;

/// One candidate's figures.
pub struct Measured {
    pub name: String,
    /// Bytes of the stored values.
    pub stored: u64,
    /// Values stored (events, or blocks).
    pub values: usize,
    pub compress_us: f64,
    /// One random event decoded alone: p50 and p99 wall time (each lookup
    /// is shorter than the scheduler's CPU accounting resolves).
    pub lookup_p50_us: f64,
    pub lookup_p99_us: f64,
    /// Every event in order: CPU per event.
    pub replay_us: f64,
}

/// A dictionary candidate's training and drift figures.
pub struct DictRow {
    pub name: String,
    pub bytes: usize,
    pub train: Duration,
    pub load: Duration,
    /// Compression factor (raw / stored) over the last half of the history,
    /// with the dictionaries trained on its first tenth, and with ones
    /// trained on that last half itself.
    pub last_half_early_dict: f64,
    pub last_half_own_dict: f64,
    pub untrained: Vec<String>,
}

/// Encodes `events` with `scheme` and measures it; returns the stored values.
pub fn candidate(
    name: &str,
    scheme: &Scheme,
    events: &[Event],
    lookups: usize,
) -> anyhow::Result<(Measured, Vec<Vec<u8>>)> {
    eprintln!("measuring {name}");
    let clock = CpuClock::start();
    let packed = scheme.pack(events)?;
    let compress = clock.elapsed();
    let decoders = scheme.decoders();
    let mut reader = scheme.reader(&packed, events, &decoders)?;
    let (mut seen, mut wrong) = (0usize, 0usize);
    let clock = CpuClock::start();
    reader.replay(|i, raw| {
        seen += 1;
        if raw != events[i].json.as_slice() {
            wrong += 1;
        }
    })?;
    let replay = clock.elapsed();
    ensure!(
        seen == events.len() && wrong == 0,
        "{name}: replay gave {seen} events, {wrong} different from the original"
    );
    let mut rng = fastrand::Rng::with_seed(7);
    let mut walls = Vec::with_capacity(lookups);
    for _ in 0..lookups {
        let i = rng.usize(..events.len());
        let started = Instant::now();
        let raw = reader.lookup(i)?;
        walls.push(started.elapsed());
        if raw != events[i].json {
            bail!("{name}: event {i} decoded differently from the original");
        }
    }
    drop(reader);
    let measured = Measured {
        name: name.to_owned(),
        stored: stored_bytes(&packed.values),
        values: packed.values.len(),
        compress_us: micros_per(compress, events.len()),
        lookup_p50_us: percentile(&mut walls, 0.5).as_secs_f64() * 1e6,
        lookup_p99_us: percentile(&mut walls, 0.99).as_secs_f64() * 1e6,
        replay_us: micros_per(replay, events.len()),
    };
    Ok((measured, packed.values))
}

/// Trains dictionaries of `size` bytes (per topic, or one `shared`) on the
/// first tenth of the history, measures them on all of it, and measures
/// the drift on the last half.
pub fn dictionary(
    events: &[Event],
    shared: bool,
    size: usize,
    lookups: usize,
) -> anyhow::Result<(Measured, Vec<Vec<u8>>, DictRow)> {
    let n = events.len();
    let kind = if shared { "shared dict" } else { "topic dict" };
    let name = format!("zstd-3 + {kind} {} KiB", size / 1024);
    let early = dicts::train(events, 0..n / 10, size, shared);
    let scheme = Scheme::Dict {
        level: 3,
        dicts: early.dicts.clone(),
    };
    let (measured, values) = candidate(&name, &scheme, events, lookups)?;
    let clock = CpuClock::start();
    drop(scheme.decoders());
    let load = clock.elapsed();
    let tail = &events[n / 2..];
    let tail_raw = raw_bytes(tail);
    let last_half_early_dict = factor(tail_raw, stored_bytes(&values[n / 2..]));
    let own = dicts::train(events, n / 2..n, size, shared);
    let own_packed: Packed = Scheme::Dict {
        level: 3,
        dicts: own.dicts,
    }
    .pack(tail)?;
    let row = DictRow {
        name,
        bytes: early.bytes(),
        train: early.cpu,
        load,
        last_half_early_dict,
        last_half_own_dict: factor(tail_raw, stored_bytes(&own_packed.values)),
        untrained: early.untrained.clone(),
    };
    Ok((measured, values, row))
}

fn stored_bytes(values: &[Vec<u8>]) -> u64 {
    values.iter().map(|v| v.len() as u64).sum()
}

fn raw_bytes(events: &[Event]) -> u64 {
    events.iter().map(|e| e.json.len() as u64).sum()
}

/// How many times smaller `stored` is than `raw`.
pub fn factor(raw: u64, stored: u64) -> f64 {
    if stored == 0 {
        return f64::NAN;
    }
    raw as f64 / stored as f64
}

pub fn print_candidates(rows: &[Measured], raw: u64) {
    println!(
        "| candidate | stored / raw | × smaller | values | compress µs/event | point lookup p50 µs | point lookup p99 µs | sequential µs/event |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for m in rows {
        println!(
            "| {} | {:.3} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
            m.name,
            m.stored as f64 / raw as f64,
            factor(raw, m.stored),
            m.values,
            m.compress_us,
            m.lookup_p50_us,
            m.lookup_p99_us,
            m.replay_us
        );
    }
    println!();
}

pub fn print_dictionaries(rows: &[DictRow]) {
    println!(
        "| dictionaries (trained on the first 10 %) | bytes | training CPU s | loading ms | × on last 50 % | × on last 50 %, own dict | topics without |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for d in rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {} |",
            d.name,
            d.bytes,
            d.train.as_secs_f64(),
            d.load.as_secs_f64() * 1e3,
            d.last_half_early_dict,
            d.last_half_own_dict,
            if d.untrained.is_empty() {
                "–".to_owned()
            } else {
                d.untrained.join(", ")
            }
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_is_raw_over_stored_and_nan_for_nothing_stored() {
        assert_eq!(factor(1000, 250), 4.0);
        assert!(factor(1000, 0).is_nan());
    }
}
