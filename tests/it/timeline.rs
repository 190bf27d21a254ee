//! Exact timelines for a scripted history: a deployment whose task is
//! OOM-killed and fails, a redeploy with a new image and count, a node drain,
//! and a job stop and deregistration.

use nomad_sim::{SimEvent, SimFrame};
use serde_json::{Value, json};

use crate::common::{Archive, Backend, on_both_backends};

const NODE: &str = "11111111-aaaa-bbbb-cccc-000000000001";
const EVAL: &str = "22222222-aaaa-bbbb-cccc-000000000001";
const EVAL2: &str = "22222222-aaaa-bbbb-cccc-000000000002";
const DEP: &str = "33333333-aaaa-bbbb-cccc-000000000001";
const ALLOC: &str = "44444444-aaaa-bbbb-cccc-000000000001";
const ALLOC2: &str = "44444444-aaaa-bbbb-cccc-000000000002";
const T0: i64 = 1_767_225_600_000_000_000;

fn job(version: u64, image: &str, count: u64, stop: bool, status: &str) -> Value {
    json!({"Job": {"ID": "web", "Name": "web", "Namespace": "prod", "Version": version, "Stop": stop, "Status": status,
        "TaskGroups": [{"Name": "api", "Count": count, "Tasks": [{"Name": "server", "Config": {"image": image},
        "Resources": {"CPU": 500, "MemoryMB": 256}}]}]}})
}

fn alloc(id: &str, eval: &str, desired: &str, client: &str, tasks: Value) -> Value {
    json!({"Allocation": {"ID": id, "JobID": "web", "Namespace": "prod", "TaskGroup": "api", "NodeID": NODE,
        "NodeName": "worker-1", "EvalID": eval, "DeploymentID": DEP, "DesiredStatus": desired,
        "ClientStatus": client, "TaskStates": tasks}})
}

fn task(state: &str, events: &[(&str, i64, i64, &str)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|(kind, at, exit, message)| json!({"Type": kind, "Time": T0 + at, "ExitCode": exit, "DisplayMessage": message}))
        .collect();
    json!({"server": {"State": state, "Failed": state == "dead", "Events": events}})
}

fn node(status: &str, eligibility: &str, drain: bool) -> Value {
    json!({"Node": {"ID": NODE, "Name": "worker-1", "Status": status, "SchedulingEligibility": eligibility, "Drain": drain, "Events": []}})
}

fn eval(id: &str, status: &str, trigger: &str) -> Value {
    json!({"Evaluation": {"ID": id, "JobID": "web", "Namespace": "prod", "Status": status, "TriggeredBy": trigger}})
}

fn deployment(status: &str, description: &str) -> Value {
    json!({"Deployment": {"ID": DEP, "JobID": "web", "Namespace": "prod", "JobVersion": 0, "Status": status, "StatusDescription": description}})
}

fn ev(topic: &str, kind: &str, key: &str, ns: &str, index: u64, payload: Value) -> SimEvent {
    let filter_keys = match topic {
        "Allocation" | "Evaluation" => vec!["web".to_owned(), DEP.to_owned()],
        "Deployment" => vec!["web".to_owned()],
        _ => vec![],
    };
    SimEvent::new(topic, kind, key, ns, filter_keys, index, payload)
}

