//! The web timeline's JSON API answers what the CLI answers, and only to
//! a client with the token.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{archived_history, facts, serve};
use crate::common::{Archive, Backend, on_both_backends};

pub async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.header("X-Nomad-Token", token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

pub fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn the_api_answers_what_the_cli_answers(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived_history(&archive, 61, 1_500).await;
    let facts = facts(&archive).await;
    let served = serve(&archive, &[]).await;

    // A snapshot is the document `query snapshot --output json` writes.
    let at = facts.middle_index.to_string();
    let (status, body) = get(
        &format!("{}/api/v1/snapshot?at-index={at}", served.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cli = archive
        .run(&["query", "snapshot", "--at-index", &at, "--output", "json"])
        .await;
    cli.assert_success();
    assert_eq!(parsed(&body), parsed(&cli.stdout));

    // An object's timeline is the document `query alloc --output json` writes.
    let alloc = facts
        .allocs_by_lane
        .values()
        .flatten()
        .next()
        .expect("an allocation");
    let (status, body) = get(
        &format!("{}/api/v1/object/alloc/{}", served.base, &alloc[..8]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cli = archive
        .run(&["query", "alloc", alloc, "--output", "json"])
        .await;
    cli.assert_success();
    assert_eq!(parsed(&body), parsed(&cli.stdout));

    // The timeline over the whole archive, wide enough for every bar to
    // be drawn, has one bar per allocation, on its job's lane.
    let url = format!(
        "{}/api/v1/timeline?from={}&to={}&by=job&width=8000",
        served.base, facts.from, facts.to
    );
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 200, "{body}");
    let lanes = parsed(&body);
    let shapes = crate::json_schema::documented();
    let wrong = crate::json_schema::check(&shapes, "LanesDocument", &lanes, "LanesDocument");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(lanes["Counted"], 0, "{body}");
    assert_eq!(lanes["FromNs"], facts.from * 1_000_000);
    let bars = lanes["Bars"].as_array().expect("Bars");
    for (lane, allocs) in &facts.allocs_by_lane {
        let drawn: std::collections::BTreeSet<String> = bars
            .iter()
            .filter(|b| b["Lane"] == lane.as_str())
            .map(|b| b["ID"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(&drawn, allocs, "bars of lane `{lane}`");
    }
    let total: usize = facts.allocs_by_lane.values().map(|a| a.len()).sum();
    assert!(total > 10, "the history places allocations");
    assert_eq!(bars.len(), total);

    // Each bar's client status and times are what the archive says of the
    // allocation: its last status in the window, its first event's time,
    // and, when that status is terminal, the time of its first terminal
    // event after its last other one.
    let alloc_events: Vec<_> = facts
        .events
        .iter()
        .filter(|e| e.topic == "Allocation")
        .collect();
    for bar in bars {
        let id = bar["ID"].as_str().expect("ID");
        let own: Vec<_> = alloc_events.iter().filter(|e| e.key == id).collect();
        let last: Value = serde_json::from_str(&own.last().expect("events").raw).expect("JSON");
        let alloc = &last["Payload"]["Allocation"];
        assert_eq!(bar["ClientStatus"], alloc["ClientStatus"], "{bar}");
        assert_eq!(bar["TaskGroup"], alloc["TaskGroup"], "{bar}");
        assert_eq!(bar["NodeID"], alloc["NodeID"], "{bar}");
        assert_eq!(bar["StartNs"], own[0].time * 1_000_000, "{bar}");
        let statuses: Vec<(String, i64)> = own
            .iter()
            .map(|e| {
                let raw: Value = serde_json::from_str(&e.raw).expect("JSON");
                let status = raw["Payload"]["Allocation"]["ClientStatus"].as_str();
                (status.unwrap_or_default().to_owned(), e.time)
            })
            .collect();
        let terminal = |s: &str| matches!(s, "complete" | "failed" | "lost");
        let live = statuses.iter().rposition(|(s, _)| !terminal(s));
        let end = statuses
            .iter()
            .skip(live.map_or(0, |i| i + 1))
            .map(|(_, t)| t * 1_000_000)
            .min();
        assert_eq!(bar["EndNs"].as_i64(), end, "{bar}");
    }
    assert!(
        bars.iter().any(|b| !b["EndNs"].is_null()),
        "some allocations end within the history"
    );

    // Narrowed to a few pixels, the short ones are counted instead, each
    // once: the bars and the counts add up to the allocations.
    let url = format!(
        "{}/api/v1/timeline?from={}&to={}&by=job&width=100",
        served.base,
        facts.from - 30 * 86_400_000,
        facts.to
    );
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 200, "{body}");
    let lanes = parsed(&body);
    let counted: u64 = lanes["Density"]
        .as_array()
        .expect("Density")
        .iter()
        .flat_map(|d| d["Counts"].as_array().expect("Counts").iter())
        .map(|n| n.as_u64().expect("a count"))
        .sum();
    assert!(counted > 0, "{body}");
    assert_eq!(lanes["Counted"], counted);
    // The buckets: a power of two of ms, from 4 to 8 of the 100 pixels,
    // fixed in time, from the one the window starts in to the one it ends
    // in; one count each.
    let (from, to) = (facts.from - 30 * 86_400_000, facts.to);
    let bucket_ms = lanes["BucketMs"].as_i64().expect("BucketMs");
    let start = lanes["BucketStartNs"].as_i64().expect("BucketStartNs") / 1_000_000;
    let buckets = lanes["Buckets"].as_i64().expect("Buckets");
    assert_eq!(bucket_ms.count_ones(), 1, "{bucket_ms}");
    assert!(bucket_ms * 100 >= 4 * (to - from) && bucket_ms * 100 < 8 * (to - from));
    assert_eq!(start, from.div_euclid(bucket_ms) * bucket_ms);
    assert_eq!(
        buckets,
        (to - 1).div_euclid(bucket_ms) - from.div_euclid(bucket_ms) + 1
    );
    for density in lanes["Density"].as_array().expect("Density") {
        assert_eq!(
            density["Counts"].as_array().map(Vec::len),
            Some(buckets as usize)
        );
    }
    let drawn = lanes["Bars"].as_array().expect("Bars").len() as u64;
    assert_eq!(drawn + counted, total as u64);
}

async fn the_api_answers_errors_as_json_with_their_status(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived_history(&archive, 62, 200).await;
    let served = serve(&archive, &[]).await;
    let cases = [
        ("/api/v1/object/alloc/ffffffff", 404),
        ("/api/v1/object/widget/x", 404),
        ("/api/v1/snapshot", 400),
        ("/api/v1/timeline?by=rack", 400),
        ("/api/v1/timeline?from=20&to=10", 400),
        ("/api/v1/timeline?width=3", 400),
        ("/api/v1/timeline?width=8001", 400),
        ("/api/v1/timeline?from=-9223372036854775808&to=0", 400),
        // In reach, but not its first time bucket.
        ("/api/v1/timeline?from=-9223372036854&to=0", 400),
    ];
    let shapes = crate::json_schema::documented();
    for (path, want) in cases {
        let (status, body) = get(&format!("{}{path}", served.base), None).await;
        assert_eq!(status, want, "{path}: {body}");
        let wrong = crate::json_schema::check(&shapes, "ApiError", &parsed(&body), path);
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(parsed(&body)["Error"].is_string(), "{path}: {body}");
    }
    let path = "/api/v1/timeline?from=-9223372036854&to=0";
    let (_, body) = get(&format!("{}{path}", served.base), None).await;
    let error = parsed(&body)["Error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("its first time bucket would start before it"),
        "{body}"
    );
    let (_, body) = get(&format!("{}/api/v1/timeline?width=3", served.base), None).await;
    assert_eq!(
        parsed(&body)["Error"],
        "`width` is `3`: give the time axis's pixels, 100 to 8000"
    );
}

async fn the_api_needs_the_token_and_the_page_does_not(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived_history(&archive, 63, 200).await;
    let served = serve(&archive, &["--token", "s3cret"]).await;
    let clusters = format!("{}/api/v1/clusters", served.base);
    assert_eq!(get(&clusters, None).await.0, 403);
    assert_eq!(get(&clusters, Some("wrong")).await.0, 403);
    let (status, body) = get(&clusters, Some("s3cret")).await;
    assert_eq!(status, 200);
    let shapes = crate::json_schema::documented();
    let wrong = crate::json_schema::check(&shapes, "ApiClusters", &parsed(&body), "clusters");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(parsed(&body)["Clusters"], serde_json::json!(["test"]));
    assert_eq!(parsed(&body)["Served"], "test");
    let timeline = format!("{}/api/v1/timeline", served.base);
    assert_eq!(get(&timeline, Some("wrong")).await.0, 403);

    let (status, page) = get(&format!("{}/ui/", served.base), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"login\""), "{page}");
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(&served.base)
        .send()
        .await
        .expect("request");
    assert_eq!(root.status().as_u16(), 303);
    assert_eq!(root.headers()["location"], "/ui/");
}

/// The same history on SQLite and on PostgreSQL gives the same timeline
/// at every zoom: bars, counts, markers and bands alike.
#[tokio::test]
async fn the_timeline_is_the_same_on_sqlite_and_postgresql() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let mut answers = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let archive = Archive::new(backend).await;
        let holes = super::bands::history_with_holes(&archive, 66).await;
        let served = serve(&archive, &[]).await;
        let (began, ended) = holes.gap;
        let windows = [
            (holes.cut - 86_400_000, holes.end, 8_000, "job"),
            (holes.cut - 86_400_000, holes.end, 1_000, "node"),
            (holes.cut - 30 * 86_400_000, holes.end, 100, "job"),
            (began - 60_000, ended + 60_000, 1_000, "job"),
            (began + 1, ended - 1, 1_000, "node"),
        ];
        let mut bodies = Vec::new();
        for (from, to, width, by) in windows {
            let url = format!(
                "{}/api/v1/timeline?from={from}&to={to}&width={width}&by={by}",
                served.base
            );
            let (status, body) = get(&url, None).await;
            assert_eq!(status, 200, "{body}");
            bodies.push(parsed(&body));
        }
        answers.push(bodies);
    }
    let drawn = answers[0][0]["Bars"].as_array().map_or(0, Vec::len);
    assert!(drawn > 10, "{}", answers[0][0]);
    // Lanes per job carry the jobs' versions and deployments; lanes per
    // node their down and drain periods.
    let count = |answer: &Value, key: &str, on_lane: bool| {
        answer[key].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|i| !on_lane || !i["Lane"].is_null())
                .count()
        })
    };
    assert!(
        count(&answers[0][0], "Markers", false) > 0,
        "{}",
        answers[0][0]
    );
    assert!(
        count(&answers[0][1], "Bands", true) > 0,
        "{}",
        answers[0][1]
    );
    for (sqlite, postgres) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(sqlite, postgres);
    }
}

