//! Every key of every JSON answer (`status` and each `query`, as one
//! document and as NDJSON) is the one docs/json.md documents, and every time
//! follows its convention: RFC 3339 with nanoseconds, Unix ns beside it.

use std::collections::HashMap;

use nomad_sim::Generator;
use serde_json::Value;

use crate::common::{Archive, Backend, first_key, on_both_backends};

/// A documented key: its name, whether it may be absent, and the shape of
/// the object(s) it holds, if any (with whether it is a list).
#[derive(Debug, Clone)]
pub(crate) struct Key {
    name: String,
    optional: bool,
    shape: Option<(String, bool)>,
}

/// The shapes of docs/json.md's ```shape blocks, by name.
pub(crate) fn documented() -> HashMap<String, Vec<Key>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let mut shapes = HashMap::new();
    for block in doc.split("```shape\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let (name, keys) = line.split_once(':').expect("`Shape: keys`");
            let keys = keys.split_whitespace().map(parse_key).collect();
            shapes.insert(name.trim().to_owned(), keys);
        }
    }
    shapes
}

/// `Key`, `Key?`, `Key:Shape`, `Key:Shape[]` or `Key:Shape?`.
fn parse_key(word: &str) -> Key {
    let optional = word.ends_with('?');
    let word = word.trim_end_matches('?');
    match word.split_once(':') {
        Some((name, shape)) => Key {
            name: name.to_owned(),
            optional,
            shape: Some((
                shape.trim_end_matches("[]").to_owned(),
                shape.ends_with("[]"),
            )),
        },
        None => Key {
            name: word.to_owned(),
            optional,
            shape: None,
        },
    }
}

/// Whether a time follows the convention.
fn rfc3339_ns(text: &str) -> bool {
    let (date, rest) = text.split_at(text.len().min(19));
    let well_dated = date.len() == 19 && date.as_bytes()[10] == b'T';
    let Some(rest) = rest.strip_prefix('.') else {
        return false;
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let zone = &rest[digits.len()..];
    let zoned = zone == "Z" || (zone.len() == 6 && zone.as_bytes()[3] == b':');
    well_dated && digits.len() == 9 && zoned
}

/// Checks `value` against shape `name`; returns what is wrong, with `path`.
pub(crate) fn check(
    shapes: &HashMap<String, Vec<Key>>,
    name: &str,
    value: &Value,
    path: &str,
) -> Vec<String> {
    let Some(keys) = shapes.get(name) else {
        return vec![format!("{path}: shape `{name}` is not documented")];
    };
    let Some(object) = value.as_object() else {
        return vec![format!("{path}: not an object: {value}")];
    };
    let mut wrong = Vec::new();
    for key in object.keys() {
        if !keys.iter().any(|k| &k.name == key) {
            wrong.push(format!("{path}.{key}: not documented in `{name}`"));
        }
    }
    for key in keys {
        let here = format!("{path}.{}", key.name);
        let Some(v) = object.get(&key.name) else {
            if !key.optional {
                wrong.push(format!("{here}: missing"));
            }
            continue;
        };
        wrong.extend(check_time(&key.name, v, &here));
        match (&key.shape, v) {
            (Some(_), Value::Null) => {}
            (Some((shape, true)), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    wrong.extend(check(shapes, shape, item, &format!("{here}[{i}]")));
                }
            }
            (Some((_, true)), v) => wrong.push(format!("{here}: not a list: {v}")),
            (Some((shape, false)), v) => wrong.extend(check(shapes, shape, v, &here)),
            (None, _) => {}
        }
    }
    wrong
}

/// A key named as a time holds RFC 3339 with nanoseconds; its `Ns` twin an integer.
fn check_time(key: &str, v: &Value, path: &str) -> Option<String> {
    let is_time = (key == "Time" || key == "Received" || key.ends_with("At"))
        || (key.ends_with("Time") && key != "TimeSource");
    match v {
        Value::Null => None,
        Value::String(s) if is_time && !rfc3339_ns(s) => {
            Some(format!("{path}: `{s}` is not RFC 3339 with nanoseconds"))
        }
        v if key.ends_with("Ns") && !v.is_i64() => Some(format!("{path}: {v} is not Unix ns")),
        v if is_time && !v.is_string() => Some(format!("{path}: {v} is not a time")),
        _ => None,
    }
}

/// Runs `args` and checks its JSON document against `shape`.
async fn document(archive: &Archive, args: &[&str], shape: &str) -> Value {
    let run = archive.run(args).await;
    run.assert_success();
    let value: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let wrong = check(&documented(), shape, &value, shape);
    assert!(wrong.is_empty(), "{args:?}:\n{}", wrong.join("\n"));
    value
}

