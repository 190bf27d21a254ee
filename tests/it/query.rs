//! `query`: answers checked against the history the simulator generated.

use nomad_chronicle::nomad::{Event, Frame, Line, parse_line};
use nomad_sim::{Generator, SimEvent, SimFrame};
use serde_json::Value;

use crate::common::{Archive, Backend, first_key, on_both_backends, without_times};

/// Imports `frames` into `archive` as cluster `default`.
async fn import(archive: &Archive, name: &str, frames: &[SimFrame]) {
    let file = archive.capture(name, frames);
    archive.run(&["import", &file]).await.assert_success();
}

fn ndjson(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

async fn events_of_one_allocation_by_prefix(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(71).frames(3_000);
    import(&archive, "c.ndjson", &frames).await;
    let alloc = first_key(&frames, "Allocation");
    let want: Vec<(u64, Value)> = frames
        .iter()
        .flat_map(|f| f.events.iter().map(move |e| (f.index, e)))
        .filter(|(_, e)| e.topic == "Allocation" && e.key == alloc)
        .map(|(i, e)| (i, serde_json::from_str(&e.json).expect("json")))
        .collect();

    let run = archive
        .run(&[
            "query",
            "events",
            "--alloc",
            &alloc[..6],
            "--output",
            "ndjson",
        ])
        .await;

    run.assert_success();
    let got = ndjson(&run.stdout);
    for line in &got {
        for field in ["Index", "Topic", "Type", "Key", "Namespace", "Time"] {
            assert!(!line[field].is_null(), "{field} missing in {line}");
        }
    }
    let got: Vec<(u64, Value)> = got
        .iter()
        .map(|l| (l["Index"].as_u64().unwrap_or(0), l["Event"].clone()))
        .collect();
    assert_eq!(got, want);
}

async fn events_of_a_job_in_one_namespace_as_a_table(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(72).frames(3_000);
    import(&archive, "c.ndjson", &frames).await;
    let job = first_key(&frames, "Job");
    let json: Value = {
        let run = archive
            .run(&["query", "events", "--job", &job, "--output", "json"])
            .await;
        run.assert_success();
        serde_json::from_str(&run.stdout).expect("one JSON document")
    };
    let events = json["Events"].as_array().cloned().unwrap_or_default();
    let want = frames
        .iter()
        .flat_map(|f| &f.events)
        .filter(|e| {
            let v: Value = serde_json::from_str(&e.json).unwrap_or(Value::Null);
            e.key == job && e.topic == "Job" || v["Payload"][&e.topic]["JobID"] == job.as_str()
        })
        .count();
    assert_eq!(events.len(), want);
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["Index"].as_u64() <= w[1]["Index"].as_u64()),
        "newest last"
    );

    let table = archive
        .run(&["query", "events", "--job", &job, "--topic", "job"])
        .await;
    table.assert_success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("INDEX  TIME"), "{}", table.stdout);
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(" Job ") && l.contains("version=")),
        "{}",
        table.stdout
    );
}

async fn state_at_an_index_is_the_last_description_before_it(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(73).frames(3_000);
    import(&archive, "c.ndjson", &frames).await;
    let alloc = first_key(&frames, "Allocation");
    let updates: Vec<(u64, &SimEvent)> = frames
        .iter()
        .flat_map(|f| f.events.iter().map(move |e| (f.index, e)))
        .filter(|(_, e)| e.topic == "Allocation" && e.key == alloc)
        .collect();
    assert!(updates.len() >= 2, "the allocation changes at least once");
    let (second, _) = updates[1];
    let (first, first_event) = updates[0];

    // Just before the second update, the first one is the state.
    let run = archive
        .run(&[
            "query",
            "state",
            "Allocation",
            &alloc,
            "--at-index",
            &(second - 1).to_string(),
            "--output",
            "json",
        ])
        .await;

    run.assert_success();
    let got: Value = serde_json::from_str(&run.stdout).expect("json");
    let want: Value = serde_json::from_str(&first_event.json).expect("json");
    assert_eq!(got["Index"].as_u64(), Some(first));
    assert_eq!(got["Object"], want["Payload"]["Allocation"]);

    let before = archive
        .run(&[
            "query",
            "state",
            "Allocation",
            &alloc,
            "--at-index",
            &(first - 1).to_string(),
        ])
        .await;
    assert_eq!(before.code, Some(1), "nothing yet: {}", before.stderr);
    assert!(
        before.stderr.contains(&format!(
            "no events for allocation `{alloc}` at or before index"
        )),
        "{}",
        before.stderr
    );
}

