//! `ingest` when Nomad ends or refuses the stream: its close reasons
//! (`subscription closed by server`, `event dropped from buffer`, `ACL token
//! expired`), bodies that end before the `{}` greeting (how Nomad >= 1.11.2
//! refuses a token), and Nomad 1.11.2's `HTTP/0.0` status line — each run
//! through the real binary, with the archive, gaps, exit code and message
//! checked exactly.

use nomad_chronicle::archive::GapKind;
use nomad_sim::{ConnFault, Framing, Generator, SIM_TOKEN_ACCESSOR, SIM_TOKEN_NAME, SimConfig};

use crate::common::{
    Archive, Backend, Run, SimAt, Stall, eventually, expected, finish, on_both_backends,
    on_both_backends_and_framings,
};

async fn the_servers_close_reason_leads_to_a_resubscription(backend: Backend, framing: Framing) {
    let sim = SimAt::roomy_framed(framing).await;
    let last = sim.publish(&mut Generator::new(13), 400);
    sim.sim.push_fault(ConnFault::CloseAfter {
        frames: 30,
        reason: Some("subscription closed by server, client should resubscribe".into()),
    });
    let archive = Archive::new(backend).await;

    let run = archive.ingest_until(&sim, last, &[]).await;

    run.assert_success();
    // Nomad >= 1.11.2 gives no reason: it closes the socket.
    let said = if framing.is_close_delimited() {
        "reason=the server ended the stream"
    } else {
        "reason=the server closed the stream: subscription closed by server, client should resubscribe"
    };
    assert!(run.stderr.contains(said), "{}", run.stderr);
    assert_eq!(archive.events("test").await, expected(&sim.sim.history()));
    let cluster = &archive.status().await.clusters[0];
    assert_eq!((cluster.malformed_lines, cluster.gaps.len()), (0, 0));
    assert_eq!(sim.sim.requests().len(), 2);
}

async fn a_reader_dropped_from_the_buffer_records_the_gap_and_reconnects(
    backend: Backend,
    framing: Framing,
) {
    let Stall {
        sim,
        stalled_at,
        later,
        last,
    } = SimAt::stalling(21, framing).await;
    let archive = Archive::new(backend).await;
    let child = archive
        .ingest_command(&sim, last, &["--batch-interval", "20ms"])
        .spawn()
        .expect("spawn");
    eventually("the frames before the stall", || async {
        archive
            .status()
            .await
            .clusters
            .first()
            .and_then(|c| c.checkpoint)
            == Some(stalled_at)
    })
    .await;
    // While the reader stands still, the buffer moves on past its place.
    for frame in later {
        sim.sim.publish(frame);
    }

    let run = finish(child).await;

    run.assert_success();
    let history = sim.sim.history();
    let buffered = history[history.len() - 100..].to_vec();
    let mut want = history[..30].to_vec();
    want.extend(buffered.iter().cloned());
    assert_eq!(archive.events("test").await, expected(&want));
    let cluster = &archive.status().await.clusters[0];
    assert_eq!(cluster.malformed_lines, 0, "the close reason is not a line");
    assert_eq!(cluster.gaps.len(), 1, "{:?}", cluster.gaps);
    let gap = &cluster.gaps[0];
    assert_eq!(
        (gap.from_index, gap.to_index, gap.kind),
        (stalled_at, buffered[0].index, GapKind::Buffer)
    );
    if framing.is_close_delimited() {
        // No reason on the wire: the resumed stream shows the loss.
        assert!(
            gap.reason.contains("no longer in Nomad's event buffer"),
            "{}",
            gap.reason
        );
    } else {
        assert!(
            run.stderr
                .contains("event dropped from buffer (this reader fell behind"),
            "{}",
            run.stderr
        );
        assert!(
            gap.reason.contains("`event dropped from buffer`"),
            "{}",
            gap.reason
        );
    }
    let requests = sim.sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].index, stalled_at,
        "resumed from the last stored index"
    );
}