fn scenario() -> Vec<SimFrame> {
    let started = ("Started", 2_000_000_000, 0, "Task started by client");
    let oom = (
        "Terminated",
        9_000_000_000,
        137,
        "Exit Code: 137, Exit Message: \"OOM Killed\"",
    );
    let not_restarting = (
        "Not Restarting",
        9_500_000_000,
        0,
        "Exceeded allowed attempts 0 in interval 30m0s",
    );
    let frames: Vec<(u64, Vec<SimEvent>)> = vec![
        (
            10,
            vec![ev(
                "Node",
                "NodeRegistration",
                NODE,
                "",
                10,
                node("ready", "eligible", false),
            )],
        ),
        (
            20,
            vec![
                ev(
                    "Job",
                    "JobRegistered",
                    "web",
                    "prod",
                    20,
                    job(0, "web:1.0", 1, false, "pending"),
                ),
                ev(
                    "Evaluation",
                    "JobRegistered",
                    EVAL,
                    "prod",
                    20,
                    eval(EVAL, "pending", "job-register"),
                ),
            ],
        ),
        (
            22,
            vec![
                ev(
                    "Allocation",
                    "PlanResult",
                    ALLOC,
                    "prod",
                    22,
                    alloc(ALLOC, EVAL, "run", "pending", json!({})),
                ),
                ev(
                    "Deployment",
                    "PlanResult",
                    DEP,
                    "prod",
                    22,
                    deployment("running", "Deployment is running"),
                ),
            ],
        ),
        (
            23,
            vec![ev(
                "Evaluation",
                "EvaluationUpdated",
                EVAL,
                "prod",
                23,
                eval(EVAL, "complete", "job-register"),
            )],
        ),
        (
            25,
            vec![ev(
                "Allocation",
                "AllocationUpdated",
                ALLOC,
                "prod",
                25,
                alloc(ALLOC, EVAL, "run", "running", task("running", &[started])),
            )],
        ),
        // The OOM kill, and the same task events re-sent in the next snapshot.
        (
            27,
            vec![ev(
                "Allocation",
                "AllocationUpdated",
                ALLOC,
                "prod",
                27,
                alloc(ALLOC, EVAL, "run", "running", task("dead", &[started, oom])),
            )],
        ),
        (
            28,
            vec![ev(
                "Allocation",
                "AllocationUpdated",
                ALLOC,
                "prod",
                28,
                alloc(
                    ALLOC,
                    EVAL,
                    "run",
                    "failed",
                    task("dead", &[started, oom, not_restarting]),
                ),
            )],
        ),
        (
            30,
            vec![ev(
                "Deployment",
                "DeploymentStatusUpdate",
                DEP,
                "prod",
                30,
                deployment("failed", "Failed due to unhealthy allocations"),
            )],
        ),
        (
            40,
            vec![
                ev(
                    "Job",
                    "JobRegistered",
                    "web",
                    "prod",
                    40,
                    job(1, "web:1.1", 2, false, "running"),
                ),
                ev(
                    "Evaluation",
                    "JobRegistered",
                    EVAL2,
                    "prod",
                    40,
                    eval(EVAL2, "pending", "job-register"),
                ),
            ],
        ),
        (
            42,
            vec![
                ev(
                    "Allocation",
                    "PlanResult",
                    ALLOC,
                    "prod",
                    42,
                    alloc(
                        ALLOC,
                        EVAL,
                        "stop",
                        "failed",
                        task("dead", &[started, oom, not_restarting]),
                    ),
                ),
                ev(
                    "Allocation",
                    "PlanResult",
                    ALLOC2,
                    "prod",
                    42,
                    alloc(ALLOC2, EVAL2, "run", "pending", json!({})),
                ),
            ],
        ),
        (
            50,
            vec![ev(
                "Node",
                "NodeDrain",
                NODE,
                "",
                50,
                node("ready", "ineligible", true),
            )],
        ),
        (
            60,
            vec![ev(
                "Job",
                "JobRegistered",
                "web",
                "prod",
                60,
                job(1, "web:1.1", 2, true, "dead"),
            )],
        ),
        (
            61,
            vec![ev(
                "Job",
                "JobDeregistered",
                "web",
                "prod",
                61,
                job(1, "web:1.1", 2, true, "dead"),
            )],
        ),
    ];
    frames
        .into_iter()
        .map(|(index, events)| SimFrame { index, events })
        .collect()
}

