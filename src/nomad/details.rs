//! What the reporting views show of an event (docs/reporting.md), read
//! from its payload when it arrives: an allocation's group, node and
//! statuses with its task events, a job's version, a deployment's, a
//! node's and an evaluation's status. The archive stores them beside the event (migration 0015),
//! so the views never read the stored JSON.
//!
//! Reading is lenient, as `json_extract` was: a field of another type than
//! Nomad sends reads as its JSON text (strings) or as absent (numbers and
//! flags), never as an error; the event is archived whatever its payload.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// The details of one event, by topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Details {
    /// A topic without details, or a payload without its object.
    #[default]
    None,
    Allocation(Box<AllocationDetails>),
    Job(JobDetails),
    Deployment(DeploymentDetails),
    Node(NodeDetails),
    Evaluation(EvaluationDetails),
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AllocationDetails {
    #[serde(rename = "TaskGroup", default, deserialize_with = "text")]
    pub task_group: Option<String>,
    #[serde(rename = "NodeName", default, deserialize_with = "text")]
    pub node_name: Option<String>,
    #[serde(rename = "DesiredStatus", default, deserialize_with = "text")]
    pub desired_status: Option<String>,
    #[serde(rename = "ClientStatus", default, deserialize_with = "text")]
    pub client_status: Option<String>,
    #[serde(rename = "ClientDescription", default, deserialize_with = "text")]
    pub client_description: Option<String>,
    /// Every task's events as this update carries them (each task's last
    /// ten); `TaskStates` with a Time and a Type only.
    #[serde(rename = "TaskStates", default, deserialize_with = "task_events")]
    pub task_events: Vec<TaskEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct JobDetails {
    #[serde(rename = "Version", default, deserialize_with = "integer")]
    pub version: Option<i64>,
    #[serde(rename = "Status", default, deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "Stop", default, deserialize_with = "flag")]
    pub stop: Option<bool>,
    #[serde(rename = "SubmitTime", default, deserialize_with = "integer")]
    pub submit_time_ns: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DeploymentDetails {
    #[serde(rename = "JobVersion", default, deserialize_with = "integer")]
    pub job_version: Option<i64>,
    #[serde(rename = "Status", default, deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "StatusDescription", default, deserialize_with = "text")]
    pub status_description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NodeDetails {
    #[serde(rename = "Name", default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(rename = "Status", default, deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "SchedulingEligibility", default, deserialize_with = "text")]
    pub eligibility: Option<String>,
    #[serde(rename = "Drain", default, deserialize_with = "flag")]
    pub drain: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EvaluationDetails {
    #[serde(rename = "Status", default, deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(rename = "TriggeredBy", default, deserialize_with = "text")]
    pub triggered_by: Option<String>,
    #[serde(rename = "StatusDescription", default, deserialize_with = "text")]
    pub status_description: Option<String>,
}

/// One task event as an allocation update carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    pub task: Box<str>,
    pub time_ns: i64,
    pub event_type: Box<str>,
    pub exit_code: Option<i64>,
    /// OOM-killed: `Details.oom_killed` is `"true"` (drivers that detect
    /// it), or a message says "OOM Killed". SQLite's `LIKE`, which its view
    /// used, ignores ASCII case and PostgreSQL's does not: `[SQLite,
    /// PostgreSQL]`, so each backend keeps the answer its view gave.
    pub oom_killed: [bool; 2],
    /// `DisplayMessage`, as `nomad alloc status` shows it.
    pub message: Option<Box<str>>,
}

/// The details of an event of `topic` whose JSON is `raw`.
pub fn read(topic: &str, raw: &str) -> Details {
    fn object<T: for<'de> Deserialize<'de>>(raw: &str) -> Option<T> {
        #[derive(Deserialize)]
        struct Event<T> {
            #[serde(rename = "Payload")]
            payload: Option<Payload<T>>,
        }
        #[derive(Deserialize)]
        struct Payload<T> {
            #[serde(
                alias = "Allocation",
                alias = "Job",
                alias = "Deployment",
                alias = "Node",
                alias = "Evaluation"
            )]
            object: Option<T>,
        }
        serde_json::from_str::<Event<T>>(raw).ok()?.payload?.object
    }
    match topic {
        "Allocation" => object(raw).map(|d| Details::Allocation(Box::new(d))),
        "Job" => object(raw).map(Details::Job),
        "Deployment" => object(raw).map(Details::Deployment),
        "Node" => object(raw).map(Details::Node),
        "Evaluation" => object(raw).map(Details::Evaluation),
        _ => None,
    }
    .unwrap_or_default()
}

/// A string as it is; another value as its JSON text; null as absent.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// An integer; anything else as absent.
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Value::deserialize(d)?.as_i64())
}

