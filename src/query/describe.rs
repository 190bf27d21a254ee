//! What changed between two descriptions of an object. Nomad sends every
//! object whole on every change (an allocation update is a full snapshot, not
//! a delta), so a timeline is built by remembering each object's previous
//! snapshot and naming the fields that moved. Task events and node events are
//! re-sent in every snapshot; they are reported once.
//!
//! Only the fields a timeline reads are deserialized ([`super::payload`]);
//! the rest of each payload is skipped without being built.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::change::{Line, moved, with_reason};
use super::payload::{
    Allocation, AllocationPayload, Deployment, DeploymentPayload, Envelope, Evaluation,
    EvaluationPayload, Job, JobPayload, Node, NodePayload, TaskEvent,
};
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

/// Remembers the last snapshot of every object it has seen, by topic and key.
pub struct Tracker {
    detail: TaskDetail,
    allocations: HashMap<String, Allocation>,
    evaluations: HashMap<String, Evaluation>,
    deployments: HashMap<String, Deployment>,
    jobs: HashMap<String, Job>,
    nodes: HashMap<String, Node>,
    seen: Seen,
}

/// Task and node events already told: each snapshot repeats them.
#[derive(Default)]
struct Seen {
    task_events: HashSet<(String, String, i64, String)>,
    node_events: HashSet<(String, Option<String>, String)>,
}

impl Tracker {
    pub fn new(detail: TaskDetail) -> Self {
        Tracker {
            detail,
            allocations: HashMap::new(),
            evaluations: HashMap::new(),
            deployments: HashMap::new(),
            jobs: HashMap::new(),
            nodes: HashMap::new(),
            seen: Seen::default(),
        }
    }

    /// The name a person knows the object by, when its last snapshot gives
    /// one (a node's name).
    pub fn name(&self, topic: &str, key: &str) -> Option<&str> {
        match topic {
            "Node" => self.nodes.get(key)?.name.as_deref(),
            _ => None,
        }
    }

    /// The event's type and the changes it brings, in words (none when it
    /// changes nothing worth a line). The event is parsed once, here.
    pub fn changes(&mut self, topic: &str, key: &str, raw: &str) -> (String, Vec<Line>) {
        self.parse_and_describe(topic, key, raw).unwrap_or_default()
    }

    fn parse_and_describe(
        &mut self,
        topic: &str,
        key: &str,
        raw: &str,
    ) -> Option<(String, Vec<Line>)> {
        let detail = self.detail;
        let seen = &mut self.seen;
        Some(match topic {
            "Allocation" => {
                let (kind, current) = parse(raw, |p: AllocationPayload| p.object)?;
                let lines = step(&mut self.allocations, key, current, |prev, cur| {
                    allocation(detail, seen, key, &kind, prev, cur)
                });
                (kind, lines)
            }
            "Evaluation" => {
                let (kind, current) = parse(raw, |p: EvaluationPayload| p.object)?;
                let lines = step(&mut self.evaluations, key, current, evaluation);
                (kind, lines)
            }
            "Deployment" => {
                let (kind, current) = parse(raw, |p: DeploymentPayload| p.object)?;
                let lines = step(&mut self.deployments, key, current, deployment);
                (kind, lines)
            }
            "Job" => {
                let (kind, current) = parse(raw, JobPayload::job)?;
                let lines = step(&mut self.jobs, key, current, |prev, cur| {
                    job(&kind, prev, cur)
                });
                (kind, lines)
            }
            "Node" => {
                let (kind, current) = parse(raw, |p: NodePayload| p.object)?;
                let lines = step(&mut self.nodes, key, current, |prev, cur| {
                    node(seen, key, &kind, prev, cur)
                });
                (kind, lines)
            }
            _ => {
                let (kind, _) = parse(raw, |_: IgnoredAny| None::<()>)?;
                (kind.clone(), vec![Line::new(topic, kind)])
            }
        })
    }
}

/// Parses one topic's event: its type and the object it describes (`None`
/// when the payload does not hold one).
fn parse<'a, P, T>(raw: &'a str, object: impl FnOnce(P) -> Option<T>) -> Option<(String, Option<T>)>
where
    P: Deserialize<'a>,
{
    let event: Envelope<P> = serde_json::from_str(raw).ok()?;
    Some((
        event.event_type.unwrap_or_default(),
        event.payload.and_then(object),
    ))
}

