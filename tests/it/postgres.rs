//! What only PostgreSQL has: connection errors a user must fix, one writer
//! per cluster with a hot standby, a server restarting under ingest, and
//! events stored by another writer while a batch is copied in.

use std::time::Duration;

use nomad_sim::{Generator, SimFrame};

use crate::common::pg::{self, PgServer};
use crate::common::{Archive, Backend, SimAt, eventually, expected, finish, read_until};

/// Skips the test (loudly, in `pg::shared_admin_url`) without PostgreSQL.
fn available() -> bool {
    pg::shared_admin_url().is_some()
}

#[tokio::test]
async fn connection_problems_are_one_clear_line_each() {
    if !available() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    let wrong_password = archive.url.replace(pg::PASSWORD, "not-the-password");
    let missing_db = pg::with_database(&archive.url, "no_such_database");
    let cases = [
        (
            wrong_password.as_str(),
            "password authentication failed",
            "check the user name and password",
        ),
        (missing_db.as_str(), "does not exist", "createdb"),
        (
            "postgres://app:hunter2@127.0.0.1:1/x",
            "Connection refused",
            "is PostgreSQL running there?",
        ),
    ];
    for (url, problem, hint) in cases {
        let run = archive.run(&["--db", url, "status"]).await;
        assert_eq!(run.code, Some(2), "{url}");
        assert!(run.stderr.contains(problem), "{url}: {}", run.stderr);
        assert!(run.stderr.contains(hint), "{url}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(!run.stderr.contains("not-the-password") && !run.stderr.contains("hunter2"));
    }
}

#[tokio::test]
async fn a_second_ingester_stands_by_and_takes_over_when_the_first_is_killed() {
    if !available() {
        return;
    }
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(41);
    sim.publish(&mut generator, 500);
    let archive = Archive::new(Backend::Postgres).await;
    let ingest = [
        "ingest",
        "--address",
        &sim.address,
        "--cluster",
        "prod",
        "--batch-interval",
        "20ms",
    ];
    let mut first = archive.command(&ingest).spawn().expect("spawn first");
    eventually("the first ingester's commits", || async {
        !archive.events("prod").await.is_empty()
    })
    .await;
    let mut second = archive.command(&ingest).spawn().expect("spawn second");
    let mut second_log = Vec::new();
    let mut stderr = second.stderr.take().expect("stderr");
    read_until(&mut stderr, &mut second_log, "standing by").await;
    // Only the first one subscribed: the standby does not even read the stream.
    assert_eq!(sim.sim.requests().len(), 1);

    first.start_kill().expect("kill -9");
    let _ = first.wait().await;
    let frames: Vec<SimFrame> = (0..100).map(|_| generator.next_frame()).collect();
    let last = frames.last().map(|f| f.index).unwrap_or_default();
    for frame in frames {
        sim.sim.publish(frame);
    }
    read_until(&mut stderr, &mut second_log, "Took over as the writer").await;
    eventually("the standby to archive the new entries", || async {
        archive.events("prod").await.last().map(|e| e.0) == Some(last)
    })
    .await;
    second.start_kill().expect("stop the second");
    let _ = second.wait().await;

    assert_eq!(archive.events("prod").await, expected(&sim.sim.history()));
    assert!(archive.status().await.clusters[0].gaps.is_empty());
}

#[tokio::test]
async fn ingest_rides_out_a_postgres_restart() {
    if !available() {
        return;
    }
    let server = PgServer::start().expect("a private PostgreSQL server");
    let archive = Archive::new(Backend::Sqlite).await;
    let url = server.url("postgres");
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(42);
    sim.publish(&mut generator, 300);
    let mut cmd = archive.command(&[
        "--db",
        &url,
        "ingest",
        "--address",
        &sim.address,
        "--cluster",
        "prod",
        "--batch-interval",
        "20ms",
    ]);
    let child = cmd.spawn().expect("spawn");
    let store_events = || async {
        let store = nomad_chronicle::store::connect(
            &nomad_chronicle::config::DbUrl::parse(&url).expect("url"),
        )
        .await
        .ok()?;
        let cluster = store.find_cluster("prod").await.ok()??;
        let events = store.events(&cluster, 0, u32::MAX).await.ok();
        store.close().await;
        events
    };
    eventually("the first commits", || async {
        store_events().await.is_some_and(|e| !e.is_empty())
    })
    .await;

    server.stop().expect("stop PostgreSQL");
    let last = sim.publish(&mut generator, 300);
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.start_again().expect("start PostgreSQL");
    eventually("the archive to catch up after the restart", || async {
        store_events().await.and_then(|e| e.last().map(|e| e.index)) == Some(last)
    })
    .await;
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let run = finish(child).await;

    run.assert_success();
    assert!(
        run.stderr.contains("Database unavailable; retrying")
            || run.stderr.contains("Lost the writer lock"),
        "{}",
        run.stderr
    );
    let stored: Vec<(u64, String)> = store_events()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.index, e.raw))
        .collect();
    assert_eq!(stored, expected(&sim.sim.history()));
}

