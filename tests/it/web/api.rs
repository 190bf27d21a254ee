//! The web timeline's JSON API answers what the CLI answers, and only to
//! a client with the token.

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
    // allocation: its last status in the window, its first event's time.
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
    }

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
    assert_eq!(lanes["Buckets"], 25);
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
    ];
    let shapes = crate::json_schema::documented();
    for (path, want) in cases {
        let (status, body) = get(&format!("{}{path}", served.base), None).await;
        assert_eq!(status, want, "{path}: {body}");
        let wrong = crate::json_schema::check(&shapes, "ApiError", &parsed(&body), path);
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(parsed(&body)["Error"].is_string(), "{path}: {body}");
    }
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
    for (sqlite, postgres) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(sqlite, postgres);
    }
}

on_both_backends!(
    the_api_answers_what_the_cli_answers,
    the_api_answers_errors_as_json_with_their_status,
    the_api_needs_the_token_and_the_page_does_not,
);
