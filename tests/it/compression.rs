//! Compressed events: an archive whose topics have dictionaries replays
//! byte for byte and answers queries as an uncompressed one does; a damaged
//! value or a missing dictionary is an error naming the event; `compact`
//! compresses an archive written plain; a retrained topic decodes with both
//! of its dictionaries.

use std::time::Duration;

use nomad_chronicle::archive::Batch;
use nomad_chronicle::store::compress::Settings;
use nomad_sim::{Generator, SimFrame};
use sqlx::{AssertSqlSafe, Connection};

use crate::common::role::Role;
use crate::common::{Archive, Backend, batch, on_both_backends, read_until};

/// Dictionaries after 200 events of a topic (2,000 by default), so that a
/// short history is compressed.
const TRAIN_AFTER: u64 = 200;

/// Compresses as `ingest --first-train-after 200 --train-after 200` does:
/// one dictionary per topic, after 200 events.
pub(crate) fn training_early() -> Settings {
    Settings {
        first_train_after: TRAIN_AFTER,
        train_after: TRAIN_AFTER,
        ..Settings::default()
    }
}

/// Archives `events` generated events of `seed` into cluster `test`
/// through a writer that compresses as `settings` say, in batches of 20
/// frames. The history is cut into one part more than `waits`; after each
/// part but the last, empty batches are committed (which store the
/// dictionaries trained beside the writer) until the SQL count of the wait
/// reaches its minimum, so that the parts after it are compressed whatever
/// the machine's speed. Returns the frames.
pub(crate) async fn archived(
    archive: &Archive,
    seed: u64,
    events: usize,
    settings: Settings,
    waits: &[(&str, i64)],
) -> Vec<SimFrame> {
    let frames = Generator::new(seed).frames(events);
    let (store, cluster, mut lease) = archive.writer_with("test", settings).await;
    let part = frames.len().div_ceil(waits.len() + 1);
    for (i, frames) in frames.chunks(part).enumerate() {
        for chunk in frames.chunks(20) {
            lease
                .commit(&cluster, &batch(chunk, 1_000))
                .await
                .expect("commit");
        }
        let Some((sql, min)) = waits.get(i) else {
            continue;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while scalar(archive, sql).await < *min {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {sql}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            let empty = Batch::default();
            lease.commit(&cluster, &empty).await.expect("commit");
        }
    }
    drop(lease);
    store.close().await;
    frames
}

/// Waits for the dictionaries of the Allocation and Evaluation topics.
pub(crate) const TWO_DICTIONARIES: (&str, i64) = ("SELECT COUNT(*) FROM dictionaries", 2);

/// Waits for the first dictionary (Allocation's).
const A_DICTIONARY: (&str, i64) = ("SELECT COUNT(*) FROM dictionaries", 1);

pub(crate) fn lines(frames: &[SimFrame]) -> Vec<String> {
    frames.iter().map(SimFrame::to_line).collect()
}

/// One value read from the archive with SQL.
pub(crate) async fn value<T>(archive: &Archive, sql: &str) -> T
where
    T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    let sql = AssertSqlSafe(sql.to_owned());
    match archive.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&archive.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("a row")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&archive.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("a row")
        }
    }
}

pub(crate) async fn scalar(archive: &Archive, sql: &str) -> i64 {
    value(archive, sql).await
}

/// Compressed events and the dictionaries they were compressed with.
async fn compressed(archive: &Archive) -> (i64, i64) {
    let events = scalar(
        archive,
        "SELECT COUNT(*) FROM event_log WHERE dictionary_id IS NOT NULL",
    )
    .await;
    let dictionaries = scalar(archive, "SELECT COUNT(*) FROM dictionaries").await;
    (events, dictionaries)
}

/// The bytes the events' values take as stored.
pub(crate) async fn stored_bytes(archive: &Archive) -> i64 {
    let sql = match archive.backend {
        Backend::Sqlite => {
            "SELECT CAST(SUM(length(CAST(event AS BLOB))) AS INTEGER) FROM event_log"
        }
        Backend::Postgres => {
            "SELECT CAST(SUM(COALESCE(octet_length(event::text), 0) \
               + COALESCE(octet_length(event_zstd), 0)) AS BIGINT) FROM event_log"
        }
    };
    scalar(archive, sql).await
}

