//! A wide window takes its markers from the changes summed up per lane
//! and slot of 2^22 ms (`marker_slots`, migration 0031, kept by triggers
//! on `marker_changes`), reading only the changes of the slots at its
//! ends and of those a change of which might lie outside its stretch of
//! the stream. The slots always sum up the changes stored, after history
//! imported behind and again and after a prune; and a window read by them
//! gives the markers grouping every change gives, whatever its ends, its
//! stretch of the stream and its starting moment.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use nomad_chronicle::store::{Fit, LaneWindow, Others};
use nomad_chronicle::web::lanes::{By, Grid};
use nomad_chronicle::web::window::{self, Way, Window};
use nomad_sim::Generator;

use crate::common::{Archive, Backend, on_both_backends};

on_both_backends!(
    wide_windows_read_their_markers_by_slots,
    the_slots_follow_every_statement_on_the_changes
);

/// The length of a slot (`SLOT_MS` in src/store/lanes/slots.rs).
const SLOT_MS: i64 = 1 << 22;

async fn wide_windows_read_their_markers_by_slots(backend: Backend) {
    let archive = Archive::new(backend).await;
    // About four days of history: some seventy slots.
    let frames = Generator::new(66).paced(80).frames(1_500);
    archive.import_out_of_order("test", &frames).await;
    let changes = slots_sum_up_the_changes(&archive).await;
    assert!(changes.len() > 150, "only {} marker changes", changes.len());
    let (slotted, hidden) = same_markers(&archive, &changes).await;
    assert!(slotted > 20, "only {slotted} windows were read by slots");
    assert!(
        hidden > 100,
        "the slots stood for only {hidden} hidden changes"
    );
    same_pages(&archive).await;

    let before = frames[frames.len() / 4].index.to_string();
    archive
        .run(&["prune", "--before-index", &before])
        .await
        .assert_success();
    let changes = slots_sum_up_the_changes(&archive).await;
    same_markers(&archive, &changes).await;
    same_pages(&archive).await;
}

async fn the_slots_follow_every_statement_on_the_changes(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(67).paced(80).frames(1_500);
    archive.import_as("test", "history.ndjson", &frames).await;
    // Each statement changes many rows of a slot at once: the last of
    // each slot deleted, then some changes moved an hour later or
    // earlier, into other slots and within their own.
    archive
        .execute(&[
            "DELETE FROM marker_changes WHERE (cluster_id, raft_index, position) IN \
               (SELECT cluster_id, last_index, last_position FROM marker_slots WHERE slot % 2 = 0)",
            "UPDATE marker_changes SET event_at = event_at + 3600000 WHERE raft_index % 3 = 0",
            "UPDATE marker_changes SET event_at = event_at - 5400000 WHERE raft_index % 5 = 0",
            "UPDATE marker_changes SET event_at = event_at + 1 WHERE raft_index % 7 = 0",
        ])
        .await;
    let changes = slots_sum_up_the_changes(&archive).await;
    same_markers(&archive, &changes).await;
}

/// A stored marker change: raft index, position, time, lane, topic and
/// namespace.
type Change = (i64, i64, i64, i64, String, String);

/// A change's place in time and in the stream: time, raft index, position.
type Place = (i64, i64, i64);

/// Changes of one lane, topic and namespace in a slot or a bucket: the
/// slot or bucket, the lane, the topic and the namespace.
type Group<'a> = (i64, i64, &'a str, &'a str);

/// What the changes of a slot sum up to.
struct Summed {
    changes: i64,
    least: i64,
    most: i64,
    last: Place,
}

