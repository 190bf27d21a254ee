//! `query allocs|deployments|evals|jobs` on a scripted incident: a
//! deployment whose allocation fails, an allocation lost with its node, an
//! evaluation blocked and then complete, a job registered again. Each list
//! is one row per object, as its latest event in the window describes it.

use nomad_sim::{SimEvent, SimFrame};
use serde_json::{Value, json};

use crate::common::{Archive, Backend, on_both_backends};

pub const N1: &str = "11111111-aaaa-bbbb-cccc-000000000001";
const N2: &str = "11111111-aaaa-bbbb-cccc-000000000002";
pub const E1: &str = "22222222-aaaa-bbbb-cccc-000000000001";
pub const E2: &str = "22222222-aaaa-bbbb-cccc-000000000002";
pub const D1: &str = "33333333-aaaa-bbbb-cccc-000000000001";
pub const A1: &str = "44444444-aaaa-bbbb-cccc-000000000001";
const A2: &str = "44444444-aaaa-bbbb-cccc-000000000002";
pub const A3: &str = "44444444-aaaa-bbbb-cccc-000000000003";
pub const JOB: &str = "web-frontend";
/// 2026-01-01T00:00:00Z in ns; index `i` happens `i` seconds later.
const T0: i64 = 1_767_225_600_000_000_000;

fn at(index: u64) -> i64 {
    T0 + index as i64 * 1_000_000_000
}

fn ev(topic: &str, key: &str, ns: &str, index: u64, payload: Value) -> SimEvent {
    let kind = match topic {
        "Node" => "NodeRegistration",
        "Job" => "JobRegistered",
        "Evaluation" => "EvaluationUpdated",
        "Deployment" => "DeploymentStatusUpdate",
        _ => "AllocationUpdated",
    };
    SimEvent::new(
        topic,
        kind,
        key,
        ns,
        vec![],
        index,
        json!({ topic: payload }),
    )
}

pub fn node(id: &str, name: &str, status: &str, index: u64) -> SimEvent {
    let payload = json!({"ID": id, "Name": name, "Status": status, "StatusUpdatedAt": at(index) / 1_000_000_000});
    ev("Node", id, "", index, payload)
}

fn job(version: u64, index: u64) -> SimEvent {
    job_named(JOB, version, index)
}

/// A job `id` registered at `index`, in namespace `prod`.
pub fn job_named(id: &str, version: u64, index: u64) -> SimEvent {
    let payload = json!({"ID": id, "Namespace": "prod", "Version": version, "Status": "running",
        "Stop": false, "SubmitTime": at(index), "JobModifyIndex": index});
    ev("Job", id, "prod", index, payload)
}

pub fn eval(id: &str, status: &str, index: u64) -> SimEvent {
    let payload = json!({"ID": id, "JobID": JOB, "Namespace": "prod", "Status": status,
        "TriggeredBy": "job-register", "ModifyTime": at(index)});
    ev("Evaluation", id, "prod", index, payload)
}

pub fn deployment(status: &str, description: &str, index: u64, health: [u64; 2]) -> SimEvent {
    let groups = json!({"api": {"DesiredTotal": 2, "PlacedAllocs": 2, "HealthyAllocs": health[0],
        "UnhealthyAllocs": health[1]}});
    let payload = json!({"ID": D1, "JobID": JOB, "Namespace": "prod", "JobVersion": 0, "Status": status,
        "StatusDescription": description, "ModifyTime": at(index), "TaskGroups": groups});
    ev("Deployment", D1, "prod", index, payload)
}

pub fn alloc(id: &str, node: (&str, &str), client: &str, index: u64) -> SimEvent {
    let payload = json!({"ID": id, "JobID": JOB, "Namespace": "prod", "TaskGroup": "api", "NodeID": node.0,
        "NodeName": node.1, "EvalID": E1, "DeploymentID": D1, "DesiredStatus": "run",
        "ClientStatus": client, "ModifyTime": at(index)});
    ev("Allocation", id, "prod", index, payload)
}