/// What the query commands answer about a history.
pub(crate) async fn answers(archive: &Archive, history: &[SimFrame]) -> Vec<String> {
    let events = || history.iter().flat_map(|f| &f.events);
    let first = |topic: &str| {
        events()
            .find(|e| e.topic == topic)
            .map(|e| (e.key.clone(), e.namespace.clone()))
            .unwrap_or_default()
    };
    let ((job, job_ns), (alloc, _), (node, _)) = (first("Job"), first("Allocation"), first("Node"));
    let last = history
        .last()
        .map(|f| f.index)
        .unwrap_or_default()
        .to_string();
    let middle = history[history.len() / 2].index.to_string();
    let queries: Vec<Vec<&str>> = vec![
        vec!["query", "events", "--output", "json"],
        vec!["query", "job", &job, "--namespace", &job_ns],
        vec!["query", "alloc", &alloc],
        vec!["query", "node", &node],
        vec![
            "query",
            "state",
            "Allocation",
            &alloc,
            "--at-index",
            &last,
            "--output",
            "json",
        ],
        vec![
            "query",
            "snapshot",
            "--at-index",
            &middle,
            "--output",
            "json",
        ],
        vec!["query", "snapshot", "--at-index", &last],
    ];
    let mut out = Vec::new();
    for query in queries {
        let run = archive.run(&query).await;
        assert_eq!(run.code, Some(0), "{query:?}: {}", run.stderr);
        out.push(run.stdout);
    }
    out
}

async fn a_compressed_archive_replays_byte_for_byte_and_answers_as_a_plain_one(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 71, 3_000, training_early(), &[TWO_DICTIONARIES]).await;
    let (events, dictionaries) = compressed(&archive).await;
    assert!(events > 1_000, "{events} events compressed");
    assert!(dictionaries >= 2, "{dictionaries} dictionaries");

    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));

    let plain = Archive::new(backend).await;
    let same = archived(&plain, 71, 3_000, Settings::plain(), &[]).await;
    assert_eq!(lines(&same), lines(&history));
    assert_eq!(compressed(&plain).await, (0, 0));
    assert_eq!(
        answers(&archive, &history).await,
        answers(&plain, &history).await
    );
    // Half the history is compressed.
    assert!(stored_bytes(&archive).await * 10 < stored_bytes(&plain).await * 7);
}

/// The frames `serve` streams from index 0 in every namespace, heartbeats
/// left out, until `count` have come.
pub(crate) async fn served(archive: &Archive, count: usize) -> Vec<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut child = archive
        .command(&["serve", "--listen", &listen])
        .spawn()
        .expect("spawn serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = Vec::new();
    read_until(&mut stderr, &mut log, "Serving the archive").await;
    let url = format!("http://{listen}/v1/event/stream?index=0&namespace=*");
    let mut response = reqwest::get(&url).await.expect("request");
    let (mut buf, mut frames) = (Vec::new(), Vec::new());
    while frames.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .expect("frames in time")
            .expect("a chunk")
            .expect("the stream stays open");
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8(line).expect("utf-8");
            if line.trim_end() != "{}" {
                frames.push(line.trim_end().to_owned());
            }
        }
    }
    child.kill().await.expect("stop serve");
    frames
}

async fn serve_streams_a_compressed_archive_byte_for_byte(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 76, 1_500, training_early(), &[A_DICTIONARY]).await;
    assert!(compressed(&archive).await.0 > 200);

    assert_eq!(served(&archive, history.len()).await, lines(&history));
}

/// The identity of one compressed event: index, topic, key, dictionary.
async fn a_compressed_event(archive: &Archive) -> (i64, String, String, i64) {
    let index = scalar(
        archive,
        "SELECT MIN(raft_index) FROM event_log WHERE dictionary_id IS NOT NULL",
    )
    .await;
    let first = "FROM event_log AS e JOIN names AS k ON k.id = e.key_ref \
                 WHERE e.raft_index = {index} AND e.dictionary_id IS NOT NULL \
                 ORDER BY e.position LIMIT 1";
    let first = first.replace("{index}", &index.to_string());
    let topic = value(archive, &format!("SELECT e.topic {first}")).await;
    let key = value(archive, &format!("SELECT k.name {first}")).await;
    let dictionary = scalar(archive, &format!("SELECT e.dictionary_id {first}")).await;
    (index, topic, key, dictionary)
}

