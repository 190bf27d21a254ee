//! Nomad's list stubs, built from the whole objects the stream carried:
//! the fields Nomad's `Job.Stub`, `Allocation.Stub` and `Node.Stub` fill.

use serde_json::{Map, Value, json};

/// Copies `fields` of `object` into a stub, `null` for absent ones.
fn pick(object: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| ((*f).to_owned(), object[*f].clone()))
        .collect()
}

/// `JobListStub`, as Nomad's `Job.Stub` fills it (no version, no task groups).
pub(super) fn job_stub(job: &Value) -> Value {
    let mut stub = pick(
        job,
        &[
            "ID",
            "ParentID",
            "Name",
            "Namespace",
            "Datacenters",
            "NodePool",
            "Multiregion",
            "Type",
            "Priority",
            "Stop",
            "Status",
            "StatusDescription",
            "CreateIndex",
            "ModifyIndex",
            "JobModifyIndex",
            "SubmitTime",
        ],
    );
    stub.insert("Periodic".into(), json!(!job["Periodic"].is_null()));
    stub.insert(
        "ParameterizedJob".into(),
        json!(!job["ParameterizedJob"].is_null()),
    );
    stub.insert("JobSummary".into(), Value::Null);
    Value::Object(stub)
}

/// `AllocationListStub`: the allocation's own fields, and its job's
/// `(version, type)` (events carry no job; the caller knows which version
/// was registered last before the allocation was created).
pub(super) fn alloc_stub(alloc: &Value, job: (u64, &str), task_states: bool) -> Value {
    let mut stub = pick(
        alloc,
        &[
            "ID",
            "EvalID",
            "Name",
            "Namespace",
            "NodeID",
            "NodeName",
            "JobID",
            "TaskGroup",
            "DesiredStatus",
            "DesiredDescription",
            "ClientStatus",
            "ClientDescription",
            "DeploymentStatus",
            "FollowupEvalID",
            "NextAllocation",
            "RescheduleTracker",
            "PreemptedAllocations",
            "PreemptedByAllocation",
            "CreateIndex",
            "ModifyIndex",
            "CreateTime",
            "ModifyTime",
        ],
    );
    let (version, kind) = job;
    stub.insert("JobVersion".into(), json!(version));
    stub.insert("JobType".into(), json!(kind));
    if task_states {
        stub.insert("TaskStates".into(), alloc["TaskStates"].clone());
    }
    Value::Object(stub)
}

/// `NodeListStub`: `Address` is the HTTP address, `Version` the agent's.
pub(super) fn node_stub(node: &Value, resources: bool) -> Value {
    let mut stub = pick(
        node,
        &[
            "ID",
            "Datacenter",
            "Name",
            "NodeClass",
            "NodePool",
            "Drain",
            "SchedulingEligibility",
            "Status",
            "StatusDescription",
            "Drivers",
            "HostVolumes",
            "LastDrain",
            "CreateIndex",
            "ModifyIndex",
        ],
    );
    stub.insert("Address".into(), node["HTTPAddr"].clone());
    stub.insert(
        "Version".into(),
        node["Attributes"]["nomad.version"].clone(),
    );
    if resources {
        stub.insert("NodeResources".into(), node["NodeResources"].clone());
        stub.insert(
            "ReservedResources".into(),
            node["ReservedResources"].clone(),
        );
    }
    Value::Object(stub)
}