/// The incident, frame by frame.
pub fn incident() -> Vec<SimFrame> {
    let w1 = (N1, "worker-1");
    let w2 = (N2, "worker-2");
    let frames = vec![
        (
            10,
            vec![
                node(N1, "worker-1", "ready", 10),
                node(N2, "worker-2", "ready", 10),
            ],
        ),
        (20, vec![job(0, 20), eval(E1, "pending", 20)]),
        (
            22,
            vec![
                alloc(A1, w1, "pending", 22),
                deployment("running", "Deployment is running", 22, [0, 0]),
            ],
        ),
        (
            24,
            vec![alloc(A1, w1, "running", 24), alloc(A2, w2, "pending", 24)],
        ),
        (
            26,
            vec![alloc(A2, w2, "running", 26), eval(E1, "complete", 26)],
        ),
        (
            30,
            vec![
                alloc(A1, w1, "failed", 30),
                deployment("failed", "Failed due to unhealthy allocations", 30, [1, 1]),
                eval(E2, "blocked", 30),
            ],
        ),
        (
            32,
            vec![alloc(A2, w2, "lost", 32), node(N2, "worker-2", "down", 32)],
        ),
        (
            40,
            vec![
                job(1, 40),
                eval(E2, "complete", 40),
                alloc(A3, w1, "running", 40),
            ],
        ),
    ];
    frames
        .into_iter()
        .map(|(index, events)| SimFrame { index, events })
        .collect()
}

/// Imports `frames` into the archive's cluster `default`.
pub async fn import(archive: &Archive, frames: &[SimFrame]) {
    let file = archive.capture("incident.ndjson", frames);
    archive.run(&["import", &file]).await.assert_success();
}

/// The JSON document of a list.
async fn list(archive: &Archive, args: &[&str]) -> Value {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    let run = archive.run(&all).await;
    run.assert_success();
    serde_json::from_str(&run.stdout).expect("one JSON document")
}

/// (ID, a field) of each row of `key` in a list document.
fn rows(document: &Value, key: &str, field: &str) -> Vec<(String, String)> {
    document[key]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["ID"].as_str().unwrap_or("").to_owned(),
                r[field].to_string(),
            )
        })
        .collect()
}

fn row(id: &str, value: &str) -> (String, String) {
    (id.to_owned(), format!("\"{value}\""))
}

async fn allocations_that_failed_or_were_lost_are_listed_once_each(backend: Backend) {
    let archive = Archive::new(backend).await;
    import(&archive, &incident()).await;

    let all = list(&archive, &["allocs", "--status", "failed,lost"]).await;
    assert_eq!(
        rows(&all, "Allocations", "ClientStatus"),
        vec![row(A1, "failed"), row(A2, "lost")]
    );
    let a2 = &all["Allocations"][1];
    assert_eq!(
        (
            &a2["NodeName"],
            &a2["JobID"],
            &a2["TaskGroup"],
            &a2["Index"]
        ),
        (&json!("worker-2"), &json!(JOB), &json!("api"), &json!(32))
    );
    assert_eq!(a2["Time"], json!("2026-01-01T00:00:32.000000000Z"));
    assert_eq!(a2["TimeNs"], json!(at(32)));
    assert_eq!(all["Gaps"], json!([]));

    let on_node = list(
        &archive,
        &["allocs", "--status", "failed,lost", "--node", "worker-1"],
    )
    .await;
    assert_eq!(
        rows(&on_node, "Allocations", "ClientStatus"),
        vec![row(A1, "failed")]
    );
    let since = list(
        &archive,
        &[
            "allocs",
            "--status",
            "lost,failed",
            "--since",
            "2026-01-01T00:00:31Z",
            "--job",
            "web-f",
        ],
    )
    .await;
    assert_eq!(
        rows(&since, "Allocations", "ClientStatus"),
        vec![row(A2, "lost")]
    );
    assert_eq!(since["SinceNs"], json!(at(31)));
    // Any status: each allocation once, as its latest event describes it.
    let any = list(&archive, &["allocs"]).await;
    assert_eq!(
        rows(&any, "Allocations", "ClientStatus"),
        vec![row(A1, "failed"), row(A2, "lost"), row(A3, "running")]
    );
    // Before the failure, A1 was running.
    let before = list(&archive, &["allocs", "--until", "2026-01-01T00:00:29Z"]).await;
    assert_eq!(
        rows(&before, "Allocations", "ClientStatus"),
        vec![row(A1, "running"), row(A2, "running")]
    );

    let none = archive
        .run(&[
            "query",
            "allocs",
            "--status",
            "failed",
            "--since",
            "2026-01-01T00:00:35Z",
        ])
        .await;
    assert_eq!(none.code, Some(1));
    assert_eq!(
        none.stderr.trim(),
        "no allocations with status failed since 2026-01-01T00:00:35Z in cluster `default`"
    );
    let elsewhere = archive
        .run(&["query", "allocs", "--namespace", "default"])
        .await;
    assert_eq!(elsewhere.code, Some(1));
    assert_eq!(
        elsewhere.stderr.trim(),
        "no allocations in cluster `default`, namespace `default`"
    );
    let typo = archive.run(&["query", "allocs", "--status", "faild"]).await;
    assert_eq!(typo.code, Some(2));
    assert!(
        typo.stderr
            .contains("`faild` is not a status of allocations"),
        "{}",
        typo.stderr
    );
}

