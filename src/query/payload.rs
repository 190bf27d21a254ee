//! Typed views of the few payload fields the timelines read. An archived
//! allocation is ~2 KB of JSON of which a timeline needs a dozen fields:
//! deserializing into these structs skips the rest without building it,
//! which is most of the cost of a timeline (docs/performance.md).
//!
//! Every scalar is read leniently: a field of an unexpected type (a number
//! where a string was expected, an object where a number was) reads as
//! absent instead of failing the whole event, as a `serde_json::Value`
//! lookup would. Containers (`TaskStates`, `Events`, …) may be `null`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// An archived event with the payload of one topic, e.g.
/// `{"Type": "AllocationUpdated", "Payload": {"Allocation": {…}}}`.
#[derive(Debug, Deserialize)]
pub struct Envelope<P> {
    #[serde(rename = "Type", default, deserialize_with = "text")]
    pub event_type: Option<String>,
    #[serde(rename = "Payload")]
    pub payload: Option<P>,
}

/// `Payload` of an Allocation event.
#[derive(Debug, Deserialize)]
pub struct AllocationPayload {
    #[serde(rename = "Allocation")]
    pub object: Option<Allocation>,
}

/// `Payload` of an Evaluation event.
#[derive(Debug, Deserialize)]
pub struct EvaluationPayload {
    #[serde(rename = "Evaluation")]
    pub object: Option<Evaluation>,
}

/// `Payload` of a Deployment event.
#[derive(Debug, Deserialize)]
pub struct DeploymentPayload {
    #[serde(rename = "Deployment")]
    pub object: Option<Deployment>,
}

/// `Payload` of a Job event.
#[derive(Debug, Deserialize)]
pub struct JobPayload {
    #[serde(rename = "Job")]
    pub object: Option<Job>,
    /// `true` on the `JobDeregistered` of a purge (`nomad job stop
    /// -purge`): the job left the state store. A plain stop keeps it.
    #[serde(rename = "Deleted", default, deserialize_with = "boolean")]
    pub deleted: Option<bool>,
}

impl JobPayload {
    /// The job, marked purged when the payload says it was deleted.
    pub fn job(self) -> Option<Job> {
        let purged = self.deleted == Some(true);
        self.object.map(|job| Job { purged, ..job })
    }
}