#[tokio::test]
async fn events_another_writer_stores_while_a_batch_is_copied_are_stored_once() {
    if !available() {
        return;
    }
    let frames = Generator::new(44).frames(300);
    let archive = Archive::new(Backend::Postgres).await;
    let file = archive.capture("capture.ndjson", &frames);
    let head = archive.capture("head.ndjson", &frames[..1]);
    archive.run(&["import", &head]).await.assert_success();

    // Another writer (not taking the writer lock) inserts an event of the
    // capture and keeps its transaction open: the import's check does not
    // see it, and its COPY waits on the unique index, then fails when the
    // other writer commits.
    let racer = &frames[150].events[0];
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&archive.url)
        .await
        .expect("connect");
    sqlx::query("INSERT INTO names (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&racer.key)
        .execute(&mut conn)
        .await
        .expect("name");
    sqlx::query("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    sqlx::query(
        "INSERT INTO event_log (cluster_id, raft_index, key_ref, received_at, position, \
           topic, type, namespace, event) \
         SELECT c.id, $1, n.id, 0, 0, $2, $3, $4, $5::json FROM clusters c, names n \
         WHERE c.name = 'default' AND n.name = $6",
    )
    .bind(i64::try_from(frames[150].index).expect("index"))
    .bind(&racer.topic)
    .bind(&racer.event_type)
    .bind(&racer.namespace)
    .bind(&racer.json)
    .bind(&racer.key)
    .execute(&mut conn)
    .await
    .expect("insert");
    let import = archive
        .command(&["import", &file])
        .spawn()
        .expect("spawn import");
    let url = archive.url.clone();
    eventually("the import waits for the other writer", || {
        let url = url.clone();
        async move {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .expect("connect");
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = 'nomad-chronicle' AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut c)
            .await
            .expect("activity")
                > 0
        }
    })
    .await;
    sqlx::query("COMMIT")
        .execute(&mut conn)
        .await
        .expect("commit");

    finish(import).await.assert_success();
    assert_eq!(archive.events("default").await, expected(&frames));
}

#[tokio::test]
async fn a_cluster_with_events_cannot_be_deleted() {
    if !available() {
        return;
    }
    let frames = Generator::new(45).frames(50);
    let archive = Archive::new(Backend::Postgres).await;
    let file = archive.capture("capture.ndjson", &frames);
    archive
        .run(&["import", &file, "--cluster", "kept"])
        .await
        .assert_success();
    archive
        .run(&["import", "/dev/null", "--cluster", "empty"])
        .await
        .assert_success();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&archive.url)
        .await
        .expect("connect");

    let refused = sqlx::query("DELETE FROM clusters WHERE name = 'kept'")
        .execute(&mut conn)
        .await
        .expect_err("a cluster with events is kept");
    let deleted = sqlx::query("DELETE FROM clusters WHERE name = 'empty'")
        .execute(&mut conn)
        .await
        .expect("a cluster without events can go");

    let code = refused.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("23503"), "{refused}");
    assert_eq!(deleted.rows_affected(), 1);
    assert_eq!(archive.events("kept").await, expected(&frames));
}
