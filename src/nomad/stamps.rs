//! What an event's payload says about *when* it happened by Nomad's own
//! clock, and whether its object is still there: read from the few payload
//! fields that carry it (kept as raw JSON text by the scan, interpreted
//! here, leniently: a field of an unexpected type counts as absent).
//!
//! Times: `Allocation`, `Evaluation` and `Deployment` carry `ModifyTime`
//! (Unix ns); a `Job` carries `SubmitTime` (ns), which dates the event only
//! when the event is the version's own entry (`JobModifyIndex` equals the
//! frame's index: a status change of the job does not move it); a `Node`
//! carries `StatusUpdatedAt` (Unix seconds) and `Events[].Timestamp` (RFC
//! 3339), of which the newest counts.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A payload field's JSON text, not interpreted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Raw<'a>(pub &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &'a RawValue = Deserialize::deserialize(deserializer)?;
        Ok(Raw(raw.get()))
    }
}

impl Raw<'_> {
    /// The value as an integer; `None` for anything else.
    fn int(self) -> Option<i64> {
        self.0.trim().parse().ok()
    }

    /// The value as a string; `None` for anything else.
    fn text(self) -> Option<String> {
        serde_json::from_str(self.0).ok()
    }
}

/// The time- and status-bearing fields of the payload object named after
/// the event's topic, as raw text.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct Stamps<'a> {
    #[serde(rename = "ModifyTime", borrow, default)]
    pub modify_time: Option<Raw<'a>>,
    #[serde(rename = "SubmitTime", borrow, default)]
    pub submit_time: Option<Raw<'a>>,
    #[serde(rename = "JobModifyIndex", borrow, default)]
    pub job_modify_index: Option<Raw<'a>>,
    #[serde(rename = "StatusUpdatedAt", borrow, default)]
    pub status_updated_at: Option<Raw<'a>>,
    #[serde(rename = "Events", borrow, default)]
    pub events: Option<Raw<'a>>,
    #[serde(rename = "ClientStatus", borrow, default)]
    pub client_status: Option<Raw<'a>>,
}

/// What an event says of its object, for snapshots of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The object exists (a stopped job too: it stays, dead).
    Present,
    /// An allocation whose client status is complete, failed or lost.
    Terminal,
    /// A deregistered node, or a purged job.
    Removed,
}

impl Presence {
    /// The value of the `presence` column.
    pub fn code(self) -> i16 {
        match self {
            Presence::Present => 0,
            Presence::Terminal => 1,
            Presence::Removed => 2,
        }
    }

    /// Reads the `presence` column; `None` for a value it never holds.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Presence::Present),
            1 => Some(Presence::Terminal),
            2 => Some(Presence::Removed),
            _ => None,
        }
    }
}

/// The time Nomad gave the event, Unix ms; `None` when its payload has none.
pub fn event_time(topic: &str, frame_index: u64, stamps: &Stamps<'_>) -> Option<i64> {
    let ns = |raw: Option<Raw<'_>>| raw.and_then(Raw::int).map(|t| t.div_euclid(1_000_000));
    let time = match topic {
        "Allocation" | "Evaluation" | "Deployment" => ns(stamps.modify_time),
        "Job" => {
            let own_entry =
                stamps.job_modify_index.and_then(Raw::int) == i64::try_from(frame_index).ok();
            if own_entry {
                ns(stamps.submit_time)
            } else {
                None
            }
        }
        "Node" => {
            let status = stamps
                .status_updated_at
                .and_then(Raw::int)
                .and_then(|s| s.checked_mul(1000));
            status.max(stamps.events.and_then(newest_node_event))
        }
        _ => None,
    };
    // Zero is Go's "never set".
    time.filter(|t| *t > 0)
}

