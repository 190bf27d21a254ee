//! The metrics `ingest --listen` reads from ingest's counters at each
//! scrape (bytes received, the last stored index and its time, Nomad's
//! newest index, the lag), and the registry that exposes them together
//! with those ingest updates as it goes.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::Stats;
use crate::metrics;

/// Every ingest metric, under [`metrics::PREFIX`].
pub fn registry(stats: Arc<Stats>) -> Registry {
    let mut registry = Registry::with_prefix(metrics::PREFIX);
    stats.metrics.register(&mut registry);
    registry.register_collector(Box::new(StatsCollector(stats)));
    registry
}

/// The metrics read from ingest's counters at each scrape.
#[derive(Debug)]
struct StatsCollector(Arc<Stats>);

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0;
        let e = &mut encoder;
        counter(
            e,
            "bytes_received",
            "Bytes of the event stream received.",
            &stats.bytes_read,
        )?;
        counter(
            e,
            "malformed_lines",
            "Lines of the stream that could not be parsed and were skipped.",
            &stats.malformed_lines,
        )?;
        counter(
            e,
            "events_duplicate",
            "Events received again (a resend) and skipped as already archived.",
            &stats.duplicates,
        )?;
        let stored = Stats::get(&stats.committed_index);
        let received = Stats::get(&stats.received_index);
        gauge(
            e,
            "last_stored_index",
            "The highest index stored (the checkpoint).",
            None,
            stored,
        )?;
        gauge(
            e,
            "last_stored_timestamp",
            "Nomad's time of the newest event stored, as Unix time.",
            Some(Unit::Seconds),
            stats.stored_nomad_time() as f64 / 1000.0,
        )?;
        gauge(
            e,
            "nomad_last_index",
            "Nomad's newest index, as the event stream delivered it.",
            None,
            received,
        )?;
        let (indexes, seconds) = lag(stats);
        gauge(
            e,
            "ingest_lag_indexes",
            "Nomad's newest index minus the last stored one.",
            None,
            indexes,
        )?;
        gauge(
            e,
            "ingest_lag",
            "Nomad's time of the newest event received minus that of the newest stored.",
            Some(Unit::Seconds),
            seconds,
        )
    }
}

/// How far the archive is behind what the stream delivered: in indexes,
/// and in seconds of Nomad's time (0 once caught up).
fn lag(stats: &Stats) -> (u64, f64) {
    let stored = Stats::get(&stats.committed_index);
    let received = Stats::get(&stats.received_index);
    if stored >= received {
        return (0, 0.0);
    }
    let millis = stats
        .newest_nomad_time()
        .saturating_sub(stats.stored_nomad_time())
        .max(0);
    (received - stored, millis as f64 / 1000.0)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(Stats::get(value));
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

fn gauge<N: EncodeGaugeValue + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    value: N,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    let unit = unit.as_ref();
    gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn the_lag_is_what_was_received_and_not_stored_yet() {
        let stats = Stats::default();
        stats.received_index.store(120, Ordering::Relaxed);
        stats.committed_index.store(100, Ordering::Relaxed);
        stats
            .newest_nomad_time
            .store(1_700_000_012_500, Ordering::Relaxed);
        stats
            .stored_nomad_time
            .store(1_700_000_010_000, Ordering::Relaxed);
        assert_eq!(lag(&stats), (20, 2.5));

        stats.committed_index.store(120, Ordering::Relaxed);
        assert_eq!(lag(&stats), (0, 0.0));
    }
}
