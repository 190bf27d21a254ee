//! Counters shared by the reader and the writer, read by the progress log.

use std::sync::atomic::{AtomicU64, Ordering};

/// What ingest has done so far. Relaxed atomics: the numbers are for humans.
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
}
