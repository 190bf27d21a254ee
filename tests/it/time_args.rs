//! Time arguments and displayed times as an operator meets them: the binary
//! run with `TZ` set, against history received an hour apart.

use nomad_sim::{Generator, SimFrame};
use serde_json::Value;

use crate::common::{Archive, Backend, Run, finish, without_times};

/// Central European time, +01:00 in December, as a POSIX rule so the test
/// needs no time zone database.
const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";
/// 2026-12-04T16:41:30Z (17:41:30 in CET): when the first half was received.
const EARLY: i64 = 1_796_402_490_000;
/// An hour later, 2026-12-04T17:41:30Z (18:41:30 in CET): the second half.
const LATE: i64 = EARLY + 3_600_000;

/// An archive whose first half of a history was received at [`EARLY`] and
/// second half at [`LATE`], with the halves. The payloads carry no times of
/// Nomad's, so the events are dated by their receipt.
async fn received_an_hour_apart() -> (Archive, Vec<SimFrame>, Vec<SimFrame>) {
    let archive = Archive::new(Backend::Sqlite).await;
    let frames = without_times(Generator::new(91).frames(400));
    let (early, late) = frames.split_at(frames.len() / 2);
    let (store, cluster, mut lease) = archive.writer("default").await;
    for (frames, received_at) in [(early, EARLY), (late, LATE)] {
        let batch = crate::common::batch(frames, received_at);
        lease.commit(&cluster, &batch).await.expect("commit");
    }
    drop(lease);
    store.close().await;
    (archive, early.to_vec(), late.to_vec())
}

/// Runs the binary with `TZ` set to `tz`.
async fn run_in(archive: &Archive, tz: &str, args: &[&str]) -> Run {
    let child = archive
        .command(args)
        .env("TZ", tz)
        .spawn()
        .expect("spawn nomad-chronicle");
    finish(child).await
}

fn ndjson(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn event_indexes(frames: &[SimFrame]) -> Vec<u64> {
    frames
        .iter()
        .flat_map(|f| f.events.iter().map(move |_| f.index))
        .collect()
}

/// The indexes `query events` answers with `window`, in zone `tz`.
async fn events_in(archive: &Archive, tz: &str, window: &[&str]) -> (Run, Vec<u64>) {
    let mut args = vec!["query", "events", "--output", "ndjson"];
    args.extend_from_slice(window);
    let run = run_in(archive, tz, &args).await;
    let got = ndjson(&run.stdout)
        .iter()
        .map(|e| e["Index"].as_u64().expect("Index"))
        .collect();
    (run, got)
}

#[tokio::test]
async fn a_time_with_an_offset_is_the_same_instant_in_any_zone() {
    let (archive, early, late) = received_an_hour_apart().await;
    for tz in [CET, "UTC", "EST5EDT,M3.2.0,M11.1.0"] {
        let (run, got) = events_in(&archive, tz, &["--since", "2026-12-04T18:00:00+01:00"]).await;
        run.assert_success();
        assert_eq!(got, event_indexes(&late), "TZ={tz}");
        let (run, got) = events_in(&archive, tz, &["--until", "2026-12-04 17:00:00.000z"]).await;
        run.assert_success();
        assert_eq!(got, event_indexes(&early), "TZ={tz}");
    }
}

#[tokio::test]
async fn a_time_without_an_offset_is_read_in_the_local_zone() {
    let (archive, early, late) = received_an_hour_apart().await;
    // 18:00 in CET is 17:00Z, between the halves; 18:00 in UTC is after both.
    let (run, got) = events_in(&archive, CET, &["--since", "2026-12-04 18:00"]).await;
    run.assert_success();
    assert_eq!(got, event_indexes(&late));
    let (run, got) = events_in(&archive, "UTC", &["--since", "2026-12-04T18:00"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(got.is_empty());
    // A bare date is the local midnight: all of the 4th in CET.
    let (run, got) = events_in(&archive, CET, &["--since", "2026-12-04"]).await;
    run.assert_success();
    assert_eq!(got, [event_indexes(&early), event_indexes(&late)].concat());

    let run = run_in(&archive, CET, &["replay", "--until", "2026-12-04 18:00"]).await;
    run.assert_success();
    let frames: Vec<u64> = ndjson(&run.stdout)
        .iter()
        .map(|f| f["Index"].as_u64().expect("Index"))
        .collect();
    assert_eq!(frames, early.iter().map(|f| f.index).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_point_in_time_is_read_in_the_local_zone_and_shown_as_asked() {
    let (archive, early, _) = received_an_hour_apart().await;
    let job = &early
        .iter()
        .flat_map(|f| &f.events)
        .find(|e| e.topic == "Job")
        .expect("a job in the first half")
        .key;
    let state = |display: &'static str| {
        let archive = &archive;
        let args = [
            "query",
            "state",
            "Job",
            job,
            "--at",
            "2026-12-04 17:00",
            display,
        ];
        async move { run_in(archive, CET, &args).await }
    };
    // 17:00 in CET, 16:00Z, is before anything was received.
    let run = state("--utc").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("at or before 2026-12-04T16:00:00.000Z"),
        "{}",
        run.stderr
    );
    let run = state("--local").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("at or before 2026-12-04T17:00:00.000+01:00"),
        "{}",
        run.stderr
    );
}

/// The Time of the first event `query events` answers with `args`, in CET.
async fn first_time(archive: &Archive, args: &[&str]) -> Value {
    let mut all = vec!["query", "events", "--output", "ndjson"];
    all.extend_from_slice(args);
    let run = run_in(archive, CET, &all).await;
    run.assert_success();
    ndjson(&run.stdout)[0]["Time"].clone()
}

#[tokio::test]
async fn times_are_shown_in_utc_unless_local_is_asked_for() {
    let (archive, _, _) = received_an_hour_apart().await;
    assert_eq!(
        first_time(&archive, &[]).await,
        "2026-12-04T16:41:30.000000000Z"
    );
    assert_eq!(
        first_time(&archive, &["--utc"]).await,
        "2026-12-04T16:41:30.000000000Z"
    );
    assert_eq!(
        first_time(&archive, &["--local"]).await,
        "2026-12-04T17:41:30.000000000+01:00"
    );
    // Also before the subcommand, and in a table.
    let run = run_in(&archive, CET, &["query", "--local", "events"]).await;
    run.assert_success();
    assert!(
        run.stdout.contains("2026-12-04T17:41:30.000+01:00"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("16:41:30"), "{}", run.stdout);

    let run = run_in(&archive, CET, &["status", "--local"]).await;
    run.assert_success();
    assert!(
        run.stdout
            .contains("received    2026-12-04T17:41:30+01:00 – 2026-12-04T18:41:30+01:00"),
        "{}",
        run.stdout
    );
    let run = run_in(&archive, CET, &["status"]).await;
    run.assert_success();
    assert!(
        run.stdout
            .contains("received    2026-12-04T16:41:30Z – 2026-12-04T17:41:30Z"),
        "{}",
        run.stdout
    );

    let run = run_in(&archive, CET, &["query", "events", "--utc", "--local"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[tokio::test]
async fn an_unreadable_time_is_refused_with_the_forms_accepted() {
    let (archive, _, _) = received_an_hour_apart().await;
    let run = run_in(&archive, CET, &["query", "events", "--since", "yesterday"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for part in [
        "`yesterday` is not a time",
        "2026-12-04T17:41:30+01:00",
        "2026-12-04 17:41",
        "17:41",
        "2h",
    ] {
        assert!(run.stderr.contains(part), "{part} missing: {}", run.stderr);
    }
}