async fn a_damaged_value_is_an_error_naming_the_event(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived(&archive, 72, 1_500, training_early(), &[A_DICTIONARY]).await;
    let (index, topic, key, _) = a_compressed_event(&archive).await;
    let damage = match backend {
        Backend::Sqlite => format!(
            "UPDATE event_log SET event = substr(event, 1, 20) || X'5A' || substr(event, 22) \
             WHERE raft_index = {index} AND topic = '{topic}' AND dictionary_id IS NOT NULL \
             AND key_ref = (SELECT id FROM names WHERE name = '{key}')"
        ),
        Backend::Postgres => format!(
            "UPDATE event_log SET event_zstd = overlay(event_zstd PLACING '\\x5a'::bytea FROM 21 FOR 1) \
             WHERE raft_index = {index} AND topic = '{topic}' AND dictionary_id IS NOT NULL \
             AND key_ref = (SELECT id FROM names WHERE name = '{key}')"
        ),
    };
    archive.execute(&[&damage]).await;

    for args in [vec!["replay"], vec!["query", "events"]] {
        let run = archive.run(&args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        let want = format!(
            "error: cannot read the event at index `{index}` of cluster `test` (topic `{topic}`, key `{key}`): the stored value is damaged"
        );
        assert!(run.stderr.starts_with(&want), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

async fn a_missing_dictionary_is_an_error_naming_the_event(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived(&archive, 73, 1_500, training_early(), &[A_DICTIONARY]).await;
    let (index, topic, key, dictionary) = a_compressed_event(&archive).await;
    archive
        .execute(&[&format!("DELETE FROM dictionaries WHERE id = {dictionary}")])
        .await;

    let run = archive.run(&["replay"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: cannot read the event at index `{index}` of cluster `test` (topic `{topic}`, key `{key}`): \
             its dictionary `{dictionary}` is not in the archive's `dictionaries` table; restore the archive from a copy"
        )
    );
}

async fn compact_compresses_a_plain_archive_and_replay_stays_byte_for_byte(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 74, 3_000, Settings::plain(), &[]).await;
    assert_eq!(compressed(&archive).await, (0, 0));
    let before = stored_bytes(&archive).await;
    let file_before = std::fs::metadata(&archive.path).map(|m| m.len()).ok();

    archive
        .run(&["compact", "--vacuum", "--train-after", "200"])
        .await
        .assert_success();

    let (events, dictionaries) = compressed(&archive).await;
    assert!(events > 2_000, "{events} events compressed");
    assert!(dictionaries >= 2, "{dictionaries} dictionaries");
    assert!(stored_bytes(&archive).await * 3 < before);
    if let (Some(before), Ok(after)) = (file_before, std::fs::metadata(&archive.path)) {
        assert!(
            after.len() < before,
            "{} bytes, {before} before",
            after.len()
        );
    }
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));

    // Nothing is left to do the second time.
    archive
        .run(&["compact", "--train-after", "200"])
        .await
        .assert_success();
    assert_eq!(compressed(&archive).await, (events, dictionaries));
}

/// `compact --vacuum` on PostgreSQL rebuilds the archive's indexes, which
/// events written in stream order leave partly empty, after dropping what an
/// interrupted rebuild left behind; the archive replays the same after.
#[tokio::test]
async fn compact_vacuum_rebuilds_the_postgres_indexes_and_drops_an_interrupted_rebuilds_leftover() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    let history = archived(&archive, 76, 3_000, training_early(), &[]).await;
    // What an interrupted `REINDEX … CONCURRENTLY` leaves: an invalid copy.
    archive
        .execute(&[
            "CREATE INDEX event_log_by_job_ccnew ON event_log (job_ref, cluster_id, raft_index)",
            "UPDATE pg_index SET indisvalid = false \
             WHERE indexrelid = CAST('event_log_by_job_ccnew' AS regclass)",
        ])
        .await;
    let indexes = "SELECT CAST(SUM(pg_relation_size(i.indexrelid)) AS BIGINT) \
                   FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid \
                   WHERE i.indrelid = CAST('event_log' AS regclass) \
                     AND c.relname NOT LIKE '%ccnew%'";
    let before = scalar(&archive, indexes).await;

    archive.run(&["compact", "--vacuum"]).await.assert_success();

    let after = scalar(&archive, indexes).await;
    assert!(after < before, "{after} bytes of indexes, {before} before");
    let leftovers = "SELECT COUNT(*) FROM pg_class \
                     WHERE relname LIKE '%\\_ccnew%' OR relname LIKE '%\\_ccold%'";
    assert_eq!(scalar(&archive, leftovers).await, 0);
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));
}

