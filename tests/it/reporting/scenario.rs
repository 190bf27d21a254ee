//! The scripted history the reporting tests import: node `client-1` registers
//! and becomes ready; job `web` is registered at version 0; its allocation is
//! placed, goes pending, then running (with a Job status update in the same
//! frame), its task is OOM-killed (the kill repeated in two later snapshots),
//! the allocation fails and is stopped; its deployment runs and fails;
//! version 1 is registered; the node is drained and goes down. Before all
//! that, an allocation of job `cron` was OOM-killed eight days ago, outside
//! "the last week".

use nomad_sim::{SimEvent, SimFrame};
use serde_json::{Value, json};

pub(super) const NODE: &str = "9a1e0c4e-0000-4000-8000-000000000001";
pub(super) const ALLOC: &str = "5c4f3b2a-0000-4000-8000-000000000002";
pub(super) const CRON_ALLOC: &str = "7d2b1a9c-0000-4000-8000-000000000003";
pub(super) const DEPLOYMENT: &str = "d3e1f0a2-0000-4000-8000-000000000004";
const EVAL: &str = "e0c1b2a3-0000-4000-8000-000000000005";
/// 2024-05-01T10:00:00Z and 2024-05-02T09:00:00Z, in ns: the SubmitTime of
/// versions 0 and 1 (fixed, so "versions per day" has a known answer).
pub(super) const V0_SUBMITTED: i64 = 1_714_557_600_000_000_000;
pub(super) const V1_SUBMITTED: i64 = 1_714_640_400_000_000_000;
pub(super) const OOM_MESSAGE: &str = "Exit Code: 137, Exit Message: \"OOM Killed\"";

/// Times of the task events, whole seconds (so readable forms are exact).
pub(super) struct Times {
    /// web's task events: Received, Task Setup, Started, Terminated, Not Restarting.
    pub(super) web: [i64; 5],
    /// cron's OOM kill, eight days ago.
    pub(super) cron: i64,
}

impl Times {
    pub(super) fn now() -> Times {
        let now = now_secs();
        let hour_ago = now - 3_600;
        Times {
            web: [0, 1, 2, 40, 41].map(|s| (hour_ago + s) * 1_000_000_000),
            cron: (now - 8 * 86_400) * 1_000_000_000,
        }
    }
}

pub(super) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn task_event(kind: &str, time: i64, exit_code: i64, details: Value, message: &str) -> Value {
    json!({
        "Type": kind, "Time": time, "ExitCode": exit_code, "Signal": 0,
        "Message": "", "DisplayMessage": message, "Details": details,
        "FailsTask": kind == "Not Restarting",
    })
}

/// web's task events up to (not including) `upto`, as a snapshot repeats them.
fn web_task_events(t: &Times, upto: usize) -> Value {
    let all = [
        task_event(
            "Received",
            t.web[0],
            0,
            json!({}),
            "Task received by client",
        ),
        task_event(
            "Task Setup",
            t.web[1],
            0,
            json!({"message": "Building Task Directory"}),
            "Building Task Directory",
        ),
        task_event("Started", t.web[2], 0, json!({}), "Task started by client"),
        task_event(
            "Terminated",
            t.web[3],
            137,
            json!({"exit_code": "137", "signal": "0", "oom_killed": "true"}),
            OOM_MESSAGE,
        ),
        task_event(
            "Not Restarting",
            t.web[4],
            0,
            json!({"restart_reason": "Exceeded allowed attempts 0 in interval 30m0s and mode is \"fail\""}),
            "Exceeded allowed attempts 0 in interval 30m0s and mode is \"fail\"",
        ),
    ];
    Value::Array(all[..upto].to_vec())
}

fn node(index: u64, kind: &str, status: &str, eligibility: &str, drain: bool) -> SimEvent {
    SimEvent::new(
        "Node",
        kind,
        NODE,
        "",
        vec![],
        index,
        json!({"Node": {
            "ID": NODE, "Name": "client-1", "Datacenter": "dc1", "SecretID": "",
            "Status": status, "SchedulingEligibility": eligibility, "Drain": drain,
            "DrainStrategy": if drain { json!({"Deadline": 3_600_000_000_000_i64}) } else { Value::Null },
            "CreateIndex": 10, "ModifyIndex": index,
        }}),
    )
}

/// A Job event; its version was registered at index 20 (version 0) or 30.
fn job(index: u64, kind: &str, version: u64, status: &str, submitted: i64) -> SimEvent {
    let registered = if version == 0 { 20 } else { 30 };
    SimEvent::new(
        "Job",
        kind,
        "web",
        "default",
        vec![],
        index,
        json!({"Job": {
            "ID": "web", "Name": "web", "Namespace": "default", "Type": "service",
            "Version": version, "Status": status, "Stop": false, "SubmitTime": submitted,
            "CreateIndex": 20, "ModifyIndex": index, "JobModifyIndex": registered,
        }}),
    )
}

/// An allocation event; `extra` adds or overrides payload fields (empty
/// fields are omitted, as Nomad does for allocations).
fn alloc(index: u64, kind: &str, id: &str, job: &str, extra: Value) -> SimEvent {
    let mut allocation = json!({
        "ID": id, "Namespace": "default", "JobID": job, "TaskGroup": job,
        "NodeID": NODE, "NodeName": "client-1", "EvalID": EVAL,
        "DesiredStatus": "run", "CreateIndex": 22, "ModifyIndex": index,
    });
    if let (Some(a), Value::Object(extra)) = (allocation.as_object_mut(), extra) {
        a.extend(extra);
    }
    let deployment = allocation["DeploymentID"].as_str().unwrap_or("").to_owned();
    SimEvent::new(
        "Allocation",
        kind,
        id,
        "default",
        vec![job.to_owned(), deployment],
        index,
        json!({ "Allocation": allocation }),
    )
}

