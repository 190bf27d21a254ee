//! What changed between two descriptions of an object. Nomad sends every
//! object whole on every change (an allocation update is a full snapshot, not
//! a delta), so a timeline is built by remembering each object's previous
//! snapshot and naming the fields that moved. Task events and node events are
//! re-sent in every snapshot; they are reported once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::render::short_id;

/// How much of an allocation's task history to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskDetail {
    /// Every task state change and task event (the allocation's own timeline).
    All,
    /// Only task failures, with their messages (job and node timelines).
    Failures,
    /// None (node timelines list allocations, not their tasks).
    None,
}

/// Remembers the last snapshot of every object it has seen.
pub struct Tracker {
    detail: TaskDetail,
    previous: HashMap<(String, String), Value>,
    task_events: HashSet<(String, String, i64, String)>,
    node_events: HashSet<(String, String, String)>,
}

impl Tracker {
    pub fn new(detail: TaskDetail) -> Self {
        Tracker {
            detail,
            previous: HashMap::new(),
            task_events: HashSet::new(),
            node_events: HashSet::new(),
        }
    }

    /// The event's type and the changes it brings, in words (none when it
    /// changes nothing worth a line). The event is parsed once, here.
    pub fn changes(&mut self, topic: &str, key: &str, raw: &str) -> (String, Vec<String>) {
        let Ok(mut event) = serde_json::from_str::<Value>(raw) else {
            return (String::new(), Vec::new());
        };
        let event_type = event["Type"].as_str().unwrap_or_default().to_owned();
        let lines = self.describe(topic, &event_type, key, &mut event);
        (event_type, lines)
    }

    fn describe(
        &mut self,
        topic: &str,
        event_type: &str,
        key: &str,
        event: &mut Value,
    ) -> Vec<String> {
        let current = event["Payload"][topic].take();
        let id = (topic.to_owned(), key.to_owned());
        // Taken out and put back below: no copy of either snapshot.
        let previous = self.previous.remove(&id);
        let lines = match topic {
            "Allocation" => self.allocation(key, event_type, previous.as_ref(), &current),
            "Evaluation" => evaluation(previous.as_ref(), &current),
            "Deployment" => deployment(previous.as_ref(), &current),
            "Job" => job(event_type, previous.as_ref(), &current),
            "Node" => self.node(key, event_type, previous.as_ref(), &current),
            _ => vec![event_type.to_owned()],
        };
        match (current.is_null(), previous) {
            (false, _) => {
                self.previous.insert(id, current);
            }
            (true, Some(previous)) => {
                self.previous.insert(id, previous);
            }
            (true, None) => {}
        }
        lines
    }

    fn allocation(
        &mut self,
        key: &str,
        event_type: &str,
        previous: Option<&Value>,
        cur: &Value,
    ) -> Vec<String> {
        let mut out = Vec::new();
        match previous {
            None => {
                let node = text(cur, "NodeName")
                    .or_else(|| text(cur, "NodeID").map(short_id))
                    .unwrap_or("?");
                let mut line = if event_type == "PlanResult" {
                    format!("placed on node {node}")
                } else {
                    format!("first seen on node {node}")
                };
                line.push_str(&format!(
                    " (job {}, group {}",
                    text(cur, "JobID").unwrap_or("?"),
                    text(cur, "TaskGroup").unwrap_or("?")
                ));
                if let Some(eval) = text(cur, "EvalID") {
                    line.push_str(&format!(", eval {}", short_id(eval)));
                }
                if let Some(dep) = text(cur, "DeploymentID") {
                    line.push_str(&format!(", deployment {}", short_id(dep)));
                }
                line.push(')');
                line.push_str(&format!(
                    ": desired {}, client {}",
                    text(cur, "DesiredStatus").unwrap_or("?"),
                    text(cur, "ClientStatus").unwrap_or("?")
                ));
                out.push(line);
                if let Some(prev) = text(cur, "PreviousAllocation") {
                    out.push(format!("replaces allocation {}", short_id(prev)));
                }
            }
            Some(prev) => {
                if let Some(change) = moved(prev, cur, "DesiredStatus") {
                    out.push(with_reason(
                        format!("desired {change}"),
                        text(cur, "DesiredDescription"),
                    ));
                }
                if let Some(change) = moved(prev, cur, "ClientStatus") {
                    out.push(with_reason(
                        format!("client {change}"),
                        text(cur, "ClientDescription"),
                    ));
                }
            }
        }
        if let Some(next) = text(cur, "NextAllocation") {
            if previous.and_then(|p| text(p, "NextAllocation")).is_none() {
                out.push(format!("replaced by allocation {}", short_id(next)));
            }
        }
        if self.detail != TaskDetail::None {
            self.tasks(key, previous, cur, &mut out);
        }
        out
    }

