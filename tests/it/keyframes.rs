//! Snapshots from keyframes: what `query snapshot` shows at any index is
//! what replaying the history up to it says, whether the keyframes were
//! built while importing or afterwards by the catch-up; a stopped job stays
//! (dead), a purged job and a deregistered node go; terminal allocations
//! outside the window are counted, and `--all` shows them.

use std::collections::BTreeMap;

use nomad_chronicle::store::{StoreError, keyframe};
use nomad_sim::{Generator, SimEvent, SimFrame};
use serde_json::{Value, json};

use crate::common::{Archive, Backend, finish, on_both_backends};
use crate::reporting::db::Db;

/// Keyframes of the tests' archives follow each other every this many events.
const EVENTS_BETWEEN: u64 = 150;

/// What an event says of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    Present,
    Terminal,
    Removed,
}

/// (topic, namespace, key) → the index of the event that last described
/// the object and what it said, replaying `frames` up to `upto`.
type Replayed = BTreeMap<(String, String, String), (u64, Said)>;

fn replay(frames: &[SimFrame], upto: u64) -> Replayed {
    let mut state = Replayed::new();
    for event in frames
        .iter()
        .filter(|f| f.index <= upto)
        .flat_map(|f| &f.events)
    {
        let payload: Value =
            serde_json::from_str::<Value>(&event.json).expect("json")["Payload"].clone();
        let said = match (event.topic.as_str(), event.event_type.as_str()) {
            ("Node", "NodeDeregistration") => Said::Removed,
            ("Job", "JobDeregistered" | "JobBatchDeregistered") if payload["Deleted"] == true => {
                Said::Removed
            }
            ("Allocation", _) => match payload["Allocation"]["ClientStatus"].as_str() {
                Some("complete" | "failed" | "lost") => Said::Terminal,
                _ => Said::Present,
            },
            ("Node" | "Job", _) => Said::Present,
            _ => continue,
        };
        let id = (
            event.topic.clone(),
            event.namespace.clone(),
            event.key.clone(),
        );
        state.insert(id, (event.index, said));
    }
    state
}

/// (topic, namespace, key, index) of the replayed objects that said one of `kinds`.
fn expected(replayed: &Replayed, kinds: &[Said]) -> Vec<(String, String, String, u64)> {
    replayed
        .iter()
        .filter(|(_, (_, said))| kinds.contains(said))
        .map(|((t, n, k), (i, _))| (t.clone(), n.clone(), k.clone(), *i))
        .collect()
}

/// A snapshot's objects as (topic, namespace, key, index), sorted, and the
/// count of terminal allocations it left out.
struct Shown {
    objects: Vec<(String, String, String, u64)>,
    left_out: Option<u64>,
}

