//! The web timeline in a real browser: Debian's headless Chromium loads
//! the page from `serve`, runs its script against the API, and the DOM it
//! leaves is checked. Without Chromium the tests say so and stop, except
//! under CI (`CI` set), where they fail.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{archived_history, facts, serve};
use crate::common::{Archive, Backend};

/// Virtual time the page gets to load; network waits do not spend it.
const BUDGET_MS: &str = "15000";

/// The Chromium binary, or `None` (after saying so) when it is absent
/// outside CI.
fn chromium() -> Option<&'static str> {
    for name in ["chromium", "chromium-browser"] {
        let found = std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Some(name);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("chromium is not installed, and CI needs the browser tests to run");
    }
    eprintln!(
        "SKIPPED: chromium is not installed; `apt-get install chromium` runs the browser tests"
    );
    None
}

/// Runs headless Chromium on `url` with `args` and returns its stdout.
async fn run_chromium(browser: &str, url: &str, args: &[String]) -> String {
    run_chromium_logged(browser, url, args).await.0
}

/// [`run_chromium`], with what the page wrote to its console: Chromium's
/// log lines of the console (whatever the level) from stderr.
async fn run_chromium_logged(browser: &str, url: &str, args: &[String]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut command = tokio::process::Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={BUDGET_MS}"))
        // The page's console messages go to stderr as `…:CONSOLE(…)` lines.
        .arg("--enable-logging=stderr")
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        console,
    )
}

/// The DOM the page leaves at `url`.
async fn dom(browser: &str, url: &str) -> String {
    run_chromium(browser, url, &["--dump-dom".to_owned()]).await
}

/// The allocations the page shows on lanes whose ID `wanted` accepts: its
/// bars and the allocations its grey cells count.
fn shown(dom: &str, wanted: impl Fn(&str) -> bool) -> usize {
    let lane = |tag: &str| {
        let value = tag.split("data-lane=\"").nth(1)?.split('"').next()?;
        Some(value.replace("&amp;", "&"))
    };
    let bars = tags(dom, "rect", &["class=\"bar "])
        .into_iter()
        .filter(|t| lane(t).is_some_and(|l| wanted(&l)))
        .count();
    let counted: usize = tags(dom, "rect", &["class=\"density\""])
        .into_iter()
        .filter(|t| lane(t).is_some_and(|l| wanted(&l)))
        .filter_map(|t| {
            t.split("data-count=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    bars + counted
}

/// The opening tags of `tag` elements whose attributes contain every one of `needles`.
fn tags<'a>(dom: &'a str, tag: &str, needles: &[&str]) -> Vec<&'a str> {
    dom.split(&format!("<{tag} "))
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|attrs| needles.iter().all(|n| attrs.contains(n)))
        .collect()
}

/// An allocation whose timeline has task events, by the CLI.
async fn alloc_with_task_events(archive: &Archive, allocs: &[String]) -> (String, usize) {
    for alloc in allocs {
        let run = archive
            .run(&["query", "alloc", alloc, "--output", "json"])
            .await;
        let doc: Value = serde_json::from_str(&run.stdout).expect("a timeline");
        let tasks = doc["Timeline"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| {
                e["Summary"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("task "))
            })
            .count();
        if tasks > 0 {
            return (alloc.clone(), tasks);
        }
    }
    panic!("no allocation in the history has task events");
}

