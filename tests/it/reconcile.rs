//! Rebuilding state after a gap: a scripted history whose middle leaves
//! Nomad's buffer while the archiver is away (a job re-registered, an
//! allocation stopped, completed and garbage-collected, another failed, a
//! node drained, a new node), ingested by the real binary; then the
//! reconstruction read from the simulator's lists, `query snapshot`, `query
//! state`, `replay` and `status` checked exactly, with lists refused or failing,
//! turned off, and left pending by an earlier process.

use nomad_chronicle::archive::{
    Batch, Gap, GapKind, ReconcileScope, ReconstructedObject, Reconstruction,
};
use nomad_sim::{SimConfig, SimEvent, SimFrame};
use serde_json::{Value, json};

use crate::common::{Archive, Backend, Run, SimAt, on_both_backends};
use crate::reporting::db::Db;
use crate::reporting::documented_query;

const N1: &str = "11111111-0000-4000-8000-000000000001";
const N2: &str = "11111111-0000-4000-8000-000000000002";
const E1: &str = "22222222-0000-4000-8000-000000000001";
const E2: &str = "22222222-0000-4000-8000-000000000002";
const D1: &str = "33333333-0000-4000-8000-000000000001";
const A1: &str = "44444444-0000-4000-8000-000000000001";
const A2: &str = "44444444-0000-4000-8000-000000000002";
const A3: &str = "44444444-0000-4000-8000-000000000003";
/// The last index archived before the gap, and the first after it.
const CHECKPOINT: u64 = 13;
const RESUMED: u64 = 30;
const LAST: u64 = 34;

fn node(id: &str, name: &str, drain: bool, index: u64) -> Value {
    let eligibility = if drain { "ineligible" } else { "eligible" };
    json!({"Node": {"ID": id, "Name": name, "Datacenter": "dc1", "HTTPAddr": "10.0.0.1:4646",
        "Status": "ready", "SchedulingEligibility": eligibility, "Drain": drain,
        "Attributes": {"nomad.version": "1.11.3"}, "CreateIndex": 10, "ModifyIndex": index}})
}

fn job(version: u64, index: u64) -> Value {
    json!({"Job": {"ID": "web", "Name": "web", "Namespace": "default", "Type": "service",
        "Version": version, "Status": "running", "Stop": false, "Periodic": null,
        "ParameterizedJob": null, "TaskGroups": [{"Name": "api", "Count": 2}],
        "CreateIndex": 11, "ModifyIndex": index, "JobModifyIndex": index, "SubmitTime": 1}})
}

fn alloc(id: &str, desired: &str, client: &str, created: u64, index: u64) -> Value {
    json!({"Allocation": {"ID": id, "Namespace": "default", "EvalID": E1, "Name": "web.api[0]",
        "NodeID": N1, "NodeName": "worker-1", "JobID": "web", "TaskGroup": "api",
        "DesiredStatus": desired, "ClientStatus": client, "CreateIndex": created, "ModifyIndex": index}})
}

fn eval(id: &str, status: &str, index: u64) -> Value {
    json!({"Evaluation": {"ID": id, "Namespace": "default", "JobID": "web", "Status": status,
        "CreateIndex": 11, "ModifyIndex": index}})
}

fn ev(topic: &str, kind: &str, key: &str, index: u64, payload: Value) -> SimEvent {
    let (namespace, filter_keys) = match topic {
        "Node" => ("", vec![]),
        "Job" => ("default", vec![]),
        _ => ("default", vec!["web".to_owned(), String::new()]),
    };
    SimEvent::new(topic, kind, key, namespace, filter_keys, index, payload)
}

fn frame(index: u64, events: Vec<SimEvent>) -> SimFrame {
    SimFrame { index, events }
}