async fn snapshot(archive: &Archive, index: u64, extra: &[&str]) -> Shown {
    let index = index.to_string();
    let mut args = vec![
        "query",
        "snapshot",
        "--at-index",
        &index,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let run = archive.run(&args).await;
    run.assert_success();
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let mut objects: Vec<_> = ["Nodes", "Jobs", "Allocations"]
        .iter()
        .flat_map(|list| doc[list].as_array().cloned().unwrap_or_default())
        .map(|o| {
            let text = |f: &str| o[f].as_str().unwrap_or_default().to_owned();
            (
                text("Topic"),
                text("Namespace"),
                text("Key"),
                o["Index"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    objects.sort();
    Shown {
        objects,
        left_out: doc["TerminalAllocationsLeftOut"].as_u64(),
    }
}

/// Imports `frames` into cluster `default` in batches of 40 events, with
/// keyframes every `between` events.
async fn import(archive: &Archive, frames: &[SimFrame], between: u64) {
    let file = archive.capture("capture.ndjson", frames);
    let mut cmd = archive.command(&["import", &file, "--batch-size", "40"]);
    cmd.env(keyframe::EVENTS_BETWEEN_ENV, between.to_string());
    finish(cmd.spawn().expect("spawn import"))
        .await
        .assert_success();
}

/// The keyframes of the archive: (index, objects, terminal allocations).
pub(crate) async fn keyframes(archive: &Archive) -> Vec<(i64, i64, i64)> {
    let mut db = Db::connect(archive).await;
    db.rows("SELECT raft_index, objects, terminal_allocations FROM keyframes ORDER BY raft_index")
        .await
        .iter()
        .map(|r| {
            let int = |c: &str| r[c].as_i64().unwrap_or(-1);
            (
                int("raft_index"),
                int("objects"),
                int("terminal_allocations"),
            )
        })
        .collect()
}

/// Indexes around the first keyframes and the end of history.
fn around(keyframes: &[(i64, i64, i64)], last: u64) -> Vec<u64> {
    let mut at: Vec<u64> = keyframes
        .iter()
        .take(3)
        .flat_map(|(k, _, _)| {
            let k = u64::try_from(*k).unwrap_or(0);
            [k - 1, k, k + 1]
        })
        .collect();
    at.extend([last / 3, last]);
    at
}

/// Asserts every snapshot at `indexes` against the replay of `frames`.
async fn assert_snapshots_replay(archive: &Archive, frames: &[SimFrame], indexes: &[u64]) {
    use Said::{Present, Terminal};
    for &index in indexes {
        let replayed = replay(frames, index);
        let all = snapshot(archive, index, &["--all"]).await;
        assert_eq!(
            all.objects,
            expected(&replayed, &[Present, Terminal]),
            "--all at {index}"
        );
        assert_eq!(all.left_out, None);
        // No window: present objects, and those terminal at the very moment.
        let now = snapshot(archive, index, &["--terminal-within", "0s"]).await;
        let present = expected(&replayed, &[Present]);
        let terminal = expected(&replayed, &[Terminal]);
        let (shown_present, shown_terminal): (Vec<_>, Vec<_>) =
            now.objects.into_iter().partition(|o| present.contains(o));
        assert_eq!(shown_present, present, "present at {index}");
        assert!(
            shown_terminal.iter().all(|o| terminal.contains(o)),
            "at {index}"
        );
        let left_out = now.left_out.expect("a count") as usize;
        assert_eq!(
            shown_terminal.len() + left_out,
            terminal.len(),
            "terminal at {index}"
        );
    }
}

/// Per job and per node (`("job" | "node", ID)`), how many of its
/// allocations are terminal after replaying `frames` up to `upto`.
fn terminal_by_owner(frames: &[SimFrame], upto: u64) -> BTreeMap<(&'static str, String), usize> {
    let mut latest: BTreeMap<&str, (String, String, bool)> = BTreeMap::new();
    for event in frames
        .iter()
        .filter(|f| f.index <= upto)
        .flat_map(|f| &f.events)
        .filter(|e| e.topic == "Allocation")
    {
        let doc: Value = serde_json::from_str(&event.json).expect("json");
        let a = &doc["Payload"]["Allocation"];
        let text = |f: &str| a[f].as_str().unwrap_or_default().to_owned();
        let terminal = matches!(
            text("ClientStatus").as_str(),
            "complete" | "failed" | "lost"
        );
        latest.insert(&event.key, (text("JobID"), text("NodeID"), terminal));
    }
    let mut counts = BTreeMap::new();
    for (job, node, terminal) in latest.into_values().filter(|(_, _, t)| *t) {
        *counts.entry(("job", job)).or_default() += usize::from(terminal);
        *counts.entry(("node", node)).or_default() += 1;
    }
    counts
}

/// Asserts, for the job and the node with the most terminal allocations at
/// each of `indexes`, that a snapshot narrowed to it shows or counts each.
async fn assert_narrowed_counts(archive: &Archive, frames: &[SimFrame], indexes: &[u64]) {
    for &index in indexes {
        let counts = terminal_by_owner(frames, index);
        for kind in ["job", "node"] {
            let Some(((_, id), &terminal)) = counts
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .max_by_key(|(_, n)| **n)
            else {
                continue;
            };
            let flag = format!("--{kind}");
            let args = [flag.as_str(), id.as_str(), "--terminal-within", "0s"];
            let narrowed = snapshot(archive, index, &args).await;
            let replayed = replay(frames, index);
            let shown = narrowed
                .objects
                .iter()
                .filter(|(t, n, k, _)| {
                    let said = replayed.get(&(t.clone(), n.clone(), k.clone()));
                    said.is_some_and(|(_, s)| *s == Said::Terminal)
                })
                .count();
            let left_out = narrowed.left_out.expect("a count") as usize;
            assert_eq!(shown + left_out, terminal, "{kind} {id} at {index}");
        }
    }
}

async fn snapshots_equal_the_replayed_history_around_keyframes(backend: Backend) {
    let frames = Generator::new(41).frames(1_500);
    let last = frames.last().map_or(0, |f| f.index);
    let archive = Archive::new(backend).await;
    import(&archive, &frames, EVENTS_BETWEEN).await;
    let built = keyframes(&archive).await;
    assert!(built.len() >= 5, "{built:?}");
    let terminal = expected(&replay(&frames, last), &[Said::Terminal]);
    assert!(!terminal.is_empty(), "the history has terminal allocations");
    assert_snapshots_replay(&archive, &frames, &around(&built, last)).await;
    // Narrowed to a job or a node, the keyframes' counts per job and node
    // are used, and agree with the replay.
    let mut db = Db::connect(&archive).await;
    let rows = db.rows("SELECT COUNT(*) AS n FROM terminal_counts").await;
    assert!(rows[0]["n"].as_i64() > Some(0), "{rows:?}");
    assert_narrowed_counts(&archive, &frames, &around(&built, last)).await;
}

async fn history_imported_behind_the_archive_drops_the_keyframes_it_falls_below(backend: Backend) {
    let frames = Generator::new(44).frames(1_200);
    let last = frames.last().map_or(0, |f| f.index);
    let (old, new) = frames.split_at(frames.len() / 2);
    let archive = Archive::new(backend).await;
    import(&archive, new, EVENTS_BETWEEN).await;
    let first_new = new.first().map_or(0, |f| f.index);
    assert!(
        keyframes(&archive)
            .await
            .iter()
            .all(|k| k.0 >= first_new as i64)
    );
    import(&archive, old, EVENTS_BETWEEN).await;
    let built = keyframes(&archive).await;
    assert!(!built.is_empty());
    let mut at = around(&built, last);
    at.extend([first_new - 1, first_new, last]);
    assert_snapshots_replay(&archive, &frames, &at).await;
}

async fn keyframes_built_by_the_catch_up_equal_those_built_while_importing(backend: Backend) {
    let frames = Generator::new(42).frames(1_200);
    let last = frames.last().map_or(0, |f| f.index);
    let during = Archive::new(backend).await;
    import(&during, &frames, EVENTS_BETWEEN).await;
    let after = Archive::new(backend).await;
    import(&after, &frames, 1 << 40).await;
    assert_eq!(keyframes(&after).await, vec![], "none while importing");

    keyframe::set_min_events_between(EVENTS_BETWEEN);
    let expected_keyframes = keyframes(&during).await;
    // Opening the archive catches up; so does asking again, from nothing.
    let (store, cluster) = after.open("default").await;
    assert_eq!(keyframes(&after).await, expected_keyframes);
    after
        .execute(&[
            "DELETE FROM keyframe_objects",
            "DELETE FROM terminal_counts",
            "DELETE FROM keyframes",
        ])
        .await;
    let heard = std::sync::Mutex::new(Vec::new());
    let progress = |index: u64, of: u64| heard.lock().expect("lock").push((index, of));
    let built = store
        .build_keyframes(&cluster, &progress)
        .await
        .expect("catch up");
    let again = store
        .build_keyframes(&cluster, &progress)
        .await
        .expect("again");
    store.close().await;

    assert_eq!(keyframes(&after).await, expected_keyframes);
    assert_eq!(built as usize, expected_keyframes.len());
    assert_eq!(again, 0, "nothing left to build");
    let heard = heard.into_inner().expect("lock");
    assert_eq!(heard.len(), expected_keyframes.len());
    assert!(heard.iter().all(|(_, of)| *of == last), "{heard:?}");
    for index in around(&expected_keyframes, last) {
        assert_eq!(
            snapshot(&after, index, &[]).await.objects,
            snapshot(&during, index, &[]).await.objects,
            "at {index}"
        );
    }
}

async fn the_catch_up_refuses_while_events_wait_for_their_time(backend: Backend) {
    let frames = Generator::new(43).frames(100);
    let archive = Archive::new(backend).await;
    import(&archive, &frames, EVENTS_BETWEEN).await;
    let (store, cluster) = archive.open("default").await;
    let unfill = "UPDATE event_log SET event_at = NULL \
                  WHERE raft_index = (SELECT MIN(raft_index) FROM event_log)";
    match Db::connect(&archive).await {
        Db::Sqlite(mut conn) => sqlx::query(unfill).execute(&mut conn).await.map(drop),
        Db::Postgres(mut conn) => sqlx::query(unfill).execute(&mut conn).await.map(drop),
    }
    .expect("unfill");
    let refused = store.build_keyframes(&cluster, &|_, _| {}).await;
    store.close().await;
    assert!(
        matches!(refused, Err(StoreError::Unfilled { .. })),
        "{refused:?}"
    );
}

fn event(topic: &str, kind: &str, key: &str, index: u64, payload: Value) -> SimEvent {
    let namespace = if topic == "Node" { "" } else { "default" };
    SimEvent::new(topic, kind, key, namespace, vec![], index, payload)
}

fn frame(index: u64, event: SimEvent) -> SimFrame {
    SimFrame {
        index,
        events: vec![event],
    }
}

fn node(index: u64, kind: &str, id: &str) -> SimFrame {
    let payload = json!({"Node": {"ID": id, "Name": id, "Status": "ready"}});
    frame(index, event("Node", kind, id, index, payload))
}

fn job(index: u64, kind: &str, id: &str, stop: bool, deleted: bool) -> SimFrame {
    let status = if stop { "dead" } else { "running" };
    let mut payload = json!({"Job": {"ID": id, "Name": id, "Namespace": "default", "Version": 0,
        "Stop": stop, "Status": status, "SubmitTime": 1_767_225_600_000_000_000_i64}});
    if deleted {
        payload["Deleted"] = json!(true);
    }
    frame(index, event("Job", kind, id, index, payload))
}

async fn a_stopped_job_stays_dead_and_purged_or_collected_jobs_and_deregistered_nodes_go(
    backend: Backend,
) {
    let frames = vec![
        node(10, "NodeRegistration", "node-1"),
        node(11, "NodeRegistration", "node-2"),
        job(12, "JobRegistered", "web", false, false),
        job(13, "JobRegistered", "batch", false, false),
        node(14, "NodeDeregistration", "node-2"),
        job(15, "JobDeregistered", "web", true, false),
        job(16, "JobDeregistered", "batch", true, true),
        // Nomad's job garbage collection reaps the stopped one.
        job(17, "JobBatchDeregistered", "web", true, true),
    ];
    let archive = Archive::new(backend).await;
    import(&archive, &frames, EVENTS_BETWEEN).await;
    let o = |t: &str, n: &str, k: &str, i| (t.to_owned(), n.to_owned(), k.to_owned(), i);
    assert_eq!(
        snapshot(&archive, 13, &[]).await.objects,
        vec![
            o("Job", "default", "batch", 13),
            o("Job", "default", "web", 12),
            o("Node", "", "node-1", 10),
            o("Node", "", "node-2", 11)
        ]
    );
    assert_eq!(
        snapshot(&archive, 16, &[]).await.objects,
        vec![o("Job", "default", "web", 15), o("Node", "", "node-1", 10)]
    );
    let table = archive
        .run(&["query", "snapshot", "--at-index", "16"])
        .await;
    let row: Vec<_> = ["web", "default", "0", "dead", "true", "15"].into();
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == row),
        "{}",
        table.stdout
    );
    let stop = archive
        .run(&["query", "job", "web", "--output", "ndjson"])
        .await;
    assert!(
        stop.stdout.contains(r#""Summary":"stopped""#),
        "{}",
        stop.stdout
    );
    let purge = archive
        .run(&["query", "job", "batch", "--output", "ndjson"])
        .await;
    assert!(
        purge.stdout.contains(r#""Summary":"purged""#),
        "{}",
        purge.stdout
    );
    assert_eq!(
        snapshot(&archive, 17, &[]).await.objects,
        vec![o("Node", "", "node-1", 10)]
    );
    let collected = archive
        .run(&["query", "job", "web", "--output", "ndjson"])
        .await;
    assert!(
        collected
            .stdout
            .contains(r#""Summary":"garbage-collected""#),
        "{}",
        collected.stdout
    );
}

/// An allocation of job `web` with its client status, at `minutes` after the job's submission.
fn alloc(index: u64, id: &str, client: &str, minutes: i64) -> SimFrame {
    let at = 1_767_225_600_000_000_000_i64 + minutes * 60_000_000_000;
    let payload = json!({"Allocation": {"ID": id, "JobID": "web", "Namespace": "default",
        "TaskGroup": "api", "NodeName": "node-1", "DesiredStatus": "run", "ClientStatus": client,
        "CreateTime": at, "ModifyTime": at}});
    frame(
        index,
        event("Allocation", "AllocationUpdated", id, index, payload),
    )
}

async fn terminal_allocations_outside_the_window_are_counted_and_all_shows_them(backend: Backend) {
    let a1 = "aaaaaaaa-0000-0000-0000-000000000001";
    let a2 = "aaaaaaaa-0000-0000-0000-000000000002";
    let a3 = "aaaaaaaa-0000-0000-0000-000000000003";
    let frames = vec![
        job(10, "JobRegistered", "web", false, false),
        alloc(11, a1, "running", 0),
        alloc(12, a1, "complete", 1),
        alloc(13, a2, "running", 180),
        alloc(14, a3, "failed", 181),
    ];
    let archive = Archive::new(backend).await;
    import(&archive, &frames, EVENTS_BETWEEN).await;
    let keys = |s: Shown| {
        (
            s.objects.into_iter().map(|o| o.2).collect::<Vec<_>>(),
            s.left_out,
        )
    };

    assert_eq!(
        keys(snapshot(&archive, 14, &[]).await),
        (
            vec![a2.to_owned(), a3.to_owned(), "web".to_owned()],
            Some(1)
        )
    );
    assert_eq!(
        keys(snapshot(&archive, 14, &["--terminal-within", "4h"]).await),
        (
            vec![
                a1.to_owned(),
                a2.to_owned(),
                a3.to_owned(),
                "web".to_owned()
            ],
            Some(0)
        )
    );
    // Narrowed to the job, the count comes from the job's own events.
    assert_eq!(
        keys(snapshot(&archive, 14, &["--job", "web"]).await),
        (
            vec![a2.to_owned(), a3.to_owned(), "web".to_owned()],
            Some(1)
        )
    );
    assert_eq!(
        keys(snapshot(&archive, 14, &["--all"]).await),
        (
            vec![
                a1.to_owned(),
                a2.to_owned(),
                a3.to_owned(),
                "web".to_owned()
            ],
            None
        )
    );
    let table = archive
        .run(&["query", "snapshot", "--at-index", "14"])
        .await;
    let header = table.stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        header.contains("1 terminal allocation last changed more than 1h before left out")
            && header.contains("--all"),
        "{header}"
    );
}

on_both_backends!(
    snapshots_equal_the_replayed_history_around_keyframes,
    keyframes_built_by_the_catch_up_equal_those_built_while_importing,
    the_catch_up_refuses_while_events_wait_for_their_time,
    history_imported_behind_the_archive_drops_the_keyframes_it_falls_below,
    a_stopped_job_stays_dead_and_purged_or_collected_jobs_and_deregistered_nodes_go,
    terminal_allocations_outside_the_window_are_counted_and_all_shows_them,
);
