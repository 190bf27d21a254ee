//! A Nomad server restart or leader change at the archived address (the
//! history is behind the archive: skip what is archived, say so once, carry
//! on) against another cluster at that address (refuse, store nothing), told
//! apart by the cluster identity recorded with the checkpoint — or by the
//! indexes alone when the token may not read it.

use nomad_chronicle::archive::GapKind;
use nomad_sim::{ConnFault, Generator, SimFrame};

use crate::common::{Archive, Backend, Run, SimAt, eventually, expected, finish, on_both_backends};

/// The close reason of a server that shuts down or loses leadership.
const RESUBSCRIBE: &str = "subscription closed by server, client should resubscribe";

/// The run's `error: …` line.
fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default()
}

/// An archive of `frames` generated frames from `sim`, ingested to the end.
async fn archived(
    sim: &SimAt,
    backend: Backend,
    generator: &mut Generator,
    frames: usize,
) -> (Archive, Vec<SimFrame>) {
    let history: Vec<SimFrame> = (0..frames).map(|_| generator.next_frame()).collect();
    for frame in &history {
        sim.sim.publish(frame.clone());
    }
    let archive = Archive::new(backend).await;
    let last = history.last().map(|f| f.index).unwrap_or_default();
    archive.ingest_until(sim, last, &[]).await.assert_success();
    (archive, history)
}

/// A new leader at the same address whose buffer ends 30 entries behind the
/// archive (`history[100..120]`); then `ingest` until the `newer` frames,
/// which are published (after the lagging leader caught up) once the stream
/// has made `connections` requests in all.
async fn follow_a_lagging_leader(
    sim: &SimAt,
    archive: &Archive,
    history: &[SimFrame],
    newer: &[SimFrame],
    connections: usize,
) -> Run {
    sim.sim.restart();
    for frame in &history[100..120] {
        sim.sim.publish(frame.clone());
    }
    let last = newer.last().map(|f| f.index).unwrap_or_default();
    let child = archive
        .ingest_command(sim, last, &["--batch-interval", "20ms"])
        .spawn()
        .expect("spawn");
    eventually("the connections to the lagging leader", || async {
        sim.sim.requests().len() == connections
    })
    .await;
    for frame in history[120..].iter().chain(newer) {
        sim.sim.publish(frame.clone());
    }
    finish(child).await
}

async fn a_leader_behind_the_archive_is_reported_once_and_its_old_frames_skipped(backend: Backend) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(17);
    let (archive, history) = archived(&sim, backend, &mut generator, 150).await;
    let checkpoint = history[149].index;
    assert_eq!(
        archive.status().await.clusters[0].identity,
        Some(sim.sim.identity()),
        "the identity is recorded with the checkpoint"
    );
    // The lagging leader drops the first two connections after one frame.
    for _ in 0..2 {
        sim.sim.push_fault(ConnFault::CloseAfter {
            frames: 1,
            reason: Some(RESUBSCRIBE.into()),
        });
    }
    let newer: Vec<SimFrame> = (0..20).map(|_| generator.next_frame()).collect();

    let run = follow_a_lagging_leader(&sim, &archive, &history, &newer, 1 + 3).await;

    run.assert_success();
    let mut want = history.clone();
    want.extend(newer.iter().cloned());
    assert_eq!(archive.events("test").await, expected(&want));
    let cluster = &archive.status().await.clusters[0];
    assert!(
        cluster.gaps.is_empty(),
        "nothing is missing: {:?}",
        cluster.gaps
    );
    assert_eq!(cluster.checkpoint, newer.last().map(|f| f.index));
    assert_eq!(
        run.stderr.matches("Behind the archive").count(),
        1,
        "once, however many reconnects: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "Behind the archive: the server's history ends before the archive's: its stream resumed at \
             index {}, behind the checkpoint {checkpoint}; frames up to the checkpoint are skipped as \
             already archived (the same cluster: a restarted server or a leader change)",
            history[119].index
        )),
        "{}",
        run.stderr
    );
    assert!(
        sim.sim.requests()[1..]
            .iter()
            .all(|r| r.index == checkpoint)
    );
}

async fn a_server_behind_the_archive_that_cannot_be_identified_gets_one_gap(backend: Backend) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(20);
    let (archive, history) = archived(&sim, backend, &mut generator, 150).await;
    let checkpoint = history[149].index;
    sim.sim.set_members_denied(true);
    let newer: Vec<SimFrame> = (0..20).map(|_| generator.next_frame()).collect();

    let run = follow_a_lagging_leader(&sim, &archive, &history, &newer, 1 + 1).await;

    run.assert_success();
    let mut want = history.clone();
    want.extend(newer.iter().cloned());
    assert_eq!(archive.events("test").await, expected(&want));
    let gaps = &archive.status().await.clusters[0].gaps;
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(
        (gaps[0].from_index, gaps[0].to_index, gaps[0].kind),
        (history[119].index, checkpoint, GapKind::ServerBehind)
    );
    assert!(
        gaps[0]
            .reason
            .contains("could not be confirmed as the archived one"),
        "{}",
        gaps[0].reason
    );
    assert_eq!(
        run.stderr
            .matches("Cannot read the cluster's identity")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(hint: grant the token `node:read`)")
            && run.stderr.contains(
                "(the cluster could not be identified: `GET /v1/agent/members` answered HTTP 403: \
                 Permission denied; a gap is recorded"
            ),
        "{}",
        run.stderr
    );
}