#[tokio::test]
async fn the_page_draws_one_bar_per_allocation_and_opens_deep_links() {
    let Some(browser) = chromium() else { return };
    let archive = Archive::new(Backend::Sqlite).await;
    archived_history(&archive, 71, 1_500).await;
    let facts = facts(&archive).await;
    let served = serve(&archive, &[]).await;
    let window = format!("from={}&to={}", facts.from, facts.to);

    let page = dom(browser, &format!("{}/ui/#{window}&by=job", served.base)).await;
    assert!(page.contains("data-state=\"ready\""), "{page}");
    assert!(!page.contains("id=\"error\""), "{page}");
    for (lane, allocs) in &facts.allocs_by_lane {
        let on_lane = shown(&page, |l| l == lane);
        assert_eq!(on_lane, allocs.len(), "allocations of lane `{lane}`");
    }

    // Without a fragment, the page opens the last hour of the archive.
    let page = dom(browser, &format!("{}/", served.base)).await;
    assert!(page.contains("data-state=\"ready\""), "{page}");
    assert!(!page.contains("id=\"error\""), "{page}");

    let allocs: Vec<String> = facts.allocs_by_lane.values().flatten().cloned().collect();
    let (alloc, task_events) = alloc_with_task_events(&archive, &allocs).await;
    let url = format!("{}/ui/#{window}&by=job&obj=alloc/{alloc}", served.base);
    let page = dom(browser, &url).await;
    assert!(!page.contains("id=\"error\""), "{page}");
    assert!(
        page.contains(&format!("data-object=\"alloc/{alloc}\"")),
        "{page}"
    );
    assert_eq!(tags(&page, "tr", &["task-event"]).len(), task_events);
    let selected = format!("data-alloc=\"{alloc}\"");
    assert_eq!(tags(&page, "rect", &["selected", &selected]).len(), 1);

    // For a person to look at: the first two hours, by job and by node.
    let early = format!("from={}&to={}", facts.from, facts.from + 7_200_000);
    for (by, name) in [("job", "web-timeline.png"), ("node", "web-nodes.png")] {
        let shot = screenshot_path(name);
        let arg = format!("--screenshot={}", shot.display());
        let url = format!("{}/ui/#{early}&by={by}&obj=alloc/{alloc}", served.base);
        run_chromium(browser, &url, &[arg]).await;
    }
    let shot = screenshot_path("web-timeline.png");
    assert!(
        shot.metadata().is_ok_and(|m| m.len() > 1_000),
        "a screenshot at {}",
        shot.display()
    );
}

#[tokio::test]
async fn the_search_and_the_time_cursor_are_restored_from_the_url() {
    let Some(browser) = chromium() else { return };
    let archive = Archive::new(Backend::Sqlite).await;
    archived_history(&archive, 73, 1_000).await;
    let facts = facts(&archive).await;
    let served = serve(&archive, &[]).await;
    let (lane, _) = facts.allocs_by_lane.iter().next().expect("a lane");
    let wanted = lane.rsplit('/').next().expect("a job").to_lowercase();
    let at = facts.middle_time;
    let url = format!(
        "{}/ui/#from={}&to={}&by=job&at={at}&q={wanted}",
        served.base, facts.from, facts.to
    );

    let page = dom(browser, &url).await;
    assert!(!page.contains("id=\"error\""), "{page}");
    let expected: usize = facts
        .allocs_by_lane
        .iter()
        .filter(|(lane, _)| lane.to_lowercase().contains(&wanted))
        .map(|(_, allocs)| allocs.len())
        .sum();
    let on_lanes = shown(&page, |l| l.to_lowercase().contains(&wanted));
    assert_eq!(
        on_lanes, expected,
        "the allocations of lanes matching `{wanted}`"
    );

    let snapshot = reqwest::get(format!("{}/api/v1/snapshot?at={at}", served.base))
        .await
        .expect("a snapshot")
        .text()
        .await
        .expect("a body");
    let snapshot: Value = serde_json::from_str(&snapshot).expect("JSON");
    let objects: usize = ["Nodes", "Jobs", "Allocations"]
        .iter()
        .map(|s| snapshot[s].as_array().map_or(0, Vec::len))
        .sum();
    assert!(objects > 0);
    assert!(page.contains(&format!("data-snapshot=\"{at}\"")), "{page}");
    assert_eq!(tags(&page, "tr", &["snapshot-row"]).len(), objects);

    let shot = screenshot_path("web-snapshot.png");
    let arg = format!("--screenshot={}", shot.display());
    run_chromium(browser, &url.replace(&format!("&q={wanted}"), ""), &[arg]).await;
}