fn web_alloc(index: u64, kind: &str, extra: Value) -> SimEvent {
    let mut fields = json!({"DeploymentID": DEPLOYMENT});
    if let (Some(f), Value::Object(extra)) = (fields.as_object_mut(), extra) {
        f.extend(extra);
    }
    alloc(index, kind, ALLOC, "web", fields)
}

fn web_task(state: &str, failed: bool, events: Value) -> Value {
    json!({"web": {"State": state, "Failed": failed, "Restarts": 0, "Events": events}})
}

fn deployment(index: u64, kind: &str, status: &str, description: &str) -> SimEvent {
    SimEvent::new(
        "Deployment",
        kind,
        DEPLOYMENT,
        "default",
        vec!["web".into()],
        index,
        json!({"Deployment": {
            "ID": DEPLOYMENT, "Namespace": "default", "JobID": "web", "JobVersion": 0,
            "Status": status, "StatusDescription": description,
            "CreateIndex": 22, "ModifyIndex": index,
        }}),
    )
}

/// The history, as frames of a capture.
pub(super) fn scenario(t: &Times) -> Vec<SimFrame> {
    let frame = |index: u64, events: Vec<SimEvent>| SimFrame { index, events };
    vec![
        frame(
            5,
            vec![alloc(
                5,
                "AllocationUpdated",
                CRON_ALLOC,
                "cron",
                json!({
                    "ClientStatus": "failed", "ClientDescription": "Failed tasks",
                    // An older client: the kill is only in the message.
                    "TaskStates": {"cron": {"State": "dead", "Failed": true, "Events": [
                        task_event("Terminated", t.cron, 137, json!({"exit_code": "137"}), OOM_MESSAGE),
                    ]}},
                }),
            )],
        ),
        frame(
            10,
            vec![node(
                10,
                "NodeRegistration",
                "initializing",
                "eligible",
                false,
            )],
        ),
        frame(
            11,
            vec![node(11, "NodeStreamEvent", "ready", "eligible", false)],
        ),
        // A node event that changes none of status, eligibility, drain.
        frame(
            12,
            vec![node(12, "NodeStreamEvent", "ready", "eligible", false)],
        ),
        frame(
            20,
            vec![
                job(20, "JobRegistered", 0, "pending", V0_SUBMITTED),
                SimEvent::new(
                    "Evaluation",
                    "JobRegistered",
                    EVAL,
                    "default",
                    vec!["web".into(), String::new()],
                    20,
                    json!({"Evaluation": {"ID": EVAL, "JobID": "web", "Status": "pending", "TriggeredBy": "job-register"}}),
                ),
            ],
        ),
        frame(
            22,
            vec![
                // Placement: no client status description, no task states yet.
                web_alloc(22, "PlanResult", json!({"ClientStatus": "pending"})),
                deployment(22, "PlanResult", "running", "Deployment is running"),
            ],
        ),
        frame(
            24,
            vec![web_alloc(
                24,
                "AllocationUpdated",
                json!({"ClientStatus": "pending", "ClientDescription": "No tasks have started",
                       "TaskStates": web_task("pending", false, web_task_events(t, 1))}),
            )],
        ),
        frame(
            25,
            vec![
                web_alloc(
                    25,
                    "AllocationUpdated",
                    json!({"ClientStatus": "running", "ClientDescription": "Tasks are running",
                           "TaskStates": web_task("running", false, web_task_events(t, 3))}),
                ),
                // The job's status follows its allocation: same version.
                job(25, "AllocationUpdated", 0, "running", V0_SUBMITTED),
            ],
        ),
        frame(
            26,
            vec![web_alloc(
                26,
                "AllocationUpdated",
                json!({"ClientStatus": "running", "ClientDescription": "Tasks are running",
                       "TaskStates": web_task("running", false, web_task_events(t, 4))}),
            )],
        ),
        frame(
            27,
            vec![web_alloc(
                27,
                "AllocationUpdated",
                json!({"ClientStatus": "failed", "ClientDescription": "Failed tasks",
                       "TaskStates": web_task("dead", true, web_task_events(t, 5))}),
            )],
        ),
        frame(
            28,
            vec![deployment(
                28,
                "DeploymentStatusUpdate",
                "failed",
                "Failed due to unhealthy allocations",
            )],
        ),
        frame(
            29,
            vec![web_alloc(
                29,
                "AllocationUpdateDesiredStatus",
                json!({"DesiredStatus": "stop", "ClientStatus": "failed", "ClientDescription": "Failed tasks",
                       "TaskStates": web_task("dead", true, web_task_events(t, 5))}),
            )],
        ),
        frame(
            30,
            vec![job(30, "JobRegistered", 1, "pending", V1_SUBMITTED)],
        ),
        frame(31, vec![node(31, "NodeDrain", "ready", "ineligible", true)]),
        frame(
            32,
            vec![node(32, "NodeStreamEvent", "down", "ineligible", true)],
        ),
    ]
}