/// A boolean; anything else as absent.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(d)?.as_bool())
}

/// The events of every task of `TaskStates`: read as Nomad shapes them,
/// skipping every other field unparsed; a value of another shape anywhere
/// has the whole read again leniently, where it reads as no events there.
fn task_events<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TaskEvent>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    match serde_json::from_str::<Option<HashMap<Cow<'_, str>, TypedState<'_>>>>(raw.get()) {
        Ok(states) => Ok(states
            .unwrap_or_default()
            .into_iter()
            .flat_map(TypedState::events)
            .collect()),
        Err(_) => Ok(lenient_task_events(raw)),
    }
}

/// A task's state as Nomad sends it: only its events are read.
#[derive(Deserialize)]
struct TypedState<'a> {
    #[serde(rename = "Events", borrow, default)]
    events: Option<Vec<TypedEvent<'a>>>,
}

#[derive(Deserialize)]
struct TypedEvent<'a> {
    #[serde(rename = "Type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(rename = "Time")]
    time_ns: i64,
    #[serde(rename = "ExitCode", default)]
    exit_code: Option<i64>,
    #[serde(rename = "Details", borrow, default)]
    details: Option<TypedDetails<'a>>,
    #[serde(rename = "Message", borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(rename = "DisplayMessage", borrow, default)]
    display_message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TypedDetails<'a> {
    #[serde(rename = "oom_killed", borrow, default)]
    oom_killed: Option<Cow<'a, str>>,
}

impl TypedState<'_> {
    fn events((task, state): (Cow<'_, str>, TypedState<'_>)) -> impl Iterator<Item = TaskEvent> {
        state.events.unwrap_or_default().into_iter().map(move |e| {
            let flagged = e.details.and_then(|d| d.oom_killed).as_deref() == Some("true");
            let messages = [e.message.as_deref(), e.display_message.as_deref()];
            TaskEvent {
                task: task.as_ref().into(),
                time_ns: e.time_ns,
                event_type: e.event_type.as_ref().into(),
                exit_code: e.exit_code,
                oom_killed: [
                    flagged || says_oom(&messages, true),
                    flagged || says_oom(&messages, false),
                ],
                message: e.display_message.as_deref().map(Box::from),
            }
        })
    }
}

/// "OOM Killed" in one of `messages`: ignoring ASCII case, as SQLite's
/// `LIKE` does, or not, as PostgreSQL's.
fn says_oom(messages: &[Option<&str>], ignore_case: bool) -> bool {
    messages.iter().flatten().any(|m| {
        if ignore_case {
            m.to_ascii_lowercase().contains("oom killed")
        } else {
            m.contains("OOM Killed")
        }
    })
}

