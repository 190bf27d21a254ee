//! SQLite's WAL while a writer commits without pause: checkpoints run beside
//! the writer, and the WAL is started over instead of growing with the
//! archive.

use nomad_chronicle::archive::Batch;
use nomad_chronicle::store::compress::Settings;
use serde_json::json;

use crate::common::{Archive, Backend, batch_of_lines};

/// An allocation event with `padding` bytes of payload.
fn line(index: u64, padding: usize) -> Vec<u8> {
    let alloc = format!("{index:08}-0000-4000-8000-000000000000");
    let padding = "x".repeat(padding);
    let event = json!({
        "Topic": "Allocation", "Type": "AllocationUpdated", "Key": alloc,
        "Namespace": "default", "FilterKeys": ["web", "d1"], "Index": index,
        "Payload": {"Allocation": {"ID": alloc, "JobID": "web", "NodeID": "n1",
            "ClientStatus": "running", "Padding": padding}}
    });
    serde_json::to_vec(&json!({"Index": index, "Events": [event]})).expect("json")
}

fn batch(first: u64, events: u64, padding: usize) -> Batch {
    batch_of_lines((first..first + events).map(|index| line(index, padding)), 1)
}

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn the_wal_stays_bounded_and_the_database_file_receives_the_events() {
    let archive = Archive::new(Backend::Sqlite).await;
    // Stored as they are: the padding would compress to almost nothing.
    let (store, cluster, mut lease) = archive.writer_with("test", Settings::plain()).await;
    // 160 MiB of events, committed back to back.
    let per_batch = 500;
    for n in 0..40 {
        lease
            .commit(&cluster, &batch(1 + n * per_batch, per_batch, 8 * 1024))
            .await
            .expect("commit");
    }
    let wal = std::fs::metadata(archive.file("archive.db-wal"))
        .expect("the WAL")
        .len();
    let db = std::fs::metadata(&archive.path)
        .expect("the database")
        .len();
    // Started over after 64 MiB of events; a batch is 4 MiB of events, and
    // the WAL holds their index entries and keyframes besides (about 1.5 ×
    // the events' bytes). Without the restarts it would hold all 160 MiB.
    assert!(wal < 112 * MIB, "the WAL grew to {} MiB", wal / MIB);
    // Everything but what the last checkpoints had not copied yet.
    assert!(db > 100 * MIB, "the database file holds {} MiB", db / MIB);
    drop(lease);
    assert_eq!(
        store.status().await.expect("status").clusters[0].events,
        40 * per_batch
    );
    store.close().await;
}

/// A quiet cluster: one small event per commit, as ingest commits a second
/// after the first event of a batch. Each commit still writes a dozen pages.
#[tokio::test]
async fn the_wal_stays_bounded_when_every_commit_is_small() {
    let archive = Archive::new(Backend::Sqlite).await;
    let (store, cluster, mut lease) = archive.writer("test").await;
    for index in 1..=3_000 {
        lease
            .commit(&cluster, &batch(index, 1, 200))
            .await
            .expect("commit");
    }
    let wal = std::fs::metadata(archive.file("archive.db-wal"))
        .expect("the WAL")
        .len();
    // 3,000 commits of ~11 pages would be over 500 MiB.
    assert!(wal < 96 * MIB, "the WAL grew to {} MiB", wal / MIB);
    drop(lease);
    assert_eq!(
        store.status().await.expect("status").clusters[0].events,
        3_000
    );
    store.close().await;
}
