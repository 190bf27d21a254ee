//! `ingest` end to end: the real binary against the simulator over loopback
//! HTTP, checked against the archive's exact contents.

use std::time::Duration;

use nomad_chronicle::archive::GapKind;
use tokio::io::AsyncReadExt;

use nomad_sim::{ConnFault, Framing, Generator, SimConfig, SimEvent, SimFrame, Subscription};

use crate::common::{
    Archive, Backend, SimAt, eventually, expected, finish, on_both_backends,
    on_both_backends_and_framings, read_until,
};

async fn the_archive_equals_the_stream(backend: Backend, framing: Framing) {
    let sim = SimAt::roomy_framed(framing).await;
    let last = sim.publish(&mut Generator::new(1), 3_000);
    let archive = Archive::new(backend).await;

    archive.ingest_until(&sim, last, &[]).await.assert_success();

    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    let status = archive.status().await;
    let cluster = &status.clusters[0];
    assert_eq!(cluster.checkpoint, Some(last));
    assert!(cluster.gaps.is_empty(), "{:?}", cluster.gaps);
    assert_eq!(cluster.malformed_lines, 0);
    let requests = sim.sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].gzip,
        framing == Framing::ChunkedGzip,
        "the client asks for gzip, and the body is compressed exactly when the framing does"
    );
}

async fn frames_split_across_reads_and_multi_megabyte_events_are_stored_whole(
    backend: Backend,
    framing: Framing,
) {
    let sim = SimAt::roomy_framed(framing).await;
    let mut generator = Generator::new(2);
    let mut last = sim.publish(&mut generator, 200);
    let big = serde_json::json!({"Job": {"ID": "huge", "Meta": {"blob": "x".repeat(3 << 20)}}});
    last += 1;
    sim.sim.publish(SimFrame {
        index: last,
        events: vec![SimEvent::new(
            "Job",
            "JobRegistered",
            "huge",
            "default",
            vec![],
            last,
            big,
        )],
    });
    sim.sim.set_split_chunks(Some(977));
    let archive = Archive::new(backend).await;

    archive.ingest_until(&sim, last, &[]).await.assert_success();

    let stored = archive.events("test").await;
    assert_eq!(stored, expected(&sim.sim.history()));
    assert!(stored.last().is_some_and(|(_, raw)| raw.len() > 3 << 20));
}

async fn connections_cut_mid_frame_lose_nothing_and_store_nothing_twice(
    backend: Backend,
    framing: Framing,
) {
    let sim = SimAt::roomy_framed(framing).await;
    let last = sim.publish(&mut Generator::new(3), 2_000);
    sim.sim.push_fault(ConnFault::CutAfter { frames: 40 });
    sim.sim.push_fault(ConnFault::CutAfter { frames: 100 });
    sim.sim.push_fault(ConnFault::CutAfter { frames: 7 });
    let archive = Archive::new(backend).await;

    let run = archive
        .ingest_until(&sim, last, &["--batch-size", "50"])
        .await;
    run.assert_success();

    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert!(archive.status().await.clusters[0].gaps.is_empty());
    let requests = sim.sim.requests();
    assert!(
        requests.len() >= 4,
        "expected three reconnects, saw {requests:?}"
    );
    assert!(run.stderr.contains("Reconnecting"), "{}", run.stderr);
    // Every reconnect resumes from a frame the archiver had already received,
    // so the stream stays provably continuous.
    for pair in requests.windows(2) {
        assert!(
            pair[1].index >= pair[0].index,
            "resume index went backwards: {requests:?}"
        );
    }
}

async fn server_errors_are_retried_until_the_stream_is_back(backend: Backend) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(4), 300);
    for _ in 0..2 {
        sim.sim.push_fault(ConnFault::Status {
            code: 500,
            body: "No cluster leader".into(),
        });
    }
    let archive = Archive::new(backend).await;

    let run = archive.ingest_until(&sim, last, &[]).await;
    run.assert_success();

    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert_eq!(sim.sim.requests().len(), 3);
    assert!(run.stderr.contains("No cluster leader"), "{}", run.stderr);
}