/// (Index, Topic, Change) of every line of a timeline.
async fn timeline(archive: &Archive, args: &[&str]) -> Vec<(u64, String, String)> {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "ndjson"]);
    let run = archive.run(&all).await;
    run.assert_success();
    run.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            (
                v["Index"].as_u64().unwrap_or(0),
                v["Topic"].as_str().unwrap_or("").to_owned(),
                v["Summary"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn lines(expected: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
    expected
        .iter()
        .map(|(i, t, c)| (*i, (*t).to_owned(), (*c).to_owned()))
        .collect()
}

async fn import_scenario(archive: &Archive) {
    let file = archive.file("scenario.ndjson");
    std::fs::write(
        &file,
        scenario()
            .iter()
            .map(|f| f.to_line() + "\n")
            .collect::<String>(),
    )
    .expect("write");
    archive
        .run(&["import", &file.display().to_string()])
        .await
        .assert_success();
}

async fn the_job_timeline_tells_the_whole_story(backend: Backend) {
    let archive = Archive::new(backend).await;
    import_scenario(&archive).await;

    let got = timeline(&archive, &["job", "web"]).await;

    let oom = "task server: Terminated: Exit Code: 137, Exit Message: \"OOM Killed\"";
    assert_eq!(
        got,
        lines(&[
            (20, "Job", "version 0 registered"),
            (
                20,
                "Evaluation",
                "evaluation created: triggered by job-register, status pending"
            ),
            (
                22,
                "Allocation",
                "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
            ),
            (
                22,
                "Deployment",
                "deployment of version 0 running (Deployment is running)"
            ),
            (23, "Evaluation", "evaluation pending → complete"),
            (25, "Allocation", "client pending → running"),
            (27, "Allocation", oom),
            (28, "Allocation", "client running → failed"),
            (
                28,
                "Allocation",
                "task server: Not Restarting: Exceeded allowed attempts 0 in interval 30m0s"
            ),
            (
                30,
                "Deployment",
                "deployment running → failed (Failed due to unhealthy allocations)"
            ),
            (
                40,
                "Job",
                "version 1 registered: group api count 1 → 2; task server image web:1.0 → web:1.1"
            ),
            (40, "Job", "status pending → running"),
            (
                40,
                "Evaluation",
                "evaluation created: triggered by job-register, status pending"
            ),
            (42, "Allocation", "desired run → stop"),
            (
                42,
                "Allocation",
                "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
            ),
            (60, "Job", "stopped"),
            (60, "Job", "status running → dead"),
            (61, "Job", "stopped"),
        ])
    );
}

async fn the_alloc_timeline_reports_each_task_event_once(backend: Backend) {
    let archive = Archive::new(backend).await;
    import_scenario(&archive).await;

    let got = timeline(&archive, &["alloc", "44444444-aaaa-bbbb-cccc-000000000001"]).await;

    assert_eq!(
        got,
        lines(&[
            (
                22,
                "Allocation",
                "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
            ),
            (25, "Allocation", "client pending → running"),
            (25, "Allocation", "task server: none → running"),
            (
                25,
                "Allocation",
                "task server: Started: Task started by client"
            ),
            (27, "Allocation", "task server: running → dead"),
            (
                27,
                "Allocation",
                "task server: Terminated: Exit Code: 137, Exit Message: \"OOM Killed\""
            ),
            (28, "Allocation", "client running → failed"),
            (
                28,
                "Allocation",
                "task server: Not Restarting: Exceeded allowed attempts 0 in interval 30m0s"
            ),
            (42, "Allocation", "desired run → stop"),
        ])
    );
}

async fn the_node_timeline_shows_the_drain_and_what_ran_there(backend: Backend) {
    let archive = Archive::new(backend).await;
    import_scenario(&archive).await;

    let by_name = timeline(&archive, &["node", "worker-1"]).await;
    let by_prefix = timeline(&archive, &["node", "11111111"]).await;

    assert_eq!(by_name, by_prefix);
    assert_eq!(
        by_name,
        lines(&[
            (
                10,
                "Node",
                "registered worker-1: status ready, eligibility eligible"
            ),
            (
                22,
                "Allocation",
                "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
            ),
            (25, "Allocation", "client pending → running"),
            (28, "Allocation", "client running → failed"),
            (42, "Allocation", "desired run → stop"),
            (
                42,
                "Allocation",
                "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
            ),
            (50, "Node", "eligibility eligible → ineligible"),
            (50, "Node", "drain started"),
        ])
    );
}

async fn eval_and_deployment_timelines(backend: Backend) {
    let archive = Archive::new(backend).await;
    import_scenario(&archive).await;

    let eval = timeline(&archive, &["eval", "22222222-aaaa-bbbb-cccc-000000000002"]).await;
    assert_eq!(
        eval,
        lines(&[
            (
                40,
                "Evaluation",
                "evaluation created: triggered by job-register, status pending"
            ),
            (
                42,
                "Allocation",
                "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
            ),
        ])
    );
    let deployment = timeline(&archive, &["deployment", "3333"]).await;
    assert_eq!(
        deployment.first().map(|l| l.2.as_str()),
        Some(
            "placed on node worker-1 (job web, group api, eval 22222222, deployment 33333333): desired run, client pending"
        )
    );
    assert!(deployment.contains(&(
        30,
        "Deployment".to_owned(),
        "deployment running → failed (Failed due to unhealthy allocations)".to_owned()
    )));

    let missing = archive
        .run(&["query", "job", "api", "--namespace", "prod"])
        .await;
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        missing.stderr.trim(),
        "no events for job `api` in namespace `prod` (archive covers index 10–61)"
    );
}

/// (Topic, Key, Index) and a few fields of every object in a snapshot.
async fn snapshot(archive: &Archive, args: &[&str]) -> Vec<(String, String, u64, String)> {
    let mut all = vec!["query", "snapshot"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "ndjson"]);
    let run = archive.run(&all).await;
    run.assert_success();
    run.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            let o = &v["Object"];
            let state = match v["Topic"].as_str() {
                Some("Node") => format!(
                    "{} {} drain={}",
                    o["Status"], o["SchedulingEligibility"], o["Drain"]
                ),
                Some("Job") => format!("v{} {}", o["Version"], o["Status"]),
                _ => format!("{} {}", o["DesiredStatus"], o["ClientStatus"]),
            };
            (
                v["Topic"].as_str().unwrap_or("").to_owned(),
                v["Key"].as_str().unwrap_or("").to_owned(),
                v["Index"].as_u64().unwrap_or(0),
                state.replace('"', ""),
            )
        })
        .collect()
}

