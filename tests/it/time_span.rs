//! The stretch of the stream a time window spans (`Store::time_span`),
//! which bounds every read by time: the lowest and highest index of the
//! events dated in it, for windows inside the history, reaching past one
//! end, holding all of it, open at either end, and before it; and the
//! same, read from the minutes kept beside the events (`event_minutes`,
//! migration 0029), after imports out of order and again, a prune, and the
//! migration's fill of an existing archive.

use nomad_chronicle::archive::ArchivedEvent;
use nomad_sim::Generator;

use crate::common::{Archive, Backend, on_both_backends};

on_both_backends!(
    a_window_spans_the_indexes_of_the_events_dated_in_it,
    the_minutes_follow_imports_out_of_order_and_again_prunes_and_the_upgrade,
);

async fn a_window_spans_the_indexes_of_the_events_dated_in_it(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(64).frames(1_500);
    archive.import_as("test", "history.ndjson", &frames).await;
    let events = archive.archived("test").await;
    let (store, cluster) = archive.open("test").await;
    let (first, last) = times(&events);
    let middle = first + (last - first) / 2;
    let windows = [
        (Some(first + 1_000), Some(middle)),
        (Some(middle), Some(last + 1)),
        (Some(middle), None),
        (None, Some(middle)),
        (Some(first), Some(last + 1)),
        (Some(first - 1), Some(last + 2)),
        (None, None),
        (Some(first), Some(last)),
        (Some(first - 10_000), Some(first)),
        (Some(last + 1), None),
    ];
    for (since, until) in windows {
        let span = store
            .time_span(&cluster, since, until)
            .await
            .expect("time span");
        assert_eq!(
            span,
            dated_in(&events, since, until),
            "the window {since:?} to {until:?} of {first} to {last}"
        );
    }
    store.close().await;
}

/// The earliest and latest time of `events`.
fn times(events: &[ArchivedEvent]) -> (i64, i64) {
    let times = events.iter().map(|e| e.time);
    let first = times.clone().min().expect("events");
    (first, times.max().expect("events"))
}

/// The lowest and highest index of the events of `events` dated in the
/// window, counted one by one.
fn dated_in(
    events: &[ArchivedEvent],
    since: Option<i64>,
    until: Option<i64>,
) -> Option<(u64, u64)> {
    let inside = events
        .iter()
        .filter(|e| since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time < u));
    let first = inside.clone().map(|e| e.index).min()?;
    Some((first, inside.map(|e| e.index).max()?))
}

async fn the_minutes_follow_imports_out_of_order_and_again_prunes_and_the_upgrade(
    backend: Backend,
) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(65).frames(1_500);
    let (early, late) = frames.split_at(frames.len() / 2);
    // The later half first; then all, the earlier half behind it in the
    // same batches as duplicates of the later; then the earlier again
    // (every event a duplicate).
    archive.import_as("test", "late.ndjson", late).await;
    spans_match(&archive).await;
    archive.import_as("test", "all.ndjson", &frames).await;
    spans_match(&archive).await;
    archive.import_as("test", "early.ndjson", early).await;
    let windows = spans_match(&archive).await;
    assert!(windows > 100, "only {windows} windows held events");

    let events = dated_events(&archive).await;
    let middle = events[events.len() / 2].0.to_string();
    archive
        .run(&["prune", "--before-index", &middle, "--cluster", "test"])
        .await
        .assert_success();
    spans_match(&archive).await;

    // As an archive from before migration 0029.
    archive
        .execute(&[
            "DROP TABLE event_minutes",
            "DELETE FROM _sqlx_migrations WHERE version = 29",
        ])
        .await;
    archive.run(&["migrate"]).await.assert_success();
    spans_match(&archive).await;
}

/// Holds `event_minutes` equal to the minutes of the stored events, and
/// the span of windows across the history (ends anywhere in a minute, on a
/// minute's start, within one minute) equal to the events' counted one by
/// one; returns how many windows held events.
async fn spans_match(archive: &Archive) -> usize {
    assert_minutes_kept(archive).await;
    let events = dated_events(archive).await;
    let (store, cluster) = archive.open("test").await;
    let first = events.iter().map(|e| e.1).min().expect("events");
    let last = events.iter().map(|e| e.1).max().expect("events");
    let mut windows = Vec::new();
    let mut seed: u64 = 7;
    let mut next = |range: i64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        i64::try_from(seed >> 33).expect("31 bits") % range.max(1)
    };
    let reach = last - first + 4 * MINUTE;
    for _ in 0..150 {
        let since = first - 2 * MINUTE + next(reach);
        windows.push((since, since + next(reach / 4)));
        let on_minute = since - since.rem_euclid(MINUTE);
        windows.push((on_minute, on_minute + MINUTE * (1 + next(20))));
        windows.push((since, since + next(MINUTE)));
    }
    let mut held = 0;
    for (since, until) in windows {
        let span = store
            .time_span(&cluster, Some(since), Some(until))
            .await
            .expect("time span");
        let inside = events.iter().filter(|e| e.1 >= since && e.1 < until);
        let counted = inside
            .clone()
            .map(|e| e.0)
            .min()
            .zip(inside.map(|e| e.0).max())
            .map(|(a, b)| (to_u64(a), to_u64(b)));
        assert_eq!(span, counted, "the window {since} to {until}");
        held += usize::from(span.is_some());
    }
    store.close().await;
    held
}

const MINUTE: i64 = 60_000;

fn to_u64(index: i64) -> u64 {
    u64::try_from(index).expect("an index")
}

/// Each stored event's index and time, read with SQL.
async fn dated_events(archive: &Archive) -> Vec<(i64, i64)> {
    const SQL: &str = "SELECT raft_index, event_at FROM event_log \
                       WHERE event_at IS NOT NULL ORDER BY raft_index, position";
    archive.select(SQL).await
}

/// Holds `event_minutes` equal to the minutes of the events stored, as
/// counted from them with SQL.
pub async fn assert_minutes_kept(archive: &Archive) {
    const KEPT: &str = "SELECT cluster_id, minute, first_index, last_index FROM event_minutes \
                        ORDER BY cluster_id, minute";
    const COUNTED: &str = "SELECT cluster_id, \
                             (event_at - ((event_at % 60000) + 60000) % 60000) / 60000 AS minute, \
                             MIN(raft_index), MAX(raft_index) FROM event_log \
                           WHERE event_at IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2";
    let kept: Vec<(i64, i64, i64, i64)> = archive.select(KEPT).await;
    let counted: Vec<(i64, i64, i64, i64)> = archive.select(COUNTED).await;
    assert!(!counted.is_empty());
    assert_eq!(kept, counted);
}
