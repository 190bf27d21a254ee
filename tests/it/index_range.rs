//! Raft indexes beyond what the archive stores exactly (2^63-1, the
//! databases' signed 64-bit integers): such a frame is refused as malformed,
//! counted and left as a gap, never stored under another index.

use nomad_chronicle::archive::GapKind;
use nomad_sim::{ConnFault, Generator};

use crate::common::{Archive, Backend, SimAt, expected, on_both_backends};

const BEYOND: u64 = 1 << 63;

/// A well-formed frame at `index` with one event of its own.
fn frame_at(index: u64, key: &str) -> String {
    format!(
        r#"{{"Index":{index},"Events":[{{"Topic":"Job","Type":"JobRegistered","Key":"{key}","Namespace":"default","Index":{index},"Payload":{{"Job":{{"ID":"{key}"}}}}}}]}}"#
    )
}

async fn a_streamed_frame_beyond_the_index_range_is_refused_as_malformed(backend: Backend) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(61), 300);
    sim.sim.push_fault(ConnFault::GarbageAfter {
        frames: 20,
        line: frame_at(BEYOND, "huge"),
    });
    let archive = Archive::new(backend).await;

    let run = archive.ingest_until(&sim, last, &[]).await;
    run.assert_success();

    let history = sim.sim.history();
    assert_eq!(archive.events("test").await, expected(&history));
    assert!(
        run.stderr.contains(&format!("index {BEYOND} is beyond")),
        "{}",
        run.stderr
    );
    let cluster = &archive.status().await.clusters[0];
    assert_eq!(cluster.malformed_lines, 1);
    assert_eq!(cluster.last_index, history.last().map(|f| f.index));
    assert_eq!(cluster.gaps.len(), 1);
    let gap = &cluster.gaps[0];
    assert_eq!(gap.kind, GapKind::Malformed);
    assert_eq!(
        (gap.from_index, gap.to_index),
        (history[19].index, history[20].index)
    );
}

async fn imported_frames_beyond_the_index_range_are_neither_merged_nor_stored(backend: Backend) {
    let frames = Generator::new(62).frames(40);
    let mut text: String = frames[..10].iter().map(|f| f.to_line() + "\n").collect();
    // Two distinct entries that a saturating conversion would make one.
    text.push_str(&(frame_at(BEYOND, "a") + "\n"));
    text.push_str(&(frame_at(u64::MAX, "b") + "\n"));
    text.extend(frames[10..].iter().map(|f| f.to_line() + "\n"));
    let archive = Archive::new(backend).await;
    let file = archive.file("beyond.ndjson");
    std::fs::write(&file, text).expect("write capture");

    let run = archive.run(&["import", &file.display().to_string()]).await;

    run.assert_success();
    assert_eq!(archive.events("default").await, expected(&frames));
    let cluster = &archive.status().await.clusters[0];
    assert_eq!(cluster.malformed_lines, 2);
    assert_eq!(cluster.last_index, frames.last().map(|f| f.index));
    let gaps: Vec<_> = cluster
        .gaps
        .iter()
        .map(|g| (g.kind, g.from_index, g.to_index))
        .collect();
    assert_eq!(
        gaps,
        [(GapKind::Malformed, frames[9].index, frames[10].index)]
    );
}

on_both_backends!(
    a_streamed_frame_beyond_the_index_range_is_refused_as_malformed,
    imported_frames_beyond_the_index_range_are_neither_merged_nor_stored,
);

#[tokio::test]
async fn a_start_index_beyond_the_range_is_refused() {
    let archive = Archive::new(Backend::Sqlite).await;
    let beyond = BEYOND.to_string();
    let run = archive.run(&["ingest", "--from-index", &beyond]).await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("--from-index"), "{}", run.stderr);
}