async fn a_stalled_connection_is_abandoned_after_the_idle_timeout(backend: Backend) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(5), 500);
    sim.sim.push_fault(ConnFault::StallAfter { frames: 10 });
    let archive = Archive::new(backend).await;

    let run = archive
        .ingest_until(&sim, last, &["--idle-timeout", "1s"])
        .await;
    run.assert_success();

    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert!(
        run.stderr.contains("no data or heartbeat"),
        "{}",
        run.stderr
    );
}

async fn a_malformed_line_is_skipped_counted_and_recorded_as_a_gap(
    backend: Backend,
    framing: Framing,
) {
    let sim = SimAt::roomy_framed(framing).await;
    let last = sim.publish(&mut Generator::new(6), 500);
    sim.sim.push_fault(ConnFault::GarbageAfter {
        frames: 20,
        line: "{\"Index\": 12, \"Events\": [tru".into(),
    });
    let archive = Archive::new(backend).await;

    let run = archive.ingest_until(&sim, last, &[]).await;
    run.assert_success();

    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert!(
        run.stderr.contains("Skipped a malformed line"),
        "{}",
        run.stderr
    );
    let history = sim.sim.history();
    let cluster = &archive.status().await.clusters[0];
    assert_eq!(cluster.malformed_lines, 1);
    assert_eq!(cluster.gaps.len(), 1);
    let gap = &cluster.gaps[0];
    assert_eq!(gap.kind, GapKind::Malformed);
    assert_eq!(
        (gap.from_index, gap.to_index),
        (history[19].index, history[20].index)
    );
}

async fn kill_9_and_restart_resume_from_the_checkpoint_without_loss_or_duplicates(
    backend: Backend,
) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(7);
    sim.publish(&mut generator, 200);
    // Entries keep happening while the archiver is killed and restarted, so
    // the kill lands mid-stream, with frames received but not yet committed.
    let frames: Vec<SimFrame> = (0..400).map(|_| generator.next_frame()).collect();
    let last = frames.last().map(|f| f.index).unwrap_or_default();
    let publisher = {
        let sim = sim.sim.clone();
        tokio::spawn(async move {
            for frame in frames {
                sim.publish(frame);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let archive = Archive::new(backend).await;
    let mut child = archive
        .command(&[
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "test",
            "--batch-interval",
            "100ms",
        ])
        .spawn()
        .expect("spawn");
    eventually("a first commit", || async {
        !archive.events("test").await.is_empty()
    })
    .await;
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    let before = archive.status().await.clusters[0]
        .checkpoint
        .expect("a checkpoint");
    assert!(before < last, "killed mid-stream");

    archive.ingest_until(&sim, last, &[]).await.assert_success();
    publisher.await.expect("publisher");

    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    let requests = sim.sim.requests();
    assert_eq!(
        requests.last().map(|r| r.index),
        Some(before),
        "resumed from the checkpoint"
    );
    assert!(archive.status().await.clusters[0].gaps.is_empty());
}

async fn a_checkpoint_that_left_the_buffer_is_recorded_as_a_gap(
    backend: Backend,
    framing: Framing,
) {
    let sim = SimAt::start(SimConfig {
        buffer_size: 100,
        framing,
        ..SimConfig::default()
    })
    .await;
    let mut generator = Generator::new(8);
    let first_run: Vec<SimFrame> = (0..60).map(|_| generator.next_frame()).collect();
    let checkpoint = first_run.last().map(|f| f.index).unwrap_or_default();
    for frame in first_run {
        sim.sim.publish(frame);
    }
    let archive = Archive::new(backend).await;
    archive
        .ingest_until(&sim, checkpoint, &[])
        .await
        .assert_success();
    // While the archiver is away, more entries than the buffer holds happen.
    let mut last = 0;
    for _ in 0..250 {
        let frame = generator.next_frame();
        last = frame.index;
        sim.sim.publish(frame);
    }

    archive.ingest_until(&sim, last, &[]).await.assert_success();

    let history = sim.sim.history();
    let buffered: Vec<SimFrame> = history[history.len() - 100..].to_vec();
    let first_buffered = buffered[0].index;
    let mut want: Vec<SimFrame> = history
        .iter()
        .filter(|f| f.index <= checkpoint)
        .cloned()
        .collect();
    want.extend(buffered);
    assert_eq!(archive.events("test").await, expected(&want));
    let gaps = &archive.status().await.clusters[0].gaps;
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(
        (gaps[0].from_index, gaps[0].to_index, gaps[0].kind),
        (checkpoint, first_buffered, GapKind::Buffer)
    );
}

async fn sigterm_commits_what_was_received_and_exits_zero(backend: Backend) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(9), 400);
    let archive = Archive::new(backend).await;
    let mut cmd = archive.command(&[
        "ingest",
        "--address",
        &sim.address,
        "--cluster",
        "test",
        "--batch-interval",
        "10m",
        "--batch-size",
        "1000000",
    ]);
    cmd.env("RUST_LOG", "nomad_chronicle=trace");
    let mut child = cmd.spawn().expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = Vec::new();
    read_until(
        &mut stderr,
        &mut log,
        &format!(
            "Handed a frame to the writer source={:?} index={last} ",
            sim.address
        ),
    )
    .await;
    assert!(
        archive.events("test").await.is_empty(),
        "nothing is committed before the batch ends"
    );
    let pid = child.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));

    stderr
        .read_to_end(&mut log)
        .await
        .expect("the rest of the log");
    let run = finish(child).await;
    run.assert_success();

    let history = sim.sim.history();
    assert_eq!(archive.events("test").await, expected(&history));
    let log = String::from_utf8_lossy(&log);
    assert_eq!(
        commits(&log),
        vec![expected(&history).len() as u64],
        "one commit, at shutdown, of every event received:\n{log}"
    );
}