async fn an_expired_token_close_reason_stops_with_a_clear_error(backend: Backend) {
    let token = "7a3e1f90-the-secret";
    let sim = SimAt::start(SimConfig {
        buffer_size: 10_000,
        token: Some(token.into()),
        ..SimConfig::default()
    })
    .await;
    sim.publish(&mut Generator::new(22), 300);
    sim.sim.push_fault(ConnFault::CloseAfter {
        frames: 20,
        reason: Some("ACL token expired".into()),
    });
    let archive = Archive::new(backend).await;

    let run = ingest_with(&archive, &sim, Some(token), &[]).await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        error_line(&run),
        format!(
            "error: Nomad at `{}` ended the event stream with `ACL token expired`: \
             the ACL token `{SIM_TOKEN_NAME}` (accessor `{SIM_TOKEN_ACCESSOR}`) has expired \
             (hint: create a new token (`nomad acl token create`) and set --token or NOMAD_TOKEN to its secret ID; \
             ingest resumes from its checkpoint)",
            sim.address
        )
    );
    assert!(
        !run.stderr.contains(token),
        "the token leaked: {}",
        run.stderr
    );
    assert_eq!(
        sim.sim.requests().len(),
        1,
        "no reconnect with an expired token"
    );
    assert_eq!(
        archive.events("test").await,
        expected(&sim.sim.history()[..20]),
        "what came before the expiry is kept"
    );
    let cluster = &archive.status().await.clusters[0];
    assert_eq!((cluster.malformed_lines, cluster.gaps.len()), (0, 0));
}

/// Runs ingest against `sim` until it gives up, with a token and extra
/// arguments, logging everything (so a leaked token would show).
async fn ingest_with(archive: &Archive, sim: &SimAt, token: Option<&str>, extra: &[&str]) -> Run {
    let mut args = vec!["ingest", "--address", &sim.address, "--cluster", "test"];
    args.extend_from_slice(extra);
    let mut cmd = archive.command(&args);
    if let Some(token) = token {
        cmd.env("NOMAD_TOKEN", token);
    }
    cmd.env("RUST_LOG", "trace");
    finish(cmd.spawn().expect("spawn")).await
}

/// The run's `error: …` line.
fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
}

/// What follows the common start of the error after two empty streams,
/// having checked the exit code and that there was exactly one retry.
fn refusal(run: &Run, sim: &SimAt) -> String {
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("Reconnecting").count(),
        1,
        "one retry, after a backoff, then the diagnosis: {}",
        run.stderr
    );
    assert_eq!(sim.sim.requests().len(), 2);
    let prefix = format!(
        "error: Nomad at `{}` ended the event stream before its `{{}}` greeting 2 times in a row: ",
        sim.address
    );
    let line = error_line(run);
    assert!(line.starts_with(&prefix), "{}", run.stderr);
    line[prefix.len()..].to_owned()
}

async fn a_wrong_token_on_a_close_delimited_stream_is_named_after_two_empty_streams(
    backend: Backend,
) {
    let sim = SimAt::start(SimConfig {
        token: Some("the-right-one".into()),
        framing: Framing::CloseDelimited,
        ..SimConfig::default()
    })
    .await;
    let archive = Archive::new(backend).await;

    let run = ingest_with(&archive, &sim, Some("a-wrong-token"), &[]).await;

    assert_eq!(
        refusal(&run, &sim),
        "Nomad does not accept the ACL token (`GET /v1/acl/token/self` answered 403): \
         it is unknown, mistyped or was deleted (hint: set --token or NOMAD_TOKEN to a valid token's secret ID)"
    );
    assert!(!run.stderr.contains("a-wrong-token"));
    assert!(
        sim.sim.requests().iter().all(|r| r.status == 200),
        "a close-delimited stream refuses with 200 and no body"
    );
    assert!(archive.events("test").await.is_empty());
}

async fn an_expired_token_on_a_close_delimited_stream_is_named_after_two_empty_streams(
    backend: Backend,
) {
    let token = "c0ffee00-the-secret";
    let sim = SimAt::start(SimConfig {
        token: Some(token.into()),
        framing: Framing::CloseDelimited,
        ..SimConfig::default()
    })
    .await;
    sim.sim.set_token_expired(true);
    let archive = Archive::new(backend).await;

    let run = ingest_with(&archive, &sim, Some(token), &[]).await;

    assert_eq!(
        refusal(&run, &sim),
        format!(
            "the ACL token `{SIM_TOKEN_NAME}` (accessor `{SIM_TOKEN_ACCESSOR}`) expired at `2025-01-01T00:00:00Z` \
             (hint: create a new token (`nomad acl token create`) and set --token or NOMAD_TOKEN to its secret ID; \
             ingest resumes from its checkpoint)"
        )
    );
    assert!(
        !run.stderr.contains(token),
        "the token leaked: {}",
        run.stderr
    );
}

