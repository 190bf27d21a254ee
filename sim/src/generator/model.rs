//! The simulated cluster's objects: what the generator remembers between raft entries.

use std::collections::VecDeque;

/// 2026-01-01T00:00:00Z in Unix nanoseconds: where every generated history starts.
pub(super) const START_NS: i64 = 1_767_225_600 * 1_000_000_000;

/// A client node.
pub(super) struct Node {
    pub id: String,
    pub name: String,
    pub datacenter: &'static str,
    pub pool: &'static str,
    pub class: &'static str,
    pub address: String,
    pub cpu_shares: u64,
    pub cores: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    /// `initializing`, `ready` or `down`.
    pub status: &'static str,
    pub eligible: bool,
    /// When a drain started (ns), while it is in progress.
    pub drain_started: Option<i64>,
    /// Set while a drain, outage or registration story is in flight.
    pub busy: bool,
    pub status_updated_at: i64,
    /// The node's last 10 node events.
    pub events: VecDeque<NodeEvent>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A node event (`Node.Events[]`).
pub(super) struct NodeEvent {
    pub message: &'static str,
    pub subsystem: &'static str,
    pub time: i64,
    pub create_index: u64,
}

/// Service jobs get deployments and keep running; batch jobs run to completion.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum JobKind {
    Service,
    Batch,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Service => "service",
            JobKind::Batch => "batch",
        }
    }
}

/// A registered job at its current version.
pub(super) struct Job {
    pub id: String,
    pub namespace: &'static str,
    pub kind: JobKind,
    pub priority: u64,
    pub datacenters: Vec<&'static str>,
    pub groups: Vec<Group>,
    pub meta: Vec<(&'static str, String)>,
    pub version: u64,
    pub status: &'static str,
    pub stop: bool,
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    /// The running deployment of the current version, if any.
    pub deployment: Option<String>,
}

/// A task group of a job.
pub(super) struct Group {
    pub name: String,
    pub count: u64,
    pub tasks: Vec<Task>,
    /// The group's dynamic port label and its target port, for service jobs.
    pub port: Option<(&'static str, u64)>,
}

/// A task of a group.
#[derive(Clone)]
pub(super) struct Task {
    pub name: String,
    pub driver: &'static str,
    pub image: String,
    pub args: Vec<String>,
    pub cpu: u64,
    pub memory_mb: u64,
    pub env: Vec<(&'static str, String)>,
}

/// An evaluation.
pub(super) struct Eval {
    pub id: String,
    pub namespace: &'static str,
    pub job_id: String,
    pub kind: JobKind,
    pub priority: u64,
    pub triggered_by: &'static str,
    pub job_modify_index: u64,
    pub node_id: Option<String>,
    pub deployment_id: Option<String>,
    /// `pending`, `complete` or `blocked`.
    pub status: &'static str,
    pub status_description: String,
    pub previous_eval: Option<String>,
    pub blocked_eval: Option<String>,
    /// Task group that could not be placed, with how many allocations.
    pub failed: Option<(String, u64)>,
    pub queued: Vec<(String, u64)>,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

/// A node pool an operator created (`nomad node pool apply`).
pub(super) struct NodePool {
    pub name: &'static str,
    pub description: &'static str,
    pub meta: Vec<(&'static str, String)>,
    /// The pool's own scheduler algorithm, when it overrides the cluster's.
    pub algorithm: Option<&'static str>,
    /// What Nomad's `NodePool.Hash` holds: 32 bytes that change with every update.
    pub hash: [u8; 32],
    pub create_index: u64,
    pub modify_index: u64,
}

/// An allocation; the generator keeps it as the server's state store does.
pub(super) struct Alloc {
    pub id: String,
    pub namespace: &'static str,
    pub name: String,
    pub job_id: String,
    pub job_version: u64,
    pub kind: JobKind,
    pub group: String,
    pub tasks: Vec<Task>,
    pub port: Option<(&'static str, u64, u64)>,
    pub node_id: String,
    pub node_name: String,
    pub nodes_evaluated: u64,
    pub eval_id: String,
    pub deployment_id: Option<String>,
    pub desired: &'static str,
    pub desired_description: &'static str,
    pub migrate: bool,
    pub client: &'static str,
    pub client_description: &'static str,
    pub task_states: Vec<(String, TaskState)>,
    /// Deployment health: `None` until the client reports it.
    pub healthy: Option<bool>,
    pub health_time: i64,
    pub previous: Option<String>,
    pub next: Option<String>,
    /// Whether a client step for this allocation is queued.
    pub step_pending: bool,
    pub create_index: u64,
    pub modify_index: u64,
    pub alloc_modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl Alloc {
    /// Whether the client is done with the allocation.
    pub fn is_terminal(&self) -> bool {
        matches!(self.client, "complete" | "failed" | "lost")
    }
}

/// One task's state inside an allocation.
pub(super) struct TaskState {
    /// `pending`, `running` or `dead`.
    pub state: &'static str,
    pub failed: bool,
    pub restarts: u64,
    pub last_restart: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The last 10 task events, as the client keeps them.
    pub events: VecDeque<TaskEvent>,
}

/// A task event (`TaskStates[t].Events[]`).
pub(super) struct TaskEvent {
    pub kind: &'static str,
    pub time: i64,
    pub message: String,
    pub display: String,
    pub details: Vec<(&'static str, String)>,
    pub fails_task: bool,
    pub exit_code: i64,
    pub signal: i64,
    pub restart_reason: &'static str,
    pub kill_timeout: i64,
    pub start_delay: i64,
}

impl TaskEvent {
    /// An event with only a type, a time and a display message.
    pub fn new(kind: &'static str, time: i64, display: impl Into<String>) -> TaskEvent {
        TaskEvent {
            kind,
            time,
            message: String::new(),
            display: display.into(),
            details: Vec::new(),
            fails_task: false,
            exit_code: 0,
            signal: 0,
            restart_reason: "",
            kill_timeout: 0,
            start_delay: 0,
        }
    }
}

/// A deployment of one job version.
pub(super) struct Deployment {
    pub id: String,
    pub namespace: &'static str,
    pub job_id: String,
    pub job_version: u64,
    pub job_modify_index: u64,
    pub job_create_index: u64,
    pub priority: u64,
    /// `running`, `successful`, `failed` or `cancelled`.
    pub status: &'static str,
    pub status_description: &'static str,
    pub groups: Vec<DeploymentGroup>,
    /// How many times completion was checked, to give up after a deadline.
    pub checks: u32,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

/// A deployment's per-group progress.
pub(super) struct DeploymentGroup {
    pub name: String,
    pub desired: u64,
    pub placed: u64,
    pub healthy: u64,
    pub unhealthy: u64,
}

/// Formats Unix nanoseconds as Go's RFC 3339 (`2026-01-01T00:00:03.25Z`).
pub(super) fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since the Unix epoch to a proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_gos_format() {
        assert_eq!(rfc3339(START_NS), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(START_NS + 3_250_000_000), "2026-01-01T00:00:03.25Z");
        assert_eq!(
            rfc3339(START_NS + 59 * 86_400 * 1_000_000_000 + 1),
            "2026-03-01T00:00:00.000000001Z"
        );
    }
}
