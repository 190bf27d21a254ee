//! The reporting views (migration 0004, docs/reporting.md): the exact rows each
//! view returns for a scripted history (see `scenario`), and the documented
//! example queries, run verbatim from the document, on both backends.

pub(crate) mod db;
mod details;
mod scenario;

use serde_json::{Value, json};

use crate::common::{Archive, Backend, on_both_backends};
use db::{Db, flag, readable};
use scenario::{
    ALLOC, CRON_ALLOC, DEPLOYMENT, NODE, OOM_MESSAGE, Times, V0_SUBMITTED, V1_SUBMITTED, now_secs,
    scenario,
};

/// The scripted history imported into a fresh archive, a connection to it,
/// and the Unix ms range in which the import ran.
struct Scripted {
    archive: Archive,
    db: Db,
    times: Times,
    imported: std::ops::RangeInclusive<i64>,
}

impl Scripted {
    async fn new(backend: Backend) -> Scripted {
        let archive = Archive::new(backend).await;
        let times = Times::now();
        let file = archive.file("scripted.ndjson");
        let text: String = scenario(&times)
            .iter()
            .map(|f| f.to_line() + "\n")
            .collect();
        std::fs::write(&file, text).expect("write capture");
        let before = now_secs() * 1000;
        archive
            .run(&["import", &file.display().to_string()])
            .await
            .assert_success();
        let after = (now_secs() + 1) * 1000;
        let db = Db::connect(&archive).await;
        Scripted {
            archive,
            db,
            times,
            imported: before..=after,
        }
    }

    fn backend(&self) -> Backend {
        self.archive.backend
    }

    /// The rows of `sql`, with the arrival-time columns checked (the import
    /// ran now, so they are only known to lie in its time range) and removed.
    async fn rows(&mut self, sql: &str) -> Vec<Value> {
        let backend = self.backend();
        let mut rows = self.db.rows(sql).await;
        for row in &mut rows {
            // Nomad's time of the row: its readable form agrees (the values
            // themselves are checked by the tests that know them).
            for (ms, time) in [
                ("event_at", "event_time"),
                ("last_event_at", "last_event_time"),
            ] {
                if let Some(at) = row.remove(ms) {
                    let at = at.as_i64().expect("Unix ms");
                    assert_eq!(row.remove(time), Some(readable(backend, at)), "{time}");
                }
            }
            for (ms, time) in [
                ("received_at", "received_time"),
                ("last_received_at", "last_received_time"),
            ] {
                match (row.remove(ms), row.remove(time)) {
                    (Some(at), readable_at) => {
                        let at = at.as_i64().expect("Unix ms");
                        assert!(
                            self.imported.contains(&at),
                            "{ms} {at} not in {:?}",
                            self.imported
                        );
                        assert_eq!(readable_at, Some(readable(backend, at)), "{time}");
                    }
                    // A query that selects only the readable form: both
                    // forms sort as text, so it lies between the two ends.
                    (None, Some(Value::String(readable_at))) => {
                        let [first, last] =
                            [self.imported.start(), self.imported.end()].map(|&ms| {
                                readable(backend, ms)
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned()
                            });
                        assert!(
                            first <= readable_at && readable_at <= last,
                            "{time} {readable_at} not in {first}..{last}"
                        );
                    }
                    (None, None) => {}
                    (None, other) => panic!("{time} is {other:?}"),
                }
            }
        }
        rows.into_iter().map(Value::Object).collect()
    }

    /// The example query under `### {heading}` in docs/reporting.md, in this
    /// backend's dialect when the document gives it twice.
    fn documented(&self, heading: &str) -> String {
        documented_query(heading, self.backend())
    }
}