async fn ambiguous_and_unknown_ids_are_told_apart(backend: Backend) {
    let archive = Archive::new(backend).await;
    let alloc = |index: u64, id: &str| SimFrame {
        index,
        events: vec![SimEvent::new(
            "Allocation",
            "PlanResult",
            id,
            "default",
            vec!["web".into(), String::new()],
            index,
            serde_json::json!({"Allocation": {"ID": id, "JobID": "web"}}),
        )],
    };
    let frames = [
        alloc(10, "abcd1111-0000-0000-0000-000000000000"),
        alloc(11, "abcd2222-0000-0000-0000-000000000000"),
    ];
    import(&archive, "c.ndjson", &frames).await;

    let ambiguous = archive.run(&["query", "events", "--alloc", "abcd"]).await;
    assert_eq!(ambiguous.code, Some(2));
    assert!(
        ambiguous.stderr.contains("the prefix `abcd` matches several allocations: abcd1111-0000-0000-0000-000000000000, abcd2222-0000-0000-0000-000000000000"),
        "{}",
        ambiguous.stderr
    );
    let unknown = archive
        .run(&["query", "events", "--alloc", "ffff0000"])
        .await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown
            .stderr
            .contains("no events for allocation `ffff0000` (archive covers index 10–11)"),
        "{}",
        unknown.stderr
    );
    let unique = archive
        .run(&["query", "events", "--alloc", "abcd2", "--output", "ndjson"])
        .await;
    unique.assert_success();
    assert_eq!(ndjson(&unique.stdout).len(), 1);
}

async fn answers_say_which_gaps_they_overlap(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(74).frames(1_000);
    import(&archive, "a.ndjson", &frames[..100]).await;
    import(&archive, "b.ndjson", &frames[200..]).await;
    let (from, to) = (frames[99].index, frames[200].index);

    let run = archive.run(&["query", "events", "--topic", "Node"]).await;

    run.assert_success();
    assert!(
        run.stdout.contains(&format!(
            "! archive has no events between index {from} and {to}"
        )),
        "{}",
        run.stdout
    );
    let json = archive.run(&["query", "events", "--output", "json"]).await;
    let doc: Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc["Gaps"][0]["FromIndex"].as_u64(), Some(from));
}

/// `(Index, Topic, Key)` of events.
type Identities = Vec<(u64, String, String)>;

