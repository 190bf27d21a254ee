//! The views read what ingest extracts beside the events (migration 0015),
//! never the events' JSON, and an archive from before that migration gains
//! the same details when it is opened.

use std::path::Path;

use sqlx::Connection;

use super::Scripted;
use super::db::Db;
use crate::common::{Archive, Backend, on_both_backends};

/// The five views' rows, each as JSON text, sorted: the same set whatever
/// order the database returns them in.
async fn every_view(db: &mut Db) -> Vec<String> {
    let mut all = Vec::new();
    for view in [
        "allocation_transitions",
        "task_events",
        "job_versions",
        "deployment_outcomes",
        "node_status_changes",
    ] {
        let rows = db.rows(&format!("SELECT * FROM {view}")).await;
        assert!(!rows.is_empty(), "{view} has rows");
        all.extend(
            rows.into_iter()
                .map(|r| format!("{view} {}", serde_json::Value::Object(r))),
        );
    }
    all.sort();
    all
}

async fn the_views_answer_without_reading_the_events_json(backend: Backend) {
    let mut s = Scripted::new(backend).await;
    let before = every_view(&mut s.db).await;
    let erase = match backend {
        Backend::Sqlite => "UPDATE event_log SET event = '{}'",
        Backend::Postgres => "UPDATE event_log SET event = '{}'::json",
    };
    s.archive.execute(&[erase]).await;
    assert_eq!(every_view(&mut s.db).await, before);
}

/// The schema as it was before the details: migrations up to 0014.
const BEFORE_DETAILS: i64 = 14;

async fn an_archive_from_before_the_details_is_refused_by_reads_and_answers_the_same_once_migrated(
    backend: Backend,
) {
    let mut s = Scripted::new(backend).await;
    let expected = every_view(&mut s.db).await;
    let old = Archive::new(backend).await;
    copy_into_old_schema(&s.archive, &old).await;
    for read in [&["status"][..], &["query", "events"], &["replay"]] {
        let run = old.run(read).await;
        assert_eq!(run.code, Some(2), "{read:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("is at schema version 14")
                && run.stderr.contains("run `nomad-chronicle migrate`"),
            "{read:?}: {}",
            run.stderr
        );
    }
    old.run(&["migrate"]).await.assert_success();
    let mut db = Db::connect(&old).await;
    assert_eq!(every_view(&mut db).await, expected);
}

/// The tables an archive of schema 0014 holds events in, copied from a
/// current archive column by column (the columns the old schema has).
const TABLES: [&str; 4] = ["clusters", "names", "gaps", "event_log"];

/// Creates the schema of [`BEFORE_DETAILS`] in `old` and copies `from`'s
/// events into it.
async fn copy_into_old_schema(from: &Archive, old: &Archive) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(backend_dir(old.backend));
    let migrator = sqlx::migrate::Migrator::new(dir).await.expect("migrations");
    match old.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", old.url))
                .await
                .expect("create the old archive");
            migrator
                .run_to(BEFORE_DETAILS, &mut conn)
                .await
                .expect("migrate to 0014");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ATTACH DATABASE '{}' AS current",
                from.path.display()
            )))
            .execute(&mut conn)
            .await
            .expect("attach");
            for table in TABLES {
                let columns = sqlite_columns(&mut conn, table).await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO main.{table} ({columns}) SELECT {columns} FROM current.{table}"
                )))
                .execute(&mut conn)
                .await
                .expect("copy a table");
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&old.url)
                .await
                .expect("connect");
            migrator
                .run_to(BEFORE_DETAILS, &mut conn)
                .await
                .expect("migrate to 0014");
            let mut source = sqlx::PgConnection::connect(&from.url)
                .await
                .expect("connect");
            for table in TABLES {
                let columns = pg_columns(&mut conn, table).await;
                let mut out = source
                    .copy_out_raw(&format!("COPY (SELECT {columns} FROM {table}) TO STDOUT"))
                    .await
                    .expect("copy out");
                let mut data = Vec::new();
                while let Some(chunk) = futures_util::StreamExt::next(&mut out).await {
                    data.extend_from_slice(&chunk.expect("copy data"));
                }
                drop(out);
                let mut copy = conn
                    .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
                    .await
                    .expect("copy in");
                copy.send(data).await.expect("send");
                copy.finish().await.expect("finish");
            }
        }
    }
}

fn backend_dir(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    }
}

async fn sqlite_columns(conn: &mut sqlx::SqliteConnection, table: &str) -> String {
    let names: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    )))
    .fetch_all(conn)
    .await
    .expect("columns");
    names.join(", ")
}

async fn pg_columns(conn: &mut sqlx::PgConnection, table: &str) -> String {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(conn)
    .await
    .expect("columns");
    names.join(", ")
}

