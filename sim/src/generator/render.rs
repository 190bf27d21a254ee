//! Renders the simulated objects as Nomad's JSON payloads, with Nomad's field names.

use serde_json::{Map, Value, json};

use super::model::{
    Alloc, Deployment, Eval, Job, JobKind, Node, NodePool, Task, TaskEvent, rfc3339,
};

/// An object of string values from pairs.
fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a String)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Inserts `value` under `key` unless it is empty, as Nomad does for allocations and evaluations.
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if !empty {
        map.insert(key.to_string(), value);
    }
}

/// `{"Node": {…}}` for node events; `SecretID` is blanked as Nomad does.
pub(super) fn node(n: &Node) -> Value {
    let drain_strategy = n.drain_started.map(|started| {
        json!({
            "Deadline": 3_600_000_000_000_i64,
            "ForceDeadline": rfc3339(started + 3_600_000_000_000),
            "IgnoreSystemJobs": false,
            "StartedAt": rfc3339(started),
        })
    });
    let events: Vec<Value> = n
        .events
        .iter()
        .map(|e| {
            json!({
                "CreateIndex": e.create_index,
                "Details": null,
                "Message": e.message,
                "Subsystem": e.subsystem,
                "Timestamp": rfc3339(e.time),
            })
        })
        .collect();
    let (ip, _) = n.address.split_once(':').unwrap_or((&n.address, ""));
    json!({"Node": {
        "Attributes": {
            "arch": "x86",
            "cpu.arch": "amd64",
            "cpu.frequency": "2600",
            "cpu.modelname": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
            "cpu.numcores": n.cores.to_string(),
            "cpu.totalcompute": n.cpu_shares.to_string(),
            "driver.docker": "1",
            "driver.docker.version": "27.3.1",
            "driver.exec": "1",
            "kernel.name": "linux",
            "kernel.version": "6.8.0-1021-aws",
            "memory.totalbytes": (n.memory_mb * 1024 * 1024).to_string(),
            "nomad.version": "1.10.3",
            "os.name": "ubuntu",
            "os.version": "24.04",
            "platform.aws.instance-type": "m6i.2xlarge",
            "unique.hostname": n.name,
            "unique.network.ip-address": ip,
        },
        "CSIControllerPlugins": null,
        "CSINodePlugins": null,
        "ComputedClass": format!("v1:{}", n.cpu_shares * 7919 + n.memory_mb),
        "CreateIndex": n.create_index,
        "Datacenter": n.datacenter,
        "Drain": n.drain_started.is_some(),
        "DrainStrategy": drain_strategy,
        "Drivers": {
            "docker": {"Attributes": null, "Detected": true, "HealthDescription": "Healthy", "Healthy": true},
            "exec": {"Attributes": null, "Detected": true, "HealthDescription": "Healthy", "Healthy": true},
        },
        "Events": events,
        "HTTPAddr": n.address,
        "HostNetworks": null,
        "HostVolumes": null,
        "ID": n.id,
        "LastDrain": null,
        "Links": null,
        "Meta": {"connect.log_level": "info", "rack": format!("r{}", n.create_index % 4)},
        "ModifyIndex": n.modify_index,
        "Name": n.name,
        "NodeClass": n.class,
        "NodePool": n.pool,
        "NodeResources": {
            "Cpu": {"CpuShares": n.cpu_shares, "TotalCpuCores": n.cores, "ReservableCpuCores": (0..n.cores).collect::<Vec<_>>()},
            "Devices": null,
            "Disk": {"DiskMB": n.disk_mb},
            "MaxDynamicPort": 32000,
            "Memory": {"MemoryMB": n.memory_mb},
            "MinDynamicPort": 20000,
            "Networks": [{"CIDR": format!("{ip}/32"), "Device": "ens5", "IP": ip, "MBits": 1000, "Mode": "host"}],
        },
        "ReservedResources": {"Cpu": {"CpuShares": 100}, "Disk": {"DiskMB": 1024}, "Memory": {"MemoryMB": 256}, "Networks": {"ReservedHostPorts": "22"}},
        "SchedulingEligibility": if n.eligible { "eligible" } else { "ineligible" },
        "SecretID": "",
        "Status": n.status,
        "StatusDescription": "",
        "StatusUpdatedAt": n.status_updated_at,
        "TLSEnabled": true,
    }})
}