async fn snapshots_show_the_cluster_as_it_was(backend: Backend) {
    let archive = Archive::new(backend).await;
    import_scenario(&archive).await;
    let s = |t: &str, k: &str, i: u64, st: &str| (t.to_owned(), k.to_owned(), i, st.to_owned());

    assert_eq!(
        snapshot(&archive, &["--at-index", "30"]).await,
        vec![
            s("Node", NODE, 10, "ready eligible drain=false"),
            s("Job", "web", 20, "v0 pending"),
            s("Allocation", ALLOC, 28, "run failed"),
        ]
    );
    assert_eq!(
        snapshot(&archive, &["--at-index", "55", "--node", "worker-1"]).await,
        vec![
            s("Node", NODE, 50, "ready ineligible drain=true"),
            s("Allocation", ALLOC, 42, "stop failed"),
            s("Allocation", ALLOC2, 42, "run pending"),
        ]
    );
    // `nomad job stop` deregisters the job without purging it: it stays, dead.
    let after_deregistration = snapshot(&archive, &["--at-index", "61", "--job", "web"]).await;
    assert_eq!(
        after_deregistration.first(),
        Some(&s("Job", "web", 61, "v1 dead")),
        "{after_deregistration:?}"
    );
    let before_anything = archive.run(&["query", "snapshot", "--at-index", "5"]).await;
    assert_eq!(before_anything.code, Some(1), "{}", before_anything.stderr);
}

on_both_backends!(
    snapshots_show_the_cluster_as_it_was,
    the_job_timeline_tells_the_whole_story,
    the_alloc_timeline_reports_each_task_event_once,
    the_node_timeline_shows_the_drain_and_what_ran_there,
    eval_and_deployment_timelines,
);