/// Read from the document itself, so the examples users copy are the ones
/// tested: the single ```` ```sql ```` block under the heading, or the one
/// that starts `-- sqlite3` / `-- psql` when there are two.
pub(crate) fn documented_query(heading: &str, backend: Backend) -> String {
    let doc = include_str!("../../docs/reporting.md");
    let start = doc
        .find(&format!("\n### {heading}\n"))
        .unwrap_or_else(|| panic!("docs/reporting.md has no `### {heading}`"));
    let section = &doc[start + 1..];
    let section = &section[..section[4..]
        .find("\n#")
        .map_or(section.len(), |end| end + 4)];
    let blocks: Vec<&str> = section
        .split("```sql\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    let dialect = match backend {
        Backend::Sqlite => "-- sqlite3\n",
        Backend::Postgres => "-- psql\n",
    };
    match blocks.as_slice() {
        [one] => one.to_string(),
        several => several
            .iter()
            .find(|b| b.starts_with(dialect))
            .unwrap_or_else(|| panic!("no `{dialect}` query under `{heading}`"))
            .to_string(),
    }
}

async fn every_view_has_the_same_columns_in_the_same_order(backend: Backend) {
    let mut s = Scripted::new(backend).await;
    let views: [(&str, &[&str]); 5] = [
        (
            "allocation_transitions",
            &[
                "cluster",
                "raft_index",
                "received_at",
                "received_time",
                "namespace",
                "alloc_id",
                "job_id",
                "task_group",
                "node_id",
                "node_name",
                "desired_status",
                "client_status",
                "previous_desired_status",
                "previous_client_status",
                "client_description",
                "event_at",
                "event_time",
            ],
        ),
        (
            "task_events",
            &[
                "cluster",
                "namespace",
                "job_id",
                "alloc_id",
                "task",
                "event_type",
                "time_ns",
                "event_time",
                "exit_code",
                "oom_killed",
                "message",
                "first_seen_index",
            ],
        ),
        (
            "job_versions",
            &[
                "cluster",
                "namespace",
                "job_id",
                "version",
                "status",
                "stop",
                "submit_time_ns",
                "submit_time",
                "raft_index",
                "received_at",
                "received_time",
                "event_at",
                "event_time",
            ],
        ),
        (
            "deployment_outcomes",
            &[
                "cluster",
                "namespace",
                "deployment_id",
                "job_id",
                "job_version",
                "status",
                "status_description",
                "first_index",
                "last_index",
                "last_received_at",
                "last_received_time",
                "last_event_at",
                "last_event_time",
            ],
        ),
        (
            "node_status_changes",
            &[
                "cluster",
                "node_id",
                "node_name",
                "status",
                "eligibility",
                "drain",
                "previous_status",
                "previous_eligibility",
                "previous_drain",
                "raft_index",
                "received_at",
                "received_time",
                "event_at",
                "event_time",
            ],
        ),
    ];
    for (view, columns) in views {
        assert_eq!(s.db.columns(view).await, columns, "{view}");
    }
}

async fn allocation_transitions_are_the_placement_and_each_status_change(backend: Backend) {
    let mut s = Scripted::new(backend).await;

    let rows = s
        .rows("SELECT * FROM allocation_transitions ORDER BY raft_index")
        .await;
    // The job's status change at 25 is no new version: its SubmitTime does
    // not date that entry, which has no time of Nomad's and, imported, is
    // dated by the newest time of the entries before it.
    let dated = s
        .rows("SELECT event_at AS at FROM allocation_transitions WHERE raft_index = 25")
        .await;
    let before = s
        .rows("SELECT MAX(event_at) AS at FROM event_log WHERE raft_index < 25 AND time_source = 'nomad'")
        .await;
    let at = dated[0]["at"].as_i64().unwrap_or_default();
    assert!(!s.imported.contains(&at), "{at}");
    assert_eq!(Some(at), before[0]["at"].as_i64());

    let row = |index: u64,
               alloc: &str,
               job: &str,
               [desired, client]: [&str; 2],
               previous: [Option<&str>; 2],
               description: Option<&str>| {
        json!({
            "cluster": "default", "raft_index": index, "namespace": "default",
            "alloc_id": alloc, "job_id": job, "task_group": job,
            "node_id": NODE, "node_name": "client-1",
            "desired_status": desired, "client_status": client,
            "previous_desired_status": previous[0], "previous_client_status": previous[1],
            "client_description": description,
        })
    };
    // Not 24 (still pending) nor 26 (still running, a task was killed).
    assert_eq!(
        rows,
        [
            row(
                5,
                CRON_ALLOC,
                "cron",
                ["run", "failed"],
                [None, None],
                Some("Failed tasks")
            ),
            row(22, ALLOC, "web", ["run", "pending"], [None, None], None),
            row(
                25,
                ALLOC,
                "web",
                ["run", "running"],
                [Some("run"), Some("pending")],
                Some("Tasks are running")
            ),
            row(
                27,
                ALLOC,
                "web",
                ["run", "failed"],
                [Some("run"), Some("running")],
                Some("Failed tasks")
            ),
            row(
                29,
                ALLOC,
                "web",
                ["stop", "failed"],
                [Some("run"), Some("failed")],
                Some("Failed tasks")
            ),
        ]
    );
}