/// A task's spec inside a job.
fn task_spec(t: &Task, group_port: Option<&str>) -> Value {
    let mut config = Map::new();
    config.insert("image".into(), t.image.as_str().into());
    if !t.args.is_empty() {
        config.insert("args".into(), json!(t.args));
    }
    if let Some(port) = group_port {
        config.insert("ports".into(), json!([port]));
    }
    json!({
        "Actions": null, "Affinities": null, "Artifacts": null, "CSIPluginConfig": null,
        "Config": config,
        "Constraints": null, "Consul": null, "DispatchPayload": null,
        "Driver": t.driver,
        "Env": string_map(t.env.iter().map(|(k, v)| (*k, v))),
        "Identities": null, "Identity": null, "KillSignal": "", "KillTimeout": 5_000_000_000_i64,
        "Kind": "", "Leader": false, "Lifecycle": null,
        "LogConfig": {"Disabled": false, "MaxFileSizeMB": 10, "MaxFiles": 10},
        "Meta": null, "Name": t.name,
        "Resources": {"CPU": t.cpu, "Cores": 0, "Devices": null, "DiskMB": 0, "IOPS": 0, "MemoryMB": t.memory_mb, "MemoryMaxMB": 0, "NUMA": null, "Networks": null},
        "RestartPolicy": {"Attempts": 2, "Delay": 15_000_000_000_i64, "Interval": 1_800_000_000_000_i64, "Mode": "fail", "RenderTemplates": false},
        "ScalingPolicies": null, "Schedule": null, "Services": null, "ShutdownDelay": 0,
        "Templates": null, "User": "", "Vault": null, "VolumeMounts": null,
    })
}

/// `{"Job": {…}}`: the full job spec, as Job events carry it.
pub(super) fn job(j: &Job) -> Value {
    let groups: Vec<Value> = j
        .groups
        .iter()
        .map(|g| {
            let networks = g.port.map(|(label, to)| {
                json!([{"DynamicPorts": [{"HostNetwork": "default", "Label": label, "To": to, "Value": 0}], "Mode": "bridge"}])
            });
            let services = g.port.map(|(label, _)| {
                json!([{"Checks": [{"Interval": 10_000_000_000_i64, "Name": "alive", "Path": "/health", "Protocol": "", "Timeout": 2_000_000_000_i64, "Type": "http"}],
                        "Name": format!("{}-{}", j.id, g.name), "PortLabel": label, "Provider": "nomad", "Tags": ["http"]}])
            });
            let update = (j.kind == JobKind::Service).then(|| {
                json!({"AutoPromote": false, "AutoRevert": true, "Canary": 0, "HealthCheck": "checks", "HealthyDeadline": 300_000_000_000_i64,
                       "MaxParallel": 1, "MinHealthyTime": 10_000_000_000_i64, "ProgressDeadline": 600_000_000_000_i64, "Stagger": 30_000_000_000_i64})
            });
            json!({
                "Affinities": null, "Constraints": null, "Consul": {"Cluster": "default", "Namespace": "", "Partition": ""},
                "Count": g.count,
                "EphemeralDisk": {"Migrate": false, "SizeMB": 300, "Sticky": false},
                "MaxClientDisconnect": null, "Meta": null,
                "Migrate": {"HealthCheck": "checks", "HealthyDeadline": 300_000_000_000_i64, "MaxParallel": 1, "MinHealthyTime": 10_000_000_000_i64},
                "Name": g.name,
                "Networks": networks,
                "ReschedulePolicy": {"Attempts": 0, "Delay": 30_000_000_000_i64, "DelayFunction": "exponential", "Interval": 0, "MaxDelay": 3_600_000_000_000_i64, "Unlimited": true},
                "RestartPolicy": {"Attempts": 2, "Delay": 15_000_000_000_i64, "Interval": 1_800_000_000_000_i64, "Mode": "fail", "RenderTemplates": false},
                "Scaling": null, "Services": services, "ShutdownDelay": null, "Spreads": null,
                "Tasks": g.tasks.iter().map(|t| task_spec(t, g.port.map(|p| p.0))).collect::<Vec<_>>(),
                "Update": update, "Volumes": null,
            })
        })
        .collect();
    let update = json!({"AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "", "HealthyDeadline": 0,
                        "MaxParallel": 1, "MinHealthyTime": 0, "ProgressDeadline": 0, "Stagger": 30_000_000_000_i64});
    let mut spec = json!({
        "Affinities": null, "AllAtOnce": false, "Constraints": null, "ConsulNamespace": "",
        "CreateIndex": j.create_index, "Datacenters": j.datacenters, "DispatchIdempotencyToken": "",
        "Dispatched": false, "ID": j.id, "JobModifyIndex": j.job_modify_index,
        "Meta": string_map(j.meta.iter().map(|(k, v)| (*k, v))),
        "ModifyIndex": j.modify_index, "Multiregion": null, "Name": j.id, "Namespace": j.namespace,
        "NodePool": "default", "NomadTokenID": "", "ParameterizedJob": null, "ParentID": "",
    });
    let rest = json!({
        "Payload": null, "Periodic": null, "Priority": j.priority, "Region": "global",
        "Spreads": null, "Stable": false, "Status": j.status, "StatusDescription": "",
        "Stop": j.stop, "SubmitTime": j.submit_time, "TaskGroups": groups, "Type": j.kind.as_str(),
        "UI": null, "Update": update, "VaultNamespace": "", "Version": j.version, "VersionTag": null,
    });
    if let (Some(spec), Value::Object(rest)) = (spec.as_object_mut(), rest) {
        spec.extend(rest);
    }
    json!({ "Job": spec })
}