/// What the archive sees before it goes away.
fn before_the_gap() -> Vec<SimFrame> {
    vec![
        frame(
            10,
            vec![ev(
                "Node",
                "NodeRegistration",
                N1,
                10,
                node(N1, "worker-1", false, 10),
            )],
        ),
        frame(
            11,
            vec![
                ev("Job", "JobRegistered", "web", 11, job(0, 11)),
                ev(
                    "Evaluation",
                    "JobRegistered",
                    E1,
                    11,
                    eval(E1, "pending", 11),
                ),
            ],
        ),
        frame(
            12,
            vec![
                ev(
                    "Allocation",
                    "PlanResult",
                    A1,
                    12,
                    alloc(A1, "run", "pending", 12, 12),
                ),
                ev(
                    "Allocation",
                    "PlanResult",
                    A2,
                    12,
                    alloc(A2, "run", "pending", 12, 12),
                ),
                ev(
                    "Deployment",
                    "PlanResult",
                    D1,
                    12,
                    json!({"Deployment": {"ID": D1, "Namespace": "default", "JobID": "web",
                        "JobVersion": 0, "Status": "running", "ModifyIndex": 12}}),
                ),
            ],
        ),
        frame(
            13,
            vec![
                ev(
                    "Allocation",
                    "AllocationUpdated",
                    A1,
                    13,
                    alloc(A1, "run", "running", 12, 13),
                ),
                ev(
                    "Allocation",
                    "AllocationUpdated",
                    A2,
                    13,
                    alloc(A2, "run", "running", 12, 13),
                ),
            ],
        ),
    ]
}

/// What happens while the archiver is away; only the last five entries
/// (30–34, evaluation updates) are still in the buffer when it returns.
fn during_the_gap() -> Vec<SimFrame> {
    let mut frames = vec![
        frame(20, vec![ev("Job", "JobRegistered", "web", 20, job(1, 20))]),
        frame(
            21,
            vec![
                ev(
                    "Allocation",
                    "PlanResult",
                    A1,
                    21,
                    alloc(A1, "stop", "running", 12, 21),
                ),
                ev(
                    "Allocation",
                    "PlanResult",
                    A3,
                    21,
                    alloc(A3, "run", "pending", 21, 21),
                ),
            ],
        ),
        frame(
            22,
            vec![ev(
                "Allocation",
                "AllocationUpdated",
                A1,
                22,
                alloc(A1, "stop", "complete", 12, 22),
            )],
        ),
        frame(
            23,
            vec![ev(
                "Node",
                "NodeDrain",
                N1,
                23,
                node(N1, "worker-1", true, 23),
            )],
        ),
        frame(
            24,
            vec![ev(
                "Node",
                "NodeRegistration",
                N2,
                24,
                node(N2, "worker-2", false, 24),
            )],
        ),
        frame(
            25,
            vec![ev(
                "Allocation",
                "AllocationUpdated",
                A2,
                25,
                alloc(A2, "run", "failed", 12, 25),
            )],
        ),
    ];
    for index in RESUMED..=LAST {
        frames.push(frame(
            index,
            vec![ev(
                "Evaluation",
                "EvaluationUpdated",
                E2,
                index,
                eval(E2, "pending", index),
            )],
        ));
    }
    frames
}

/// A simulator with a five-entry buffer, the archive ingested up to the
/// checkpoint, and the gap's history published (A1 garbage-collected at 26).
async fn archived_before_a_gap(archive: &Archive, token: Option<&str>) -> SimAt {
    let sim = SimAt::start(SimConfig {
        buffer_size: 5,
        token: token.map(str::to_owned),
        ..SimConfig::default()
    })
    .await;
    for f in before_the_gap() {
        sim.sim.publish(f);
    }
    let mut args = vec![];
    if let Some(token) = token {
        args = vec!["--token", token];
    }
    archive
        .ingest_until(&sim, CHECKPOINT, &args)
        .await
        .assert_success();
    for f in during_the_gap() {
        if f.index == RESUMED {
            sim.sim.forget("Allocation", "default", A1, 26);
        }
        sim.sim.publish(f);
    }
    sim
}

/// Every topic's newest reconstruction: (topic, index, gap, objects as
/// (key, modify index, shape)).
async fn reconstructions(
    archive: &Archive,
) -> Vec<(String, u64, (u64, u64), Vec<(String, Option<u64>, String)>)> {
    let (store, cluster) = archive.open("test").await;
    let mut out = Vec::new();
    for topic in ["Job", "Allocation", "Evaluation", "Deployment", "Node"] {
        let r: Option<Reconstruction> = store
            .reconstructions()
            .at(&cluster, topic, None, None)
            .await
            .expect("reconstruction");
        let Some(r) = r else { continue };
        let objects: Vec<ReconstructedObject> = store
            .reconstructions()
            .objects(&r, None, &[])
            .await
            .expect("objects");
        let objects = objects
            .into_iter()
            .map(|o| (o.key, o.modify_index, o.shape))
            .collect();
        out.push((
            topic.to_owned(),
            r.index,
            (r.gap.from_index, r.gap.to_index),
            objects,
        ));
    }
    store.close().await;
    out
}