    fn tasks(&mut self, alloc: &str, previous: Option<&Value>, cur: &Value, out: &mut Vec<String>) {
        let Some(tasks) = cur["TaskStates"].as_object() else {
            return;
        };
        let mut names: Vec<&String> = tasks.keys().collect();
        names.sort();
        for name in names {
            let task = &tasks[name];
            let before = previous.map(|p| &p["TaskStates"][name.as_str()]);
            if self.detail == TaskDetail::All {
                let was = before.and_then(|b| text(b, "State")).unwrap_or("none");
                if let Some(now) = text(task, "State").filter(|now| *now != was) {
                    out.push(format!("task {name}: {was} → {now}"));
                }
            }
            for event in task["Events"].as_array().into_iter().flatten() {
                let kind = text(event, "Type").unwrap_or("?");
                let time = event["Time"].as_i64().unwrap_or(0);
                let seen = (alloc.to_owned(), name.clone(), time, kind.to_owned());
                if !self.task_events.insert(seen) {
                    continue;
                }
                let failure = is_failure(event);
                if self.detail == TaskDetail::All || failure {
                    let message = text(event, "DisplayMessage").filter(|m| !m.is_empty());
                    let mut line = format!("task {name}: {kind}");
                    if self.detail == TaskDetail::Failures && !is_failure(event) {
                        continue;
                    }
                    if let Some(message) = message {
                        line.push_str(&format!(": {message}"));
                    }
                    out.push(line);
                }
            }
        }
    }

    fn node(
        &mut self,
        key: &str,
        event_type: &str,
        previous: Option<&Value>,
        cur: &Value,
    ) -> Vec<String> {
        let mut out = Vec::new();
        match previous {
            None => out.push(format!(
                "{} {}: status {}, eligibility {}",
                if event_type == "NodeRegistration" {
                    "registered"
                } else {
                    "first seen"
                },
                text(cur, "Name").unwrap_or("?"),
                text(cur, "Status").unwrap_or("?"),
                text(cur, "SchedulingEligibility").unwrap_or("?")
            )),
            Some(prev) => {
                if let Some(change) = moved(prev, cur, "Status") {
                    out.push(format!("status {change}"));
                }
                if let Some(change) = moved(prev, cur, "SchedulingEligibility") {
                    out.push(format!("eligibility {change}"));
                }
                match (prev["Drain"].as_bool(), cur["Drain"].as_bool()) {
                    (Some(false) | None, Some(true)) => out.push("drain started".to_owned()),
                    (Some(true), Some(false)) => out.push("drain finished".to_owned()),
                    _ => {}
                }
            }
        }
        if event_type == "NodeDeregistration" {
            out.push("deregistered".to_owned());
        }
        for event in cur["Events"].as_array().into_iter().flatten() {
            let message = text(event, "Message").unwrap_or("");
            let at = event["Timestamp"].to_string();
            if self
                .node_events
                .insert((key.to_owned(), at, message.to_owned()))
                && previous.is_some()
            {
                let subsystem = text(event, "Subsystem").unwrap_or("Node");
                out.push(format!("node event: {subsystem}: {message}"));
            }
        }
        out
    }
}