/// Describes `current` against the object's previous snapshot and remembers
/// it. An event without its object is described against an empty one and
/// leaves the previous snapshot in place.
fn step<T: Default, L>(
    previous: &mut HashMap<String, T>,
    key: &str,
    current: Option<T>,
    describe: impl FnOnce(Option<&T>, &T) -> Vec<L>,
) -> Vec<L> {
    let before = previous.remove(key);
    let lines = match &current {
        Some(cur) => describe(before.as_ref(), cur),
        None => describe(before.as_ref(), &T::default()),
    };
    if let Some(kept) = current.or(before) {
        previous.insert(key.to_owned(), kept);
    }
    lines
}

fn allocation(
    detail: TaskDetail,
    seen: &mut Seen,
    key: &str,
    event_type: &str,
    previous: Option<&Allocation>,
    cur: &Allocation,
) -> Vec<Line> {
    const OBJECT: &str = "Allocation";
    let mut out = Vec::new();
    match previous {
        None => {
            out.push(placed(event_type, cur));
            if let Some(prev) = &cur.previous_allocation {
                let text = format!("replaces allocation {}", short_id(prev));
                out.push(Line::new(OBJECT, text).field("PreviousAllocation", None, Some(prev)));
            }
        }
        Some(prev) => {
            out.extend(moved(
                OBJECT,
                "DesiredStatus",
                "desired",
                &prev.desired_status,
                &cur.desired_status,
                &cur.desired_description,
            ));
            out.extend(moved(
                OBJECT,
                "ClientStatus",
                "client",
                &prev.client_status,
                &cur.client_status,
                &cur.client_description,
            ));
        }
    }
    if let Some(next) = &cur.next_allocation {
        if previous.and_then(|p| p.next_allocation.as_ref()).is_none() {
            let text = format!("replaced by allocation {}", short_id(next));
            out.push(Line::new(OBJECT, text).field("NextAllocation", None, Some(next)));
        }
    }
    if detail != TaskDetail::None {
        tasks(detail, seen, key, previous, cur, &mut out);
    }
    out
}

/// The first line of an allocation: where it was placed, for what.
fn placed(event_type: &str, cur: &Allocation) -> Line {
    let node = cur
        .node_name
        .as_deref()
        .or_else(|| cur.node_id.as_deref().map(short_id))
        .unwrap_or("?");
    let mut line = if event_type == "PlanResult" {
        format!("placed on node {node}")
    } else {
        format!("first seen on node {node}")
    };
    line.push_str(&format!(
        " (job {}, group {}",
        or_unknown(&cur.job_id),
        or_unknown(&cur.task_group)
    ));
    if let Some(eval) = &cur.eval_id {
        line.push_str(&format!(", eval {}", short_id(eval)));
    }
    if let Some(dep) = &cur.deployment_id {
        line.push_str(&format!(", deployment {}", short_id(dep)));
    }
    line.push(')');
    line.push_str(&format!(
        ": desired {}, client {}",
        or_unknown(&cur.desired_status),
        or_unknown(&cur.client_status)
    ));
    let node = cur.node_name.as_deref().or(cur.node_id.as_deref());
    Line::new("Allocation", line).field("NodeName", None, node)
}

fn tasks(
    detail: TaskDetail,
    seen: &mut Seen,
    alloc: &str,
    previous: Option<&Allocation>,
    cur: &Allocation,
    out: &mut Vec<Line>,
) {
    // A BTreeMap: tasks in name order.
    for (name, task) in &cur.task_states {
        let object = format!("Task {name}");
        if detail == TaskDetail::All {
            let was = previous
                .and_then(|p| p.task_states.get(name))
                .and_then(|t| t.state.as_deref());
            if let Some(now) = task.state.as_deref().filter(|now| Some(*now) != was) {
                let text = format!("task {name}: {} → {now}", was.unwrap_or("none"));
                out.push(Line::new(&object, text).field("State", was, Some(now)));
            }
        }
        for event in &task.events {
            let kind = event.kind.as_deref().unwrap_or("?");
            let first_time = seen.task_events.insert((
                alloc.to_owned(),
                name.clone(),
                event.time.unwrap_or(0),
                kind.to_owned(),
            ));
            if !first_time || (detail == TaskDetail::Failures && !is_failure(event)) {
                continue;
            }
            let mut text = format!("task {name}: {kind}");
            if let Some(message) = &event.display_message {
                text.push_str(&format!(": {message}"));
            }
            let line = Line::new(&object, text)
                .field("Events", None, Some(kind))
                .message(event.display_message.as_deref())
                .at(event.time);
            out.push(line);
        }
    }
}