/// One Allocation event as a capture holds it.
fn alloc_frame(index: u64, id: &str, status: &str, at_ms: i64) -> String {
    let ns = at_ms * 1_000_000;
    format!(
        r#"{{"Index":{index},"Events":[{{"Topic":"Allocation","Type":"AllocationUpdated","Key":"{id}","Namespace":"default","FilterKeys":["web"],"Index":{index},"Payload":{{"Allocation":{{"ID":"{id}","Namespace":"default","JobID":"web","TaskGroup":"web","NodeID":"n1","NodeName":"node-1","ClientStatus":"{status}","ModifyTime":{ns}}}}}}}]}}"#
    )
}

async fn a_bar_ends_at_the_first_terminal_status_after_the_last_other_one(backend: Backend) {
    let archive = Archive::new(backend).await;
    let t0 = 1_800_000_000_000;
    let history = [
        // Complete, then running again (a client that came back), then failed.
        (10, "a1", "pending", t0),
        (11, "a1", "complete", t0 + 1_000),
        (12, "a1", "running", t0 + 2_000),
        (13, "a1", "failed", t0 + 3_000),
        (14, "a1", "failed", t0 + 4_000),
        // Complete, and said so twice.
        (15, "a2", "running", t0 + 5_000),
        (16, "a2", "complete", t0 + 6_000),
        (17, "a2", "complete", t0 + 7_000),
        // Still running.
        (18, "a3", "pending", t0 + 8_000),
        (19, "a3", "running", t0 + 9_000),
    ];
    let lines: Vec<String> = history
        .iter()
        .map(|(index, id, status, at)| alloc_frame(*index, id, status, *at))
        .collect();
    let file = archive.file("allocs.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").expect("a capture");
    let file = file.display().to_string();
    archive
        .run(&["import", &file, "--cluster", "test"])
        .await
        .assert_success();
    let served = serve(&archive, &[]).await;

    let url = format!(
        "{}/api/v1/timeline?from={}&to={}&width=8000",
        served.base,
        t0 - 1_000,
        t0 + 20_000
    );
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 200, "{body}");
    let lanes = parsed(&body);
    let bars: Vec<_> = lanes["Bars"]
        .as_array()
        .expect("Bars")
        .iter()
        .map(|b| {
            let ms = |key: &str| b[key].as_i64().map(|ns| ns / 1_000_000 - t0);
            (
                b["ID"].as_str().unwrap_or_default().to_owned(),
                ms("StartNs"),
                ms("EndNs"),
            )
        })
        .collect();
    let bar = |id: &str, start: i64, end: Option<i64>| (id.to_owned(), Some(start), end);
    assert_eq!(
        bars,
        vec![
            bar("a1", 0, Some(3_000)),
            bar("a2", 5_000, Some(6_000)),
            bar("a3", 8_000, None),
        ],
        "{body}"
    );
    let statuses: Vec<_> = lanes["Bars"]
        .as_array()
        .expect("Bars")
        .iter()
        .map(|b| b["ClientStatus"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["failed", "complete", "running"]);
}