/// [`task_events`] of a `TaskStates` of another shape than Nomad's.
fn lenient_task_events(raw: &RawValue) -> Vec<TaskEvent> {
    let Ok(Value::Object(states)) = serde_json::from_str::<Value>(raw.get()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (task, state) in states {
        let Some(events) = state.get("Events").and_then(Value::as_array) else {
            continue;
        };
        out.extend(events.iter().filter_map(|e| task_event(&task, e)));
    }
    out
}

fn task_event(task: &str, event: &Value) -> Option<TaskEvent> {
    let event = event.as_object()?;
    let text = |name: &str| match event.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let messages = [text("Message"), text("DisplayMessage")];
    let flagged = event
        .get("Details")
        .and_then(|d| d.get("oom_killed"))
        .and_then(Value::as_str)
        == Some("true");
    let said = [messages[0].as_deref(), messages[1].as_deref()];
    let says = |ignore_case: bool| says_oom(&said, ignore_case);
    Some(TaskEvent {
        task: task.into(),
        time_ns: event.get("Time")?.as_i64()?,
        event_type: text("Type")?.into(),
        exit_code: event.get("ExitCode").and_then(Value::as_i64),
        oom_killed: [flagged || says(true), flagged || says(false)],
        message: messages[1].as_deref().map(Box::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_update_gives_its_fields_and_every_task_event() {
        let raw = r#"{"Topic":"Allocation","Payload":{"Allocation":{"ID":"a","TaskGroup":"web",
            "NodeName":"client-1","DesiredStatus":"run","ClientStatus":"failed","ClientDescription":null,
            "TaskStates":{"web":{"State":"dead","Events":[
              {"Type":"Started","Time":10,"ExitCode":0,"DisplayMessage":"Task started"},
              {"Type":"Terminated","Time":20,"ExitCode":137,"Details":{"oom_killed":"true"},"Message":"x"},
              {"Type":"Killed","DisplayMessage":"no time"},
              "not an object"]},
             "sidecar":{"Events":null}}}}}"#;
        let Details::Allocation(a) = read("Allocation", raw) else {
            panic!("allocation details")
        };
        assert_eq!(a.task_group.as_deref(), Some("web"));
        assert_eq!(a.client_status.as_deref(), Some("failed"));
        assert_eq!(a.client_description, None);
        let seen: Vec<_> = a
            .task_events
            .iter()
            .map(|e| (&*e.task, &*e.event_type, e.time_ns, e.exit_code))
            .collect();
        assert_eq!(
            seen,
            [
                ("web", "Started", 10, Some(0)),
                ("web", "Terminated", 20, Some(137))
            ]
        );
        assert_eq!(a.task_events[1].oom_killed, [true, true]);
        assert_eq!(a.task_events[0].oom_killed, [false, false]);
        assert_eq!(a.task_events[0].message.as_deref(), Some("Task started"));
    }

    #[test]
    fn nomads_shape_and_another_read_the_same_task_events() {
        let events = r#"[{"Type":"Started","Time":10,"ExitCode":0,"Details":{"oom_killed":"true"},"Message":"m","DisplayMessage":"d"},
                         {"Type":"Terminated","Time":20,"ExitCode":1,"Details":{},"DisplayMessage":"OOM Killed"}]"#;
        let nomads = format!(
            r#"{{"Payload":{{"Allocation":{{"TaskStates":{{"web":{{"Events":{events}}}}}}}}}}}"#
        );
        // A field of another type sends the whole read down the lenient path.
        let other = nomads.replace(r#""TaskStates":{"#, r#""TaskStates":{"odd":{"Events":7},"#);
        let read_events = |raw: &str| match read("Allocation", raw) {
            Details::Allocation(a) => a.task_events,
            other => panic!("{other:?}"),
        };
        let typed = read_events(&nomads);
        assert_eq!(typed.len(), 2);
        assert_eq!(typed[0].oom_killed, [true, true]);
        assert_eq!(typed[1].oom_killed, [true, true]);
        assert_eq!(read_events(&other), typed);
    }

    #[test]
    fn the_words_oom_killed_match_as_each_backends_like_did() {
        let raw = r#"{"Payload":{"Allocation":{"TaskStates":{"t":{"Events":[
            {"Type":"Terminated","Time":1,"DisplayMessage":"Exit Message: \"oom killed\""}]}}}}}"#;
        let Details::Allocation(a) = read("Allocation", raw) else {
            panic!("allocation details")
        };
        assert_eq!(a.task_events[0].oom_killed, [true, false]);
    }

    #[test]
    fn fields_of_another_type_read_leniently_and_other_topics_have_none() {
        let job = r#"{"Payload":{"Job":{"Version":"7","Status":3,"Stop":true,"SubmitTime":5}}}"#;
        assert_eq!(
            read("Job", job),
            Details::Job(JobDetails {
                version: None,
                status: Some("3".into()),
                stop: Some(true),
                submit_time_ns: Some(5),
            })
        );
        assert_eq!(read("Evaluation", r#"{"Payload":{}}"#), Details::None);
        assert_eq!(
            read(
                "Evaluation",
                r#"{"Payload":{"Evaluation":{"Status":"blocked","TriggeredBy":"job-register"}}}"#
            ),
            Details::Evaluation(EvaluationDetails {
                status: Some("blocked".into()),
                triggered_by: Some("job-register".into()),
                status_description: None,
            })
        );
        assert_eq!(read("Service", r#"{"Payload":{}}"#), Details::None);
        assert_eq!(read("Node", r#"{"Payload":{"Node":null}}"#), Details::None);
        assert_eq!(read("Node", "not json"), Details::None);
    }
}
