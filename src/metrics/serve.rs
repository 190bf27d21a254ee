//! What `serve` exposes: its event stream clients and what they were sent.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `serve`'s metrics and the registry that exposes them; the fields are
/// handles into it.
#[derive(Debug)]
pub struct ServeMetrics {
    /// Event stream clients connected now.
    pub clients: Gauge,
    /// Event streams opened.
    pub streams: Counter,
    /// Frames sent to event stream clients.
    pub frames_sent: Counter,
    /// Events sent to event stream clients.
    pub events_sent: Counter,
    registry: Registry,
}

impl Default for ServeMetrics {
    fn default() -> Self {
        let clients = Gauge::default();
        let streams = Counter::default();
        let frames_sent = Counter::default();
        let events_sent = Counter::default();
        let mut registry = Registry::with_prefix(super::PREFIX);
        let serve = registry.sub_registry_with_prefix("serve");
        serve.register(
            "clients",
            "Event stream clients connected now",
            clients.clone(),
        );
        serve.register("streams", "Event streams opened", streams.clone());
        serve.register(
            "frames_sent",
            "Frames sent to event stream clients",
            frames_sent.clone(),
        );
        serve.register(
            "events_sent",
            "Events sent to event stream clients",
            events_sent.clone(),
        );
        ServeMetrics {
            clients,
            streams,
            frames_sent,
            events_sent,
            registry,
        }
    }
}

impl ServeMetrics {
    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        super::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_keeps_its_metric_names() {
        let metrics = ServeMetrics::default();
        metrics.streams.inc();
        metrics.events_sent.inc_by(3);
        let text = metrics.encode();
        for line in [
            "nomad_chronicle_serve_clients 0\n",
            "nomad_chronicle_serve_streams_total 1\n",
            "nomad_chronicle_serve_frames_sent_total 0\n",
            "nomad_chronicle_serve_events_sent_total 3\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