/// A role that may read and write the archive but does not own its tables
/// cannot rebuild their indexes: `compact --vacuum` says so and what to
/// do, and `compact` without it still does its work.
#[tokio::test]
async fn compact_vacuum_by_a_role_that_does_not_own_the_tables_says_who_may() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    let history = archived(&archive, 77, 1_000, training_early(), &[]).await;
    let writer = Role::create(
        &archive,
        &format!("writer_{}", std::process::id()),
        &[
            "CREATE, USAGE ON SCHEMA public",
            // Not ALL: from PostgreSQL 17 it includes MAINTAIN, which
            // allows REINDEX.
            "SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public",
            "ALL ON ALL SEQUENCES IN SCHEMA public",
        ],
    )
    .await;

    let refused = archive
        .run(&["compact", "--vacuum", "--db", &writer.url])
        .await;
    let plain = archive.run(&["compact", "--db", &writer.url]).await;
    writer.drop_role(&archive).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert_eq!(
        refused.stderr.trim_end().lines().last(),
        Some(
            "error: cannot give the freed space back: PostgreSQL lets only the owner of table \
             `event_log` (or, from PostgreSQL 17, a role granted MAINTAIN on it) rebuild its \
             indexes: run `compact --vacuum` as the role that owns the archive's tables (the \
             events are compacted already; `compact` without --vacuum leaves the freed space to \
             autovacuum, as this role may not vacuum either)"
        ),
        "{}",
        refused.stderr
    );
    plain.assert_success();
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));
}

async fn a_retrained_topic_decodes_with_both_dictionaries(backend: Backend) {
    let archive = Archive::new(backend).await;
    // A threshold above 1 asks for a new dictionary after every measure.
    let retraining = Settings {
        retrain_below: 100.0,
        ..training_early()
    };
    let allocation = "SELECT COUNT(*) FROM dictionaries WHERE topic = 'Allocation'";
    let history = archived(
        &archive,
        75,
        4_000,
        retraining,
        &[(allocation, 1), (allocation, 2)],
    )
    .await;
    let used = scalar(
        &archive,
        "SELECT COUNT(DISTINCT dictionary_id) FROM event_log WHERE topic = 'Allocation'",
    )
    .await;
    assert!(used >= 2, "Allocation events use {used} dictionaries");

    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));
}

async fn a_topic_is_compressed_after_its_first_events_then_with_a_full_dictionary(
    backend: Backend,
) {
    let archive = Archive::new(backend).await;
    let settings = Settings {
        first_train_after: 50,
        train_after: 300,
        ..Settings::default()
    };
    let allocation = "SELECT COUNT(*) FROM dictionaries WHERE topic = 'Allocation'";
    let history = archived(
        &archive,
        77,
        1_500,
        settings,
        &[(allocation, 1), (allocation, 2)],
    )
    .await;
    let part = history.len().div_ceil(3);
    let (first_part, second_part) = (history[part - 1].index, history[2 * part - 1].index);
    let length = match backend {
        Backend::Sqlite => "length(bytes)",
        Backend::Postgres => "octet_length(bytes)",
    };
    let size = |order: &str| {
        format!(
            "SELECT CAST({length} AS BIGINT) FROM dictionaries WHERE topic = 'Allocation' ORDER BY id {order} LIMIT 1"
        )
    };
    let (first, full) = (
        scalar(&archive, &size("ASC")).await,
        scalar(&archive, &size("DESC")).await,
    );
    assert!(first <= 16 * 1024, "first dictionary of {first} bytes");
    assert!(full > 16 * 1024, "full dictionary of {full} bytes");

    // Once the first dictionary is in use, no Allocation event is plain,
    // though fewer than `train_after` of them had arrived.
    let plain_after = format!(
        "SELECT COUNT(*) FROM event_log WHERE topic = 'Allocation' \
         AND dictionary_id IS NULL AND raft_index > {first_part}"
    );
    assert_eq!(scalar(&archive, &plain_after).await, 0);
    let dictionaries_after = format!(
        "SELECT COUNT(DISTINCT dictionary_id) FROM event_log \
         WHERE topic = 'Allocation' AND raft_index > {second_part}"
    );
    assert_eq!(scalar(&archive, &dictionaries_after).await, 1);
    let newest_used = format!(
        "SELECT MIN(dictionary_id) FROM event_log \
         WHERE topic = 'Allocation' AND raft_index > {second_part}"
    );
    assert_eq!(
        scalar(&archive, &newest_used).await,
        scalar(
            &archive,
            "SELECT MAX(id) FROM dictionaries WHERE topic = 'Allocation'"
        )
        .await
    );

    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));
}

on_both_backends!(a_compressed_archive_replays_byte_for_byte_and_answers_as_a_plain_one);
on_both_backends!(a_topic_is_compressed_after_its_first_events_then_with_a_full_dictionary);
on_both_backends!(serve_streams_a_compressed_archive_byte_for_byte);
on_both_backends!(a_damaged_value_is_an_error_naming_the_event);
on_both_backends!(a_missing_dictionary_is_an_error_naming_the_event);
on_both_backends!(compact_compresses_a_plain_archive_and_replay_stays_byte_for_byte);
on_both_backends!(a_retrained_topic_decodes_with_both_dictionaries);