/// The counts of a timeline answer by lane and bucket start (Unix ms),
/// and its bucket length.
fn counts_by_bucket(lanes: &Value) -> (BTreeMap<(String, i64), u64>, i64) {
    let bucket_ms = lanes["BucketMs"].as_i64().expect("BucketMs");
    let start = lanes["BucketStartNs"].as_i64().expect("BucketStartNs") / 1_000_000;
    let mut counts = BTreeMap::new();
    for density in lanes["Density"].as_array().expect("Density") {
        let lane = density["Lane"].as_str().expect("Lane");
        for (i, n) in density["Counts"]
            .as_array()
            .expect("Counts")
            .iter()
            .enumerate()
        {
            let at = start + i as i64 * bucket_ms;
            counts.insert((lane.to_owned(), at), n.as_u64().expect("a count"));
        }
    }
    (counts, bucket_ms)
}

async fn panning_leaves_each_count_in_its_bucket(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived_history(&archive, 63, 1_500).await;
    let facts = facts(&archive).await;
    let served = serve(&archive, &[]).await;
    let timeline = |from: i64, to: i64| {
        format!(
            "{}/api/v1/timeline?from={from}&to={to}&by=job&width=100",
            served.base
        )
    };
    let (status, body) = get(&timeline(facts.from, facts.to), None).await;
    assert_eq!(status, 200, "{body}");
    let (before, bucket_ms) = counts_by_bucket(&parsed(&body));
    // Panned by a third of a bucket and a millisecond.
    let shift = bucket_ms / 3 + 1;
    let (status, body) = get(&timeline(facts.from + shift, facts.to + shift), None).await;
    assert_eq!(status, 200, "{body}");
    let (after, panned_ms) = counts_by_bucket(&parsed(&body));
    assert_eq!(panned_ms, bucket_ms);
    // The buckets whole in both windows, but for the last of the first
    // (an allocation starting there may end past that window, and so be
    // drawn there rather than counted), hold the same counts.
    let compared = |at: i64| at >= facts.from + shift && at + 2 * bucket_ms <= facts.to;
    let lanes: BTreeSet<&String> = before.keys().chain(after.keys()).map(|(l, _)| l).collect();
    let mut seen = 0;
    for lane in lanes {
        for at in before.keys().chain(after.keys()).map(|(_, at)| *at) {
            if !compared(at) {
                continue;
            }
            let key = (lane.clone(), at);
            let (a, b) = (before.get(&key).copied(), after.get(&key).copied());
            assert_eq!(
                a.unwrap_or(0),
                b.unwrap_or(0),
                "lane {lane}, bucket at {at}"
            );
            seen += a.unwrap_or(0);
        }
    }
    assert!(seen > 0, "the compared buckets count allocations");
}

