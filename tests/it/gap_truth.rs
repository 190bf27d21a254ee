//! Gaps describe exactly what is missing: a start past the checkpoint
//! records the stretch it skipped, and history imported later narrows or
//! removes the gaps it fills.

use nomad_chronicle::archive::GapKind;
use nomad_sim::Generator;

use crate::common::{Archive, Backend, SimAt, expected, on_both_backends};

/// The cluster `test`'s gaps as (from, to, kind).
async fn gaps(archive: &Archive) -> Vec<(u64, u64, GapKind)> {
    let report = archive.status().await;
    let cluster = report.clusters.iter().find(|c| c.cluster == "test");
    cluster
        .map(|c| {
            c.gaps
                .iter()
                .map(|g| (g.from_index, g.to_index, g.kind))
                .collect()
        })
        .unwrap_or_default()
}

async fn a_start_past_the_checkpoint_is_a_gap_until_an_import_fills_it(backend: Backend) {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(71);
    let checkpoint = sim.publish(&mut generator, 200);
    archive
        .ingest_until(&sim, checkpoint, &[])
        .await
        .assert_success();
    let last = sim.publish(&mut generator, 400);
    let history = sim.sim.history();
    let later: Vec<u64> = history
        .iter()
        .map(|f| f.index)
        .filter(|i| *i > checkpoint)
        .collect();
    let start = later[later.len() / 2];
    let from = start.to_string();
    archive
        .ingest_until(
            &sim,
            last,
            &["--from-index", &from, "--override-checkpoint"],
        )
        .await
        .assert_success();
    assert_eq!(
        gaps(&archive).await,
        vec![(checkpoint, start, GapKind::Skipped)]
    );
    let status = archive.run(&["status"]).await;
    status.assert_success();
    assert!(
        status.stdout.contains(&format!(
            "ingest was started at index {start} with --override-checkpoint while the archive's \
             checkpoint was {checkpoint}, so the events between were never read"
        )),
        "{}",
        status.stdout
    );

    // A capture of part of the stretch narrows the gap to what it lacks.
    let middle = later[later.len() / 4];
    let part: Vec<_> = history
        .iter()
        .filter(|f| f.index >= checkpoint && f.index <= middle)
        .cloned()
        .collect();
    let file = archive.capture("part.ndjson", &part);
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
    assert_eq!(
        gaps(&archive).await,
        vec![(middle, start, GapKind::Skipped)]
    );

    // One of everything removes it.
    let file = archive.capture("all.ndjson", &history);
    let run = archive.run(&["import", &file, "--cluster", "test"]).await;
    run.assert_success();
    assert!(run.stderr.contains("gaps_narrowed=1"), "{}", run.stderr);
    assert_eq!(gaps(&archive).await, vec![]);
    assert_eq!(archive.events("test").await, expected(&history));
    let status = archive.run(&["status"]).await;
    assert!(
        !status.stdout.contains("--override-checkpoint"),
        "{}",
        status.stdout
    );
}

async fn a_capture_inside_a_gap_splits_it_in_two(backend: Backend) {
    let frames = Generator::new(72).frames(600);
    let archive = Archive::new(backend).await;
    let (head, tail) = (&frames[..100], &frames[400..]);
    let mut outer = head.to_vec();
    outer.extend_from_slice(tail);
    // A capture that jumps records the jump as a gap of its own only when
    // it starts after the archive's end: import the two ends apart.
    let file = archive.capture("head.ndjson", head);
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
    let file = archive.capture("tail.ndjson", tail);
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
    let (end, start) = (frames[99].index, frames[400].index);
    assert_eq!(gaps(&archive).await, vec![(end, start, GapKind::Buffer)]);

    let file = archive.capture("inside.ndjson", &frames[200..300]);
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
    assert_eq!(
        gaps(&archive).await,
        vec![
            (end, frames[200].index, GapKind::Buffer),
            (frames[299].index, start, GapKind::Buffer)
        ]
    );
}

on_both_backends!(
    a_start_past_the_checkpoint_is_a_gap_until_an_import_fills_it,
    a_capture_inside_a_gap_splits_it_in_two,
);