/// `{"Job": {…}, "Deleted": true}`: a purge sends the job as it was before
/// the deletion (not stopped by it, no new version), flagged as deleted.
pub(super) fn purged_job(j: &Job) -> Value {
    let mut payload = job(j);
    if let Some(map) = payload.as_object_mut() {
        map.insert("Deleted".into(), Value::Bool(true));
    }
    payload
}

/// Nomad's node identities live a day unless the pool says otherwise, in ns.
const NODE_IDENTITY_TTL_NS: i64 = 86_400 * 1_000_000_000;

/// `{"NodePool": {…}}`: every field of Nomad's struct, none of them a time.
pub(super) fn node_pool(p: &NodePool) -> Value {
    let meta = (!p.meta.is_empty()).then(|| string_map(p.meta.iter().map(|(k, v)| (*k, v))));
    let scheduler = p.algorithm.map(
        |algorithm| json!({"MemoryOversubscriptionEnabled": null, "SchedulerAlgorithm": algorithm}),
    );
    json!({"NodePool": {
        "CreateIndex": p.create_index,
        "Description": p.description,
        "Hash": base64(&p.hash),
        "Meta": meta,
        "ModifyIndex": p.modify_index,
        "Name": p.name,
        "NodeIdentityTTL": NODE_IDENTITY_TTL_NS,
        "SchedulerConfiguration": scheduler,
    }})
}

/// Standard padded base64, as Go's JSON encoder writes a `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `{"Evaluation": {…}}`, empty fields omitted.
pub(super) fn eval(e: &Eval) -> Value {
    let mut m = Map::new();
    put(&mut m, "ID", e.id.as_str().into());
    put(&mut m, "Namespace", e.namespace.into());
    put(&mut m, "Priority", e.priority.into());
    put(&mut m, "Type", e.kind.as_str().into());
    put(&mut m, "TriggeredBy", e.triggered_by.into());
    put(&mut m, "JobID", e.job_id.as_str().into());
    put(&mut m, "JobModifyIndex", e.job_modify_index.into());
    put(&mut m, "NodeID", json!(e.node_id));
    put(&mut m, "DeploymentID", json!(e.deployment_id));
    put(&mut m, "Status", e.status.into());
    put(
        &mut m,
        "StatusDescription",
        e.status_description.as_str().into(),
    );
    put(&mut m, "PreviousEval", json!(e.previous_eval));
    put(&mut m, "BlockedEval", json!(e.blocked_eval));
    if let Some((group, n)) = &e.failed {
        let metric = json!({
            "AllocationTime": 61_234, "ClassExhausted": null, "ClassFiltered": null, "CoalescedFailures": n - 1,
            "ConstraintFiltered": null, "DimensionExhausted": {"memory": 2}, "NodesAvailable": {"dc1": 3},
            "NodesEvaluated": 3, "NodesExhausted": 2, "NodesFiltered": 1, "NodesInPool": 3, "QuotaExhausted": null,
            "ResourcesExhausted": null, "ScoreMetaData": null, "Scores": null,
        });
        m.insert("FailedTGAllocs".into(), json!({ group.as_str(): metric }));
        m.insert("ClassEligibility".into(), json!({"v1:1234": true}));
    }
    let queued: Map<String, Value> = e
        .queued
        .iter()
        .map(|(g, n)| (g.clone(), (*n).into()))
        .collect();
    put(&mut m, "QueuedAllocations", Value::Object(queued));
    put(
        &mut m,
        "SnapshotIndex",
        e.create_index.saturating_sub(1).into(),
    );
    put(&mut m, "CreateIndex", e.create_index.into());
    put(&mut m, "ModifyIndex", e.modify_index.into());
    put(&mut m, "CreateTime", e.create_time.into());
    put(&mut m, "ModifyTime", e.modify_time.into());
    json!({ "Evaluation": m })
}