/// Snapshots stream their rows on one connection each and read the blocks
/// of packed history beside them: more requests at once than `serve` has
/// connections all answer, and answer what the CLI does.
async fn snapshots_of_packed_history_at_once_all_answer(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived_history(&archive, 62, 1_500).await;
    archive
        .run(&[
            "compact",
            "--pack-older-than",
            "0s",
            "--block-bytes",
            "16384",
        ])
        .await
        .assert_success();
    let facts = facts(&archive).await;
    let served = serve(&archive, &[]).await;
    let at = facts.middle_index.to_string();
    let url = format!("{}/api/v1/snapshot?at-index={at}", served.base);
    let requests = (0..12).map(|_| get(&url, None));
    let answers = futures_util::future::join_all(requests).await;
    let cli = archive
        .run(&["query", "snapshot", "--at-index", &at, "--output", "json"])
        .await;
    cli.assert_success();
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert_eq!(parsed(&body), parsed(&cli.stdout));
    }
}

on_both_backends!(
    snapshots_of_packed_history_at_once_all_answer,
    panning_leaves_each_count_in_its_bucket,
    a_bar_ends_at_the_first_terminal_status_after_the_last_other_one,
    the_api_answers_what_the_cli_answers,
    the_api_answers_errors_as_json_with_their_status,
    the_api_needs_the_token_and_the_page_does_not,
);