fn evaluation(previous: Option<&Value>, cur: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match previous {
        None => out.push(format!(
            "evaluation created: triggered by {}, status {}",
            text(cur, "TriggeredBy").unwrap_or("?"),
            text(cur, "Status").unwrap_or("?")
        )),
        Some(prev) => {
            if let Some(change) = moved(prev, cur, "Status") {
                out.push(with_reason(
                    format!("evaluation {change}"),
                    text(cur, "StatusDescription"),
                ));
            }
        }
    }
    let had_failures = previous.is_some_and(|p| {
        p["FailedTGAllocs"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    });
    if let (false, Some(failed)) = (had_failures, cur["FailedTGAllocs"].as_object()) {
        for (group, metric) in failed {
            out.push(format!(
                "failed placements for group {group}: {} nodes evaluated, {} exhausted{}",
                metric["NodesEvaluated"].as_u64().unwrap_or(0),
                metric["NodesExhausted"].as_u64().unwrap_or(0),
                metric["DimensionExhausted"]
                    .as_object()
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" ({})", d.keys().cloned().collect::<Vec<_>>().join(", ")))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(blocked) = text(cur, "BlockedEval") {
        if previous.and_then(|p| text(p, "BlockedEval")).is_none() {
            out.push(format!("blocked evaluation {} created", short_id(blocked)));
        }
    }
    out
}

fn deployment(previous: Option<&Value>, cur: &Value) -> Vec<String> {
    match previous {
        None => vec![with_reason(
            format!(
                "deployment of version {} {}",
                cur["JobVersion"]
                    .as_u64()
                    .map_or("?".to_owned(), |v| v.to_string()),
                text(cur, "Status").unwrap_or("?")
            ),
            text(cur, "StatusDescription"),
        )],
        Some(prev) => moved(prev, cur, "Status")
            .map(|change| {
                vec![with_reason(
                    format!("deployment {change}"),
                    text(cur, "StatusDescription"),
                )]
            })
            .unwrap_or_default(),
    }
}

fn job(event_type: &str, previous: Option<&Value>, cur: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if event_type == "JobDeregistered" || event_type == "JobBatchDeregistered" {
        out.push("deregistered".to_owned());
        return out;
    }
    let version = cur["Version"].as_u64();
    let new_version = previous.is_none_or(|p| p["Version"].as_u64() != version);
    if new_version {
        let mut line = format!(
            "version {} registered",
            version.map_or("?".to_owned(), |v| v.to_string())
        );
        if let Some(prev) = previous {
            let diff = job_diff(prev, cur);
            if !diff.is_empty() {
                line.push_str(&format!(": {}", diff.join("; ")));
            }
        }
        out.push(line);
    }
    if let Some(prev) = previous {
        if cur["Stop"].as_bool() == Some(true) && prev["Stop"].as_bool() != Some(true) {
            out.push("stopped".to_owned());
        }
        if let Some(change) = moved(prev, cur, "Status") {
            out.push(format!("status {change}"));
        }
    }
    out
}

/// Image, count and resources changes between two job versions.
fn job_diff(prev: &Value, cur: &Value) -> Vec<String> {
    let groups = |job: &Value| -> Vec<(String, Value)> {
        job["TaskGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| (text(g, "Name").unwrap_or("?").to_owned(), g.clone()))
            .collect()
    };
    let (before, after) = (groups(prev), groups(cur));
    let mut out = Vec::new();
    for (name, group) in &after {
        let Some((_, old)) = before.iter().find(|(n, _)| n == name) else {
            out.push(format!("group {name} added"));
            continue;
        };
        if old["Count"] != group["Count"] {
            out.push(format!(
                "group {name} count {} → {}",
                old["Count"], group["Count"]
            ));
        }
        for task in group["Tasks"].as_array().into_iter().flatten() {
            let task_name = text(task, "Name").unwrap_or("?");
            let Some(old_task) = old["Tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| text(t, "Name") == Some(task_name))
            else {
                out.push(format!("task {task_name} added"));
                continue;
            };
            for (label, a, b) in [
                (
                    "image",
                    &old_task["Config"]["image"],
                    &task["Config"]["image"],
                ),
                (
                    "cpu",
                    &old_task["Resources"]["CPU"],
                    &task["Resources"]["CPU"],
                ),
                (
                    "memory",
                    &old_task["Resources"]["MemoryMB"],
                    &task["Resources"]["MemoryMB"],
                ),
            ] {
                if a != b {
                    out.push(format!(
                        "task {task_name} {label} {} → {}",
                        plain(a),
                        plain(b)
                    ));
                }
            }
        }
    }
    for (name, _) in &before {
        if !after.iter().any(|(n, _)| n == name) {
            out.push(format!("group {name} removed"));
        }
    }
    out
}

/// A task event that means something went wrong.
fn is_failure(event: &Value) -> bool {
    let kind = text(event, "Type").unwrap_or("");
    let exit = event["ExitCode"].as_i64().unwrap_or(0);
    let failed = event["FailsTask"].as_bool() == Some(true);
    // A task killed because its allocation was stopped is no failure.
    matches!(
        kind,
        "Driver Failure" | "Failed Validation" | "Setup Failure" | "Not Restarting"
    ) || (kind == "Terminated" && exit != 0)
        || failed
}

fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value[field].as_str().filter(|s| !s.is_empty())
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

/// `a → b` when `field` changed.
fn moved(prev: &Value, cur: &Value, field: &str) -> Option<String> {
    let (a, b) = (text(prev, field), text(cur, field));
    (a != b).then(|| format!("{} → {}", a.unwrap_or("none"), b.unwrap_or("none")))
}

fn with_reason(line: String, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{line} ({reason})"),
        None => line,
    }
}