/// A task event; like the rest of the allocation, empty fields are left
/// out, except `ExitCode` on `Terminated` events.
fn task_event(e: &TaskEvent) -> Value {
    let mut m = Map::new();
    put(
        &mut m,
        "Details",
        string_map(e.details.iter().map(|(k, v)| (*k, v))),
    );
    put(&mut m, "DisplayMessage", e.display.as_str().into());
    if e.kind == "Terminated" {
        m.insert("ExitCode".into(), e.exit_code.into());
    }
    put(&mut m, "FailsTask", e.fails_task.into());
    put(&mut m, "KillTimeout", e.kill_timeout.into());
    put(&mut m, "Message", e.message.as_str().into());
    put(&mut m, "RestartReason", e.restart_reason.into());
    put(&mut m, "Signal", e.signal.into());
    put(&mut m, "StartDelay", e.start_delay.into());
    put(&mut m, "Time", e.time.into());
    put(&mut m, "Type", e.kind.into());
    Value::Object(m)
}

/// `{"Allocation": {…}}`: `Job` is left out (Nomad strips it), empty fields omitted.
pub(super) fn alloc(a: &Alloc) -> Value {
    let mut m = Map::new();
    put(&mut m, "ID", a.id.as_str().into());
    put(&mut m, "Namespace", a.namespace.into());
    put(&mut m, "EvalID", a.eval_id.as_str().into());
    put(&mut m, "Name", a.name.as_str().into());
    put(&mut m, "NodeID", a.node_id.as_str().into());
    put(&mut m, "NodeName", a.node_name.as_str().into());
    put(&mut m, "JobID", a.job_id.as_str().into());
    put(&mut m, "TaskGroup", a.group.as_str().into());
    let tasks: Map<String, Value> = a
        .tasks
        .iter()
        .map(|t| {
            let res = json!({"Cpu": {"CpuShares": t.cpu}, "Memory": {"MemoryMB": t.memory_mb}});
            (t.name.clone(), res)
        })
        .collect();
    let (networks, ports) = match a.port {
        Some((label, to, value)) => (
            json!([{"DynamicPorts": [{"HostNetwork": "default", "Label": label, "To": to, "Value": value}], "Mode": "bridge"}]),
            json!([{"HostIP": "", "Label": label, "To": to, "Value": value}]),
        ),
        None => (Value::Null, Value::Null),
    };
    m.insert(
        "AllocatedResources".into(),
        json!({"Shared": {"DiskMB": 300, "Networks": networks, "Ports": ports}, "Tasks": tasks}),
    );
    m.insert(
        "Metrics".into(),
        json!({"AllocationTime": 48_211, "NodesAvailable": {"dc1": a.nodes_evaluated},
               "NodesEvaluated": a.nodes_evaluated, "NodesInPool": a.nodes_evaluated,
               "ScoreMetaData": [{"NodeID": a.node_id, "NormScore": 0.7312, "Scores": {"binpack": 0.7312}}]}),
    );
    put(&mut m, "DesiredStatus", a.desired.into());
    put(&mut m, "DesiredDescription", a.desired_description.into());
    if a.migrate {
        m.insert("DesiredTransition".into(), json!({"Migrate": true}));
    }
    put(&mut m, "ClientStatus", a.client.into());
    put(&mut m, "ClientDescription", a.client_description.into());
    let states: Map<String, Value> = a
        .task_states
        .iter()
        .map(|(name, s)| {
            let state = json!({
                "Events": s.events.iter().map(task_event).collect::<Vec<_>>(),
                "Failed": s.failed,
                "FinishedAt": s.finished_at.map(rfc3339),
                "LastRestart": s.last_restart.map(rfc3339),
                "Restarts": s.restarts,
                "StartedAt": s.started_at.map(rfc3339),
                "State": s.state,
                "TaskHandle": null,
            });
            (name.clone(), state)
        })
        .collect();
    put(&mut m, "TaskStates", Value::Object(states));
    put(&mut m, "DeploymentID", json!(a.deployment_id));
    if let Some(healthy) = a.healthy {
        m.insert(
            "DeploymentStatus".into(),
            json!({"Canary": false, "Healthy": healthy, "ModifyIndex": a.modify_index, "Timestamp": rfc3339(a.health_time)}),
        );
    }
    put(&mut m, "PreviousAllocation", json!(a.previous));
    put(&mut m, "NextAllocation", json!(a.next));
    put(&mut m, "AllocModifyIndex", a.alloc_modify_index.into());
    put(&mut m, "CreateIndex", a.create_index.into());
    put(&mut m, "ModifyIndex", a.modify_index.into());
    put(&mut m, "CreateTime", a.create_time.into());
    put(&mut m, "ModifyTime", a.modify_time.into());
    json!({ "Allocation": m })
}