/// The events of each commit the log reports, in order.
fn commits(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains(" Committed "))
        .map(|line| {
            let events = line.split(" events=").nth(1).unwrap_or_default();
            let digits: String = events.chars().take_while(char::is_ascii_digit).collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("no event count in `{line}`"))
        })
        .collect()
}

/// A frame of one event carrying a blob of `bytes` bytes.
fn big_frame(index: u64, bytes: usize) -> SimFrame {
    let key = format!("big-{index}");
    let payload = serde_json::json!({"Job": {"ID": key, "Meta": {"blob": "x".repeat(bytes)}}});
    SimFrame {
        index,
        events: vec![SimEvent::new(
            "Job",
            "JobRegistered",
            &key,
            "default",
            vec![],
            index,
            payload,
        )],
    }
}

async fn batches_of_multi_megabyte_events_keep_to_the_byte_budget(backend: Backend) {
    let sim = SimAt::roomy().await;
    // Five events of 3 MiB and one of 8 MiB, under a budget of 7,000,000
    // bytes: two of 3 MiB fit, a third does not, and 8 MiB is a batch alone.
    let sizes = [3 << 20, 3 << 20, 3 << 20, 3 << 20, 3 << 20, 8 << 20];
    for (index, bytes) in (1..).zip(sizes) {
        sim.sim.publish(big_frame(index, bytes));
    }
    let last = sizes.len() as u64;
    let archive = Archive::new(backend).await;
    // Neither time nor the event count ends a batch: only bytes do.
    let mut cmd = archive.ingest_command(
        &sim,
        last,
        &["--batch-interval", "10m", "--batch-bytes", "7000000"],
    );
    cmd.env("RUST_LOG", "nomad_chronicle=debug");

    let run = finish(cmd.spawn().expect("spawn")).await;

    run.assert_success();
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert_eq!(
        commits(&run.stderr),
        vec![2, 2, 1, 1],
        "3+3 MiB, 3+3 MiB, 3 MiB (8 more would pass the budget), 8 MiB alone:\n{}",
        run.stderr
    );
}

