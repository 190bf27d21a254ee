//! Retention: `prune` deletes history before a cut and every answer that
//! reaches before it says so; snapshots after the cut stay whole (a job
//! registered before it and still running is still there); `replay` starts
//! at the first index kept; `ingest --retain` and `--retain-size` prune as
//! ingest goes; bad input changes nothing.

use nomad_chronicle::retention::background::{self, Budget, Sized};
use nomad_chronicle::store::keyframe;
use nomad_sim::{Generator, SimFrame};
use serde_json::Value;

use crate::common::role::Role;
use crate::common::{Archive, Backend, SimAt, finish, older, on_both_backends};
use crate::reporting::db::Db;

/// Keyframes of the tests' archives follow each other every this many events.
const EVENTS_BETWEEN: u64 = 150;

/// Imports `frames` into cluster `default` in batches of 40 events.
async fn import(archive: &Archive, frames: &[SimFrame]) {
    let file = archive.capture("capture.ndjson", frames);
    let mut cmd = archive.command(&["import", &file, "--batch-size", "40"]);
    cmd.env(keyframe::EVENTS_BETWEEN_ENV, EVENTS_BETWEEN.to_string());
    finish(cmd.spawn().expect("spawn import"))
        .await
        .assert_success();
}

/// An archive of 1,500 generated frames, and the frames.
async fn archived(backend: Backend) -> (Archive, Vec<SimFrame>) {
    let frames = Generator::new(41).frames(1_500);
    let archive = Archive::new(backend).await;
    import(&archive, &frames).await;
    (archive, frames)
}

/// The index of the frame halfway through.
fn halfway(frames: &[SimFrame]) -> u64 {
    frames[frames.len() / 2].index
}

/// Runs `prune` with `args`, which must succeed.
async fn prune(archive: &Archive, args: &[&str]) -> String {
    let mut all = vec!["prune"];
    all.extend_from_slice(args);
    let run = archive.run(&all).await;
    run.assert_success();
    run.stdout
}

/// One integer from the archive.
async fn count(archive: &Archive, sql: &str) -> i64 {
    let mut db = Db::connect(archive).await;
    db.rows(sql).await[0]["n"].as_i64().unwrap_or(-1)
}

/// The snapshot at `at` as JSON, with `extra` arguments.
async fn snapshot(archive: &Archive, at: u64, extra: &[&str]) -> Value {
    let at = at.to_string();
    let mut args = vec!["query", "snapshot", "--at-index", &at, "--output", "json"];
    args.extend_from_slice(extra);
    let run = archive.run(&args).await;
    run.assert_success();
    serde_json::from_str(&run.stdout).expect("one JSON document")
}

/// A snapshot's objects as (Topic, Key, Index), sorted.
fn objects(doc: &Value) -> Vec<(String, String, u64)> {
    let mut out: Vec<_> = ["Nodes", "Jobs", "Allocations"]
        .iter()
        .flat_map(|list| doc[list].as_array().cloned().unwrap_or_default())
        .map(|o| {
            let text = |f: &str| o[f].as_str().unwrap_or_default().to_owned();
            (text("Topic"), text("Key"), o["Index"].as_u64().unwrap_or(0))
        })
        .collect();
    out.sort();
    out
}

