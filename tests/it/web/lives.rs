//! A wide timeline window reads its allocations through the rows the
//! writer keeps of each allocation's life (migration 0022) instead of
//! summing the window's events. Both ways give the same rows, for windows
//! whole, cutting allocations at either end, and narrow: after history
//! was imported behind what was stored and imported again, and after a
//! prune took some of the events. So do the answers of the timeline,
//! where the database counts the lives thinner than a pixel.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use nomad_chronicle::archive::{ArchivedEvent, Cluster};
use nomad_chronicle::store::{Fit, LaneRow, LaneWindow, Others, Store};
use nomad_chronicle::web::lanes::{By, Grid};
use nomad_chronicle::web::window::{self, Way, Window};
use nomad_sim::{Generator, SimFrame};

use crate::common::{Archive, Backend, older, on_both_backends};

on_both_backends!(
    the_lanes_read_through_the_lives_equal_those_summed_from_events,
    lives_longer_than_a_window_reach_read_the_same,
    an_archive_from_before_the_lives_gets_them_on_upgrade
);

async fn the_lanes_read_through_the_lives_equal_those_summed_from_events(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(61).frames(1_200);
    // Each allocation's row is merged out of order and again.
    archive.import_out_of_order("test", &frames).await;
    let compared = same_lanes(&archive).await;
    assert!(compared > 300, "only {compared} allocation rows compared");
    let (counted, hidden) = same_answers(&archive).await;
    assert!(
        counted > 50,
        "the database counted only {counted} allocations"
    );
    assert!(hidden > 5, "the database thinned only {hidden} markers");

    let before = frames[frames.len() / 4].index.to_string();
    archive
        .run(&["prune", "--before-index", &before])
        .await
        .assert_success();
    same_lanes(&archive).await;
    same_answers(&archive).await;
}

/// Raft indexes from an allocation's first event to its last from which
/// the timeline finds it by the index of long lives (`LONG_LIFE` in
/// src/store/lanes.rs, migration 0026).
const LONG_LIFE: u64 = 16_384;

async fn lives_longer_than_a_window_reach_read_the_same(backend: Backend) {
    let archive = Archive::new(backend).await;
    // Raft indexes 200 apart: an allocation whose events are 82 or more
    // entries apart has a long life, one with fewer a short one, and
    // windows end between the events of both.
    let frames = spread(Generator::new(63).frames(1_000), 200);
    archive.import_as("test", "history.ndjson", &frames).await;
    let (short, long) = lives_by_length(&archive.archived("test").await);
    assert!(
        long > 20 && short > 20,
        "{short} short and {long} long lives"
    );
    let compared = same_lanes(&archive).await;
    assert!(compared > 300, "only {compared} allocation rows compared");
    same_answers(&archive).await;
}

/// `frames` with each raft index multiplied by `factor`, in the frame and
/// in its events.
fn spread(frames: Vec<SimFrame>, factor: u64) -> Vec<SimFrame> {
    frames
        .into_iter()
        .map(|mut frame| {
            frame.index *= factor;
            for event in &mut frame.events {
                event.index *= factor;
                let mut v: serde_json::Value = serde_json::from_str(&event.json).expect("JSON");
                v["Index"] = event.index.into();
                event.json = v.to_string();
            }
            frame
        })
        .collect()
}

/// How many allocations of `events` have a life shorter than
/// [`LONG_LIFE`] raft indexes, and how many one at least that long, with
/// more than one event.
fn lives_by_length(events: &[ArchivedEvent]) -> (usize, usize) {
    let mut spans: HashMap<(&str, &str), (u64, u64)> = HashMap::new();
    for e in events.iter().filter(|e| e.topic == "Allocation") {
        let span = spans
            .entry((&e.namespace, &e.key))
            .or_insert((e.index, e.index));
        span.0 = span.0.min(e.index);
        span.1 = span.1.max(e.index);
    }
    let lengths = spans.values().map(|(first, last)| last - first);
    let long = lengths.clone().filter(|l| *l >= LONG_LIFE).count();
    let short = lengths.filter(|l| *l > 0 && *l < LONG_LIFE).count();
    (short, long)
}