fn o(key: &str, modify: u64, shape: &str) -> (String, Option<u64>, String) {
    (key.to_owned(), Some(modify), shape.to_owned())
}

fn ndjson(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// (Topic, Key, Index, Source, a state summary) of every object of a snapshot.
async fn snapshot(archive: &Archive, at: u64) -> Vec<(String, String, u64, String, String)> {
    let run = archive
        .run(&[
            "query",
            "snapshot",
            "--at-index",
            &at.to_string(),
            "--output",
            "ndjson",
        ])
        .await;
    run.assert_success();
    ndjson(&run)
        .iter()
        .map(|v| {
            let o = &v["Object"];
            let state = match v["Topic"].as_str() {
                Some("Node") => format!("{} {}", o["SchedulingEligibility"], o["Drain"]),
                Some("Job") => format!("v{} {}", o["Version"], o["Status"]),
                _ => format!("{} {}", o["DesiredStatus"], o["ClientStatus"]),
            };
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (
                text("Topic"),
                text("Key"),
                v["Index"].as_u64().unwrap_or(0),
                text("Source"),
                state.replace('"', ""),
            )
        })
        .collect()
}

fn row(
    t: &str,
    k: &str,
    i: u64,
    source: &str,
    state: &str,
) -> (String, String, u64, String, String) {
    (
        t.to_owned(),
        k.to_owned(),
        i,
        source.to_owned(),
        state.to_owned(),
    )
}

async fn state(archive: &Archive, topic: &str, key: &str, at: u64) -> Value {
    let run = archive
        .run(&[
            "query",
            "state",
            topic,
            key,
            "--at-index",
            &at.to_string(),
            "--output",
            "json",
        ])
        .await;
    run.assert_success();
    serde_json::from_str(&run.stdout).expect("json")
}

async fn a_gap_is_followed_by_a_labelled_reconstruction(backend: Backend) {
    let archive = Archive::new(backend).await;
    let sim = archived_before_a_gap(&archive, None).await;

    let run = archive.ingest_until(&sim, LAST, &[]).await;

    run.assert_success();
    let gaps = &archive.status().await.clusters[0].gaps;
    assert_eq!(
        gaps.iter()
            .map(|g| (g.from_index, g.to_index, g.kind))
            .collect::<Vec<_>>(),
        vec![(CHECKPOINT, RESUMED, GapKind::Buffer)]
    );
    let gap = (CHECKPOINT, RESUMED);
    assert_eq!(
        reconstructions(&archive).await,
        vec![
            // The job changed inside the gap, so it was read whole (a stub has no version).
            ("Job".to_owned(), 20, gap, vec![o("web", 20, "Job")]),
            // A1 was garbage-collected at 26, which is the list's index.
            (
                "Allocation".to_owned(),
                26,
                gap,
                vec![
                    o(A2, 25, "AllocationListStub"),
                    o(A3, 21, "AllocationListStub")
                ]
            ),
            (
                "Evaluation".to_owned(),
                LAST,
                gap,
                vec![o(E1, 11, "Evaluation"), o(E2, LAST, "Evaluation")]
            ),
            (
                "Deployment".to_owned(),
                12,
                gap,
                vec![o(D1, 12, "Deployment")]
            ),
            (
                "Node".to_owned(),
                24,
                gap,
                vec![o(N1, 23, "NodeListStub"), o(N2, 24, "NodeListStub")]
            ),
        ]
    );
    let lists: Vec<(String, String, u16)> = sim
        .sim
        .api_requests()
        .into_iter()
        .map(|r| (r.path, r.query, r.status))
        .collect();
    let want = |p: &str, q: &str| (p.to_owned(), q.to_owned(), 200);
    assert_eq!(
        lists,
        vec![
            want("/v1/jobs", "namespace=*"),
            want("/v1/job/web", "namespace=default"),
            want("/v1/allocations", "namespace=*&task_states=false"),
            want("/v1/evaluations", "namespace=*"),
            want("/v1/deployments", "namespace=*"),
            want("/v1/nodes", ""),
        ]
    );
    assert!(
        run.stderr
            .contains("Reconstructed allocations after the gap 13–30")
            && run.stderr.contains("objects=2"),
        "{}",
        run.stderr
    );

    // Before the gap, events only; after every list's index, the reconstruction.
    assert_eq!(
        snapshot(&archive, CHECKPOINT).await,
        vec![
            row("Node", N1, 10, "event", "eligible false"),
            row("Job", "web", 11, "event", "v0 running"),
            row("Allocation", A1, 13, "event", "run running"),
            row("Allocation", A2, 13, "event", "run running"),
        ]
    );
    assert_eq!(
        snapshot(&archive, LAST).await,
        vec![
            row("Node", N1, 24, "reconstruction", "ineligible true"),
            row("Node", N2, 24, "reconstruction", "eligible false"),
            row("Job", "web", 20, "reconstruction", "v1 running"),
            row("Allocation", A2, 26, "reconstruction", "run failed"),
            row("Allocation", A3, 26, "reconstruction", "run pending"),
        ],
        "A1 was garbage-collected: gone, not running"
    );
    // Between the lists' indexes, only those at or before the point apply.
    assert_eq!(
        snapshot(&archive, 25).await,
        vec![
            row("Node", N1, 24, "reconstruction", "ineligible true"),
            row("Node", N2, 24, "reconstruction", "eligible false"),
            row("Job", "web", 20, "reconstruction", "v1 running"),
            row("Allocation", A1, 13, "event", "run running"),
            row("Allocation", A2, 13, "event", "run running"),
        ]
    );
    let table = archive
        .run(&["query", "snapshot", "--at-index", &LAST.to_string()])
        .await;
    table.assert_success();
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with(&A2[..8]) && l.ends_with("26 (reconstructed)")),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.lines().any(|l| l.starts_with("* allocations marked (reconstructed) are from Nomad's /v1/allocations at index 26 (read ")
            && l.ends_with("after the gap 13–30, not from events; 1 allocation it did not list is left out as gone by then")),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("! archive has no events between index 13 and 30"),
        "{}",
        table.stdout
    );

    let document = archive
        .run(&["query", "snapshot", "--at-index", "34", "--output", "json"])
        .await;
    let document: Value = serde_json::from_str(&document.stdout).expect("json");
    let used: Vec<(&str, u64, u64, u64, u64)> = document["Reconstructions"]
        .as_array()
        .expect("reconstructions")
        .iter()
        .map(|u| {
            let n = |k: &str| u[k].as_u64().unwrap_or(u64::MAX);
            (
                u["Topic"].as_str().unwrap_or(""),
                n("Index"),
                u["Gap"]["ToIndex"].as_u64().unwrap_or(0),
                n("Shown"),
                n("Gone"),
            )
        })
        .collect();
    assert_eq!(
        used,
        vec![
            ("Node", 24, 30, 2, 0),
            ("Job", 20, 30, 1, 0),
            ("Allocation", 26, 30, 2, 1)
        ]
    );
    assert_eq!(
        document["Allocations"][0]["Reconstruction"]["Shape"],
        "AllocationListStub"
    );

    let failed = state(&archive, "Allocation", A2, LAST).await;
    assert_eq!(
        (&failed["Index"], &failed["Type"], &failed["Source"]),
        (
            &json!(26),
            &json!("Reconstructed"),
            &json!("reconstruction")
        )
    );
    assert_eq!(failed["Object"]["ClientStatus"], "failed");
    assert_eq!(failed["Object"]["JobVersion"], 0, "placed for version 0");
    let label = &failed["Reconstruction"];
    assert_eq!(
        (
            &label["Endpoint"],
            &label["Shape"],
            &label["Present"],
            &label["Gap"]["FromIndex"],
            &label["Gap"]["ToIndex"],
            &label["Gap"]["Kind"]
        ),
        (
            &json!("/v1/allocations"),
            &json!("AllocationListStub"),
            &json!(true),
            &json!(13),
            &json!(30),
            &json!("buffer")
        )
    );
    let collected = state(&archive, "Allocation", A1, LAST).await;
    assert_eq!(
        (
            &collected["Index"],
            &collected["Source"],
            &collected["Object"]["ClientStatus"]
        ),
        (&json!(13), &json!("event"), &json!("running"))
    );
    assert_eq!(
        (
            &collected["Reconstruction"]["Present"],
            &collected["Reconstruction"]["Index"]
        ),
        (&json!(false), &json!(26)),
        "the last event, and that it was gone by the reconstruction"
    );
    let unchanged = state(&archive, "Evaluation", E1, LAST).await;
    assert_eq!(
        (
            &unchanged["Index"],
            &unchanged["Source"],
            &unchanged.get("Reconstruction")
        ),
        (&json!(11), &json!("event"), &None),
        "the same version as the last event: the event is shown"
    );
    let new = state(&archive, "Allocation", A3, LAST).await;
    assert_eq!(
        (&new["Key"], &new["Source"]),
        (&json!(A3), &json!("reconstruction"))
    );
    let job = state(&archive, "Job", "web", LAST).await;
    assert_eq!(
        (
            &job["Object"]["Version"],
            &job["Object"]["TaskGroups"][0]["Count"],
            &job["Reconstruction"]["Shape"]
        ),
        (&json!(1), &json!(2), &json!("Job"))
    );
    let human = archive
        .run(&[
            "query",
            "state",
            "Node",
            N1,
            "--at-index",
            &LAST.to_string(),
        ])
        .await;
    human.assert_success();
    assert!(
        human.stdout.starts_with(&format!(
            "Node {N1} as of index 34: reconstructed at index 24, read "
        )),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.lines().nth(1).is_some_and(|l| l
            .starts_with("* reconstructed, not from events: Nomad's /v1/nodes at index 24 (read ")
            && l.ends_with(
                "after the gap 13–30; a list stub (NodeListStub), not the whole object"
            )),
        "{}",
        human.stdout
    );

    // Replay and the events query emit only what Nomad streamed.
    let history = sim.sim.history();
    let streamed: Vec<String> = history
        .iter()
        .filter(|f| f.index <= CHECKPOINT || f.index >= RESUMED)
        .map(SimFrame::to_line)
        .collect();
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), streamed);
    let events = archive
        .run(&["query", "events", "--output", "ndjson"])
        .await;
    assert_eq!(
        ndjson(&events).len(),
        13,
        "8 events before the gap, 5 after"
    );
}

