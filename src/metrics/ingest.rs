//! The metrics ingest updates as it goes: events by topic, commit latency,
//! batch sizes, reconnects, gaps, the lease, reconstructions. (Those read
//! from its counters at each scrape are `ingest::scrape`'s.)

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::archive::{Batch, CommitStats, GapKind};

/// One label and its value, e.g. `topic="Job"`.
type Label = [(&'static str, String); 1];

/// The label value for events whose topic a commit could not attribute
/// (it skipped resends whose topics differ from the new events').
pub const UNATTRIBUTED: &str = "unattributed";

/// The writer's lease of the cluster, as `nomad_chronicle_lease_state`
/// reports it: one series per state, 1 for the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Waiting for the lease: another ingester holds it, or the database
    /// cannot be reached.
    Standby,
    /// Holding the lease and writing.
    Active,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Standby => "standby",
            LeaseState::Active => "active",
        }
    }
}

/// The metrics ingest updates itself. Cloning shares them: each field is a
/// handle to the same value.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// Events newly stored, by topic.
    pub events_stored: Family<Label, Counter>,
    /// Frames (raft indexes) newly stored.
    pub frames_stored: Counter,
    /// How long each successful batch commit took.
    pub commit_seconds: Histogram,
    /// Events per committed batch.
    pub batch_events: Histogram,
    /// Bytes of events per committed batch.
    pub batch_bytes: Histogram,
    /// Commits that failed and were retried.
    pub commit_retries: Counter,
    /// Subscriptions ended and opened again, by reason.
    pub reconnects: Family<Label, Counter>,
    /// Gaps recorded, by cause.
    pub gaps: Family<Label, Counter>,
    /// The writer's lease, one series per state.
    pub lease: Family<Label, Gauge>,
    /// Reconstructions after a gap that were stored.
    pub reconciliations: Counter,
    /// Reconstructions after a gap that failed or were refused.
    pub reconciliation_failures: Counter,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics {
            events_stored: Family::default(),
            frames_stored: Counter::default(),
            // 1 ms to about 33 s.
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            // 1 to about 1M events.
            batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 11)),
            // 1 KiB to 1 GiB.
            batch_bytes: Histogram::new(exponential_buckets(1024.0, 4.0, 11)),
            commit_retries: Counter::default(),
            reconnects: Family::default(),
            gaps: Family::default(),
            lease: Family::default(),
            reconciliations: Counter::default(),
            reconciliation_failures: Counter::default(),
        }
    }
}

impl IngestMetrics {
    /// Records a committed batch: `checkpoint` is the checkpoint before it,
    /// `bytes` the batch's event bytes, `took` the commit's duration.
    pub fn committed(
        &self,
        batch: &Batch,
        outcome: CommitStats,
        checkpoint: Option<u64>,
        bytes: usize,
        took: Duration,
    ) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.batch_events.observe(batch.event_count() as f64);
        self.batch_bytes.observe(bytes as f64);
        let stored = stored_by_topic(batch, outcome, checkpoint);
        for (topic, count) in stored.events {
            self.events_stored
                .get_or_create(&[("topic", topic.to_owned())])
                .inc_by(count);
        }
        self.frames_stored.inc_by(stored.frames);
    }

    pub fn reconnected(&self, reason: &'static str) {
        self.reconnects
            .get_or_create(&[("reason", reason.to_owned())])
            .inc();
    }

    pub fn gap(&self, kind: GapKind) {
        self.gaps
            .get_or_create(&[("cause", kind.as_str().to_owned())])
            .inc();
    }

    pub fn set_lease(&self, state: LeaseState) {
        for each in [LeaseState::Standby, LeaseState::Active] {
            self.lease
                .get_or_create(&[("state", each.as_str().to_owned())])
                .set(i64::from(each == state));
        }
    }

    /// Registers these metrics (handles to them) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let m = self.clone();
        let r = registry;
        r.register(
            "events_stored",
            "Events newly stored, by topic",
            m.events_stored,
        );
        r.register(
            "frames_stored",
            "Frames (raft indexes) newly stored",
            m.frames_stored,
        );
        r.register_with_unit(
            "batch_commit_duration",
            "How long a batch's commit took",
            Unit::Seconds,
            m.commit_seconds,
        );
        r.register("batch_events", "Events per committed batch", m.batch_events);
        r.register_with_unit(
            "batch_size",
            "Bytes of events per committed batch",
            Unit::Bytes,
            m.batch_bytes,
        );
        r.register(
            "commit_retries",
            "Batch commits that failed and were retried",
            m.commit_retries,
        );
        r.register(
            "reconnects",
            "Subscriptions to the event stream ended and opened again, by reason",
            m.reconnects,
        );
        r.register("gaps", "Gaps recorded in the history, by cause", m.gaps);
        r.register(
            "lease_state",
            "The writer's lease of the cluster: 1 for the current state (active or standby)",
            m.lease,
        );
        r.register(
            "reconciliations",
            "State reconstructions after a gap that were stored",
            m.reconciliations,
        );
        r.register(
            "reconciliation_failures",
            "State reconstructions after a gap that failed or were refused",
            m.reconciliation_failures,
        );
    }
}