/// SQLite reports a writer it waited 10 s for as busy, which a retry can
/// get past: the writer retries the commit until the lock is gone, and the
/// retry stores each event once. (PostgreSQL's transient errors take the
/// writer's lock with them, which `postgres::` tests cover.)
#[tokio::test]
async fn a_commit_that_finds_the_archive_locked_is_retried_until_it_is_stored() {
    let sim = SimAt::roomy().await;
    let archive = Archive::new(Backend::Sqlite).await;
    let mut child = archive
        .command(&["ingest", "--address", &sim.address, "--cluster", "test"])
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = Vec::new();
    read_until(&mut stderr, &mut log, "Connected").await;
    let mut other_writer = <sqlx::SqliteConnection as sqlx::Connection>::connect(&archive.url)
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other_writer)
        .await
        .expect("take the write lock");
    let last = sim.publish(&mut Generator::new(17), 300);

    read_until(&mut stderr, &mut log, "Commit failed; retrying").await;
    assert!(archive.events("test").await.is_empty());
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut other_writer)
        .await
        .expect("release the write lock");

    eventually("the retried commit", || async {
        archive.events("test").await.last().map(|e| e.0) == Some(last)
    })
    .await;
    child.start_kill().expect("stop");
    let _ = child.wait().await;
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert!(
        String::from_utf8_lossy(&log).contains("database is locked"),
        "{}",
        String::from_utf8_lossy(&log)
    );
}

async fn the_token_is_sent_and_never_logged(backend: Backend) {
    let token = "5f8c0e2a-secret-token";
    let sim = SimAt::start(SimConfig {
        buffer_size: 10_000,
        token: Some(token.into()),
        ..SimConfig::default()
    })
    .await;
    let last = sim.publish(&mut Generator::new(10), 100);
    let archive = Archive::new(backend).await;

    let mut cmd = archive.ingest_command(&sim, last, &[]);
    cmd.env("NOMAD_TOKEN", token).env("RUST_LOG", "trace");
    let run = finish(cmd.spawn().expect("spawn")).await;

    run.assert_success();
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    assert!(
        !run.stderr.contains(token),
        "the token leaked into the logs"
    );
}

async fn a_denied_token_is_a_clear_error_not_a_retry_loop(backend: Backend) {
    let sim = SimAt::start(SimConfig {
        token: Some("the-right-one".into()),
        ..SimConfig::default()
    })
    .await;
    let archive = Archive::new(backend).await;

    let run = archive
        .run(&[
            "ingest",
            "--address",
            &sim.address,
            "--token",
            "a-wrong-token",
        ])
        .await;

    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("HTTP 403 Forbidden: Permission denied"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--topic"),
        "the hint names --topic: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("a-wrong-token"));
    assert_eq!(sim.sim.requests().len(), 1, "no retries");
}

async fn an_address_that_is_not_a_nomad_agent_is_a_clear_error(backend: Backend) {
    let sim = SimAt::roomy().await;
    let archive = Archive::new(backend).await;
    let wrong = format!("{}/not-nomad", sim.address);

    let run = archive.run(&["ingest", "--address", &wrong]).await;

    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert!(
        run.stderr.contains("is --address a Nomad agent?"),
        "{}",
        run.stderr
    );
}

async fn from_index_is_refused_once_the_archive_has_history(backend: Backend) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(11), 100);
    let archive = Archive::new(backend).await;
    archive.ingest_until(&sim, last, &[]).await.assert_success();

    let run = archive
        .ingest_until(&sim, last, &["--from-index", "1"])
        .await;

    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("--override-checkpoint"),
        "{}",
        run.stderr
    );
}

async fn topic_and_namespace_filters_reach_the_server(backend: Backend) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(12);
    let mut last = sim.publish(&mut generator, 1_000);
    // A last entry the subscription matches, for --until-index.
    last += 1;
    let node = serde_json::json!({"Node": {"ID": "n-last"}});
    sim.sim.publish(SimFrame {
        index: last,
        events: vec![SimEvent::new(
            "Node",
            "NodeRegistration",
            "n-last",
            "",
            vec![],
            last,
            node,
        )],
    });
    let archive = Archive::new(backend).await;

    archive
        .ingest_until(
            &sim,
            last,
            &[
                "--topic",
                "Node",
                "--topic",
                "Allocation",
                "--namespace",
                "default",
            ],
        )
        .await
        .assert_success();

    let request = &sim.sim.requests()[0];
    assert_eq!(request.namespace, "default");
    assert_eq!(
        request.topics,
        vec![
            ("Node".to_owned(), "*".to_owned()),
            ("Allocation".to_owned(), "*".to_owned())
        ]
    );
    let subscription = Subscription::parse(&request.query).expect("the request's query");
    let want: Vec<SimFrame> = sim
        .sim
        .history()
        .iter()
        .filter_map(|f| f.filtered(&subscription))
        .collect();
    let stored = archive.archived("test").await;
    assert_eq!(
        stored
            .iter()
            .map(|e| (e.index, e.raw.clone()))
            .collect::<Vec<_>>(),
        expected(&want)
    );
    assert!(
        stored.iter().any(|e| e.topic == "Allocation") && stored.iter().any(|e| e.topic == "Node")
    );
    assert!(
        stored
            .iter()
            .all(|e| e.topic == "Node" || e.topic == "Allocation")
    );
}