/// `{"Deployment": {…}}`.
pub(super) fn deployment(d: &Deployment) -> Value {
    let groups: Map<String, Value> = d
        .groups
        .iter()
        .map(|g| {
            let state = json!({
                "AutoPromote": false, "AutoRevert": true, "DesiredCanaries": 0, "DesiredTotal": g.desired,
                "HealthyAllocs": g.healthy, "PlacedAllocs": g.placed, "PlacedCanaries": null,
                "ProgressDeadline": 600_000_000_000_i64, "Promoted": false,
                "RequireProgressBy": rfc3339(d.create_time + 600_000_000_000), "UnhealthyAllocs": g.unhealthy,
            });
            (g.name.clone(), state)
        })
        .collect();
    json!({"Deployment": {
        "CreateIndex": d.create_index, "CreateTime": d.create_time, "EvalPriority": d.priority,
        "ID": d.id, "IsMultiregion": false, "JobCreateIndex": d.job_create_index, "JobID": d.job_id,
        "JobModifyIndex": d.job_modify_index, "JobSpecModifyIndex": d.job_modify_index,
        "JobVersion": d.job_version, "ModifyIndex": d.modify_index, "ModifyTime": d.modify_time,
        "Namespace": d.namespace, "Status": d.status, "StatusDescription": d.status_description,
        "TaskGroups": groups,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_gos_padded_standard_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64(&[0; 32]).len(), 44);
    }

    #[test]
    fn a_node_pool_has_nomads_fields_and_no_time() {
        let pool = NodePool {
            name: "gpu",
            description: "Nodes with NVIDIA GPUs",
            meta: vec![("owner", "data".to_string())],
            algorithm: Some("spread"),
            hash: [1; 32],
            create_index: 40,
            modify_index: 52,
        };
        assert_eq!(
            node_pool(&pool),
            json!({"NodePool": {
                "CreateIndex": 40, "Description": "Nodes with NVIDIA GPUs",
                "Hash": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                "Meta": {"owner": "data"}, "ModifyIndex": 52, "Name": "gpu",
                "NodeIdentityTTL": 86_400_000_000_000_i64,
                "SchedulerConfiguration": {"MemoryOversubscriptionEnabled": null, "SchedulerAlgorithm": "spread"},
            }})
        );
        let plain = NodePool {
            meta: Vec::new(),
            algorithm: None,
            ..pool
        };
        let plain = node_pool(&plain);
        assert_eq!(
            (
                &plain["NodePool"]["Meta"],
                &plain["NodePool"]["SchedulerConfiguration"]
            ),
            (&Value::Null, &Value::Null),
            "nil fields are written as null"
        );
    }
}
