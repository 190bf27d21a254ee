//! Where the archive cannot vouch for the history, the timeline says so
//! across every lane: a recorded gap runs from the last event before it to
//! the first after it, also when it begins before the window, ends
//! after it or covers it whole; pruned history is a band of its own up to
//! the cut, labelled with it (or, when the cut's time is unknown, up to the
//! first event kept, labelled with the cut's index).

use nomad_sim::Generator;
use serde_json::Value;

use super::api::{get, parsed};
use super::serve;
use crate::common::{Archive, Backend, on_both_backends};

/// An archive with history pruned before one index and a gap later on.
pub struct Holes {
    /// The cut's time, Unix ms, and its raft index.
    pub cut: i64,
    pub cut_index: u64,
    /// The times of the last event before the gap and the first after it.
    pub gap: (i64, i64),
    /// Just after the last event.
    pub end: i64,
}

/// Imports two stretches of one history (the stream between them never
/// read: a gap), then prunes before a third of it.
pub async fn history_with_holes(archive: &Archive, seed: u64) -> Holes {
    let frames = Generator::new(seed).frames(1_500);
    for (name, part) in [("a.ndjson", &frames[..700]), ("b.ndjson", &frames[800..])] {
        archive.import_as("test", name, part).await;
    }
    let cut_index = frames[300].index;
    let before = cut_index.to_string();
    let run = archive
        .run(&["prune", "--before-index", &before, "--output", "json"])
        .await;
    run.assert_success();
    let report: Value = serde_json::from_str(&run.stdout).expect("a prune report");
    let cut = report["Pruned"]["BeforeTimeNs"]
        .as_i64()
        .expect("the cut's time")
        / 1_000_000;
    let status = archive.run(&["status", "--output", "json"]).await;
    let status: Value = serde_json::from_str(&status.stdout).expect("status");
    let gap = status["Clusters"][0]["Gaps"]
        .as_array()
        .expect("gaps")
        .iter()
        .find(|g| g["Kind"] == "buffer" || g["Kind"] == "skipped")
        .unwrap_or_else(|| panic!("a recorded gap in {status}"))
        .clone();
    let (from_index, to_index) = (gap["FromIndex"].as_u64(), gap["ToIndex"].as_u64());
    let (from_index, to_index) = (from_index.expect("FromIndex"), to_index.expect("ToIndex"));
    let events = archive.archived("test").await;
    let before = events
        .iter()
        .rfind(|e| e.index <= from_index)
        .expect("before");
    let after = events.iter().find(|e| e.index >= to_index).expect("after");
    Holes {
        cut,
        cut_index,
        gap: (before.time, after.time),
        end: events.iter().map(|e| e.time).max().expect("events") + 1,
    }
}

/// The bands across every lane of the window `[from, to)`: (kind, from, to, label).
async fn bands(base: &str, from: i64, to: i64) -> Vec<(String, i64, Option<i64>, String)> {
    let url = format!("{base}/api/v1/timeline?from={from}&to={to}&width=1000");
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 200, "{body}");
    let answer = parsed(&body);
    let ms = |v: &Value| v.as_i64().map(|ns| ns / 1_000_000);
    answer["Bands"]
        .as_array()
        .expect("Bands")
        .iter()
        .filter(|b| b["Lane"].is_null())
        .map(|b| {
            (
                b["Kind"].as_str().unwrap_or_default().to_owned(),
                ms(&b["FromNs"]).expect("FromNs"),
                ms(&b["ToNs"]),
                b["Label"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn gaps_and_pruned_history_are_bands_across_every_lane(backend: Backend) {
    let archive = Archive::new(backend).await;
    let holes = history_with_holes(&archive, 64).await;
    let served = serve(&archive, &[]).await;
    let (began, ended) = holes.gap;
    let middle = began + (ended - began) / 2;
    assert!(
        holes.cut < began && began + 2_000 < ended,
        "{:?}",
        holes.gap
    );

    // From before the cut to the end: pruned history, then the gap.
    let start = holes.cut - 60_000;
    let seen = bands(&served.base, start, holes.end).await;
    let kinds: Vec<_> = seen.iter().map(|b| (b.0.as_str(), b.1, b.2)).collect();
    assert_eq!(
        kinds,
        vec![
            ("pruned", start, Some(holes.cut)),
            ("gap", began, Some(ended))
        ]
    );
    assert!(seen[0].3.starts_with("pruned before 20"), "{seen:?}");
    assert!(seen[1].3.starts_with("gap: "), "{seen:?}");

    let cases = [
        // Begun before the window, ending within it.
        ((middle, holes.end), (middle, Some(ended))),
        // Covering a window without events.
        ((middle - 500, middle + 500), (middle - 500, None)),
        // Begun within the window, ending after it.
        ((began - 60_000, middle), (began, None)),
    ];
    for ((from, to), (band_from, band_to)) in cases {
        let seen = bands(&served.base, from, to).await;
        let kinds: Vec<_> = seen.iter().map(|b| (b.0.as_str(), b.1, b.2)).collect();
        assert_eq!(kinds, vec![("gap", band_from, band_to)], "[{from}, {to})");
    }
}

async fn a_cut_of_unknown_time_is_drawn_up_to_the_first_event_kept(backend: Backend) {
    let archive = Archive::new(backend).await;
    let holes = history_with_holes(&archive, 67).await;
    archive
        .execute(&["UPDATE prunes SET before_time = NULL"])
        .await;
    let events = archive.archived("test").await;
    let first_kept = events
        .iter()
        .filter(|e| e.index >= holes.cut_index)
        .map(|e| (e.index, e.time))
        .min()
        .expect("events kept")
        .1;
    let served = serve(&archive, &[]).await;
    let start = holes.cut - 60_000;
    let seen = bands(&served.base, start, holes.end).await;
    assert_eq!(
        seen[0],
        (
            "pruned".to_owned(),
            start,
            Some(first_kept),
            format!("pruned before index {}", holes.cut_index)
        ),
        "{seen:?}"
    );
}

on_both_backends!(
    gaps_and_pruned_history_are_bands_across_every_lane,
    a_cut_of_unknown_time_is_drawn_up_to_the_first_event_kept
);