/// What a commit newly stored, by topic.
struct Stored<'a> {
    events: BTreeMap<&'a str, u64>,
    frames: u64,
}

/// Splits what a commit stored by topic. Frames at or below the checkpoint
/// before it are resends; when the duplicates the commit skipped are
/// exactly those, the new frames' events are what it stored. Otherwise
/// (an import behind the archive, a partly resent frame) the split is only
/// known without duplicates; with them, the events stored are counted as
/// [`UNATTRIBUTED`], so the topics always add up to the events stored.
fn stored_by_topic(batch: &Batch, outcome: CommitStats, checkpoint: Option<u64>) -> Stored<'_> {
    let mut fresh = Stored {
        events: BTreeMap::new(),
        frames: 0,
    };
    let mut resent = 0u64;
    for received in &batch.frames {
        let frame = &received.frame;
        if checkpoint.is_some_and(|c| frame.index <= c) {
            resent += frame.events.len() as u64;
            continue;
        }
        fresh.frames += 1;
        for event in &frame.events {
            *fresh.events.entry(event.topic.as_str()).or_default() += 1;
        }
    }
    let fresh_events: u64 = fresh.events.values().sum();
    if outcome.duplicates == resent && outcome.inserted == fresh_events {
        return fresh;
    }
    let mut all = BTreeMap::new();
    if outcome.duplicates == 0 {
        for event in batch.frames.iter().flat_map(|f| &f.frame.events) {
            *all.entry(event.topic.as_str()).or_default() += 1;
        }
    } else if outcome.inserted > 0 {
        all.insert(UNATTRIBUTED, outcome.inserted);
    }
    Stored {
        events: all,
        frames: fresh.frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ReceivedFrame;
    use crate::nomad::{Event, Frame};

    fn frame(index: u64, topics: &[&str]) -> ReceivedFrame {
        let events = topics
            .iter()
            .map(|t| Event {
                topic: (*t).to_owned(),
                ..Event::default()
            })
            .collect();
        ReceivedFrame {
            frame: Frame { index, events },
            received_at: 0,
            preceding: None,
        }
    }

    fn batch(frames: Vec<ReceivedFrame>) -> Batch {
        Batch {
            frames,
            ..Batch::default()
        }
    }

    fn counts(stored: &Stored<'_>) -> Vec<(String, u64)> {
        stored
            .events
            .iter()
            .map(|(t, n)| ((*t).to_owned(), *n))
            .collect()
    }

    #[test]
    fn a_resend_at_the_checkpoint_is_left_out_of_the_topics() {
        let batch = batch(vec![frame(5, &["Job", "Job"]), frame(6, &["Node"])]);
        let outcome = CommitStats {
            inserted: 1,
            duplicates: 2,
        };
        let stored = stored_by_topic(&batch, outcome, Some(5));
        assert_eq!(counts(&stored), vec![("Node".to_owned(), 1)]);
        assert_eq!(stored.frames, 1);
    }

    #[test]
    fn duplicates_that_are_not_the_resends_are_counted_unattributed() {
        let batch = batch(vec![frame(7, &["Job", "Node"])]);
        let outcome = CommitStats {
            inserted: 1,
            duplicates: 1,
        };
        let stored = stored_by_topic(&batch, outcome, Some(5));
        assert_eq!(counts(&stored), vec![(UNATTRIBUTED.to_owned(), 1)]);
    }

    #[test]
    fn the_lease_state_is_one_for_the_current_state_only() {
        let metrics = IngestMetrics::default();
        metrics.set_lease(LeaseState::Standby);
        metrics.set_lease(LeaseState::Active);
        let mut registry = Registry::with_prefix(super::super::PREFIX);
        metrics.register(&mut registry);
        let text = super::super::encode(&registry);
        assert!(
            text.contains("nomad_chronicle_lease_state{state=\"active\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("nomad_chronicle_lease_state{state=\"standby\"} 0\n"),
            "{text}"
        );
    }
}