async fn until_index_already_in_the_archive_exits_at_once(backend: Backend) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(14), 100);
    let archive = Archive::new(backend).await;
    archive.ingest_until(&sim, last, &[]).await.assert_success();
    // Stop serving: a run that subscribed would now wait forever.
    sim.sim.shutdown();

    let run = archive.ingest_until(&sim, last - 1, &[]).await;

    run.assert_success();
    assert!(
        run.stderr.contains("already reaches --until-index"),
        "{}",
        run.stderr
    );
}

async fn two_clusters_ingested_at_once_keep_separate_histories(backend: Backend) {
    let east = SimAt::roomy().await;
    let west = SimAt::roomy().await;
    let east_last = east.publish(&mut Generator::new(15), 1_500);
    let west_last = west.publish(&mut Generator::new(16), 1_500);
    let archive = Archive::new(backend).await;
    let (east_until, west_until) = (east_last.to_string(), west_last.to_string());
    let run = |address: &str, cluster: &str, until: &str| {
        let mut cmd = archive.command(&[
            "ingest",
            "--address",
            address,
            "--cluster",
            cluster,
            "--until-index",
            until,
            "--batch-size",
            "100",
        ]);
        cmd.spawn().expect("spawn")
    };
    let (a, b) = (
        run(&east.address, "east", &east_until),
        run(&west.address, "west", &west_until),
    );

    let (a, b) = tokio::join!(finish(a), finish(b));

    a.assert_success();
    b.assert_success();
    assert_eq!(archive.events("east").await, expected(&east.sim.history()));
    assert_eq!(archive.events("west").await, expected(&west.sim.history()));
    let status = archive.status().await;
    let checkpoints: Vec<_> = status
        .clusters
        .iter()
        .map(|c| (c.cluster.as_str(), c.checkpoint))
        .collect();
    assert_eq!(
        checkpoints,
        vec![("east", Some(east_last)), ("west", Some(west_last))]
    );
}

on_both_backends_and_framings!(
    the_archive_equals_the_stream,
    frames_split_across_reads_and_multi_megabyte_events_are_stored_whole,
    connections_cut_mid_frame_lose_nothing_and_store_nothing_twice,
    a_malformed_line_is_skipped_counted_and_recorded_as_a_gap,
    a_checkpoint_that_left_the_buffer_is_recorded_as_a_gap,
);

on_both_backends!(
    two_clusters_ingested_at_once_keep_separate_histories,
    until_index_already_in_the_archive_exits_at_once,
    server_errors_are_retried_until_the_stream_is_back,
    a_stalled_connection_is_abandoned_after_the_idle_timeout,
    kill_9_and_restart_resume_from_the_checkpoint_without_loss_or_duplicates,
    sigterm_commits_what_was_received_and_exits_zero,
    batches_of_multi_megabyte_events_keep_to_the_byte_budget,
    the_token_is_sent_and_never_logged,
    a_denied_token_is_a_clear_error_not_a_retry_loop,
    an_address_that_is_not_a_nomad_agent_is_a_clear_error,
    from_index_is_refused_once_the_archive_has_history,
    topic_and_namespace_filters_reach_the_server,
);

#[tokio::test]
async fn a_byte_budget_that_is_not_a_size_from_one_byte_to_one_gib_is_refused() {
    let archive = Archive::new(Backend::Sqlite).await;
    for value in ["0", "2GiB", "-1", "16 furlongs"] {
        let run = archive
            .run(&["ingest", &format!("--batch-bytes={value}")])
            .await;

        assert_eq!(run.code, Some(2), "{value}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("`{value}` is not a size from 1 byte to 1 GiB")),
            "{}",
            run.stderr
        );
    }
}
