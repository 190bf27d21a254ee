//! `ingest --namespace '*'` and namespaces created while it runs: the
//! simulator leaves them out of the running subscription, as Nomad 1.9.6 and
//! later do, so ingest must watch `GET /v1/namespaces` and resubscribe — and
//! keep streaming when that list cannot be read.

use nomad_sim::{Framing, Generator, SimEvent, SimFrame};

use crate::common::{
    Archive, Backend, SimAt, eventually, expected, finish, on_both_backends,
    on_both_backends_and_framings,
};

/// A frame with one Job event in `namespace`.
fn job_frame(index: u64, namespace: &str) -> SimFrame {
    let id = format!("{namespace}-job-{index}");
    SimFrame {
        index,
        events: vec![SimEvent::new(
            "Job",
            "JobRegistered",
            id.clone(),
            namespace,
            vec![],
            index,
            serde_json::json!({"Job": {"ID": id, "Namespace": namespace}}),
        )],
    }
}

/// Starts `ingest` until `until`, logging at INFO.
fn spawn_ingest(archive: &Archive, sim: &SimAt, until: u64) -> tokio::process::Child {
    archive
        .ingest_command(sim, until, &["--batch-interval", "20ms"])
        .spawn()
        .expect("spawn")
}

async fn checkpoint(archive: &Archive) -> Option<u64> {
    archive
        .status()
        .await
        .clusters
        .first()
        .and_then(|c| c.checkpoint)
}

/// Creates `staging` once the archive holds everything up to `before`, then
/// publishes a staging event, a default one and another staging one (the
/// last is the `--until-index`).
async fn create_staging_mid_stream(sim: &SimAt, archive: &Archive, before: u64) -> u64 {
    eventually("the history before the new namespace", || async {
        checkpoint(archive).await == Some(before)
    })
    .await;
    let created = sim.sim.create_namespace("staging");
    assert_eq!(created, before + 1);
    sim.sim.publish(job_frame(created + 1, "staging"));
    sim.sim.publish(job_frame(created + 2, "default"));
    sim.sim.publish(job_frame(created + 3, "staging"));
    created
}

async fn a_namespace_created_mid_stream_has_its_events_archived(
    backend: Backend,
    framing: Framing,
) {
    let sim = SimAt::roomy_framed(framing).await;
    let before = sim.publish(&mut Generator::new(41), 300);
    let archive = Archive::new(backend).await;
    let child = spawn_ingest(&archive, &sim, before + 4);

    create_staging_mid_stream(&sim, &archive, before).await;
    let run = finish(child).await;

    run.assert_success();
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    let stored = archive.archived("test").await;
    let staging: Vec<u64> = stored
        .iter()
        .filter(|e| e.namespace == "staging")
        .map(|e| e.index)
        .collect();
    assert_eq!(staging, [before + 2, before + 4]);
    let cluster = &archive.status().await.clusters[0];
    assert_eq!((cluster.gaps.len(), cluster.malformed_lines), (0, 0));
    assert_eq!(cluster.checkpoint, Some(before + 4));
    assert!(
        run.stderr
            .contains("New namespace; resubscribing so its events are archived")
            && run.stderr.contains("namespace=staging"),
        "{}",
        run.stderr
    );
    let requests = sim.sim.requests();
    assert_eq!(requests.len(), 2, "one resubscription: {requests:?}");
    assert_eq!(
        (requests[1].index, requests[1].namespace.as_str()),
        (before, "*"),
        "re-read from the last frame stored before the namespace existed"
    );
}

async fn a_token_that_may_not_list_namespaces_is_warned_once_and_streaming_goes_on(
    backend: Backend,
) {
    let sim = SimAt::roomy().await;
    sim.sim.set_namespaces_denied(true);
    let last = sim.publish(&mut Generator::new(42), 200);
    let archive = Archive::new(backend).await;

    let run = archive.ingest_until(&sim, last, &[]).await;

    run.assert_success();
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert_eq!(
        run.stderr
            .matches("Cannot watch the namespace list")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "events of namespaces created from now on are not archived until ingest restarts \
             (hint: give the token a capability in every namespace"
        ) && run
            .stderr
            .contains("`GET /v1/namespaces` answered HTTP 403: Permission denied"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.sim.namespace_requests(), 1, "not asked again");
    assert_eq!(sim.sim.requests().len(), 1);

    // A single namespace needs no watch.
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(43), 100);
    let archive = Archive::new(backend).await;
    let run = archive
        .ingest_until(&sim, last, &["--namespace", "default"])
        .await;
    run.assert_success();
    assert_eq!(sim.sim.namespace_requests(), 0);
}

async fn failures_of_the_namespace_list_are_retried_without_touching_the_stream(backend: Backend) {
    let sim = SimAt::roomy().await;
    for _ in 0..3 {
        sim.sim.push_namespaces_fault(500);
    }
    let before = sim.publish(&mut Generator::new(44), 200);
    let archive = Archive::new(backend).await;
    let child = spawn_ingest(&archive, &sim, before + 4);
    // Three failures, a success, and the blocking query that waits.
    eventually("the watch to be back", || async {
        sim.sim.namespace_requests() >= 5
    })
    .await;

    create_staging_mid_stream(&sim, &archive, before).await;
    let run = finish(child).await;

    run.assert_success();
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert_eq!(
        run.stderr
            .matches("Watching the namespace list failed; retrying (the stream is not affected)")
            .count(),
        1,
        "one warning for the whole streak: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Watching the namespace list again"),
        "{}",
        run.stderr
    );
    assert_eq!(
        sim.sim.requests().len(),
        2,
        "the stream was only resubscribed for the new namespace"
    );
    assert!(archive.status().await.clusters[0].gaps.is_empty());
}

on_both_backends_and_framings!(a_namespace_created_mid_stream_has_its_events_archived);

on_both_backends!(
    a_token_that_may_not_list_namespaces_is_warned_once_and_streaming_goes_on,
    failures_of_the_namespace_list_are_retried_without_touching_the_stream,
);