async fn task_events_appear_once_from_the_snapshot_that_first_carried_them(backend: Backend) {
    let mut s = Scripted::new(backend).await;
    let b = s.backend();
    let t = s.times.web;
    let cron = s.times.cron;

    let rows = s
        .rows("SELECT * FROM task_events ORDER BY first_seen_index, time_ns")
        .await;

    let row = |alloc: &str,
               job: &str,
               kind: &str,
               time: i64,
               exit: i64,
               oom: bool,
               message: &str,
               first: u64| {
        json!({
            "cluster": "default", "namespace": "default", "job_id": job, "alloc_id": alloc,
            "task": job, "event_type": kind, "time_ns": time,
            "event_time": readable(b, time / 1_000_000), "exit_code": exit,
            "oom_killed": flag(b, oom), "message": message, "first_seen_index": first,
        })
    };
    // "Received" is in four snapshots (24–27 and 29), the kill in three.
    assert_eq!(
        rows,
        [
            row(
                CRON_ALLOC,
                "cron",
                "Terminated",
                cron,
                137,
                true,
                OOM_MESSAGE,
                5
            ),
            row(
                ALLOC,
                "web",
                "Received",
                t[0],
                0,
                false,
                "Task received by client",
                24
            ),
            row(
                ALLOC,
                "web",
                "Task Setup",
                t[1],
                0,
                false,
                "Building Task Directory",
                25
            ),
            row(
                ALLOC,
                "web",
                "Started",
                t[2],
                0,
                false,
                "Task started by client",
                25
            ),
            row(ALLOC, "web", "Terminated", t[3], 137, true, OOM_MESSAGE, 26),
            row(
                ALLOC,
                "web",
                "Not Restarting",
                t[4],
                0,
                false,
                "Exceeded allowed attempts 0 in interval 30m0s and mode is \"fail\"",
                27
            ),
        ]
    );
}

async fn job_versions_are_registrations_of_a_new_version_only(backend: Backend) {
    let mut s = Scripted::new(backend).await;
    let b = s.backend();

    let rows = s
        .rows("SELECT * FROM job_versions ORDER BY raft_index")
        .await;

    let row = |version: u64, submitted: i64, index: u64| {
        json!({
            "cluster": "default", "namespace": "default", "job_id": "web",
            "version": version, "status": "pending", "stop": flag(b, false),
            "submit_time_ns": submitted, "submit_time": readable(b, submitted / 1_000_000),
            "raft_index": index,
        })
    };
    // Not 25: the same version, only its status changed.
    assert_eq!(rows, [row(0, V0_SUBMITTED, 20), row(1, V1_SUBMITTED, 30)]);
}

async fn deployment_outcomes_are_each_deployments_latest_status(backend: Backend) {
    let mut s = Scripted::new(backend).await;

    let rows = s.rows("SELECT * FROM deployment_outcomes").await;

    assert_eq!(
        rows,
        [json!({
            "cluster": "default", "namespace": "default", "deployment_id": DEPLOYMENT,
            "job_id": "web", "job_version": 0, "status": "failed",
            "status_description": "Failed due to unhealthy allocations",
            "first_index": 22, "last_index": 28,
        })]
    );
}

