//! The metrics `ingest --listen` reads from ingest's counters at each
//! scrape (bytes received, the last stored index and its time, Nomad's
//! newest index, the lag), and the registry that exposes them together
//! with those ingest updates as it goes.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
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
        let received = Stats::get(&stats.received_index);
        let stored = Stats::get(&stats.committed_index);
        let counters = [
            (
                "bytes_received",
                "Bytes of the event stream received",
                Stats::get(&stats.bytes_read),
            ),
            (
                "malformed_lines",
                "Lines of the stream that could not be parsed and were skipped",
                Stats::get(&stats.malformed_lines),
            ),
            (
                "events_duplicate",
                "Events received again (a resend) and skipped as already archived",
                Stats::get(&stats.duplicates),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let lag_seconds = if stored >= received {
            0.0
        } else {
            let newest = stats.newest_nomad_time();
            let last = stats.stored_nomad_time();
            (newest.saturating_sub(last).max(0) as f64) / 1000.0
        };
        let gauges = [
            (
                "last_stored_index",
                "The highest index stored (the checkpoint)",
                None,
                stored as f64,
            ),
            (
                "last_stored_timestamp",
                "Nomad's time of the newest event stored, as Unix time",
                Some(Unit::Seconds),
                stats.stored_nomad_time() as f64 / 1000.0,
            ),
            (
                "nomad_last_index",
                "Nomad's newest index, as the event stream delivered it",
                None,
                received as f64,
            ),
            (
                "ingest_lag_indexes",
                "Nomad's newest index minus the last stored one",
                None,
                received.saturating_sub(stored) as f64,
            ),
            (
                "ingest_lag",
                "Nomad's time of the newest event received minus that of the newest stored",
                Some(Unit::Seconds),
                lag_seconds,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(value);
            let unit = unit.as_ref();
            gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