fn node(
    seen: &mut Seen,
    key: &str,
    event_type: &str,
    previous: Option<&Node>,
    cur: &Node,
) -> Vec<Line> {
    const OBJECT: &str = "Node";
    let mut out = Vec::new();
    match previous {
        None => {
            let text = format!(
                "{} {}: status {}, eligibility {}",
                if event_type == "NodeRegistration" {
                    "registered"
                } else {
                    "first seen"
                },
                or_unknown(&cur.name),
                or_unknown(&cur.status),
                or_unknown(&cur.scheduling_eligibility)
            );
            out.push(Line::new(OBJECT, text).field("Status", None, cur.status.as_deref()));
        }
        Some(prev) => {
            let none = &None;
            out.extend(moved(
                OBJECT,
                "Status",
                "status",
                &prev.status,
                &cur.status,
                none,
            ));
            out.extend(moved(
                OBJECT,
                "SchedulingEligibility",
                "eligibility",
                &prev.scheduling_eligibility,
                &cur.scheduling_eligibility,
                none,
            ));
            let drain = |text: &str, from: &str, to: &str| {
                Line::new(OBJECT, text).field("Drain", Some(from), Some(to))
            };
            match (prev.drain, cur.drain) {
                (Some(false) | None, Some(true)) => {
                    out.push(drain("drain started", "false", "true"))
                }
                (Some(true), Some(false)) => out.push(drain("drain finished", "true", "false")),
                _ => {}
            }
        }
    }
    if event_type == "NodeDeregistration" {
        out.push(Line::new(OBJECT, "deregistered").message(Some("deregistered")));
    }
    for event in &cur.events {
        let message = event.message.as_deref().unwrap_or("");
        let first_time =
            seen.node_events
                .insert((key.to_owned(), event.timestamp.clone(), message.to_owned()));
        if first_time && previous.is_some() {
            let subsystem = event.subsystem.as_deref().unwrap_or("Node");
            let text = format!("node event: {subsystem}: {message}");
            let line = Line::new(OBJECT, text)
                .field("Events", None, Some(subsystem))
                .message(Some(message));
            out.push(line);
        }
    }
    out
}

fn evaluation(previous: Option<&Evaluation>, cur: &Evaluation) -> Vec<Line> {
    const OBJECT: &str = "Evaluation";
    let mut out = Vec::new();
    match previous {
        None => {
            let text = format!(
                "evaluation created: triggered by {}, status {}",
                or_unknown(&cur.triggered_by),
                or_unknown(&cur.status)
            );
            let line = Line::new(OBJECT, text)
                .field("Status", None, cur.status.as_deref())
                .message(cur.triggered_by.as_deref());
            out.push(line);
        }
        Some(prev) => out.extend(moved(
            OBJECT,
            "Status",
            "evaluation",
            &prev.status,
            &cur.status,
            &cur.status_description,
        )),
    }
    let had_failures = previous.is_some_and(|p| !p.failed_tg_allocs.is_empty());
    if !had_failures {
        for (group, metric) in &cur.failed_tg_allocs {
            let dimensions = if metric.dimension_exhausted.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = metric
                    .dimension_exhausted
                    .keys()
                    .map(String::as_str)
                    .collect();
                format!(" ({})", names.join(", "))
            };
            let message = format!(
                "{} nodes evaluated, {} exhausted{dimensions}",
                metric.nodes_evaluated.unwrap_or(0),
                metric.nodes_exhausted.unwrap_or(0),
            );
            let text = format!("failed placements for group {group}: {message}");
            let line = Line::new(format!("Group {group}"), text)
                .field("FailedTGAllocs", None, None)
                .message(Some(&message));
            out.push(line);
        }
    }
    if let Some(blocked) = &cur.blocked_eval {
        if previous.and_then(|p| p.blocked_eval.as_ref()).is_none() {
            let text = format!("blocked evaluation {} created", short_id(blocked));
            out.push(Line::new(OBJECT, text).field("BlockedEval", None, Some(blocked)));
        }
    }
    out
}

fn deployment(previous: Option<&Deployment>, cur: &Deployment) -> Vec<Line> {
    const OBJECT: &str = "Deployment";
    let mut lines = deployment_status(previous, cur);
    let groups = previous.map(|p| &p.task_groups);
    let counts = super::deployment_health::changes(groups, &cur.task_groups);
    lines.extend(counts.into_iter().map(|text| Line::new(OBJECT, text)));
    lines
}

fn deployment_status(previous: Option<&Deployment>, cur: &Deployment) -> Vec<Line> {
    const OBJECT: &str = "Deployment";
    match previous {
        None => {
            let text = format!(
                "deployment of version {} {}",
                number(cur.job_version),
                or_unknown(&cur.status)
            );
            let line = Line::new(OBJECT, with_reason(text, &cur.status_description))
                .field("Status", None, cur.status.as_deref())
                .message(cur.status_description.as_deref());
            vec![line]
        }
        Some(prev) => moved(
            OBJECT,
            "Status",
            "deployment",
            &prev.status,
            &cur.status,
            &cur.status_description,
        )
        .into_iter()
        .collect(),
    }
}