#[tokio::test]
async fn a_click_the_wheel_a_drag_and_the_axis_move_the_view_as_a_person_expects() {
    let Some(browser) = chromium() else { return };
    let archive = Archive::new(Backend::Sqlite).await;
    archived_history(&archive, 74, 600).await;
    let facts = facts(&archive).await;
    let served = serve(&archive, &[]).await;
    let front = super::front::start(served.base.clone()).await;
    let (from, to) = (facts.from, facts.from + 7_200_000);
    let url = format!("{front}/harness#from={from}&to={to}&by=job");

    let page = dom(browser, &url).await;
    let json = page
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_default()
        .replace("&quot;", "\"");
    let result: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {page}"));
    let number = |view: &str, key: &str| -> i64 {
        result[view][key]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{view}.{key}` in {result}"))
    };
    // A click on a bar opens that allocation and puts it in the URL.
    let clicked = result["clicked"].as_str().expect("a bar was clicked");
    assert_eq!(result["opened"], format!("alloc/{clicked}"));
    assert_eq!(result["before"]["obj"], format!("alloc/{clicked}"));
    assert_eq!(
        (number("before", "from"), number("before", "to")),
        (from, to)
    );
    // The wheel zooms in around the pointer: a shorter window inside the old one.
    let (zf, zt) = (number("zoomed", "from"), number("zoomed", "to"));
    assert!(zf > from && zt < to, "{result}");
    // A drag to the left moves the window later, keeping its length.
    let (pf, pt) = (number("panned", "from"), number("panned", "to"));
    assert!(pf > zf, "{result}");
    assert!(((pt - pf) - (zt - zf)).abs() <= 1, "{result}");
    // A click on the axis opens the snapshot at that moment.
    let cursor: i64 = result["cursor"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .expect("a cursor");
    assert!(cursor > pf && cursor < pt, "{result}");
    assert!(result["rows"].as_u64().is_some_and(|n| n > 0), "{result}");
    assert_eq!(result["error"], false);
}

#[tokio::test]
async fn without_the_right_token_the_page_shows_the_login_prompt_and_no_data() {
    let Some(browser) = chromium() else { return };
    let archive = Archive::new(Backend::Sqlite).await;
    archived_history(&archive, 72, 300).await;
    let facts = facts(&archive).await;
    let served = serve(&archive, &["--token", "s3cret"]).await;
    let front = super::front::start(served.base.clone()).await;
    let window = format!("from={}&to={}", facts.from, facts.to);

    for (url, reason) in [
        (format!("{}/ui/#{window}", served.base), "missing"),
        (format!("{front}/with-token/wrong#{window}"), "refused"),
    ] {
        let page = dom(browser, &url).await;
        assert!(page.contains("data-state=\"login\""), "{url}: {page}");
        assert!(
            page.contains(&format!("data-reason=\"{reason}\"")),
            "{url}: {page}"
        );
        assert!(
            tags(&page, "form", &["id=\"login\"", "hidden"]).is_empty(),
            "{page}"
        );
        assert!(tags(&page, "rect", &["class=\"bar "]).is_empty(), "{page}");
        assert!(!page.contains("data-alloc"), "{page}");
    }

    // The right token, stored as the login prompt stores it, opens the data.
    let page = dom(browser, &format!("{front}/with-token/s3cret#{window}")).await;
    assert!(page.contains("data-state=\"ready\""), "{page}");
    let total: usize = facts.allocs_by_lane.values().map(|a| a.len()).sum();
    assert_eq!(shown(&page, |_| true), total);

    let shot = screenshot_path("web-login.png");
    let arg = format!("--screenshot={}", shot.display());
    run_chromium(browser, &format!("{}/ui/", served.base), &[arg]).await;
}

#[tokio::test]
async fn a_wide_window_shows_counts_that_add_up_to_the_allocations_and_hatched_history() {
    let Some(browser) = chromium() else { return };
    let archive = Archive::new(Backend::Sqlite).await;
    let holes = super::bands::history_with_holes(&archive, 75).await;
    let allocs: std::collections::BTreeSet<String> = archive
        .archived("test")
        .await
        .into_iter()
        .filter(|e| e.topic == "Allocation")
        .map(|e| e.key)
        .collect();
    let served = serve(&archive, &[]).await;
    // A month before the cut to the end: an hour of history is a few pixels.
    let from = holes.cut - 30 * 86_400_000;
    let url = format!("{}/ui/#from={from}&to={}&by=job", served.base, holes.end);

    let (page, console) = run_chromium_logged(browser, &url, &["--dump-dom".to_owned()]).await;
    assert!(page.contains("data-state=\"ready\""), "{page}");
    assert!(!page.contains("id=\"error\""), "{page}");
    assert!(
        console.is_empty(),
        "the page wrote to its console: {console:#?}"
    );
    let counted = tags(&page, "rect", &["class=\"density\""]);
    assert!(!counted.is_empty(), "{page}");
    assert_eq!(shown(&page, |_| true), allocs.len());
    assert!(page.contains("more counted in grey"), "{page}");

    assert_eq!(tags(&page, "rect", &["band-pruned"]).len(), 1, "{page}");
    assert_eq!(tags(&page, "rect", &["band-gap"]).len(), 1, "{page}");
    let label = page
        .split("class=\"band-label\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .unwrap_or_default();
    assert!(label.starts_with("pruned before 20"), "{label}: {page}");

    let shot = screenshot_path("web-aggregated.png");
    let arg = format!("--screenshot={}", shot.display());
    run_chromium(browser, &url, &[arg]).await;
}

/// Where a screenshot for a person to look at goes: the build's target directory.
fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}