async fn a_token_without_permission_is_told_what_its_topics_need(
    backend: Backend,
    framing: Framing,
) {
    let token = "d15ea5e0-the-secret";
    let config = SimConfig {
        token: Some(token.into()),
        framing,
        ..SimConfig::default()
    };
    let sim = SimAt::start(config.clone()).await;
    sim.sim.set_topic_denied(true);
    let archive = Archive::new(backend).await;

    let run = ingest_with(
        &archive,
        &sim,
        Some(token),
        &[
            "--topic",
            "Job",
            "--topic",
            "Node",
            "--topic",
            "Allocation:web",
        ],
    )
    .await;

    assert_eq!(
        refusal(&run, &sim),
        format!(
            "the ACL token `{SIM_TOKEN_NAME}` (accessor `{SIM_TOKEN_ACCESSOR}`) is valid but lacks permission \
             for the requested topics: `Job` needs namespace `read-job` in every namespace (--namespace '*'), \
             `Node` needs `node:read`, `Allocation:web` needs namespace `read-job` in every namespace (--namespace '*') \
             (hint: grant those capabilities, or with a least-privilege token name only the topics it may read, \
             e.g. --topic Job --topic Evaluation --topic Allocation --topic Deployment (namespace read-job) \
             and --topic Node (node:read))"
        )
    );
    assert!(
        !run.stderr.contains(token),
        "the token leaked: {}",
        run.stderr
    );

    // Without --topic, every topic is requested: that needs a management token.
    let sim = SimAt::start(config).await;
    sim.sim.set_topic_denied(true);
    let run = ingest_with(&archive, &sim, Some(token), &["--namespace", "default"]).await;
    let refused = refusal(&run, &sim);
    assert!(
        refused.contains(
            "lacks permission for the requested topics: all topics (no --topic), which needs a management token"
        ),
        "{refused}"
    );
    assert!(archive.events("test").await.is_empty());
}

async fn a_stream_closed_before_its_greeting_without_acls_names_the_agent(backend: Backend) {
    let sim = SimAt::roomy().await;
    for _ in 0..5 {
        sim.sim.push_fault(ConnFault::CloseBeforeGreeting);
    }
    let archive = Archive::new(backend).await;

    let run = ingest_with(&archive, &sim, None, &[]).await;

    assert_eq!(
        refusal(&run, &sim),
        "ACLs are disabled there, so it is not the token; the agent closes the stream before its greeting \
         for an unknown reason (hint: check the agent's log, and that --address points at a Nomad agent)"
    );
}

async fn nomad_1_11_2s_status_line_is_a_clear_error_not_a_retry_loop(backend: Backend) {
    let sim = SimAt::roomy_framed(Framing::Http00).await;
    sim.publish(&mut Generator::new(23), 50);
    let archive = Archive::new(backend).await;

    let run = ingest_with(&archive, &sim, None, &[]).await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let line = error_line(&run);
    assert!(
        line.starts_with(&format!(
            "error: Nomad at `{}` answered with a status line HTTP clients reject (`invalid HTTP version parsed`): ",
            sim.address
        )),
        "{}",
        run.stderr
    );
    assert!(
        line.ends_with(
            ": Nomad 1.11.2's event stream sends an invalid HTTP status line (`HTTP/0.0 200 OK`) \
             (hint: upgrade Nomad to 1.11.3 or newer)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        sim.sim.requests().len(),
        1,
        "no retries: every attempt fails the same way"
    );
    assert!(archive.events("test").await.is_empty());
}

on_both_backends_and_framings!(
    the_servers_close_reason_leads_to_a_resubscription,
    a_reader_dropped_from_the_buffer_records_the_gap_and_reconnects,
    a_token_without_permission_is_told_what_its_topics_need,
);

on_both_backends!(
    an_expired_token_close_reason_stops_with_a_clear_error,
    a_wrong_token_on_a_close_delimited_stream_is_named_after_two_empty_streams,
    an_expired_token_on_a_close_delimited_stream_is_named_after_two_empty_streams,
    a_stream_closed_before_its_greeting_without_acls_names_the_agent,
    nomad_1_11_2s_status_line_is_a_clear_error_not_a_retry_loop,
);