fn job(event_type: &str, previous: Option<&Job>, cur: &Job) -> Vec<Line> {
    const OBJECT: &str = "Job";
    let mut out = Vec::new();
    if event_type == "JobDeregistered" || event_type == "JobBatchDeregistered" {
        // A stop keeps the job (dead); a purge deletes it, and so does
        // Nomad's job garbage collection (a batch deregistration).
        let line = match (cur.purged, event_type) {
            (false, _) => Line::new(OBJECT, "stopped").field("Stop", None, Some("true")),
            (true, "JobBatchDeregistered") => {
                Line::new(OBJECT, "garbage-collected").message(Some("garbage-collected"))
            }
            (true, _) => Line::new(OBJECT, "purged").message(Some("purged")),
        };
        out.push(line);
        return out;
    }
    if previous.is_none_or(|p| p.version != cur.version) {
        let version = number(cur.version);
        let mut text = format!("version {version} registered");
        let diff = previous.map(|prev| job_diff(prev, cur)).unwrap_or_default();
        if !diff.is_empty() {
            text.push_str(&format!(": {}", diff.join("; ")));
        }
        let before = previous.map(|p| number(p.version));
        let line = Line::new(OBJECT, text)
            .field("Version", before.as_deref(), Some(&version))
            .message((!diff.is_empty()).then(|| diff.join("; ")).as_deref());
        out.push(line);
    }
    if let Some(prev) = previous {
        if cur.stop == Some(true) && prev.stop != Some(true) {
            let was = prev.stop.map(|s| s.to_string());
            out.push(Line::new(OBJECT, "stopped").field("Stop", was.as_deref(), Some("true")));
        }
        out.extend(moved(
            OBJECT,
            "Status",
            "status",
            &prev.status,
            &cur.status,
            &None,
        ));
    }
    out
}

/// Image, count and resources changes between two job versions.
fn job_diff(prev: &Job, cur: &Job) -> Vec<String> {
    let named = |name: &Option<String>| name.as_deref().unwrap_or("?").to_owned();
    let mut out = Vec::new();
    for group in &cur.task_groups {
        let name = named(&group.name);
        let Some(old) = prev.task_groups.iter().find(|g| named(&g.name) == name) else {
            out.push(format!("group {name} added"));
            continue;
        };
        if old.count != group.count {
            out.push(format!(
                "group {name} count {} → {}",
                json_number(old.count),
                json_number(group.count)
            ));
        }
        for task in &group.tasks {
            let task_name = named(&task.name);
            let Some(old_task) = old.tasks.iter().find(|t| named(&t.name) == task_name) else {
                out.push(format!("task {task_name} added"));
                continue;
            };
            let changes = [
                (
                    "image",
                    old_task.config.image.clone(),
                    task.config.image.clone(),
                ),
                (
                    "cpu",
                    old_task.resources.cpu.map(|n| n.to_string()),
                    task.resources.cpu.map(|n| n.to_string()),
                ),
                (
                    "memory",
                    old_task.resources.memory_mb.map(|n| n.to_string()),
                    task.resources.memory_mb.map(|n| n.to_string()),
                ),
            ];
            for (label, a, b) in changes {
                if a != b {
                    out.push(format!(
                        "task {task_name} {label} {} → {}",
                        a.as_deref().unwrap_or("none"),
                        b.as_deref().unwrap_or("none")
                    ));
                }
            }
        }
    }
    for group in &prev.task_groups {
        let name = named(&group.name);
        if !cur.task_groups.iter().any(|g| named(&g.name) == name) {
            out.push(format!("group {name} removed"));
        }
    }
    out
}

/// A task event that means something went wrong.
fn is_failure(event: &TaskEvent) -> bool {
    let kind = event.kind.as_deref().unwrap_or("");
    let exit = event.exit_code.unwrap_or(0);
    // A task killed because its allocation was stopped is no failure.
    matches!(
        kind,
        "Driver Failure" | "Failed Validation" | "Setup Failure" | "Not Restarting"
    ) || (kind == "Terminated" && exit != 0)
        || event.fails_task == Some(true)
}

fn or_unknown(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("?")
}

fn number(value: Option<i64>) -> String {
    value.map_or("?".to_owned(), |v| v.to_string())
}

/// A number as JSON writes it, `null` when absent.
fn json_number(value: Option<i64>) -> String {
    value.map_or("null".to_owned(), |v| v.to_string())
}