/// Holds `marker_slots` to what the changes stored sum up to; returns the
/// changes.
async fn slots_sum_up_the_changes(archive: &Archive) -> Vec<Change> {
    let changes: Vec<Change> = archive
        .select(
            "SELECT raft_index, CAST(position AS BIGINT), event_at, lane_ref, topic, namespace \
             FROM marker_changes WHERE cluster_id = (SELECT id FROM clusters WHERE name = 'test')",
        )
        .await;
    let mut expected: BTreeMap<Group, Summed> = BTreeMap::new();
    for (index, position, at, lane, topic, namespace) in &changes {
        let key = (at >> 22, *lane, topic.as_str(), namespace.as_str());
        let last = (*at, *index, *position);
        let slot = expected.entry(key).or_insert(Summed {
            changes: 0,
            least: *index,
            most: *index,
            last,
        });
        slot.changes += 1;
        slot.least = slot.least.min(*index);
        slot.most = slot.most.max(*index);
        slot.last = slot.last.max(last);
    }
    type Slot = (i64, i64, String, String, i64, i64, i64, i64, i64, i64);
    let stored: Vec<Slot> = archive
        .select(
            "SELECT slot, lane_ref, topic, namespace, changes, least_index, most_index, \
               last_at, last_index, CAST(last_position AS BIGINT) FROM marker_slots \
             WHERE cluster_id = (SELECT id FROM clusters WHERE name = 'test')",
        )
        .await;
    assert_eq!(stored.len(), expected.len(), "slots stored and summed up");
    for (slot, lane, topic, namespace, n, least, most, at, index, position) in stored {
        let key = (slot, lane, topic.as_str(), namespace.as_str());
        let summed = expected.get(&key).expect("a slot of stored changes");
        assert_eq!(n, summed.changes, "{key:?}");
        assert!(least <= summed.least && most >= summed.most, "{key:?}");
        assert_eq!((at, index, position), summed.last, "{key:?}");
    }
    changes
}

/// Reads the markers of wide windows (whole slots and cut ones, stretches
/// of the stream cut inside them, starting moments inside them) and holds
/// each to the markers grouping every change gives; returns how many
/// windows were read by slots and the changes their markers stood for.
async fn same_markers(archive: &Archive, changes: &[Change]) -> (usize, i64) {
    let (store, cluster) = archive.open("test").await;
    let times = changes.iter().map(|c| c.2);
    let (first, last) = (
        times.clone().min().expect("changes"),
        times.max().expect("changes"),
    );
    let (least, most) = (
        changes.iter().map(|c| c.0).min(),
        changes.iter().map(|c| c.0).max(),
    );
    let (least, most) = (least.expect("changes"), most.expect("changes"));
    let cuts = cuts_inside_slots(changes);
    assert!(
        cuts.len() >= 3,
        "only {} slots of several changes",
        cuts.len()
    );
    let cut = |n: usize| cuts[(cuts.len() - 1) * n / 2];
    let (mut slotted, mut hidden) = (0, 0);
    for (since, until) in [
        (first, last + 1),
        (first + 1_234_567, last - 2_345_678),
        (first - SLOT_MS, last + SLOT_MS),
        (first + 5 * SLOT_MS + 17, first + 40 * SLOT_MS - 3),
        // On slot boundaries: no changes at either end.
        (
            slot_start(first + 3 * SLOT_MS),
            slot_start(last - 2 * SLOT_MS),
        ),
    ] {
        for bucket_ms in [SLOT_MS, 4 * SLOT_MS, 32 * SLOT_MS] {
            for (lo, hi, after) in [
                (least, most, 0),
                (cut(0), most, 0),
                (least, cut(2), 0),
                (least, most, cut(1)),
            ] {
                let origin = since.div_euclid(bucket_ms) * bucket_ms;
                let window = LaneWindow {
                    from_index: lo as u64,
                    to_index: hi as u64,
                    since,
                    until,
                    by_lives: true,
                    others: Others::Markers,
                    fit: Some(Fit {
                        width: 100,
                        origin,
                        bucket_ms,
                        after_index: after as u64,
                    }),
                };
                let mut read: Vec<(i64, i64, i64)> = store
                    .lane_rows(&cluster, &window)
                    .try_collect::<Vec<_>>()
                    .await
                    .expect("lane rows")
                    .into_iter()
                    .filter(|r| r.topic != "Allocation")
                    .map(|r| (r.raft_index, i64::from(r.position), r.hidden.unwrap_or(-1)))
                    .collect();
                read.sort_unstable();
                let wanted = grouped(changes, &window, origin, bucket_ms);
                assert_eq!(
                    read, wanted,
                    "[{since}, {until}), {bucket_ms} ms, [{lo}, {hi}] after {after}"
                );
                slotted += usize::from(since.div_euclid(SLOT_MS) + 1 < until.div_euclid(SLOT_MS));
                hidden += read.iter().map(|r| r.2).sum::<i64>();
            }
        }
    }
    store.close().await;
    (slotted, hidden)
}

