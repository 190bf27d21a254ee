//! Events dated by Nomad's clock: from their payloads, or their frame's,
//! or — marked — by their receipt; order stays the raft index whatever the
//! clocks say; archives from before are dated when first opened.

use nomad_chronicle::archive::{ArchivedEvent, TimeSource};
use nomad_sim::Generator;
use serde_json::Value;

use crate::common::{Archive, Backend, eval_frame, on_both_backends};
use crate::keyframes::keyframes;

/// An Allocation, Evaluation or Deployment event's `ModifyTime` in Unix ms.
fn modify_time(event: &ArchivedEvent) -> Option<i64> {
    let v: Value = serde_json::from_str(&event.raw).ok()?;
    let ns = v["Payload"][&event.topic]["ModifyTime"].as_i64()?;
    Some(ns / 1_000_000)
}

async fn imported_history_is_dated_by_the_captures_own_clock(backend: Backend) {
    let frames = Generator::new(31).frames(3_000);
    let archive = Archive::new(backend).await;
    let file = archive.capture("capture.ndjson", &frames);
    archive.run(&["import", &file]).await.assert_success();

    let events = archive.archived("default").await;
    let mut checked = 0;
    for e in &events {
        if let Some(expected) = modify_time(e) {
            assert_eq!(
                (e.time, e.time_source),
                (expected, TimeSource::Nomad),
                "{}",
                e.raw
            );
            checked += 1;
        }
    }
    assert!(checked > 1_000, "{checked}");
    // An import happens in seconds; the history it holds spans much more.
    let first = events.iter().map(|e| e.time).min().unwrap_or_default();
    let last = events.iter().map(|e| e.time).max().unwrap_or_default();
    assert!(last - first > 3_600_000, "{first}..{last}");
    let received = events.iter().map(|e| e.received_at);
    assert!(
        received.clone().max().unwrap_or_default() - received.min().unwrap_or_default() < 3_600_000
    );
}

/// A capture of hand-written frames.
fn capture(archive: &Archive, lines: &[&str]) -> String {
    let file = archive.file("capture.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write capture");
    file.display().to_string()
}