/// The identities of each ndjson line.
fn identities(stdout: &str) -> Identities {
    ndjson(stdout)
        .iter()
        .map(|l| {
            (
                l["Index"].as_u64().unwrap_or(0),
                l["Topic"].as_str().unwrap_or("").to_owned(),
                l["Key"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn each_object_filter_finds_exactly_its_events_in_stream_order(backend: Backend) {
    let archive = Archive::new(backend).await;
    let mut frames = Generator::new(75).frames(3_000);
    // A key under two topics, the one that sorts first found last: an ACL
    // policy named like a job, then that job again.
    let job = first_key(&frames, "Job");
    let last = frames.last().map(|f| f.index).expect("frames");
    frames.push(SimFrame {
        index: last + 1,
        events: vec![SimEvent::new(
            "ACLPolicy",
            "ACLPolicyUpserted",
            job.as_str(),
            "",
            vec![],
            last + 1,
            serde_json::json!({"ACLPolicy": {"Name": job}}),
        )],
    });
    frames.push(SimFrame {
        index: last + 2,
        events: vec![SimEvent::new(
            "Job",
            "JobRegistered",
            job.as_str(),
            "default",
            vec![],
            last + 2,
            serde_json::json!({"Job": {"ID": job, "Namespace": "default", "Version": 99}}),
        )],
    });
    import(&archive, "c.ndjson", &frames).await;
    let parsed: Vec<Frame> = frames
        .iter()
        .filter_map(|f| match parse_line(f.to_line().as_bytes()) {
            Ok(Line::Frame(frame)) => Some(frame),
            _ => None,
        })
        .collect();
    let events = || {
        parsed
            .iter()
            .flat_map(|f| f.events.iter().map(move |e| (f.index, e)))
    };
    let pick = |field: fn(&Event) -> Option<&String>| {
        events()
            .find_map(|(_, e)| field(e).cloned())
            .expect("the history has one")
    };
    let node = pick(|e| e.node_id.as_ref());
    let eval = pick(|e| e.eval_id.as_ref());
    let deployment = pick(|e| e.deployment_id.as_ref());
    let alloc = first_key(&frames, "Allocation");
    let want = |keep: &dyn Fn(&Event) -> bool| -> Identities {
        events()
            .filter(|(_, e)| keep(e))
            .map(|(i, e)| (i, e.topic.clone(), e.key.clone()))
            .collect()
    };
    let cases: Vec<(Vec<&str>, Identities)> = vec![
        (
            vec!["--node", &node],
            want(&|e| e.node_id.as_ref() == Some(&node)),
        ),
        (
            vec!["--eval", &eval],
            want(&|e| e.eval_id.as_ref() == Some(&eval)),
        ),
        (
            vec!["--deployment", &deployment],
            want(&|e| e.deployment_id.as_ref() == Some(&deployment)),
        ),
        (
            vec!["--topic", "Allocation", "--key", &alloc],
            want(&|e| e.topic == "Allocation" && e.key == alloc),
        ),
        (vec!["--key", &alloc], want(&|e| e.key == alloc)),
        (vec!["--key", &job], want(&|e| e.key == job)),
    ];
    for (args, want) in cases {
        assert!(want.len() > 1, "{args:?} finds several events");
        let mut command = vec!["query", "events", "--output", "ndjson"];
        command.extend(&args);
        let run = archive.run(&command).await;
        run.assert_success();
        assert_eq!(identities(&run.stdout), want, "{args:?}");

        // With a limit, the newest ones, still newest last.
        command.extend(["--limit", "2"]);
        let run = archive.run(&command).await;
        run.assert_success();
        assert_eq!(
            identities(&run.stdout),
            want[want.len() - 2..],
            "{args:?} --limit 2"
        );
    }
}

/// Stores `frames` as received at `received_at` (Unix milliseconds).
async fn store_received_at(archive: &Archive, frames: &[SimFrame], received_at: i64) {
    let (store, cluster, mut lease) = archive.writer("default").await;
    let batch = crate::common::batch(frames, received_at);
    lease.commit(&cluster, &batch).await.expect("commit");
    drop(lease);
    store.close().await;
}

/// `--since` / `--until` select by each event's time. Events whose frames
/// carry no time of Nomad's are dated by their receipt, which runs with the
/// raft index only while history arrives live: a capture of older history
/// imported later is received after newer events. The window holds exactly
/// the events dated in it, in stream order.
async fn a_time_window_holds_exactly_the_events_dated_in_it(backend: Backend) {
    let archive = Archive::new(backend).await;
    // Over a page of replay (1,000 events) in each third.
    let frames = without_times(Generator::new(74).frames(4_500));
    let third = frames.len() / 3;
    let (old, rest) = frames.split_at(third);
    let (middle, new) = rest.split_at(third);
    // 2026-01-01T00:00:01Z, …:02Z, …:03Z: the middle first, then the newest,
    // then the oldest (a backfill).
    const NEW_YEAR: i64 = 1_767_225_600_000;
    store_received_at(&archive, middle, NEW_YEAR + 1_000).await;
    store_received_at(&archive, new, NEW_YEAR + 2_000).await;
    store_received_at(&archive, old, NEW_YEAR + 3_000).await;
    let indexes = |frames: &[SimFrame]| -> Vec<u64> {
        frames
            .iter()
            .flat_map(|f| f.events.iter().map(move |_| f.index))
            .collect()
    };
    let query = |window: &'static [&'static str]| {
        let archive = &archive;
        async move {
            let mut args = vec!["query", "events", "--output", "ndjson", "--limit", "100000"];
            args.extend_from_slice(window);
            let run = archive.run(&args).await;
            let got: Vec<u64> = ndjson(&run.stdout)
                .iter()
                .map(|e| e["Index"].as_u64().expect("Index"))
                .collect();
            (run, got)
        }
    };

    let (run, got) = query(&[
        "--since",
        "2026-01-01T00:00:02Z",
        "--until",
        "2026-01-01T00:00:03Z",
    ])
    .await;
    run.assert_success();
    assert_eq!(got, indexes(new));
    // The oldest and the newest events, not the middle ones between them.
    let (run, got) = query(&["--since", "2026-01-01T00:00:02Z"]).await;
    run.assert_success();
    assert_eq!(got, [indexes(old), indexes(new)].concat());
    let (run, got) = query(&["--until", "2026-01-01T00:00:02Z"]).await;
    run.assert_success();
    assert_eq!(got, indexes(middle));
    let (run, got) = query(&[
        "--since",
        "2026-01-01T00:00:03Z",
        "--until",
        "2026-01-01T00:00:03.001Z",
    ])
    .await;
    run.assert_success();
    assert_eq!(got, indexes(old));
    // Replay reads the same windows as frames, a page at a time.
    let frame_indexes =
        |frames: &[SimFrame]| -> Vec<u64> { frames.iter().map(|f| f.index).collect() };
    for (window, want) in [
        (
            vec!["--since", "2026-01-01T00:00:02Z"],
            [frame_indexes(old), frame_indexes(new)].concat(),
        ),
        (
            vec![
                "--since",
                "2026-01-01T00:00:01Z",
                "--until",
                "2026-01-01T00:00:02Z",
            ],
            frame_indexes(middle),
        ),
    ] {
        let run = archive
            .run(&[&["replay"], window.as_slice()].concat())
            .await;
        run.assert_success();
        let got: Vec<u64> = ndjson(&run.stdout)
            .iter()
            .map(|f| f["Index"].as_u64().expect("Index"))
            .collect();
        assert_eq!(got, want, "replay {window:?}");
    }
    // Nothing received in the window: said so, with a non-zero exit.
    let (run, got) = query(&["--since", "2026-01-01T00:00:04Z"]).await;
    assert!(got.is_empty());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("no events match"), "{}", run.stderr);
}

on_both_backends!(
    events_of_one_allocation_by_prefix,
    events_of_a_job_in_one_namespace_as_a_table,
    state_at_an_index_is_the_last_description_before_it,
    ambiguous_and_unknown_ids_are_told_apart,
    answers_say_which_gaps_they_overlap,
    each_object_filter_finds_exactly_its_events_in_stream_order,
    a_time_window_holds_exactly_the_events_dated_in_it,
);