/// `Payload` of a Node event.
#[derive(Debug, Deserialize)]
pub struct NodePayload {
    #[serde(rename = "Node")]
    pub object: Option<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Allocation {
    #[serde(rename = "NodeName", deserialize_with = "text")]
    pub node_name: Option<String>,
    #[serde(rename = "NodeID", deserialize_with = "text")]
    pub node_id: Option<String>,
    #[serde(rename = "JobID", deserialize_with = "text")]
    pub job_id: Option<String>,
    #[serde(rename = "TaskGroup", deserialize_with = "text")]
    pub task_group: Option<String>,
    #[serde(rename = "EvalID", deserialize_with = "text")]
    pub eval_id: Option<String>,
    #[serde(rename = "DeploymentID", deserialize_with = "text")]
    pub deployment_id: Option<String>,
    #[serde(rename = "DesiredStatus", deserialize_with = "text")]
    pub desired_status: Option<String>,
    #[serde(rename = "DesiredDescription", deserialize_with = "text")]
    pub desired_description: Option<String>,
    #[serde(rename = "ClientStatus", deserialize_with = "text")]
    pub client_status: Option<String>,
    #[serde(rename = "ClientDescription", deserialize_with = "text")]
    pub client_description: Option<String>,
    #[serde(rename = "PreviousAllocation", deserialize_with = "text")]
    pub previous_allocation: Option<String>,
    #[serde(rename = "NextAllocation", deserialize_with = "text")]
    pub next_allocation: Option<String>,
    #[serde(rename = "TaskStates", deserialize_with = "or_empty")]
    pub task_states: BTreeMap<String, TaskState>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskState {
    #[serde(rename = "State", deserialize_with = "text")]
    pub state: Option<String>,
    #[serde(rename = "Events", deserialize_with = "or_empty")]
    pub events: Vec<TaskEvent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskEvent {
    #[serde(rename = "Type", deserialize_with = "text")]
    pub kind: Option<String>,
    /// Unix nanoseconds; with the type, the event's identity across the
    /// snapshots that repeat it.
    #[serde(rename = "Time", deserialize_with = "int")]
    pub time: Option<i64>,
    #[serde(rename = "DisplayMessage", deserialize_with = "text")]
    pub display_message: Option<String>,
    #[serde(rename = "ExitCode", deserialize_with = "int")]
    pub exit_code: Option<i64>,
    #[serde(rename = "FailsTask", deserialize_with = "boolean")]
    pub fails_task: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Evaluation {
    #[serde(rename = "TriggeredBy", deserialize_with = "text")]
    pub triggered_by: Option<String>,
    #[serde(rename = "Status", deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "StatusDescription", deserialize_with = "text")]
    pub status_description: Option<String>,
    #[serde(rename = "BlockedEval", deserialize_with = "text")]
    pub blocked_eval: Option<String>,
    #[serde(rename = "FailedTGAllocs", deserialize_with = "or_empty")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AllocMetric {
    #[serde(rename = "NodesEvaluated", deserialize_with = "int")]
    pub nodes_evaluated: Option<i64>,
    #[serde(rename = "NodesExhausted", deserialize_with = "int")]
    pub nodes_exhausted: Option<i64>,
    #[serde(rename = "DimensionExhausted", deserialize_with = "or_empty")]
    pub dimension_exhausted: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Deployment {
    #[serde(rename = "JobVersion", deserialize_with = "int")]
    pub job_version: Option<i64>,
    #[serde(rename = "Status", deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "StatusDescription", deserialize_with = "text")]
    pub status_description: Option<String>,
    /// Each task group's counts ([`super::deployment_health`]).
    #[serde(
        rename = "TaskGroups",
        deserialize_with = "super::deployment_health::groups"
    )]
    pub task_groups: std::collections::BTreeMap<String, super::deployment_health::GroupHealth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Job {
    #[serde(rename = "Version", deserialize_with = "int")]
    pub version: Option<i64>,
    #[serde(rename = "Stop", deserialize_with = "boolean")]
    pub stop: Option<bool>,
    #[serde(rename = "Status", deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "TaskGroups", deserialize_with = "or_empty")]
    pub task_groups: Vec<TaskGroup>,
    /// Set from the payload's `Deleted` ([`JobPayload::job`]).
    #[serde(skip)]
    pub purged: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskGroup {
    #[serde(rename = "Name", deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(rename = "Count", deserialize_with = "int")]
    pub count: Option<i64>,
    #[serde(rename = "Tasks", deserialize_with = "or_empty")]
    pub tasks: Vec<Task>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Task {
    #[serde(rename = "Name", deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(rename = "Config", deserialize_with = "or_empty")]
    pub config: TaskConfig,
    #[serde(rename = "Resources", deserialize_with = "or_empty")]
    pub resources: Resources,
}

/// The driver's configuration; only the image is compared.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskConfig {
    #[serde(rename = "image", deserialize_with = "text")]
    pub image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    #[serde(rename = "CPU", deserialize_with = "int")]
    pub cpu: Option<i64>,
    #[serde(rename = "MemoryMB", deserialize_with = "int")]
    pub memory_mb: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(rename = "Name", deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(rename = "Status", deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "SchedulingEligibility", deserialize_with = "text")]
    pub scheduling_eligibility: Option<String>,
    #[serde(rename = "Drain", deserialize_with = "boolean")]
    pub drain: Option<bool>,
    #[serde(rename = "Events", deserialize_with = "or_empty")]
    pub events: Vec<NodeEvent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeEvent {
    #[serde(rename = "Message", deserialize_with = "text")]
    pub message: Option<String>,
    #[serde(rename = "Subsystem", deserialize_with = "text")]
    pub subsystem: Option<String>,
    /// RFC 3339 in Nomad's payloads; kept as text, it only identifies the
    /// event across the snapshots that repeat it.
    #[serde(rename = "Timestamp", deserialize_with = "scalar_text")]
    pub timestamp: Option<String>,
}

/// The fields `query snapshot` shows in its tables, as JSON would write
/// them (`Drain`, `Version` and `Stop` are not strings).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SnapshotFields {
    #[serde(rename = "Name", deserialize_with = "scalar_text")]
    pub name: Option<String>,
    #[serde(rename = "Status", deserialize_with = "scalar_text")]
    pub status: Option<String>,
    #[serde(rename = "SchedulingEligibility", deserialize_with = "scalar_text")]
    pub scheduling_eligibility: Option<String>,
    #[serde(rename = "Drain", deserialize_with = "scalar_text")]
    pub drain: Option<String>,
    #[serde(rename = "Version", deserialize_with = "scalar_text")]
    pub version: Option<String>,
    #[serde(rename = "Stop", deserialize_with = "scalar_text")]
    pub stop: Option<String>,
    #[serde(rename = "JobID", deserialize_with = "scalar_text")]
    pub job_id: Option<String>,
    #[serde(rename = "TaskGroup", deserialize_with = "scalar_text")]
    pub task_group: Option<String>,
    #[serde(rename = "NodeName", deserialize_with = "scalar_text")]
    pub node_name: Option<String>,
    #[serde(rename = "DesiredStatus", deserialize_with = "scalar_text")]
    pub desired_status: Option<String>,
    #[serde(rename = "ClientStatus", deserialize_with = "scalar_text")]
    pub client_status: Option<String>,
}

/// A JSON scalar of any type, or a sign that the value was not one.
enum Scalar {
    Text(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    /// `null`, an object or an array (skipped without being built).
    Other,
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

/// A non-empty string; anything else is absent.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Text(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

/// A string, or a number or boolean written as JSON would write it.
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Text(s) => Some(s),
        Scalar::Int(n) => Some(n.to_string()),
        Scalar::Float(n) => Some(n.to_string()),
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::Other => None,
    })
}

/// An integer that fits in an `i64`; anything else is absent.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Int(n) => i64::try_from(n).ok(),
        _ => None,
    })
}

fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Bool(b) => Some(b),
        _ => None,
    })
}