/// The (Index, Time, TimeSource) of each event `query events` answers.
async fn answered(archive: &Archive, extra: &[&str]) -> Vec<(u64, String, String)> {
    let mut args = vec!["query", "events", "--output", "ndjson"];
    args.extend_from_slice(extra);
    let run = archive.run(&args).await;
    run.assert_success();
    run.stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            (
                v["Index"].as_u64().unwrap_or_default(),
                v["Time"].as_str().unwrap_or_default().to_owned(),
                v["TimeSource"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

const NODE_POOL: &str = r#"{"Index":5,"Events":[{"Topic":"NodePool","Type":"NodePoolUpserted","Key":"gpu","Namespace":"","FilterKeys":null,"Index":5,"Payload":{"NodePool":{"Name":"gpu","CreateIndex":5,"ModifyIndex":5}}}]}"#;

async fn a_frame_without_any_time_is_dated_by_its_receipt_and_says_so(backend: Backend) {
    let archive = Archive::new(backend).await;
    let eval = eval_frame(6, 1_800_000_000_000_000_000);
    let file = capture(&archive, &[NODE_POOL, &eval]);
    archive.run(&["import", &file]).await.assert_success();

    let answer = answered(&archive, &[]).await;
    assert_eq!(answer.len(), 3);
    assert_eq!(answer[0].2, "received");
    let nomad = "2027-01-15T08:00:00.000000000Z".to_owned();
    assert_eq!(answer[1], (6, nomad.clone(), "nomad".to_owned()));
    // The job's SubmitTime is older than this entry: the frame's time counts.
    assert_eq!(answer[2], (6, nomad, "nomad".to_owned()));

    let table = archive.run(&["query", "events"]).await;
    table.assert_success();
    let row = |index: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.starts_with(index))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("5 ").contains(" ~20"), "{}", table.stdout);
    assert!(!row("6 ").contains('~'), "{}", table.stdout);
    // What happened when, by Nomad's clock, leaves the receipt out.
    let status = &archive.status().await.clusters[0];
    let nomad_ms = Some(1_800_000_000_000);
    assert_eq!(
        (status.first_event_at, status.last_event_at),
        (nomad_ms, nomad_ms)
    );
}

async fn an_imported_frame_without_any_time_is_dated_by_the_time_before_it(backend: Backend) {
    let archive = Archive::new(backend).await;
    let hour = 3_600_000_000_000_i64;
    let t0 = 1_700_000_000_000_000_000_i64;
    let (before, after) = (eval_frame(4, t0), eval_frame(6, t0 + 2 * hour));
    let file = capture(&archive, &[&before, NODE_POOL, &after]);
    archive.run(&["import", &file]).await.assert_success();

    // The capture says nothing of when it was received: the node pool
    // update happened no earlier than entry 4, and is dated so, marked.
    let t0_text = "2023-11-14T22:13:20.000000000Z".to_owned();
    let answer = answered(&archive, &[]).await;
    assert_eq!(answer[2], (5, t0_text.clone(), "preceding".to_owned()));
    assert_eq!(answer[0], (4, t0_text, "nomad".to_owned()));
    let json = archive
        .run(&[
            "query", "events", "--output", "ndjson", "--topic", "NodePool",
        ])
        .await;
    json.assert_success();
    assert!(!json.stdout.contains("TimeNs"), "{}", json.stdout);
    let table = archive
        .run(&["query", "events", "--topic", "NodePool"])
        .await;
    table.assert_success();
    assert!(
        table.stdout.contains(" ~2023-11-14T22:13:20"),
        "{}",
        table.stdout
    );

    // A window after entry 4 leaves it out; the import's own time is not
    // when it happened.
    let since = ["--since", "2023-11-14T23:00:00Z"];
    let indexes: Vec<u64> = answered(&archive, &since)
        .await
        .iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(indexes, [6, 6]);
    let recent = archive.run(&["query", "events", "--since", "1h"]).await;
    assert!(
        recent.stderr.contains("no events match"),
        "{}",
        recent.stdout
    );
}

async fn a_clock_that_goes_backwards_does_not_reorder_history(backend: Backend) {
    let archive = Archive::new(backend).await;
    let hour = 3_600_000_000_000_i64;
    let t0 = 1_800_000_000_000_000_000_i64;
    // Entry 11 comes from a server whose clock is two hours behind.
    let frames = [
        eval_frame(10, t0 + 2 * hour),
        eval_frame(11, t0),
        eval_frame(12, t0 + 2 * hour + 1_000_000_000),
    ];
    let lines: Vec<&str> = frames.iter().map(String::as_str).collect();
    let file = capture(&archive, &lines);
    archive.run(&["import", &file]).await.assert_success();

    let indexes = |answer: Vec<(u64, String, String)>| -> Vec<u64> {
        let mut seen: Vec<u64> = answer.into_iter().map(|a| a.0).collect();
        seen.dedup();
        seen
    };
    assert_eq!(indexes(answered(&archive, &[]).await), [10, 11, 12]);
    let since = "2027-01-15T09:00:00Z";
    assert_eq!(
        indexes(answered(&archive, &["--since", since]).await),
        [10, 12]
    );
    let until = "2027-01-15T09:00:00Z";
    assert_eq!(indexes(answered(&archive, &["--until", until]).await), [11]);
}

type Dating = (i64, Option<i64>, Option<String>, Option<i64>);

/// Each event's time, source and presence, read with SQL, in stream order.
async fn dating(archive: &Archive) -> Vec<Dating> {
    const SQL: &str = "SELECT raft_index, event_at, time_source, CAST(presence AS BIGINT) \
                       FROM event_log ORDER BY raft_index, position";
    archive.select(SQL).await
}

async fn an_archive_from_before_nomad_time_is_refused_by_reads_and_dated_by_migrate(
    backend: Backend,
) {
    // More events than one chunk of the backfill, so it resumes after a cursor.
    let frames = Generator::new(32).frames(12_000);
    let archive = Archive::new(backend).await;
    let file = archive.capture("capture.ndjson", &frames);
    archive.run(&["import", &file]).await.assert_success();
    let dated_by_ingest = dating(&archive).await;
    assert!(
        dated_by_ingest
            .iter()
            .all(|d| d.1.is_some() && d.2.is_some())
    );

    let keyframes_of_ingest = keyframes(&archive).await;
    assert!(!keyframes_of_ingest.is_empty());

    archive
        .execute(&[
            "UPDATE event_log SET event_at = NULL, time_source = NULL, presence = NULL",
            // As migration 0028 leaves an undated event's marker change:
            // not at its time.
            "UPDATE marker_changes SET event_at = 0",
            // As migration 0029 leaves undated events: in no minute.
            "DELETE FROM event_minutes",
            "DELETE FROM keyframe_objects",
            "DELETE FROM terminal_counts",
            "DELETE FROM keyframes",
        ])
        .await;
    assert!(dating(&archive).await.iter().all(|d| d.1.is_none()));
    let status = archive.run(&["status"]).await;
    assert_eq!(status.code, Some(2), "{}", status.stderr);
    assert!(
        status.stderr.contains("not yet dated by Nomad's clock")
            && status.stderr.contains("run `nomad-chronicle migrate`"),
        "{}",
        status.stderr
    );
    assert!(
        dating(&archive).await.iter().all(|d| d.1.is_none()),
        "a read dates nothing"
    );
    archive.run(&["migrate"]).await.assert_success();

    // Migrate dates a frame without any time by its receipt, as the stream
    // does: it cannot tell which frames came from a capture.
    let receipt_for_preceding = |rows: Vec<Dating>| -> Vec<Dating> {
        rows.into_iter()
            .map(|(index, at, source, presence)| match source.as_deref() {
                Some("preceding" | "received") => (index, None, Some("received".into()), presence),
                _ => (index, at, source, presence),
            })
            .collect()
    };
    assert_eq!(
        receipt_for_preceding(dating(&archive).await),
        receipt_for_preceding(dated_by_ingest)
    );
    assert_eq!(keyframes(&archive).await, keyframes_of_ingest);
    // The timeline's marker changes are dated with their events.
    let markers = marker_times(&archive).await;
    assert!(markers.len() > 100, "{} marker changes", markers.len());
    let undated: Vec<_> = markers.iter().filter(|m| Some(m.1) != m.2).collect();
    assert!(undated.is_empty(), "not at their event's time: {undated:?}");
    // So are the minutes that bound reads by time.
    crate::time_span::assert_minutes_kept(&archive).await;
}

/// Each marker change's index, time, and its event's time, read with SQL.
async fn marker_times(archive: &Archive) -> Vec<(i64, i64, Option<i64>)> {
    const SQL: &str = "SELECT m.raft_index, m.event_at, e.event_at FROM marker_changes AS m \
                       JOIN event_log AS e ON e.cluster_id = m.cluster_id \
                         AND e.raft_index = m.raft_index AND e.position = m.position \
                       ORDER BY m.raft_index";
    archive.select(SQL).await
}

on_both_backends!(
    imported_history_is_dated_by_the_captures_own_clock,
    a_frame_without_any_time_is_dated_by_its_receipt_and_says_so,
    an_imported_frame_without_any_time_is_dated_by_the_time_before_it,
    a_clock_that_goes_backwards_does_not_reorder_history,
    an_archive_from_before_nomad_time_is_refused_by_reads_and_dated_by_migrate,
);
