//! Prometheus metrics: what `ingest --listen` and `serve` expose on
//! `/metrics`, built on `prometheus-client` and encoded in the Prometheus
//! text format. Every name starts with `nomad_chronicle_`; counters end in
//! `_total`, and values are in base units (seconds, bytes).

pub mod ingest;
pub mod serve;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

pub use ingest::{IngestMetrics, LeaseState};
pub use serve::ServeMetrics;

/// The prefix of every metric this program exposes.
pub const PREFIX: &str = "nomad_chronicle";

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The registry's metrics in the Prometheus text format (version 0.0.4).
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; a collector that fails leaves out
    // only what it had not written yet.
    if prometheus_text::encode(&mut text, registry).is_err() {
        tracing::warn!("Cannot encode every metric; /metrics is incomplete");
    }
    text
}