async fn an_archive_from_before_the_lives_gets_them_on_upgrade(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(62).frames(800);
    archive.import_as("test", "history.ndjson", &frames).await;
    // As an archive of the version before: no lives and no marker changes,
    // migrations 0022, 0023 (the markers' index, which 0028 drops), 0025
    // (the allocations' texts in `names`, which 0022 reads as text), 0026
    // and 0027 (indexes of the lives), 0028 (the marker changes) and 0030
    // (the lives' settled length) and 0031 (the marker changes' slots) not
    // run. 0024 changed a table 0022 does not read, and stays; so does
    // 0029, which reads no lives.
    let mut undo = vec![
        "DROP TABLE allocation_lives",
        "DROP TABLE marker_changes",
        "DROP TABLE marker_slots",
        "DELETE FROM _sqlx_migrations WHERE version IN (22, 23, 26, 27, 28, 30, 31)",
    ];
    if backend == Backend::Postgres {
        undo.push("DROP FUNCTION marker_slots_keep()");
    }
    undo.extend_from_slice(older::BEFORE_ALLOCATION_TEXTS);
    archive.execute(&undo).await;
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
                fit: None,
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

/// Answers windows across the archive's history every way, on time axes
/// of a few widths, and holds them equal to the answer read from every
/// event; returns how many allocations the database counted and how many
/// markers it thinned away, in the widest window on the narrowest axis.
async fn same_answers(archive: &Archive) -> (i64, i64) {
    let events = archive.archived("test").await;
    let (store, cluster) = archive.open("test").await;
    for (since, until) in windows(&events) {
        for (by, width) in [
            (By::Job, 100),
            (By::Job, 1_000),
            (By::Node, 100),
            (By::Node, 8_000),
        ] {
            let window = |way| Window {
                by,
                from: Some(since),
                to: Some(until),
                width,
                way,
            };
            let every = window::lanes(store.as_ref(), &cluster, window(Way::Events)).await;
            let every = every.expect("lanes");
            let fitted = window::lanes(store.as_ref(), &cluster, window(Way::Lives)).await;
            assert_eq!(
                fitted.expect("lanes"),
                every,
                "the window [{since}, {until}), {by:?}, {width} px"
            );
        }
    }
    let (since, until) = windows(&events)[2];
    let (from_index, to_index) = store
        .time_span(&cluster, Some(since), Some(until))
        .await
        .expect("time span")
        .expect("events");
    let grid = Grid::new((since, until), 100);
    let whole = LaneWindow {
        from_index,
        to_index,
        since,
        until,
        by_lives: true,
        others: Others::Markers,
        fit: Some(Fit {
            width: 100,
            origin: grid.origin,
            bucket_ms: grid.bucket_ms,
            after_index: 0,
        }),
    };
    let read = rows(store.as_ref(), &cluster, &whole).await;
    store.close().await;
    let counted = read.iter().filter_map(|r| r.count).sum();
    (counted, read.iter().filter_map(|r| r.hidden).sum())
}

/// The whole history, it zoomed out to a fifth and a twentieth of the
/// window (most allocations thinner than a pixel), its middle half, and
/// twenty narrow windows across it, by Nomad's time.
fn windows(events: &[ArchivedEvent]) -> Vec<(i64, i64)> {
    let mut times: Vec<i64> = events.iter().map(|e| e.time).collect();
    times.sort_unstable();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Vec::new();
    };
    let at = |part: usize, of: usize| times[(times.len() - 1) * part / of];
    let length = last - first;
    let mut windows = vec![
        (first, last + 1),
        (first - 4 * length, last + 1),
        (first - 19 * length, last + 1),
        (at(1, 4), at(3, 4)),
    ];
    windows.extend((0..20).map(|i| (at(i, 20), at(i, 20) + (last - first) / 40 + 1)));
    windows
}

/// The window's rows, its allocations in order of their first event:
/// read through the lives, they come in one run per statement.
async fn rows(store: &dyn Store, cluster: &Cluster, window: &LaneWindow) -> Vec<LaneRow> {
    let mut rows: Vec<LaneRow> = store
        .lane_rows(cluster, window)
        .try_collect()
        .await
        .expect("lane rows");
    let allocations = rows.iter().take_while(|r| r.topic == "Allocation").count();
    rows[..allocations].sort_by_key(|r| (r.raft_index, r.position));
    rows
}