async fn pruning_by_index_keeps_snapshots_after_the_cut_whole(backend: Backend) {
    let (archive, frames) = archived(backend).await;
    let (cut, last) = (halfway(&frames), frames.last().map_or(0, |f| f.index));
    let window = ["--terminal-within", "0s"];
    let before_last = snapshot(&archive, last, &window).await;
    let before_cut = snapshot(&archive, cut - 1, &window).await;
    // Objects described last before the cut and still there at the end:
    // the long-lived ones the prune must not lose.
    let long_lived = objects(&before_last)
        .into_iter()
        .filter(|(_, _, index)| *index < cut)
        .count();
    assert!(long_lived > 0, "the history has objects older than the cut");

    let out = prune(&archive, &["--before-index", &cut.to_string()]).await;
    assert!(out.contains(&format!("(index {cut}) was pruned")), "{out}");

    let after_last = snapshot(&archive, last, &window).await;
    assert_eq!(objects(&after_last), objects(&before_last));
    assert_eq!(
        after_last["TerminalAllocationsLeftOut"],
        before_last["TerminalAllocationsLeftOut"]
    );
    let at_cut = snapshot(&archive, cut - 1, &window).await;
    assert_eq!(objects(&at_cut), objects(&before_cut));
    // Only the events the snapshot at the cut lists are left before it.
    let kept = count(
        &archive,
        &format!("SELECT COUNT(*) AS n FROM event_log WHERE raft_index < {cut}"),
    )
    .await;
    assert_eq!(kept as usize, objects(&before_cut).len());
    let old_keyframes = count(
        &archive,
        &format!(
            "SELECT COUNT(*) AS n FROM keyframes WHERE raft_index < {}",
            cut - 1
        ),
    )
    .await;
    assert_eq!(old_keyframes, 0);
    // Status shows the cut, and the history it shows starts there.
    let status = archive.status().await;
    let cluster = &status.clusters[0];
    let pruned = cluster.pruned.as_ref().expect("a prune");
    assert_eq!(pruned.before_index, cut);
    assert!(pruned.finished_at.is_some());
    assert_eq!(cluster.first_index, Some(cut));
    let table = archive.run(&["status"]).await.stdout;
    assert!(
        table.contains(&format!("(index {cut}) was pruned")),
        "{table}"
    );
}

async fn the_reports_lose_the_pruned_events_and_keep_the_kept_ones(backend: Backend) {
    let (archive, frames) = archived(backend).await;
    let cut = halfway(&frames);
    let tables = [
        "allocation_details",
        "job_details",
        "deployment_details",
        "node_details",
    ];
    for table in tables {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE raft_index < {cut}");
        assert!(count(&archive, &sql).await > 0, "{table} before the prune");
    }
    prune(&archive, &["--before-index", &cut.to_string()]).await;
    // Each kept event keeps its details; the others lost theirs.
    for table in tables {
        let orphans = format!(
            "SELECT COUNT(*) AS n FROM {table} AS d WHERE NOT EXISTS (SELECT 1 FROM event_log AS e \
             WHERE e.cluster_id = d.cluster_id AND e.raft_index = d.raft_index \
             AND e.position = d.position)"
        );
        assert_eq!(
            count(&archive, &orphans).await,
            0,
            "{table} after the prune"
        );
    }
    let kept_nodes = "SELECT COUNT(*) AS n FROM event_log AS e WHERE e.topic = 'Node' \
         AND NOT EXISTS (SELECT 1 FROM node_details AS d WHERE d.cluster_id = e.cluster_id \
         AND d.raft_index = e.raft_index AND d.position = e.position)";
    assert_eq!(
        count(&archive, kept_nodes).await,
        0,
        "every kept node has its name"
    );
    let early_task_events = format!(
        "SELECT COUNT(*) AS n FROM task_event_log AS t WHERE first_seen_index < {cut} \
         AND NOT EXISTS (SELECT 1 FROM event_log AS e WHERE e.cluster_id = t.cluster_id \
         AND e.topic = 'Allocation' AND e.key_ref = t.alloc_ref AND e.raft_index >= {cut})"
    );
    assert_eq!(
        count(&archive, &early_task_events).await,
        0,
        "task events of allocations wholly before the cut"
    );
}