/// The newest `Timestamp` of a node's `Events`, Unix ms.
fn newest_node_event(events: Raw<'_>) -> Option<i64> {
    #[derive(Deserialize)]
    struct NodeEvent {
        #[serde(rename = "Timestamp", default)]
        timestamp: Option<String>,
    }
    let events: Vec<NodeEvent> = serde_json::from_str(events.0).ok()?;
    events
        .iter()
        .filter_map(|e| e.timestamp.as_deref()?.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
        .max()
}

/// What the event says of its object; `None` for topics snapshots do not show.
pub fn presence(
    topic: &str,
    event_type: &str,
    stamps: &Stamps<'_>,
    deleted: Option<Raw<'_>>,
) -> Option<Presence> {
    match topic {
        "Node" if event_type == "NodeDeregistration" => Some(Presence::Removed),
        "Node" => Some(Presence::Present),
        // A deregistration without purge is a stop: the job stays, dead.
        "Job" if deleted.is_some_and(|d| d.0.trim() == "true") => Some(Presence::Removed),
        "Job" => Some(Presence::Present),
        "Allocation" => {
            let status = stamps.client_status.and_then(Raw::text);
            let terminal = matches!(status.as_deref(), Some("complete" | "failed" | "lost"));
            Some(if terminal {
                Presence::Terminal
            } else {
                Presence::Present
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(json: &str) -> Stamps<'_> {
        serde_json::from_str(json).expect("valid stamps")
    }

    #[test]
    fn objects_are_dated_by_their_own_clock_fields() {
        let alloc = stamps(r#"{"ModifyTime":1700000000123456789,"ClientStatus":"running"}"#);
        assert_eq!(event_time("Allocation", 5, &alloc), Some(1_700_000_000_123));
        let node = stamps(
            r#"{"StatusUpdatedAt":1700000000,"Events":[{"Timestamp":"2023-11-14T23:13:25.5+01:00"},{"Timestamp":null}]}"#,
        );
        assert_eq!(event_time("Node", 5, &node), Some(1_700_000_005_500));
        let old_events = stamps(r#"{"StatusUpdatedAt":1700000009,"Events":null}"#);
        assert_eq!(event_time("Node", 5, &old_events), Some(1_700_000_009_000));
    }

    #[test]
    fn a_job_is_dated_by_its_submission_only_in_the_entry_of_that_version() {
        let job = stamps(r#"{"SubmitTime":1700000000000000000,"JobModifyIndex":42}"#);
        assert_eq!(event_time("Job", 42, &job), Some(1_700_000_000_000));
        assert_eq!(event_time("Job", 43, &job), None);
    }

    #[test]
    fn unset_or_odd_times_count_as_absent() {
        for json in [
            r#"{"ModifyTime":0}"#,
            r#"{"ModifyTime":"soon"}"#,
            r#"{"ModifyTime":1.5e18}"#,
            r#"{}"#,
        ] {
            assert_eq!(event_time("Evaluation", 1, &stamps(json)), None, "{json}");
        }
        assert_eq!(event_time("NodePool", 1, &Stamps::default()), None);
        let bad_events = stamps(r#"{"Events":[{"Timestamp":"yesterday"}]}"#);
        assert_eq!(event_time("Node", 1, &bad_events), None);
    }

    #[test]
    fn a_stop_keeps_the_job_and_a_purge_removes_it() {
        let none = Stamps::default();
        let job = |deleted| presence("Job", "JobDeregistered", &none, deleted);
        assert_eq!(job(None), Some(Presence::Present));
        assert_eq!(job(Some(Raw("false"))), Some(Presence::Present));
        assert_eq!(job(Some(Raw("true"))), Some(Presence::Removed));
        assert_eq!(
            presence("Node", "NodeDeregistration", &none, None),
            Some(Presence::Removed)
        );
        let lost = stamps(r#"{"ClientStatus":"lost"}"#);
        assert_eq!(
            presence("Allocation", "AllocationUpdated", &lost, None),
            Some(Presence::Terminal)
        );
        let pending = stamps(r#"{"ClientStatus":"pending"}"#);
        assert_eq!(
            presence("Allocation", "PlanResult", &pending, None),
            Some(Presence::Present)
        );
        assert_eq!(
            presence("Evaluation", "EvaluationUpdated", &none, None),
            None
        );
    }
}