/// Runs `args` with NDJSON output and checks each line against `shape`.
async fn lines(archive: &Archive, args: &[&str], shape: &str) -> usize {
    let run = archive.run(args).await;
    run.assert_success();
    let shapes = documented();
    let mut count = 0;
    for line in run.stdout.lines() {
        let value: Value = serde_json::from_str(line).expect("a JSON line");
        let wrong = check(&shapes, shape, &value, shape);
        assert!(wrong.is_empty(), "{args:?}:\n{}", wrong.join("\n"));
        count += 1;
    }
    count
}

async fn every_answer_has_the_documented_keys_and_times(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(91).frames(1_500);
    // Two imports with a stretch between them: a recorded gap.
    for (name, part) in [("a.ndjson", &frames[..600]), ("b.ndjson", &frames[700..])] {
        let file = archive.capture(name, part);
        archive.run(&["import", &file]).await.assert_success();
    }
    let last = frames.last().expect("frames").index.to_string();
    let middle = frames[650].index.to_string();

    let events = document(
        &archive,
        &["query", "events", "--output", "json"],
        "EventsDocument",
    )
    .await;
    assert!(
        !events["Gaps"].as_array().expect("Gaps").is_empty(),
        "a gap is named"
    );
    assert!(
        lines(
            &archive,
            &["query", "events", "--output", "ndjson"],
            "Event"
        )
        .await
            > 0
    );
    for (kind, topic) in [
        ("job", "Job"),
        ("alloc", "Allocation"),
        ("node", "Node"),
        ("eval", "Evaluation"),
        ("deployment", "Deployment"),
    ] {
        let id = first_key(&frames, topic);
        let doc = document(
            &archive,
            &["query", kind, &id, "--output", "json"],
            "TimelineDocument",
        )
        .await;
        assert_eq!(doc["Subject"], topic);
        lines(
            &archive,
            &["query", kind, &id, "--output", "ndjson"],
            "Entry",
        )
        .await;
    }
    let alloc = first_key(&frames, "Allocation");
    let state = ["query", "state", "Allocation", &alloc, "--at-index", &last];
    document(
        &archive,
        &[&state[..], &["--output", "json"]].concat(),
        "State",
    )
    .await;
    let snapshot = ["query", "snapshot", "--at-index", &last, "--output"];
    let doc = document(
        &archive,
        &[&snapshot[..], &["json"]].concat(),
        "SnapshotDocument",
    )
    .await;
    assert!(
        !doc["Allocations"]
            .as_array()
            .expect("Allocations")
            .is_empty()
    );
    lines(
        &archive,
        &[&snapshot[..], &["ndjson"]].concat(),
        "SnapshotObject",
    )
    .await;

    for (kind, shape, rows, row) in [
        (
            "allocs",
            "AllocsDocument",
            "Allocations",
            "ListedAllocation",
        ),
        (
            "deployments",
            "DeploymentsDocument",
            "Deployments",
            "ListedDeployment",
        ),
        ("evals", "EvalsDocument", "Evaluations", "ListedEvaluation"),
        ("jobs", "JobsDocument", "Jobs", "ListedJob"),
    ] {
        let doc = document(&archive, &["query", kind, "--output", "json"], shape).await;
        assert!(!doc[rows].as_array().expect(rows).is_empty(), "{kind}");
        lines(&archive, &["query", kind, "--output", "ndjson"], row).await;
    }

    let prune = ["prune", "--before-index", &middle, "--output", "json"];
    let report = document(&archive, &prune, "PruneReport").await;
    assert!(report["Pruned"]["BeforeIndex"].is_u64(), "{report}");
    let status = document(&archive, &["status", "--output", "json"], "Status").await;
    let cluster = &status["Clusters"][0];
    assert!(cluster["Pruned"].is_object(), "{cluster}");
    assert!(cluster["FirstEventAtNs"].is_i64(), "{cluster}");
}

on_both_backends!(every_answer_has_the_documented_keys_and_times);

#[test]
fn the_schema_check_catches_an_undocumented_a_missing_key_and_a_bad_time() {
    let shapes = documented();
    let gap = serde_json::json!({"FromIndex": 1, "ToIndex": 3, "Kind": "buffer",
        "Reason": "r", "DetectedAt": "2026-12-04T16:41:30.123Z", "from_index": 1});
    let wrong = check(&shapes, "Gap", &gap, "Gap");
    assert!(
        wrong
            .iter()
            .any(|w| w.contains("from_index: not documented")),
        "{wrong:?}"
    );
    assert!(
        wrong
            .iter()
            .any(|w| w.contains("not RFC 3339 with nanoseconds")),
        "{wrong:?}"
    );
    let missing = serde_json::json!({"FromIndex": 1});
    assert!(
        check(&shapes, "Gap", &missing, "Gap")
            .iter()
            .any(|w| w.ends_with("missing"))
    );
    assert!(rfc3339_ns("2026-12-04T17:41:30.123456789+01:00"));
}
