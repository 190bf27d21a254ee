//! A wide timeline window reads its allocations through the rows the
//! writer keeps of each allocation's life (migration 0022) instead of
//! summing the window's events. Both ways give the same rows, for windows
//! whole, cutting allocations at either end, and narrow: after history
//! was imported behind what was stored and imported again, and after a
//! prune took some of the events.

use futures_util::TryStreamExt;
use nomad_chronicle::archive::{ArchivedEvent, Cluster};
use nomad_chronicle::store::{LaneRow, LaneWindow, Others, Store};
use nomad_sim::Generator;

use crate::common::{Archive, Backend, on_both_backends};

on_both_backends!(
    the_lanes_read_through_the_lives_equal_those_summed_from_events,
    an_archive_from_before_the_lives_gets_them_on_upgrade
);

async fn the_lanes_read_through_the_lives_equal_those_summed_from_events(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(61).frames(1_200);
    let part = |n: usize| frames.len() * n / 4;
    // The later half first, the earlier half behind it, a middle stretch
    // once more: each allocation's row is merged out of order and again.
    for (name, part) in [
        ("later.ndjson", &frames[part(2)..]),
        ("earlier.ndjson", &frames[..part(2)]),
        ("again.ndjson", &frames[part(1)..part(3)]),
    ] {
        let file = archive.capture(name, part);
        archive
            .run(&["import", &file, "--cluster", "test"])
            .await
            .assert_success();
    }
    let compared = same_lanes(&archive).await;
    assert!(compared > 300, "only {compared} allocation rows compared");

    let before = frames[part(1)].index.to_string();
    archive
        .run(&["prune", "--before-index", &before])
        .await
        .assert_success();
    same_lanes(&archive).await;
}

async fn an_archive_from_before_the_lives_gets_them_on_upgrade(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(62).frames(800);
    let file = archive.capture("history.ndjson", &frames);
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
    // As an archive of the version before: no lives, migration 0022 not run.
    archive
        .execute(&[
            "DROP TABLE allocation_lives",
            "DELETE FROM _sqlx_migrations WHERE version = 22",
        ])
        .await;
    let refused = archive.run(&["status"]).await;
    assert!(
        refused.stderr.contains("nomad-chronicle migrate"),
        "{}",
        refused.stderr
    );

    archive.run(&["migrate"]).await.assert_success();
    let compared = same_lanes(&archive).await;
    assert!(compared > 200, "only {compared} allocation rows compared");
}

/// Reads windows across the archive's history both ways and holds them
/// equal; returns the rows compared.
async fn same_lanes(archive: &Archive) -> usize {
    let events = archive.archived("test").await;
    let (store, cluster) = archive.open("test").await;
    let mut compared = 0;
    for (since, until) in windows(&events) {
        let Some((from_index, to_index)) = store
            .time_span(&cluster, Some(since), Some(until))
            .await
            .expect("time span")
        else {
            continue;
        };
        for others in [Others::Markers, Others::Nodes] {
            let window = |by_lives| LaneWindow {
                from_index,
                to_index,
                since,
                until,
                by_lives,
                others,
            };
            let summed = rows(store.as_ref(), &cluster, &window(false)).await;
            let lived = rows(store.as_ref(), &cluster, &window(true)).await;
            assert_eq!(lived, summed, "the window [{since}, {until}), {others:?}");
            compared += summed.iter().filter(|r| r.topic == "Allocation").count();
        }
    }
    store.close().await;
    compared
}

/// The whole history, its middle half, and twenty narrow windows across
/// it, by Nomad's time.
fn windows(events: &[ArchivedEvent]) -> Vec<(i64, i64)> {
    let mut times: Vec<i64> = events.iter().map(|e| e.time).collect();
    times.sort_unstable();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Vec::new();
    };
    let at = |part: usize, of: usize| times[(times.len() - 1) * part / of];
    let mut windows = vec![(first, last + 1), (at(1, 4), at(3, 4))];
    windows.extend((0..20).map(|i| (at(i, 20), at(i, 20) + (last - first) / 40 + 1)));
    windows
}

async fn rows(store: &dyn Store, cluster: &Cluster, window: &LaneWindow) -> Vec<LaneRow> {
    store
        .lane_rows(cluster, window)
        .try_collect()
        .await
        .expect("lane rows")
}
