//! The generator's promises: determinism, Nomad's wire shape, and a coherent cluster story.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use nomad_sim::Generator;
use nomad_sim::SimFrame;

fn lines(seed: u64, events: usize) -> Vec<String> {
    Generator::new(seed)
        .frames(events)
        .iter()
        .map(SimFrame::to_line)
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let history = lines(42, 5000);
    assert!(
        history.iter().any(|l| l.contains(r#""Deleted":true"#))
            && history.iter().any(|l| l.contains("NodePoolUpserted")),
        "the compared history holds a purge and a node pool"
    );
    assert_eq!(history, lines(42, 5000));
    assert_ne!(lines(42, 300), lines(43, 300));
}

#[test]
fn frames_stops_at_the_frame_reaching_the_event_count() {
    let frames = Generator::new(1).frames(1000);
    let total: usize = frames.iter().map(|f| f.events.len()).sum();
    let before_last = total - frames.last().map_or(0, |f| f.events.len());
    assert!(total >= 1000 && before_last < 1000);
}

/// Parses 5,000 events of seed 1, checking each event's envelope.
fn checked_events() -> Vec<(u64, Value)> {
    checked_events_of(1, 5000)
}

/// Parses `events` events of `seed`, checking each event's envelope.
fn checked_events_of(seed: u64, events: usize) -> Vec<(u64, Value)> {
    let mut out = Vec::new();
    let mut last_index = 0;
    for frame in Generator::new(seed).frames(events) {
        assert!(frame.index > last_index, "indexes strictly increase");
        last_index = frame.index;
        let parsed: Value = serde_json::from_str(&frame.to_line()).expect("frame line is JSON");
        assert_eq!(parsed["Index"], frame.index);
        // A purge sends the job and the evaluations it completes as they were before.
        let purge = frame
            .events
            .iter()
            .any(|e| e.json.contains(r#""Deleted":true"#));
        for (ev, json) in frame
            .events
            .iter()
            .zip(parsed["Events"].as_array().into_iter().flatten())
        {
            let obj = json.as_object().expect("event is an object");
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            for key in [
                "Topic",
                "Type",
                "Key",
                "Namespace",
                "FilterKeys",
                "Index",
                "Payload",
            ] {
                assert!(keys.contains(&key), "{key} missing in {}", ev.json);
            }
            assert_eq!(keys.len(), 7);
            assert!(!ev.key.is_empty());
            assert_eq!(json["Key"], ev.key.as_str());
            assert_eq!(json["Topic"], ev.topic.as_str());
            assert_eq!(json["Index"], frame.index);
            let payload = json["Payload"].as_object().expect("payload is an object");
            let deleted = payload.get("Deleted").is_some();
            assert_eq!(payload.len(), if deleted { 2 } else { 1 });
            let object = &payload[&ev.topic];
            let id = if ev.topic == "NodePool" { "Name" } else { "ID" };
            assert_eq!(object[id], ev.key.as_str(), "Key is the object's {id}");
            if !(purge && (ev.topic == "Job" || object["Status"] == "complete")) {
                assert_eq!(
                    object["ModifyIndex"], frame.index,
                    "ModifyIndex is the entry's index"
                );
            }
            out.push((frame.index, json.clone()));
        }
    }
    out
}

#[test]
fn events_have_nomads_envelope_and_a_realistic_size() {
    let events = checked_events();
    let bytes: usize = events.iter().map(|(_, e)| e.to_string().len()).sum();
    let average = bytes / events.len();
    assert!(
        (1000..=2000).contains(&average),
        "average event size {average} B"
    );
}

#[test]
fn allocation_events_carry_job_and_deployment_filter_keys_and_no_job() {
    for (_, ev) in checked_events() {
        let topic = ev["Topic"].as_str().unwrap_or_default();
        let object = &ev["Payload"][topic];
        match topic {
            "Allocation" | "Evaluation" => {
                let want = [
                    object["JobID"].clone(),
                    object
                        .get("DeploymentID")
                        .cloned()
                        .unwrap_or(Value::from("")),
                ];
                assert_eq!(
                    ev["FilterKeys"].as_array().map(Vec::as_slice),
                    Some(&want[..])
                );
                assert!(object.get("Job").is_none_or(Value::is_null));
            }
            "Deployment" => assert_eq!(ev["FilterKeys"], serde_json::json!([object["JobID"]])),
            "Job" | "Node" | "NodePool" => assert!(ev["FilterKeys"].is_null()),
            other => panic!("unexpected topic {other}"),
        }
        if topic == "Node" || topic == "NodePool" {
            assert_eq!(ev["Namespace"], "");
        }
        if topic == "Node" {
            assert_eq!(ev["Namespace"], "");
            assert_eq!(object["SecretID"], "");
        }
    }
}

#[test]
fn the_history_tells_every_kind_of_story() {
    let events = checked_events();
    let types: BTreeSet<String> = events
        .iter()
        .map(|(_, e)| {
            format!(
                "{}/{}",
                e["Topic"].as_str().unwrap_or(""),
                e["Type"].as_str().unwrap_or("")
            )
        })
        .collect();
    for want in [
        "Node/NodeRegistration",
        "Node/NodeStreamEvent",
        "Node/NodeDrain",
        "Node/NodeEligibility",
        "Job/JobRegistered",
        "Evaluation/JobRegistered",
        "Job/JobDeregistered",
        "Evaluation/EvaluationUpdated",
        "Allocation/PlanResult",
        "Deployment/PlanResult",
        "Allocation/AllocationUpdated",
        "Allocation/AllocationUpdateDesiredStatus",
        "Deployment/DeploymentStatusUpdate",
        "NodePool/NodePoolUpserted",
    ] {
        assert!(types.contains(want), "no {want} in {types:?}");
    }
    let text: Vec<String> = events.iter().map(|(_, e)| e.to_string()).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(
        has(r#""oom_killed":"true""#) && has(r#""ExitCode":137"#),
        "an OOM kill"
    );
    assert!(has(r#""FailedTGAllocs""#), "a placement failure");
    assert!(has(r#""ClientStatus":"failed""#) && has(r#""ClientStatus":"complete""#));
    assert!(has(r#""Status":"successful""#) && has(r#""Status":"blocked""#));
    let namespaces: BTreeSet<&str> = events
        .iter()
        .filter_map(|(_, e)| e["Namespace"].as_str())
        .collect();
    assert!(namespaces.len() >= 3, "namespaces {namespaces:?}");
    let versions: BTreeSet<u64> = events
        .iter()
        .filter_map(|(_, e)| e["Payload"]["Job"]["Version"].as_u64())
        .collect();
    assert!(versions.len() >= 3, "jobs get new versions: {versions:?}");
}

#[test]
fn allocations_reference_objects_the_stream_already_showed() {
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut last_time = BTreeMap::<String, i64>::new();
    let events = checked_events();
    // Objects of one entry may reference each other, so register a frame's objects first.
    let mut by_index: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for (index, ev) in &events {
        by_index.entry(*index).or_default().push(ev);
    }
    for frame in by_index.values() {
        for ev in frame {
            let topic = ev["Topic"].as_str().unwrap_or_default();
            let key = ev["Key"].as_str().unwrap_or_default().to_string();
            seen.entry(topic).or_default().insert(key);
            if topic == "Job" {
                let job = format!(
                    "{}/{}",
                    ev["Namespace"].as_str().unwrap_or(""),
                    ev["Key"].as_str().unwrap_or("")
                );
                seen.entry("JobNs").or_default().insert(job);
            }
        }
        for ev in frame.iter().filter(|e| e["Topic"] == "Allocation") {
            let a = &ev["Payload"]["Allocation"];
            let job = format!(
                "{}/{}",
                a["Namespace"].as_str().unwrap_or(""),
                a["JobID"].as_str().unwrap_or("")
            );
            assert!(seen["JobNs"].contains(&job), "alloc of unknown job {job}");
            assert!(seen["Node"].contains(a["NodeID"].as_str().unwrap_or("")));
            assert!(seen["Evaluation"].contains(a["EvalID"].as_str().unwrap_or("")));
            if let Some(d) = a.get("DeploymentID").and_then(Value::as_str) {
                assert!(
                    seen.get("Deployment").is_some_and(|s| s.contains(d)),
                    "unknown deployment {d}"
                );
            }
            let id = a["ID"].as_str().unwrap_or_default().to_string();
            let modified = a["ModifyTime"].as_i64().unwrap_or_default();
            assert!(
                last_time.get(&id).is_none_or(|t| *t < modified),
                "time goes forward"
            );
            last_time.insert(id, modified);
            for state in a["TaskStates"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                for event in state["Events"].as_array().into_iter().flatten() {
                    assert!(event["Time"].as_i64().unwrap_or_default() > 1_767_225_600_000_000_000);
                    assert!(event["Type"].is_string() && event["DisplayMessage"].is_string());
                }
            }
        }
    }
}

/// Seed 7's first 20,000 events: purges of running jobs and of stopped ones.
fn purge_history() -> Vec<(u64, Value)> {
    checked_events_of(7, 20_000)
}

/// The events of each frame, in order.
fn by_frame(events: &[(u64, Value)]) -> BTreeMap<u64, Vec<&Value>> {
    let mut frames: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for (index, ev) in events {
        frames.entry(*index).or_default().push(ev);
    }
    frames
}

#[test]
fn a_stop_keeps_the_job_stopped_at_a_new_version_without_a_deleted_flag() {
    let events = purge_history();
    let mut stops = 0;
    for (index, frame) in by_frame(&events) {
        let Some(job) = frame.first().filter(|e| e["Topic"] == "Job") else {
            continue;
        };
        if job["Type"] != "JobDeregistered" || job["Payload"].get("Deleted").is_some() {
            continue;
        }
        stops += 1;
        let spec = &job["Payload"]["Job"];
        assert_eq!(job["Payload"].as_object().map(|p| p.len()), Some(1));
        assert_eq!(
            (&spec["Stop"], &spec["ModifyIndex"]),
            (&Value::Bool(true), &Value::from(index))
        );
        assert_eq!(
            frame.len(),
            2,
            "the job and its deregistration's evaluation"
        );
        let eval = &frame[1]["Payload"]["Evaluation"];
        assert_eq!(
            (&frame[1]["Type"], &eval["Status"], &eval["TriggeredBy"]),
            (
                &Value::from("JobDeregistered"),
                &Value::from("pending"),
                &Value::from("job-deregister")
            )
        );
    }
    assert!(stops >= 20, "{stops} stops");
}

#[test]
fn a_purge_sends_the_job_as_it_was_flagged_deleted_and_completes_its_evaluations() {
    let events = purge_history();
    let mut last_job: BTreeMap<String, Value> = BTreeMap::new();
    let (mut running, mut stopped) = (0, 0);
    for (index, frame) in by_frame(&events) {
        let purge = frame
            .first()
            .filter(|e| e["Payload"]["Deleted"] == true && e["Type"] != "JobBatchDeregistered");
        let Some(job) = purge else {
            for ev in frame.iter().filter(|e| e["Topic"] == "Job") {
                let key = ev["Key"].as_str().unwrap_or_default().to_owned();
                last_job.insert(key, ev["Payload"]["Job"].clone());
            }
            continue;
        };
        assert_eq!(
            (&job["Topic"], &job["Type"]),
            (&Value::from("Job"), &Value::from("JobDeregistered"))
        );
        let id = job["Key"].as_str().unwrap_or_default();
        let spec = &job["Payload"]["Job"];
        assert_eq!(Some(spec), last_job.get(id), "the job exactly as last sent");
        assert!(spec["ModifyIndex"].as_u64() < Some(index));
        if spec["Stop"] == true {
            stopped += 1
        } else {
            running += 1
        }
        let (last, middle) = frame[1..].split_last().expect("an evaluation follows");
        let eval = &last["Payload"]["Evaluation"];
        assert_eq!(
            (
                &last["Type"],
                &eval["JobID"],
                &eval["Status"],
                &eval["TriggeredBy"],
                &eval["JobModifyIndex"]
            ),
            (
                &Value::from("JobDeregistered"),
                &Value::from(id),
                &Value::from("pending"),
                &Value::from("job-deregister"),
                &Value::from(index)
            )
        );
        for ev in middle {
            let done = &ev["Payload"]["Evaluation"];
            assert_eq!(ev["Type"], "JobDeregistered");
            assert_eq!(
                (&done["JobID"], &done["Status"]),
                (&Value::from(id), &Value::from("complete"))
            );
            assert_eq!(done["StatusDescription"], format!("job {id} deleted"));
        }
    }
    assert!(
        running >= 1 && stopped >= 1,
        "purged {running} running and {stopped} stopped jobs"
    );
}

#[test]
fn a_purged_jobs_deployments_are_never_updated_again_and_its_allocations_only_stopped() {
    let events = purge_history();
    let mut purged: BTreeSet<String> = BTreeSet::new();
    let (mut purges, mut stopped) = (0, 0);
    for (_, ev) in &events {
        let topic = ev["Topic"].as_str().unwrap_or_default();
        let object = &ev["Payload"][topic];
        let job = job_of(ev, object);
        match topic {
            "Job" if ev["Payload"]["Deleted"] == true => {
                purges += 1;
                purged.insert(job);
            }
            "Job" => {
                // A new job may take the purged one's name.
                purged.remove(&job);
            }
            // Nomad's scheduler reads a deleted job as stopped.
            "Allocation" if purged.contains(&job) => {
                assert_eq!(object["DesiredStatus"], "stop", "{ev}");
                stopped += 1;
            }
            "Deployment" => {
                assert!(!purged.contains(&job), "{topic} of purged job {job}: {ev}");
            }
            _ => {}
        }
    }
    assert!(purges >= 3, "{purges} purges");
    assert!(stopped >= 1, "no allocation of a purged job was stopped");
}

#[test]
fn a_stopped_job_is_garbage_collected_once_its_allocations_ended() {
    let events = purge_history();
    // The last client status of each allocation, by job.
    let mut allocs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut collected = 0;
    for (_, ev) in &events {
        let topic = ev["Topic"].as_str().unwrap_or_default();
        let object = &ev["Payload"][topic];
        let job = job_of(ev, object);
        if topic == "Allocation" {
            let status = object["ClientStatus"].as_str().unwrap_or_default();
            let key = ev["Key"].as_str().unwrap_or_default();
            allocs
                .entry(job)
                .or_default()
                .insert(key.into(), status.into());
        } else if ev["Type"] == "JobBatchDeregistered" {
            collected += 1;
            assert_eq!(ev["Payload"]["Deleted"], true, "{ev}");
            assert_eq!(
                object["Stop"], true,
                "only a stopped job is collected: {ev}"
            );
            let running = allocs
                .remove(&job)
                .unwrap_or_default()
                .into_iter()
                .find(|(_, s)| !matches!(s.as_str(), "complete" | "failed" | "lost"));
            assert_eq!(
                running, None,
                "{job} collected with an allocation still running"
            );
        }
    }
    assert!(collected >= 20, "{collected} jobs collected");
}

/// `namespace/job` of an event: its object's `JobID`, or a Job's own key.
fn job_of(ev: &Value, object: &Value) -> String {
    format!(
        "{}/{}",
        ev["Namespace"].as_str().unwrap_or(""),
        object["JobID"]
            .as_str()
            .or(ev["Key"].as_str())
            .unwrap_or("")
    )
}

/// Keys of Nomad's time fields, none of which a node pool has.
const TIME_FIELDS: [&str; 7] = [
    "CreateTime",
    "ModifyTime",
    "SubmitTime",
    "StatusUpdatedAt",
    "Timestamp",
    "Time",
    "StartedAt",
];

/// Whether any object inside `value` has a key naming a time.
fn carries_time(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| TIME_FIELDS.contains(&k.as_str()) || carries_time(v)),
        Value::Array(items) => items.iter().any(carries_time),
        _ => false,
    }
}

#[test]
fn node_pool_upserts_are_frames_without_any_time() {
    let events = checked_events();
    let frames = by_frame(&events);
    let pools: Vec<&Vec<&Value>> = frames
        .values()
        .filter(|f| f.iter().any(|e| e["Topic"] == "NodePool"))
        .collect();
    assert!(pools.len() >= 2, "{} node pool frames", pools.len());
    for frame in pools {
        assert_eq!(frame.len(), 1, "a pool's entry has only the pool");
        let ev = frame[0];
        assert_eq!(
            (&ev["Type"], &ev["Namespace"], &ev["FilterKeys"]),
            (
                &Value::from("NodePoolUpserted"),
                &Value::from(""),
                &Value::Null
            )
        );
        let pool = ev["Payload"]["NodePool"].as_object().expect("a pool");
        let fields: Vec<&str> = pool.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "CreateIndex",
                "Description",
                "Hash",
                "Meta",
                "ModifyIndex",
                "Name",
                "NodeIdentityTTL",
                "SchedulerConfiguration"
            ]
        );
        assert_eq!(
            pool["Hash"].as_str().map(str::len),
            Some(44),
            "32 bytes in base64"
        );
        assert!(!carries_time(ev), "no time in {ev}");
    }
    assert!(
        events
            .iter()
            .filter(|(_, e)| e["Topic"] != "NodePool")
            .all(|(_, e)| carries_time(e)),
        "every other event carries a time"
    );
}
