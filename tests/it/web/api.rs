//! The web timeline's JSON API answers what the CLI answers, and only to
//! a client with the token.

use serde_json::Value;

use super::{archived_history, facts, serve};
use crate::common::{Archive, Backend, on_both_backends};

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.header("X-Nomad-Token", token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn parsed(body: &str) -> Value {
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

    // The timeline over the whole archive has one bar per allocation, on
    // its job's lane.
    let url = format!(
        "{}/api/v1/timeline?from={}&to={}&by=job",
        served.base, facts.from, facts.to
    );
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 200, "{body}");
    let lanes = parsed(&body);
    assert_eq!(lanes["aggregated"], false);
    let bars = lanes["bars"].as_array().expect("bars");
    for (lane, allocs) in &facts.allocs_by_lane {
        let drawn: std::collections::BTreeSet<String> = bars
            .iter()
            .filter(|b| b["lane"] == lane.as_str())
            .map(|b| b["alloc"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(&drawn, allocs, "bars of lane `{lane}`");
    }
    let total: usize = facts.allocs_by_lane.values().map(|a| a.len()).sum();
    assert!(total > 10, "the history places allocations");
    assert_eq!(bars.len(), total);
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
    ];
    for (path, want) in cases {
        let (status, body) = get(&format!("{}{path}", served.base), None).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(parsed(&body)["error"].is_string(), "{path}: {body}");
    }
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
    assert_eq!(parsed(&body)["served"], "test");
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

on_both_backends!(
    the_api_answers_what_the_cli_answers,
    the_api_answers_errors_as_json_with_their_status,
    the_api_needs_the_token_and_the_page_does_not,
);
