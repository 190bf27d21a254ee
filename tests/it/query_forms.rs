//! The forms a query takes: job IDs as prefixes (ambiguity listed as for
//! allocations), the commands' nouns as topic names, a state or snapshot
//! without a point in time answered now, and a deployment's timeline with
//! each task group's counts.

use serde_json::Value;

use crate::common::{Archive, Backend, on_both_backends};
use crate::lists::{A1, D1, JOB, import, incident, job_named};
use nomad_sim::SimFrame;

async fn a_job_is_named_by_a_unique_prefix_and_an_ambiguous_one_lists_the_jobs(backend: Backend) {
    let archive = Archive::new(backend).await;
    let mut frames = incident();
    // A second job sharing the prefix `web-`.
    frames.push(SimFrame {
        index: 50,
        events: vec![job_named("web-backend", 0, 50)],
    });
    import(&archive, &frames).await;

    let run = archive
        .run(&["query", "job", "web-f", "--output", "ndjson"])
        .await;
    run.assert_success();
    let first: Value =
        serde_json::from_str(run.stdout.lines().next().expect("a line")).expect("json");
    assert_eq!(first["Key"], JOB);
    let ambiguous = archive.run(&["query", "job", "web-"]).await;
    assert_eq!(ambiguous.code, Some(2));
    assert!(
        ambiguous
            .stderr
            .contains("the prefix `web-` matches several jobs: web-backend, web-frontend; give more characters"),
        "{}",
        ambiguous.stderr
    );
}

async fn nouns_name_topics_and_a_state_without_a_point_is_now(backend: Backend) {
    let archive = Archive::new(backend).await;
    import(&archive, &incident()).await;

    let state = archive
        .run(&["query", "state", "alloc", A1, "--output", "json"])
        .await;
    state.assert_success();
    assert!(
        state
            .stderr
            .contains("now: index 40, the newest stored in cluster `default`"),
        "{}",
        state.stderr
    );
    let v: Value = serde_json::from_str(&state.stdout).expect("json");
    assert!(v.to_string().contains(A1), "{v}");
    assert!(v.to_string().contains("\"failed\""), "{v}");

    let events = archive
        .run(&["query", "events", "--topic", "eval", "--output", "ndjson"])
        .await;
    events.assert_success();
    assert_eq!(events.stdout.lines().count(), 4);

    let snapshot = archive.run(&["query", "snapshot"]).await;
    snapshot.assert_success();
    assert!(
        snapshot.stderr.contains("now: index 40"),
        "{}",
        snapshot.stderr
    );
    assert!(
        snapshot.stdout.contains("web-frontend"),
        "{}",
        snapshot.stdout
    );
}

async fn the_deployment_timeline_shows_each_groups_counts(backend: Backend) {
    let archive = Archive::new(backend).await;
    import(&archive, &incident()).await;

    let run = archive
        .run(&["query", "deployment", D1, "--output", "ndjson"])
        .await;
    run.assert_success();
    let changes: Vec<String> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|v| v["Topic"] == "Deployment")
        .map(|v| format!("{} {}", v["Index"], v["Summary"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        changes,
        [
            "22 deployment of version 0 running (Deployment is running)",
            "22 group api: desired 2, placed 2, healthy 0, unhealthy 0",
            "30 deployment running → failed (Failed due to unhealthy allocations)",
            "30 group api: desired 2, placed 2, healthy 1, unhealthy 1",
        ]
    );
}

on_both_backends!(
    a_job_is_named_by_a_unique_prefix_and_an_ambiguous_one_lists_the_jobs,
    nouns_name_topics_and_a_state_without_a_point_is_now,
    the_deployment_timeline_shows_each_groups_counts,
);