/// The start of the slot `at` (Unix ms) falls in.
fn slot_start(at: i64) -> i64 {
    at.div_euclid(SLOT_MS) * SLOT_MS
}

/// Raft indexes that cut the changes of a slot (of one lane, topic and
/// namespace) in two: each such slot's second change's, in stream order.
fn cuts_inside_slots(changes: &[Change]) -> Vec<i64> {
    let mut slots: BTreeMap<Group, Vec<i64>> = BTreeMap::new();
    for (index, _, at, lane, topic, namespace) in changes {
        let key = (at >> 22, *lane, topic.as_str(), namespace.as_str());
        slots.entry(key).or_default().push(*index);
    }
    let mut cuts: Vec<i64> = slots
        .into_values()
        .filter(|indexes| indexes.len() > 1)
        .map(|mut indexes| {
            indexes.sort_unstable();
            indexes[1]
        })
        .collect();
    cuts.sort_unstable();
    cuts
}

/// The markers of `window` grouped from every change: per lane, bucket,
/// topic and namespace, the last change (by time, then stream order) and
/// how many others it stands for.
fn grouped(
    changes: &[Change],
    window: &LaneWindow,
    origin: i64,
    bucket_ms: i64,
) -> Vec<(i64, i64, i64)> {
    let after = window.fit.map_or(0, |f| f.after_index) as i64;
    let mut groups: BTreeMap<Group, (Place, i64)> = BTreeMap::new();
    for (index, position, at, lane, topic, namespace) in changes {
        let stretch = *index >= window.from_index as i64 && *index <= window.to_index as i64;
        if !stretch || *index <= after || *at < window.since || *at >= window.until {
            continue;
        }
        let key = (
            *lane,
            (at - origin).div_euclid(bucket_ms),
            topic.as_str(),
            namespace.as_str(),
        );
        let group = groups.entry(key).or_insert(((*at, *index, *position), 0));
        group.0 = group.0.max((*at, *index, *position));
        group.1 += 1;
    }
    let mut wanted: Vec<(i64, i64, i64)> = groups
        .into_values()
        .map(|((_, index, position), n)| (index, position, n - 1))
        .collect();
    wanted.sort_unstable();
    wanted
}

/// The page's answers for the whole history and wide windows of it, read
/// by slots, equal those read from every event.
async fn same_pages(archive: &Archive) {
    let events = archive.archived("test").await;
    let (store, cluster) = archive.open("test").await;
    let first = events.iter().map(|e| e.time).min().expect("events");
    let last = events.iter().map(|e| e.time).max().expect("events");
    for (since, until) in [(first, last + 1), (first + 3_600_000, last - 7_200_000)] {
        for width in [100, 250] {
            let grid = Grid::new((since, until), width);
            assert!(grid.bucket_ms >= SLOT_MS, "{grid:?} is read by slots");
            let window = |way| Window {
                by: By::Job,
                from: Some(since),
                to: Some(until),
                width,
                way,
            };
            let every = window::lanes(store.as_ref(), &cluster, window(Way::Events)).await;
            let fitted = window::lanes(store.as_ref(), &cluster, window(Way::Lives)).await;
            assert_eq!(
                fitted.expect("lanes"),
                every.expect("lanes"),
                "[{since}, {until}), {width} px"
            );
        }
    }
    store.close().await;
}