/// A container, with `null` read as empty.
fn or_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_an_unexpected_type_read_as_absent() {
        let raw = r#"{"Type": 7, "Payload": {"Allocation": {
            "JobID": 12, "NodeName": "", "ClientStatus": "running",
            "DesiredStatus": {"nested": [1, 2]}, "TaskStates": null,
            "Unknown": {"deep": [{"x": "y"}]}}}}"#;
        let event: Envelope<AllocationPayload> = serde_json::from_str(raw).unwrap();
        assert_eq!(event.event_type, None);
        let alloc = event.payload.unwrap().object.unwrap();
        assert_eq!(alloc.job_id, None);
        assert_eq!(alloc.node_name, None);
        assert_eq!(alloc.client_status.as_deref(), Some("running"));
        assert_eq!(alloc.desired_status, None);
        assert!(alloc.task_states.is_empty());
    }

    #[test]
    fn task_event_times_keep_every_nanosecond() {
        let raw = r#"{"Type": "AllocationUpdated", "Payload": {"Allocation": {
            "TaskStates": {"web": {"State": "dead", "Events": [
                {"Type": "Terminated", "Time": 1732540000123456789, "ExitCode": 137,
                 "FailsTask": true, "DisplayMessage": "OOM Killed"}]}}}}}"#;
        let event: Envelope<AllocationPayload> = serde_json::from_str(raw).unwrap();
        let alloc = event.payload.unwrap().object.unwrap();
        let web = &alloc.task_states["web"];
        assert_eq!(web.state.as_deref(), Some("dead"));
        let e = &web.events[0];
        assert_eq!(e.time, Some(1_732_540_000_123_456_789));
        assert_eq!(e.exit_code, Some(137));
        assert_eq!(e.fails_task, Some(true));
        assert_eq!(e.display_message.as_deref(), Some("OOM Killed"));
    }

    #[test]
    fn node_event_timestamps_of_any_scalar_type_are_kept_as_text() {
        let raw = r#"{"Payload": {"Node": {"Drain": true, "Events": [
            {"Message": "up", "Timestamp": "2026-11-25T10:00:00Z"},
            {"Message": "drain", "Timestamp": 1732540000}]}}}"#;
        let event: Envelope<NodePayload> = serde_json::from_str(raw).unwrap();
        let node = event.payload.unwrap().object.unwrap();
        assert_eq!(node.drain, Some(true));
        let stamps: Vec<_> = node.events.iter().map(|e| e.timestamp.clone()).collect();
        assert_eq!(
            stamps,
            [
                Some("2026-11-25T10:00:00Z".to_owned()),
                Some("1732540000".to_owned())
            ]
        );
    }
}