async fn history_imported_behind_what_is_stored_answers_as_if_in_order(backend: Backend) {
    let mut s = Scripted::new(backend).await;
    let expected = every_view(&mut s.db).await;
    // The same history, its second half imported first: task events seen
    // again in the first half take that earlier sighting.
    let behind = Archive::new(backend).await;
    let frames = super::scenario::scenario(&s.times);
    // Task events first seen at 24 and 25 are carried again from 26 on.
    let cut = frames
        .iter()
        .position(|f| f.index >= 26)
        .unwrap_or_default();
    let (first, second) = frames.split_at(cut);
    for (name, part) in [("second", second), ("first", first)] {
        let file = behind.file(&format!("{name}.ndjson"));
        let text: String = part.iter().map(|f| f.to_line() + "\n").collect();
        std::fs::write(&file, text).expect("write capture");
        behind
            .run(&["import", &file.display().to_string()])
            .await
            .assert_success();
    }
    let mut db = Db::connect(&behind).await;
    let without_receipt = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter()
            .map(|r| {
                let (view, json) = r.split_once(' ').unwrap_or_default();
                let mut v: serde_json::Value = serde_json::from_str(json).expect("JSON");
                // Frames without a time of their own are dated when
                // imported, which differs between the two archives.
                if let Some(o) = v.as_object_mut() {
                    o.retain(|k, _| {
                        !(k.contains("received")
                            || k.ends_with("event_at")
                            || (k.ends_with("event_time") && view != "task_events"))
                    });
                }
                format!("{view} {v}")
            })
            .collect()
    };
    let mut got = without_receipt(every_view(&mut db).await);
    let mut want = without_receipt(expected);
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

async fn a_nul_in_a_reported_field_is_stored_and_shown(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frame = r#"{"Index":7,"Events":[{"Topic":"Node","Type":"NodeRegistration","Key":"n1","Namespace":"","Index":7,"Payload":{"Node":{"ID":"n1","Name":"a\u0000b","Status":"ready\u0000","SchedulingEligibility":"eligible","Drain":false}}}]}"#;
    // A task's name, a type and a message with a NUL, and a message that is
    // already what PostgreSQL makes of one.
    let alloc = r#"{"Index":8,"Events":[{"Topic":"Allocation","Type":"AllocationUpdated","Key":"a1","Namespace":"default","Index":8,"Payload":{"Allocation":{"ID":"a1","JobID":"j","TaskStates":{"we\u0000b":{"Events":[{"Type":"Sta\u0000rted","Time":5,"DisplayMessage":"m\u0000"},{"Type":"Killed","Time":6,"DisplayMessage":"m\ufffd"}]}}}}}]}"#;
    let file = archive.file("nul.ndjson");
    std::fs::write(&file, format!("{frame}\n{alloc}\n")).expect("write capture");
    archive
        .run(&["import", &file.display().to_string()])
        .await
        .assert_success();
    let mut db = Db::connect(&archive).await;
    let rows = db
        .rows("SELECT node_name, status FROM node_status_changes")
        .await;
    // PostgreSQL's text holds no NUL: it reads as U+FFFD there.
    let nul = match backend {
        Backend::Sqlite => "\u{0}",
        Backend::Postgres => "\u{fffd}",
    };
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["node_name"], format!("a{nul}b"));
    assert_eq!(rows[0]["status"], format!("ready{nul}"));
    let tasks = db
        .rows("SELECT task, event_type, message FROM task_events ORDER BY time_ns")
        .await;
    let task = |task: &str, event_type: &str, message: &str| serde_json::json!({"task": task, "event_type": event_type, "message": message});
    let tasks: Vec<_> = tasks.into_iter().map(serde_json::Value::Object).collect();
    assert_eq!(
        tasks,
        [
            task(
                &format!("we{nul}b"),
                &format!("Sta{nul}rted"),
                &format!("m{nul}")
            ),
            task(&format!("we{nul}b"), "Killed", "m\u{fffd}"),
        ]
    );
}

/// Text that does not compress: PostgreSQL would keep it whole in an index
/// entry, whose limit is 2,704 bytes.
fn incompressible(bytes: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from_digit((state % 16) as u32, 16).unwrap_or('0')
        })
        .collect()
}

async fn a_long_message_and_description_are_stored_and_shown(backend: Backend) {
    let archive = Archive::new(backend).await;
    let (message, description) = (incompressible(4_000), incompressible(3_000));
    let frame = serde_json::json!({"Index": 8, "Events": [{
    "Topic": "Allocation", "Type": "AllocationUpdated", "Key": "a1",
    "Namespace": "default", "Index": 8,
    "Payload": {"Allocation": {
        "ID": "a1", "JobID": "j", "ClientStatus": "failed",
        "ClientDescription": description,
        "TaskStates": {"web": {"Events": [
            {"Type": "Driver Failure", "Time": 5, "DisplayMessage": message},
            {"Type": "Killed", "Time": 6, "DisplayMessage": "short"}
        ]}}}}}]});
    let file = archive.file("long.ndjson");
    std::fs::write(&file, format!("{frame}\n")).expect("write capture");
    archive
        .run(&["import", &file.display().to_string()])
        .await
        .assert_success();
    let mut db = Db::connect(&archive).await;
    let messages = db
        .rows("SELECT message FROM task_events ORDER BY time_ns")
        .await;
    let messages: Vec<_> = messages.iter().map(|r| r["message"].clone()).collect();
    assert_eq!(
        messages,
        [serde_json::json!(message), serde_json::json!("short")]
    );
    let transitions = db
        .rows("SELECT client_description FROM allocation_transitions")
        .await;
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0]["client_description"], description);
    let listed = archive.run(&["query", "allocs", "--output", "json"]).await;
    listed.assert_success();
    assert!(listed.stdout.contains(&description), "{}", listed.stdout);
}

on_both_backends!(
    a_long_message_and_description_are_stored_and_shown,
    the_views_answer_without_reading_the_events_json,
    an_archive_from_before_the_details_is_refused_by_reads_and_answers_the_same_once_migrated,
    history_imported_behind_what_is_stored_answers_as_if_in_order,
    a_nul_in_a_reported_field_is_stored_and_shown,
);