async fn no_reconcile_stores_no_reconstruction(backend: Backend) {
    for flag in ["--no-reconcile", "--reconcile=false"] {
        let archive = Archive::new(backend).await;
        let sim = archived_before_a_gap(&archive, None).await;

        archive
            .ingest_until(&sim, LAST, &[flag])
            .await
            .assert_success();

        assert_eq!(archive.status().await.clusters[0].gaps.len(), 1, "{flag}");
        assert!(reconstructions(&archive).await.is_empty(), "{flag}");
        let (store, cluster) = archive.open("test").await;
        let pending = store
            .reconstructions()
            .pending(&cluster)
            .await
            .expect("pending");
        assert!(pending.is_empty(), "{flag}: none requested either");
        store.close().await;
        assert!(
            sim.sim.api_requests().is_empty(),
            "{flag}: no list was read"
        );
        assert_eq!(
            snapshot(&archive, LAST).await[2..],
            [
                row("Allocation", A1, 13, "event", "run running"),
                row("Allocation", A2, 13, "event", "run running"),
            ],
            "{flag}"
        );
    }
}

async fn refused_and_failing_lists_are_reported_and_the_others_stored(backend: Backend) {
    let archive = Archive::new(backend).await;
    let token = "9d1e-the-secret";
    let sim = archived_before_a_gap(&archive, Some(token)).await;
    sim.sim.set_list_denied("Node", true);
    sim.sim
        .set_list_failing("Deployment", Some((500, "No cluster leader")));

    let run = archive.ingest_until(&sim, LAST, &["--token", token]).await;

    run.assert_success();
    assert!(
        run.stderr.contains(
            "Could not reconstruct nodes after the gap 13–30: the token needs `node:read`; the other lists are stored"
        ) && run.stderr.contains("Nomad refused `/v1/nodes` (HTTP 403: Permission denied)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Could not reconstruct deployments after the gap 13–30; ingest goes on error=Nomad answered `/v1/deployments` with HTTP 500: No cluster leader"),
        "{}",
        run.stderr
    );
    let deployments = sim
        .sim
        .api_requests()
        .iter()
        .filter(|r| r.path == "/v1/deployments")
        .count();
    assert_eq!(deployments, 3, "a server error is tried three times");
    assert!(!run.stderr.contains(token), "the token is never logged");
    let stored: Vec<(String, u64)> = reconstructions(&archive)
        .await
        .into_iter()
        .map(|(topic, index, _, _)| (topic, index))
        .collect();
    assert_eq!(
        stored,
        vec![
            ("Job".to_owned(), 20),
            ("Allocation".to_owned(), 26),
            ("Evaluation".to_owned(), LAST),
        ]
    );
    assert_eq!(archive.events("test").await.len(), 13, "ingest went on");
    // Nodes come from events alone; the rest from the reconstruction.
    let after = snapshot(&archive, LAST).await;
    assert_eq!(after[0], row("Node", N1, 10, "event", "eligible false"));
    assert_eq!(
        after[1],
        row("Job", "web", 20, "reconstruction", "v1 running")
    );

    // `status` says what was reconstructed after the gap, and what not.
    let table = archive.run(&["status"]).await;
    table.assert_success();
    assert!(
        table.stdout.contains("; reconstructed: Job at 20 (1), Allocation at 26 (2), Evaluation at 34 (2), Deployment failed, Node refused\n"),
        "{}",
        table.stdout
    );
    let report = archive.run(&["status", "--output", "json"]).await;
    let report: Value = serde_json::from_str(&report.stdout).expect("json");
    assert_eq!(
        report["Clusters"][0]["Reconstructions"][4],
        json!({"GapFromIndex": 13, "GapToIndex": 30, "Topic": "Node", "Status": "refused",
            "Index": null, "Objects": 0,
            "Detail": "Nomad refused `/v1/nodes` (HTTP 403: Permission denied); the token needs `node:read`"})
    );

    // docs/reporting.md's query, as written, says the same.
    let sql = documented_query("What Nomad's lists said after each gap", backend);
    let rows = Db::connect(&archive).await.rows(&sql).await;
    let want = |topic: &str, status: &str, index: Value, objects: u64, detail: Value| {
        json!({"cluster": "test", "from_index": 13, "to_index": 30, "kind": "buffer",
            "topic": topic, "status": status, "raft_index": index, "objects": objects, "detail": detail})
    };
    assert_eq!(
        rows.into_iter().map(Value::Object).collect::<Vec<_>>(),
        vec![
            want("Allocation", "stored", json!(26), 2, Value::Null),
            want(
                "Deployment",
                "failed",
                Value::Null,
                0,
                json!("Nomad answered `/v1/deployments` with HTTP 500: No cluster leader")
            ),
            want("Evaluation", "stored", json!(LAST), 2, Value::Null),
            want("Job", "stored", json!(20), 1, Value::Null),
            want(
                "Node",
                "refused",
                Value::Null,
                0,
                json!(
                    "Nomad refused `/v1/nodes` (HTTP 403: Permission denied); the token needs `node:read`"
                )
            ),
        ]
    );
}

