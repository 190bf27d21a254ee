//! Every answer names the recorded gaps of the stretch of history it read:
//! after a buffer overrun made by the simulator (ingest falls behind, the
//! events between index 22 and 40 are lost), timelines of objects whose
//! events end or start at the gap, a job whose whole life lies inside it,
//! `query events` with and without `--limit`, the lists, states and
//! snapshots all say so.

use nomad_sim::{ConnFault, SimConfig, SimFrame};
use serde_json::Value;

use crate::common::{Archive, Backend, SimAt, eventually, finish, on_both_backends};
use crate::lists::{A1, A3, D1, E1, JOB, N1, alloc, deployment, eval, job_named, node};

/// Stored before the gap: the last is index 22.
fn before() -> Vec<SimFrame> {
    let frame = |index, events| SimFrame { index, events };
    vec![
        frame(10, vec![node(N1, "worker-1", "ready", 10)]),
        frame(20, vec![job_named(JOB, 0, 20), eval(E1, "pending", 20)]),
        frame(
            22,
            vec![
                alloc(A1, (N1, "worker-1"), "pending", 22),
                deployment("running", "Deployment is running", 22, [0, 0]),
            ],
        ),
    ]
}

/// Lost in the gap: A1 runs and fails, a job lives and is gone.
fn lost() -> Vec<SimFrame> {
    let frame = |index, events| SimFrame { index, events };
    vec![
        frame(24, vec![alloc(A1, (N1, "worker-1"), "running", 24)]),
        frame(26, vec![job_named("ghost", 0, 26)]),
        frame(
            30,
            vec![
                alloc(A1, (N1, "worker-1"), "failed", 30),
                deployment("failed", "Failed due to unhealthy allocations", 30, [0, 1]),
            ],
        ),
    ]
}

/// Stored after the gap (the simulator's buffer holds these five).
fn after() -> Vec<SimFrame> {
    let frame = |index, events| SimFrame { index, events };
    vec![
        frame(40, vec![job_named(JOB, 1, 40), eval(E1, "complete", 40)]),
        frame(42, vec![alloc(A3, (N1, "worker-1"), "pending", 42)]),
        frame(44, vec![node(N1, "worker-1", "ready", 44)]),
        frame(46, vec![alloc(A3, (N1, "worker-1"), "running", 46)]),
        frame(48, vec![node(N1, "worker-1", "down", 48)]),
    ]
}

/// An archive of cluster `test` with the gap 22→40 recorded.
async fn archive_with_gap(backend: Backend) -> Archive {
    let sim = SimAt::start(SimConfig {
        buffer_size: 5,
        ..SimConfig::default()
    })
    .await;
    for frame in before() {
        sim.sim.publish(frame);
    }
    sim.sim.push_fault(ConnFault::FallBehindAfter { frames: 3 });
    let archive = Archive::new(backend).await;
    let child = archive
        .ingest_command(&sim, 48, &["--batch-interval", "20ms"])
        .spawn()
        .expect("spawn");
    eventually("the frames before the stall", || async {
        archive
            .status()
            .await
            .clusters
            .first()
            .and_then(|c| c.checkpoint)
            == Some(22)
    })
    .await;
    for frame in lost().into_iter().chain(after()) {
        sim.sim.publish(frame);
    }
    finish(child).await.assert_success();
    let gaps: Vec<_> = archive.status().await.clusters[0]
        .gaps
        .iter()
        .map(|g| (g.from_index, g.to_index))
        .collect();
    assert_eq!(gaps, [(22, 40)]);
    archive
}

/// (from, to) of each gap a JSON answer names, whatever its key style.
fn named(document: &Value) -> Vec<(u64, u64)> {
    let gaps = document.get("Gaps").or_else(|| document.get("gaps"));
    gaps.and_then(Value::as_array)
        .unwrap_or_else(|| panic!("a list of gaps in {document}"))
        .iter()
        .map(|g| {
            let index = |a: &str, b: &str| g.get(a).or_else(|| g.get(b)).and_then(Value::as_u64);
            (
                index("FromIndex", "from_index").unwrap_or(0),
                index("ToIndex", "to_index").unwrap_or(0),
            )
        })
        .collect()
}

/// The JSON answer to `query ARGS --output json`, and its exit code.
async fn json(archive: &Archive, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    let run = archive.run(&all).await;
    let document = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run.code, document, run.stderr)
}

const GAP: &str = "archive has no events between index 22 and 40 (buffer:";

async fn every_answer_names_the_gap_it_crosses(backend: Backend) {
    let archive = archive_with_gap(backend).await;

    // Timelines of objects whose stored events end or start at the gap.
    for args in [
        &["alloc", A1][..],
        &["deployment", D1],
        &["eval", E1],
        &["node", "worker-1"],
        &["job", JOB],
    ] {
        let (code, document, stderr) = json(&archive, args).await;
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(named(&document), [(22, 40)], "{args:?}");
    }
    let table = archive.run(&["query", "alloc", A1]).await;
    assert!(
        table.stdout.contains(&format!("! {GAP}")),
        "{}",
        table.stdout
    );

    // A job whose whole life is inside the gap.
    let ghost = archive.run(&["query", "job", "ghost"]).await;
    assert_eq!(ghost.code, Some(1));
    assert!(
        ghost.stderr.contains("no events for job `ghost`"),
        "{}",
        ghost.stderr
    );
    assert!(ghost.stderr.contains(GAP), "{}", ghost.stderr);

    // Events: the newest of a job's, read back past the gap; the newest
    // three of all, read back only to index 42.
    let (_, newest, _) = json(&archive, &["events", "--job", JOB, "--limit", "4"]).await;
    assert_eq!(named(&newest), [(22, 40)]);
    let (_, three, _) = json(&archive, &["events", "--limit", "3"]).await;
    assert_eq!(named(&three), []);
    let (_, all, _) = json(&archive, &["events"]).await;
    assert_eq!(named(&all), [(22, 40)]);
}

async fn lists_states_and_snapshots_name_the_gap(backend: Backend) {
    let archive = archive_with_gap(backend).await;

    for args in [&["allocs"][..], &["deployments"], &["evals"], &["jobs"]] {
        let (code, document, stderr) = json(&archive, args).await;
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(named(&document), [(22, 40)], "{args:?}");
    }
    // A1 failed inside the gap: nothing found, and the gap said.
    let failed = archive
        .run(&["query", "allocs", "--status", "failed"])
        .await;
    assert_eq!(failed.code, Some(1));
    assert!(failed.stderr.contains(GAP), "{}", failed.stderr);
    let table = archive.run(&["query", "allocs"]).await;
    assert!(
        table.stdout.contains(&format!("! {GAP}")),
        "{}",
        table.stdout
    );

    // As of index 30, A1 is as index 22 left it, and the gap may hide more.
    let (_, state, _) = json(&archive, &["state", "alloc", A1, "--at-index", "30"]).await;
    assert_eq!(named(&state), [(22, 40)]);
    let (_, snapshot, _) = json(&archive, &["snapshot"]).await;
    assert_eq!(named(&snapshot), [(22, 40)]);
}

on_both_backends!(
    every_answer_names_the_gap_it_crosses,
    lists_states_and_snapshots_name_the_gap,
);
