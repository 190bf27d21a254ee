//! The stretch of the stream a time window spans (`Store::time_span`),
//! which bounds every read by time: the lowest and highest index of the
//! events dated in it, for windows inside the history, reaching past one
//! end, holding all of it, open at either end, and before it.

use nomad_chronicle::archive::ArchivedEvent;
use nomad_sim::Generator;

use crate::common::{Archive, Backend, on_both_backends};

on_both_backends!(a_window_spans_the_indexes_of_the_events_dated_in_it);

async fn a_window_spans_the_indexes_of_the_events_dated_in_it(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(64).frames(1_500);
    let file = archive.capture("history.ndjson", &frames);
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
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