async fn pending_reconstructions_left_behind_are_completed_once(backend: Backend) {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    for f in before_the_gap() {
        sim.sim.publish(f);
    }
    // An earlier process recorded a gap and stopped before reading the lists.
    let (store, cluster, mut lease) = archive.writer("test").await;
    let batch = Batch {
        gaps: vec![Gap {
            from_index: 5,
            to_index: 10,
            kind: GapKind::Buffer,
            reason: "a test".into(),
            detected_at: 1,
        }],
        reconcile: Some(ReconcileScope {
            topics: vec!["Allocation".into(), "Node".into()],
            namespace: "*".into(),
        }),
        ..Batch::default()
    };
    lease.commit(&cluster, &batch).await.expect("commit");
    lease
        .commit(&cluster, &batch)
        .await
        .expect("the same gap again");
    drop(lease);
    let pending = store
        .reconstructions()
        .pending(&cluster)
        .await
        .expect("pending");
    assert_eq!(
        pending.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>(),
        vec!["Allocation", "Node"]
    );
    store.close().await;

    archive
        .ingest_until(&sim, CHECKPOINT, &[])
        .await
        .assert_success();
    // A restart finds nothing pending: nothing is read again.
    sim.sim.publish(frame(
        14,
        vec![ev(
            "Evaluation",
            "EvaluationUpdated",
            E1,
            14,
            eval(E1, "complete", 14),
        )],
    ));
    archive.ingest_until(&sim, 14, &[]).await.assert_success();

    assert_eq!(
        reconstructions(&archive).await,
        vec![
            (
                "Allocation".to_owned(),
                13,
                (5, 10),
                vec![
                    o(A1, 13, "AllocationListStub"),
                    o(A2, 13, "AllocationListStub")
                ]
            ),
            (
                "Node".to_owned(),
                10,
                (5, 10),
                vec![o(N1, 10, "NodeListStub")]
            ),
        ]
    );
    assert_eq!(sim.sim.api_requests().len(), 2, "each list read once");
}

on_both_backends!(
    a_gap_is_followed_by_a_labelled_reconstruction,
    no_reconcile_stores_no_reconstruction,
    refused_and_failing_lists_are_reported_and_the_others_stored,
    pending_reconstructions_left_behind_are_completed_once,
);