async fn answers_reaching_before_the_cut_say_history_was_pruned(backend: Backend) {
    let (archive, frames) = archived(backend).await;
    let cut = halfway(&frames);
    prune(&archive, &["--before-index", &cut.to_string()]).await;
    let sentence = format!("(index {cut}) was pruned");

    let events = archive
        .run(&["query", "events", "--output", "json", "--limit", "100000"])
        .await;
    events.assert_success();
    let doc: Value = serde_json::from_str(&events.stdout).expect("json");
    assert_eq!(doc["Gaps"][0]["Kind"], "pruned", "{doc}");
    let indexes: Vec<u64> = doc["Events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["Index"].as_u64())
        .collect();
    assert!(indexes.iter().all(|i| *i >= cut), "no kept event shows");
    // The newest few stop short of the cut.
    let newest = archive
        .run(&["query", "events", "--limit", "3", "--output", "json"])
        .await;
    let doc: Value = serde_json::from_str(&newest.stdout).expect("json");
    assert_eq!(doc["Gaps"], Value::Array(Vec::new()), "{doc}");
    // A window after the cut does not reach before it.
    let after = (cut + 50).to_string();
    let late = archive
        .run(&[
            "query",
            "events",
            "--from-index",
            &after,
            "--output",
            "json",
        ])
        .await;
    let doc: Value = serde_json::from_str(&late.stdout).expect("json");
    assert_eq!(doc["Gaps"], Value::Array(Vec::new()), "{doc}");

    // A timeline of a job whose history crosses the cut.
    let job = job_across(&frames, cut);
    let timeline = archive.run(&["query", "job", &job]).await;
    timeline.assert_success();
    assert!(timeline.stdout.contains(&sentence), "{}", timeline.stdout);

    // Its state is still known, from the event kept for snapshots.
    let last = frames.last().map_or(0, |f| f.index).to_string();
    let state = archive
        .run(&["query", "state", "job", &job, "--at-index", &last])
        .await;
    state.assert_success();

    // An ID the archive does not know may have been pruned.
    let unknown = archive.run(&["query", "job", "never-seen"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown
            .stderr
            .contains(&format!("{sentence}, so it may have been there")),
        "{}",
        unknown.stderr
    );
    // A snapshot before the cut cannot be shown.
    let early = (cut - 10).to_string();
    let snap = archive
        .run(&["query", "snapshot", "--at-index", &early])
        .await;
    assert_eq!(snap.code, Some(1));
    assert!(snap.stderr.contains(&sentence), "{}", snap.stderr);
}

/// A job with events both before and after `cut`.
fn job_across(frames: &[SimFrame], cut: u64) -> String {
    let jobs = |before: bool| -> std::collections::BTreeSet<String> {
        frames
            .iter()
            .filter(|f| (f.index < cut) == before)
            .flat_map(|f| &f.events)
            .filter(|e| e.topic == "Job")
            .map(|e| e.key.clone())
            .collect()
    };
    let after = jobs(false);
    jobs(true)
        .into_iter()
        .find(|j| after.contains(j))
        .expect("a job on both sides of the cut")
}

async fn replay_from_before_the_cut_starts_at_the_first_kept_index(backend: Backend) {
    let (archive, frames) = archived(backend).await;
    let cut = halfway(&frames);
    prune(&archive, &["--before-index", &cut.to_string()]).await;
    let run = archive.run(&["replay", "--from-index", "1"]).await;
    run.assert_success();
    let expected: Vec<String> = frames
        .iter()
        .filter(|f| f.index >= cut)
        .map(SimFrame::to_line)
        .collect();
    let got: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(got, expected);
}

async fn pruning_by_time_cuts_at_the_moment_of_that_time(backend: Backend) {
    let (archive, frames) = archived(backend).await;
    let cut = halfway(&frames);
    let mut db = Db::connect(&archive).await;
    let rows = db
        .rows(&format!(
            "SELECT MAX(event_at) AS n FROM event_log WHERE raft_index = {cut}"
        ))
        .await;
    let at = rows[0]["n"].as_i64().expect("a time");
    let rfc3339 = jiff::Timestamp::from_millisecond(at)
        .expect("time")
        .to_string();
    prune(&archive, &["--before", &rfc3339]).await;
    let status = archive.status().await;
    let pruned = status.clusters[0].pruned.clone().expect("pruned");
    // The moment at that time is the newest event dated at or before it.
    let moment = db
        .rows(&format!(
            "SELECT MAX(raft_index) AS n FROM event_log WHERE event_at <= {at} AND raft_index >= {cut}"
        ))
        .await[0]["n"]
        .as_u64()
        .expect("an index");
    assert_eq!(pruned.before_index, moment + 1);
    assert_eq!(pruned.before_time, Some(at));
    // Asked again: nothing more to do.
    let again = archive.run(&["prune", "--before", &rfc3339]).await;
    again.assert_success();
    assert!(
        again.stderr.contains("already; nothing to do"),
        "{}",
        again.stderr
    );
}

/// The number of events of cluster `default`.
async fn events(archive: &Archive) -> i64 {
    count(archive, "SELECT COUNT(*) AS n FROM event_log").await
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let (archive, frames) = archived(backend).await;
    let stored = events(&archive).await;
    let newest = frames.last().map_or(0, |f| f.index);
    let beyond = (newest + 1).to_string();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--before-index", "10", "--cluster", "nope"],
            "holds no cluster `nope` (it holds: default)",
        ),
        (
            &["--before", "2999-01-01"],
            "is in the future: give a time in the past",
        ),
        (
            &["--before-index", &beyond],
            "is beyond the newest index archived for cluster `default`",
        ),
        (&[], "--before <TIME>|--before-index <N>"),
        (
            &["--before", "1d", "--before-index", "10"],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["prune"];
        all.extend_from_slice(args);
        let run = archive.run(&all).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    assert_eq!(events(&archive).await, stored);
    assert_eq!(archive.status().await.clusters[0].pruned, None);
}

async fn ingest_with_retain_prunes_while_ingesting(backend: Backend) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(43);
    let old: Vec<SimFrame> = (0..600).map(|_| generator.next_frame()).collect();
    for frame in &old {
        sim.sim.publish(frame.clone());
    }
    let archive = Archive::new(backend).await;
    let old_last = old.last().map_or(0, |f| f.index);
    archive
        .ingest_until(&sim, old_last, &[])
        .await
        .assert_success();
    // What was archived happened 200 days ago, by Nomad's clock.
    archive
        .execute(&["UPDATE event_log SET event_at = event_at - 17280000000"])
        .await;
    let new: Vec<SimFrame> = (0..300).map(|_| generator.next_frame()).collect();
    for frame in &new {
        sim.sim.publish(frame.clone());
    }
    let last = new.last().map_or(0, |f| f.index);
    let run = archive.ingest_until(&sim, last, &["--retain", "90d"]).await;
    run.assert_success();
    assert!(run.stderr.contains("Pruned history"), "{}", run.stderr);
    let status = archive.status().await;
    let cluster = &status.clusters[0];
    let pruned = cluster.pruned.as_ref().expect("pruned while ingesting");
    assert!(pruned.before_index > old_last / 2, "{pruned:?}");
    assert!(pruned.before_index <= old_last + 1, "{pruned:?}");
    assert_eq!(cluster.checkpoint, Some(last), "ingest went on to the end");
    // The pruned archive still ingests, queries and replays.
    let replay = archive.run(&["replay", "--from-index", "1"]).await;
    replay.assert_success();
    let first: Value =
        serde_json::from_str(replay.stdout.lines().next().expect("a frame")).expect("json");
    assert!(
        first["Index"].as_u64() >= Some(pruned.before_index),
        "{first}"
    );
    archive
        .run(&["query", "snapshot", "--at-index", &last.to_string()])
        .await
        .assert_success();
}

async fn retain_size_keeps_the_archive_under_budget(backend: Backend) {
    let (archive, _) = archived(backend).await;
    let (store, cluster) = archive.open("default").await;
    let size = store.size().await.expect("size");
    let budget = Budget {
        age: None,
        size: Some(size * 7 / 10),
        pack: None,
    };
    let mut sized = Sized::default();
    let done = background::enforce(store.as_ref(), &cluster, budget, 0, &mut sized)
        .await
        .expect("enforce");
    assert!(!done.is_empty(), "pruned");
    let after = store.size().await.expect("size");
    match backend {
        // The pages in use shrink under the budget.
        Backend::Sqlite => assert!(after <= size * 7 / 10, "{after} > 0.7 * {size}"),
        // The tables keep their size and reuse it: one prune, and none
        // again until they grow.
        Backend::Postgres => {
            assert_eq!(done.len(), 1);
            assert!(after < size + size / 10, "{after} grew from {size}");
        }
    }
    let again = background::enforce(store.as_ref(), &cluster, budget, 0, &mut sized)
        .await
        .expect("enforce");
    if backend == Backend::Postgres {
        assert!(again.is_empty(), "no growth, no prune: {again:?}");
    }
    let cut = store
        .pruned(&cluster)
        .await
        .expect("pruned")
        .expect("a cut");
    assert!(cut.finished_at.is_some());
    store.close().await;
}

async fn a_prune_beside_a_running_ingest_lets_it_keep_committing(backend: Backend) {
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(45);
    let first = sim.publish(&mut generator, 2_000);
    let archive = Archive::new(backend).await;
    archive
        .ingest_until(&sim, first, &[])
        .await
        .assert_success();
    let mut child = archive
        .command(&[
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "test",
            "--batch-interval",
            "20ms",
        ])
        .spawn()
        .expect("spawn ingest");
    let cut = (first / 2).to_string();
    let args = ["prune", "--before-index", &cut];
    let pruning = archive.run(&args);
    let publishing = async {
        let mut last = first;
        for _ in 0..20 {
            last = sim.publish(&mut generator, 50);
            tokio::task::yield_now().await;
        }
        last
    };
    let (pruned, last) = tokio::join!(pruning, publishing);
    pruned.assert_success();
    // Read by the binary: opened in this process, the archive would build
    // keyframes at the threshold other tests set here, racing the writer.
    crate::common::eventually("ingest to store what was published", || async {
        let status = archive.run(&["status", "--output", "json"]).await;
        let doc: Value = serde_json::from_str(&status.stdout).unwrap_or_default();
        doc["Clusters"][0]["Checkpoint"].as_u64() == Some(last)
    })
    .await;
    child.start_kill().expect("stop ingest");
    let _ = child.wait().await;
    let status = archive.status().await;
    assert_eq!(
        status.clusters[0].pruned.as_ref().map(|p| p.before_index),
        Some(first / 2)
    );
}

/// The archive's size after each of `cycles` rounds of importing 500
/// frames and pruning all but the last 1,000 indexes, without the IDs in
/// `names`, which are never deleted (one row per ID ever seen).
async fn sizes_over_cycles(backend: Backend, cycles: usize) -> Vec<u64> {
    let archive = Archive::new(backend).await;
    let mut generator = Generator::new(46);
    let mut sizes = Vec::new();
    for round in 0..cycles {
        let frames: Vec<SimFrame> = (0..500).map(|_| generator.next_frame()).collect();
        let file = archive.capture(&format!("round{round}.ndjson"), &frames);
        let mut cmd = archive.command(&["import", &file, "--batch-size", "40"]);
        cmd.env(keyframe::EVENTS_BETWEEN_ENV, EVENTS_BETWEEN.to_string());
        finish(cmd.spawn().expect("spawn import"))
            .await
            .assert_success();
        let (store, cluster) = archive.open("default").await;
        if let Some((_, newest)) = store.span(&cluster).await.expect("span") {
            if newest > 1_500 {
                let cut = (newest - 1_000).to_string();
                prune(&archive, &["--before-index", &cut]).await;
            }
        }
        let size = store.size().await.expect("size");
        store.close().await;
        let names = match backend {
            Backend::Sqlite => "SELECT SUM(pgsize) AS n FROM dbstat WHERE name LIKE '%names%'",
            Backend::Postgres => "SELECT pg_total_relation_size('names') AS n",
        };
        let names = u64::try_from(count(&archive, names).await).unwrap_or(0);
        sizes.push(size.saturating_sub(names));
    }
    sizes
}

async fn repeated_ingest_and_prune_cycles_do_not_grow_the_archive(backend: Backend) {
    let cycles = std::env::var("RETENTION_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let sizes = sizes_over_cycles(backend, cycles).await;
    eprintln!("{backend:?}: size without `names` after each cycle: {sizes:?}");
    // From a third of the way through (the fourth cycle at the earliest),
    // about as much is pruned as is added. On PostgreSQL the prune's
    // VACUUM must reach the summaries ingest updates on every event:
    // without it, the tables grew 17% over the last seven of ten cycles
    // and 20% over the last eleven of sixteen; with it, 11% and 10%,
    // mostly in event_log's indexes, whose emptied pages a later VACUUM
    // recycles.
    let settled = sizes[(sizes.len() / 3).max(3)];
    let last = sizes[sizes.len() - 1];
    assert!(
        last <= settled + settled * 3 / 20,
        "grew from {settled} to {last}: {sizes:?}"
    );
}

on_both_backends!(
    the_reports_lose_the_pruned_events_and_keep_the_kept_ones,
    a_prune_beside_a_running_ingest_lets_it_keep_committing,
    repeated_ingest_and_prune_cycles_do_not_grow_the_archive,
    pruning_by_index_keeps_snapshots_after_the_cut_whole,
    answers_reaching_before_the_cut_say_history_was_pruned,
    replay_from_before_the_cut_starts_at_the_first_kept_index,
    pruning_by_time_cuts_at_the_moment_of_that_time,
    bad_input_is_refused_and_changes_nothing,
    ingest_with_retain_prunes_while_ingesting,
    retain_size_keeps_the_archive_under_budget,
);

#[tokio::test]
async fn a_database_user_that_may_not_write_is_refused_and_nothing_changes() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let (archive, frames) = archived(Backend::Postgres).await;
    let stored = events(&archive).await;
    // Enough to open the archive (the migrator creates its table if
    // missing), not to change it.
    let reader = Role::create(
        &archive,
        &format!("reader_{}", std::process::id()),
        &[
            "CREATE ON SCHEMA public",
            "SELECT ON ALL TABLES IN SCHEMA public",
        ],
    )
    .await;
    let cut = halfway(&frames).to_string();
    let run = archive
        .run(&["prune", "--db", &reader.url, "--before-index", &cut])
        .await;
    reader.drop_role(&archive).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("may not be written by this user")
            && run.stderr.contains("nothing was pruned"),
        "{}",
        run.stderr
    );
    assert_eq!(events(&archive).await, stored);
    assert_eq!(archive.status().await.clusters[0].pruned, None);
}

