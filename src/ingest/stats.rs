//! Counters shared by the reader and the writer, read by the progress log,
//! and the Prometheus metrics and health that `--listen` exposes.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::health::Health;
use crate::metrics::IngestMetrics;

/// What ingest has done so far. Relaxed atomics: the numbers are for humans
/// and for scrapes.
#[derive(Debug, Default)]
pub struct Stats {
    /// Highest index received from the stream.
    pub received_index: AtomicU64,
    /// Highest index committed to the archive.
    pub committed_index: AtomicU64,
    /// Events newly stored.
    pub events_stored: AtomicU64,
    /// Events skipped as already archived.
    pub duplicates: AtomicU64,
    /// Lines that could not be parsed.
    pub malformed_lines: AtomicU64,
    /// Gaps recorded.
    pub gaps: AtomicU64,
    /// Bytes of stream read.
    pub bytes_read: AtomicU64,
    /// Nomad's time (Unix ms) of the newest event received, for the lag.
    pub newest_nomad_time: AtomicI64,
    /// Nomad's time (Unix ms) of the newest event committed.
    pub stored_nomad_time: AtomicI64,
    /// The metrics ingest updates as it goes (by topic, by reason,
    /// histograms).
    pub metrics: IngestMetrics,
    /// What `/readyz` answers from.
    pub health: Health,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn raise(counter: &AtomicU64, value: u64) {
        counter.fetch_max(value, Ordering::Relaxed);
    }

    /// Raises a Nomad time to `millis` if that is newer.
    pub fn raise_time(time: &AtomicI64, millis: Option<i64>) {
        if let Some(millis) = millis {
            time.fetch_max(millis, Ordering::Relaxed);
        }
    }

    pub fn newest_nomad_time(&self) -> i64 {
        self.newest_nomad_time.load(Ordering::Relaxed)
    }

    pub fn stored_nomad_time(&self) -> i64 {
        self.stored_nomad_time.load(Ordering::Relaxed)
    }
}