async fn deployments_and_evaluations_are_listed_by_status(backend: Backend) {
    let archive = Archive::new(backend).await;
    import(&archive, &incident()).await;

    // The incident is older than a day: nothing found (exit 1), an empty list.
    let recent = archive
        .run(&[
            "query",
            "deployments",
            "--status",
            "failed",
            "--since",
            "1d",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(recent.code, Some(1));
    let recent: Value = serde_json::from_str(&recent.stdout).expect("one JSON document");
    assert_eq!(recent["Deployments"], json!([]));
    let failed = list(
        &archive,
        &["deployments", "--status", "failed", "--job", JOB],
    )
    .await;
    assert_eq!(
        rows(&failed, "Deployments", "Status"),
        vec![row(D1, "failed")]
    );
    assert_eq!(
        failed["Deployments"][0]["StatusDescription"],
        json!("Failed due to unhealthy allocations")
    );

    // Blocked at 30, complete at 40: listed, as it is at the end of the window.
    let blocked = list(&archive, &["evals", "--status", "blocked"]).await;
    assert_eq!(
        rows(&blocked, "Evaluations", "Status"),
        vec![row(E2, "complete")]
    );
    let window = list(
        &archive,
        &[
            "evals",
            "--status",
            "blocked",
            "--until",
            "2026-01-01T00:00:35Z",
        ],
    )
    .await;
    assert_eq!(
        rows(&window, "Evaluations", "Status"),
        vec![row(E2, "blocked")]
    );
    assert_eq!(
        window["Evaluations"][0]["TriggeredBy"],
        json!("job-register")
    );
}

async fn jobs_are_listed_at_a_moment_with_their_allocations_counted(backend: Backend) {
    let archive = Archive::new(backend).await;
    import(&archive, &incident()).await;

    let now = list(&archive, &["jobs"]).await;
    assert_eq!((&now["Now"], &now["Index"]), (&json!(true), &json!(40)));
    let web = &now["Jobs"][0];
    assert_eq!(
        (&web["ID"], &web["Namespace"], &web["Version"]),
        (&json!(JOB), &json!("prod"), &json!(1))
    );
    // A1 failed and A2 was lost within the hour before: counted.
    assert_eq!(
        web["Allocations"],
        json!({"Pending": 0, "Running": 1, "Complete": 0, "Failed": 1, "Lost": 1})
    );
    let then = list(&archive, &["jobs", "--at-index", "24"]).await;
    assert_eq!(then["Now"], json!(false));
    assert_eq!(then["Jobs"][0]["Version"], json!(0));
    assert_eq!(
        then["Jobs"][0]["Allocations"],
        json!({"Pending": 1, "Running": 1, "Complete": 0, "Failed": 0, "Lost": 0})
    );
    let table = archive.run(&["query", "jobs"]).await;
    table.assert_success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Jobs at index 40 (2026-01-01T00:00:40Z, the newest stored); DONE, FAIL, LOST: ended within 1h"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>()[..3],
        ["NAMESPACE", "JOB", "VER"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>()[..9],
        [
            "prod",
            "web-frontend",
            "1",
            "running",
            "0",
            "1",
            "0",
            "1",
            "1"
        ],
        "{}",
        table.stdout
    );
}

async fn list_tables_fit_the_width_asked_for_and_pipes_keep_every_value(backend: Backend) {
    let archive = Archive::new(backend).await;
    import(&archive, &incident()).await;
    for args in [
        &["query", "allocs"][..],
        &["query", "deployments"],
        &["query", "evals"],
        &["query", "jobs"],
    ] {
        let run = archive.run(&[args, &["--width", "100"]].concat()).await;
        run.assert_success();
        assert!(run.stdout.lines().count() >= 2, "{}", run.stdout);
        for line in run.stdout.lines() {
            assert!(line.chars().count() <= 100, "{args:?}: {line}");
        }
    }
    // Piped without a width, a list keeps every value whole.
    let run = archive.run(&["query", "deployments"]).await;
    run.assert_success();
    assert!(
        run.stdout.contains("Failed due to unhealthy allocations"),
        "{}",
        run.stdout
    );
}

on_both_backends!(
    allocations_that_failed_or_were_lost_are_listed_once_each,
    deployments_and_evaluations_are_listed_by_status,
    jobs_are_listed_at_a_moment_with_their_allocations_counted,
    list_tables_fit_the_width_asked_for_and_pipes_keep_every_value,
);

/// Evaluations stored compressed before migration 0019 had no details row
/// (its SQL cannot decode them): reads refuse the marked archive and name
/// `migrate`, which lists them; the answer is then what ingest gives.
async fn evaluations_stored_compressed_before_their_details_are_listed_after_migrate(
    backend: Backend,
) {
    let archive = Archive::new(backend).await;
    let frames = nomad_sim::Generator::new(93).frames(1_500);
    let capture = archive.capture("c.ndjson", &frames);
    let compressing = ["--first-train-after", "20", "--train-after", "50"];
    archive
        .run(&[&["import", capture.as_str()][..], &compressing].concat())
        .await
        .assert_success();
    let evals = ["query", "evals", "--output", "json"];
    let whole = archive.run(&evals).await;
    whole.assert_success();
    let compressed = "SELECT cluster_id, raft_index, position FROM event_log \
         WHERE topic = 'Evaluation' AND dictionary_id IS NOT NULL";
    archive
        .execute(&[&format!(
            "DELETE FROM evaluation_details \
             WHERE (cluster_id, raft_index, position) IN ({compressed})"
        )])
        .await;
    // Without their rows, the compressed evaluations are missing from the
    // answer: what an archive upgraded through 0019 alone would say.
    let missing = archive.run(&evals).await;
    assert_ne!(
        missing.stdout, whole.stdout,
        "some evaluations were compressed"
    );
    archive
        .execute(&["INSERT INTO pending_details (topic) VALUES ('Evaluation')"])
        .await;

    let refused = archive.run(&evals).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("nomad-chronicle migrate"),
        "{}",
        refused.stderr
    );

    archive.run(&["migrate"]).await.assert_success();
    let again = archive.run(&evals).await;
    again.assert_success();
    assert_eq!(again.stdout, whole.stdout);
}

on_both_backends!(evaluations_stored_compressed_before_their_details_are_listed_after_migrate);