async fn node_status_changes_are_registration_and_each_status_eligibility_or_drain_change(
    backend: Backend,
) {
    let mut s = Scripted::new(backend).await;
    let b = s.backend();

    let rows = s
        .rows("SELECT * FROM node_status_changes ORDER BY raft_index")
        .await;

    let row = |index: u64, now: (&str, &str, bool), before: Option<(&str, &str, bool)>| {
        json!({
            "cluster": "default", "node_id": NODE, "node_name": "client-1",
            "status": now.0, "eligibility": now.1, "drain": flag(b, now.2),
            "previous_status": before.map(|p| p.0),
            "previous_eligibility": before.map(|p| p.1),
            "previous_drain": before.map(|p| flag(b, p.2)),
            "raft_index": index,
        })
    };
    // Not 12: a node event that changed none of the three.
    assert_eq!(
        rows,
        [
            row(10, ("initializing", "eligible", false), None),
            row(
                11,
                ("ready", "eligible", false),
                Some(("initializing", "eligible", false))
            ),
            row(
                31,
                ("ready", "ineligible", true),
                Some(("ready", "eligible", false))
            ),
            row(
                32,
                ("down", "ineligible", true),
                Some(("ready", "ineligible", true))
            ),
        ]
    );
}

async fn the_documented_example_queries_answer_on_both_backends(backend: Backend) {
    let mut s = Scripted::new(backend).await;

    // cron's kill was eight days ago: outside the last week.
    let oom = s.documented("How many allocations were OOM-killed per job in the last week?");
    assert_eq!(
        s.rows(&oom).await,
        [
            json!({"cluster": "default", "namespace": "default", "job_id": "web", "oom_killed_allocations": 1})
        ]
    );

    let failed = s.documented("Deployments that failed, by job");
    assert_eq!(
        s.rows(&failed).await,
        [json!({
            "cluster": "default", "namespace": "default", "job_id": "web",
            "failed_deployments": 1, "latest_failed_version": 0,
        })]
    );

    // web's allocation has two rows with client status failed (27, 29) and
    // counts once; cron's failed on the same node.
    let per_node = s.documented("Allocation failures per node");
    assert_eq!(
        s.rows(&per_node).await,
        [json!({"cluster": "default", "node_name": "client-1", "failed_allocations": 2})]
    );

    let per_day = s.documented("Job versions registered per day");
    let day = |day: &str| json!({"day": day, "cluster": "default", "namespace": "default", "job_id": "web", "versions": 1});
    assert_eq!(
        s.rows(&per_day).await,
        [day("2024-05-01"), day("2024-05-02")]
    );

    let down = s.documented("Nodes that went down, and when");
    assert_eq!(
        s.rows(&down).await,
        [
            json!({"cluster": "default", "node_name": "client-1", "node_id": NODE, "previous_status": "ready"})
        ]
    );
}

on_both_backends!(
    every_view_has_the_same_columns_in_the_same_order,
    allocation_transitions_are_the_placement_and_each_status_change,
    task_events_appear_once_from_the_snapshot_that_first_carried_them,
    job_versions_are_registrations_of_a_new_version_only,
    deployment_outcomes_are_each_deployments_latest_status,
    node_status_changes_are_registration_and_each_status_eligibility_or_drain_change,
    the_documented_example_queries_answer_on_both_backends,
);

#[test]
fn every_documented_example_has_a_query_for_each_dialect() {
    for heading in [
        "How many allocations were OOM-killed per job in the last week?",
        "Deployments that failed, by job",
        "Allocation failures per node",
        "Job versions registered per day",
        "Nodes that went down, and when",
    ] {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            assert!(documented_query(heading, backend).contains("SELECT"));
        }
    }
}