/// The bytes of an SQLite archive's file once everything its WAL holds is
/// copied into it: a command that exits before its last connection checks
/// the WAL in (seen once, under load) leaves pages there.
async fn on_disk(archive: &Archive) -> u64 {
    archive.execute(&["PRAGMA wal_checkpoint(TRUNCATE)"]).await;
    std::fs::metadata(&archive.path).expect("file").len()
}

#[tokio::test]
async fn a_new_sqlite_archive_shrinks_after_a_prune() {
    let (archive, frames) = archived(Backend::Sqlite).await;
    let before = on_disk(&archive).await;
    let cut = frames[frames.len() * 9 / 10].index;
    let out = prune(&archive, &["--before-index", &cut.to_string()]).await;
    assert!(!out.contains("VACUUM"), "{out}");
    let after = on_disk(&archive).await;
    assert!(after < before / 2, "{after} not under half of {before}");
}

#[tokio::test]
async fn an_upgrade_that_rebuilds_a_table_gives_its_old_pages_back() {
    let (archive, _) = archived(Backend::Sqlite).await;
    archive.execute(older::BEFORE_ALLOCATION_TEXTS).await;
    let free = "SELECT freelist_count AS n FROM pragma_freelist_count()";
    assert!(count(&archive, free).await > 0, "the undo freed pages");
    archive.run(&["migrate"]).await.assert_success();
    assert_eq!(count(&archive, free).await, 0);
}

#[tokio::test]
async fn an_archive_without_incremental_vacuum_is_told_how_to_get_the_space_back() {
    let (archive, frames) = archived(Backend::Sqlite).await;
    archive
        .execute(&["PRAGMA auto_vacuum = NONE", "VACUUM"])
        .await;
    let cut = halfway(&frames).to_string();
    let out = prune(&archive, &["--before-index", &cut]).await;
    assert!(
        out.contains("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;"),
        "{out}"
    );
}

#[tokio::test]
async fn a_file_that_is_no_archive_is_refused_and_left_alone() {
    let archive = Archive::new(Backend::Sqlite).await;
    let other = archive.file("other.db");
    std::fs::write(&other, "not a database").expect("write");
    for db in [
        format!("sqlite://{}", other.display()),
        format!("sqlite://{}", archive.file("missing.db").display()),
    ] {
        let run = archive
            .run(&["prune", "--db", &db, "--before-index", "10"])
            .await;
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr.contains("is not a nomad-chronicle archive")
                || run.stderr.contains("no archive at"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read(&other).expect("read"), b"not a database");
    assert!(!archive.file("missing.db").exists());
}