async fn another_cluster_at_the_same_address_is_refused_and_nothing_of_it_stored(backend: Backend) {
    let sim = SimAt::roomy().await;
    let (archive, history) = archived(&sim, backend, &mut Generator::new(18), 300).await;
    let checkpoint = history.last().map(|f| f.index).unwrap_or_default();
    let recorded = sim.sim.identity();
    sim.sim.become_another_cluster();
    let foreign_last = sim.publish(&mut Generator::new(19), 60);
    let ingest = ["ingest", "--address", &sim.address, "--cluster", "test"];

    let run = archive.run(&ingest).await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        error_line(&run),
        format!(
            "error: Nomad at `{}` is not the cluster archived as `test`: its stream starts at index \
             {foreign_last}, far behind the archive's checkpoint {checkpoint}, and it reports {} where \
             the archive recorded {recorded}; nothing from it was stored (hint: to archive that \
             cluster, give it a label of its own: --cluster <new label>)",
            sim.address,
            sim.sim.identity()
        )
    );
    let unchanged = || async {
        assert_eq!(archive.events("test").await, expected(&history));
        let cluster = &archive.status().await.clusters[0];
        assert_eq!(cluster.checkpoint, Some(checkpoint));
        assert_eq!(cluster.identity.as_ref(), Some(&recorded));
        assert!(cluster.gaps.is_empty(), "{:?}", cluster.gaps);
    };
    unchanged().await;

    // Without `node:read` the indexes alone decide, and the message says so.
    sim.sim.set_members_denied(true);
    let run = archive.run(&ingest).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        error_line(&run).ends_with(&format!(
            "far behind the archive's checkpoint {checkpoint}, and its identity could not be checked \
             (`GET /v1/agent/members` answered HTTP 403: Permission denied), so the indexes alone \
             decide; nothing from it was stored (hint: to archive that cluster, give it a label of \
             its own: --cluster <new label>; with `node:read` on the token ingest can tell clusters \
             apart by identity)"
        )),
        "{}",
        run.stderr
    );
    unchanged().await;

    // Under a label of its own it is archived, and status shows both identities.
    sim.sim.set_members_denied(false);
    let last = foreign_last.to_string();
    let run = archive
        .run(&[
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "other",
            "--until-index",
            &last,
        ])
        .await;
    run.assert_success();
    assert_eq!(archive.events("other").await, expected(&sim.sim.history()));
    let status = archive.run(&["status"]).await;
    status.assert_success();
    let identities: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| l.starts_with("  identity"))
        .collect();
    assert_eq!(
        identities,
        [
            format!("  identity    {}", sim.sim.identity()),
            format!("  identity    {recorded}")
        ],
        "{}",
        status.stdout
    );
}

async fn servers_replaced_while_away_are_the_same_cluster_and_the_new_identity_is_recorded(
    backend: Backend,
) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(21);
    let (archive, history) = archived(&sim, backend, &mut generator, 100).await;
    let checkpoint = history[99].index;
    let recorded = sim.sim.identity();
    // Rebuilt on new servers from a snapshot: a new identity, and a history
    // that goes on from where the old one was.
    sim.sim.become_another_cluster();
    let later: Vec<SimFrame> = (0..30).map(|_| generator.next_frame()).collect();
    for frame in &later {
        sim.sim.publish(frame.clone());
    }
    let last = later[29].index;

    let run = archive.ingest_until(&sim, last, &[]).await;

    run.assert_success();
    let mut want = history.clone();
    want.extend(later.iter().cloned());
    assert_eq!(archive.events("test").await, expected(&want));
    let cluster = &archive.status().await.clusters[0];
    assert_eq!(cluster.identity, Some(sim.sim.identity()));
    let gaps: Vec<_> = cluster
        .gaps
        .iter()
        .map(|g| (g.from_index, g.to_index, g.kind))
        .collect();
    assert_eq!(
        gaps,
        [(checkpoint, later[0].index, GapKind::Buffer)],
        "the new servers never held the checkpoint"
    );
    assert!(
        run.stderr.contains(&format!(
            "The agent reports another cluster ({}) than the archive recorded ({recorded}); its \
             history is not far behind the archive's, so it is taken for the same cluster with its \
             servers replaced, and its identity is recorded",
            sim.sim.identity()
        )),
        "{}",
        run.stderr
    );
}

on_both_backends!(
    servers_replaced_while_away_are_the_same_cluster_and_the_new_identity_is_recorded,
    a_leader_behind_the_archive_is_reported_once_and_its_old_frames_skipped,
    a_server_behind_the_archive_that_cannot_be_identified_gets_one_gap,
    another_cluster_at_the_same_address_is_refused_and_nothing_of_it_stored,
);
