//! `status`, and the database URL errors every command shares.

use nomad_sim::Generator;

use crate::common::{Archive, Backend, expected, on_both_backends};

fn write_capture(
    archive: &Archive,
    seed: u64,
    events: usize,
) -> (String, Vec<nomad_sim::SimFrame>) {
    let frames = Generator::new(seed).frames(events);
    let file = archive.capture(&format!("capture-{seed}.ndjson"), &frames);
    (file, frames)
}

async fn status_reports_each_cluster_in_json_and_as_a_table(backend: Backend) {
    let archive = Archive::new(backend).await;
    let (a, a_frames) = write_capture(&archive, 31, 500);
    let (b, b_frames) = write_capture(&archive, 32, 200);
    archive
        .run(&["import", &a, "--cluster", "east"])
        .await
        .assert_success();
    archive
        .run(&["import", &b, "--cluster", "west"])
        .await
        .assert_success();

    let json = archive.run(&["status", "--output", "json"]).await;
    json.assert_success();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON output");
    let clusters = report["Clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 2);
    for (cluster, frames) in clusters.iter().zip([&a_frames, &b_frames]) {
        let events = expected(frames);
        assert_eq!(cluster["Events"].as_u64(), Some(events.len() as u64));
        assert_eq!(
            cluster["FirstIndex"].as_u64(),
            frames.first().map(|f| f.index)
        );
        assert_eq!(
            cluster["LastIndex"].as_u64(),
            frames.last().map(|f| f.index)
        );
        let per_topic: u64 = cluster["Topics"]
            .as_array()
            .expect("topics")
            .iter()
            .map(|t| t["Events"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(per_topic, events.len() as u64);
    }
    assert_eq!(clusters[0]["Cluster"], "east");
    assert!(report["DatabaseBytes"].as_u64().is_some_and(|b| b > 0));

    let table = archive.run(&["status"]).await;
    table.assert_success();
    assert!(table.stdout.contains("cluster   east"), "{}", table.stdout);
    assert!(table.stdout.contains("cluster   west"), "{}", table.stdout);
    assert!(
        table.stdout.contains("gaps        none recorded"),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn bad_database_urls_are_clear_errors() {
    let archive = Archive::new(Backend::Sqlite).await;
    let cases = [
        ("mysql://db/x", "is not a database URL"),
        (
            "sqlite:///nonexistent-dir/x.db",
            "the directory `/nonexistent-dir` does not exist",
        ),
        (
            "postgres://u:hunter2@127.0.0.1:1/x",
            "is PostgreSQL running there?",
        ),
    ];
    for (url, message) in cases {
        let run = archive.run(&["--db", url, "ingest"]).await;
        assert_eq!(run.code, Some(2), "{url}");
        assert!(run.stderr.contains(message), "{url}: {}", run.stderr);
        assert!(
            !run.stderr.contains("hunter2"),
            "password leaked: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
}

#[tokio::test]
async fn a_file_that_is_not_an_archive_is_refused_and_left_alone() {
    let archive = Archive::new(Backend::Sqlite).await;
    std::fs::write(&archive.path, "precious notes, not a database").expect("write");

    let run = archive.run(&["status"]).await;

    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("not an SQLite database"),
        "{}",
        run.stderr
    );
    let kept = std::fs::read_to_string(&archive.path).expect("read");
    assert_eq!(kept, "precious notes, not a database");
}

on_both_backends!(status_reports_each_cluster_in_json_and_as_a_table,);

async fn an_archive_from_a_newer_version_is_refused(backend: Backend) {
    let archive = Archive::new(backend).await;
    archive.status().await;
    let store_url = archive.url.clone();
    let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                  VALUES (99990101000000, 'from the future', TRUE, X'00', 0)";
    match backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&store_url)
                .await
                .expect("connect");
            sqlx::query(insert)
                .execute(&mut conn)
                .await
                .expect("insert");
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&store_url)
                .await
                .expect("connect");
            let insert = sqlx::AssertSqlSafe(insert.replace("X'00'", "'\\x00'::bytea"));
            sqlx::query(insert)
                .execute(&mut conn)
                .await
                .expect("insert");
        }
    }

    let run = archive.run(&["status"]).await;

    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("written by a newer nomad-chronicle"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("upgrade nomad-chronicle"),
        "{}",
        run.stderr
    );
}

on_both_backends!(an_archive_from_a_newer_version_is_refused);

#[tokio::test]
async fn tls_files_that_cannot_be_used_are_clear_errors() {
    let archive = Archive::new(Backend::Sqlite).await;
    let not_pem = archive.file("not.pem");
    std::fs::write(&not_pem, "this is not a certificate").expect("write");
    let not_pem = not_pem.display().to_string();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--ca-cert", "/nonexistent/ca.pem"],
            "cannot read CA certificate `/nonexistent/ca.pem`",
        ),
        (
            &["--client-cert", &not_pem],
            "--client-cert and --client-key must be given together",
        ),
        (
            &["--client-cert", &not_pem, "--client-key", &not_pem],
            "is not a valid PEM file",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["ingest", "--address", "https://127.0.0.1:1"];
        args.extend_from_slice(flags);
        let run = archive.run(&args).await;
        assert_eq!(run.code, Some(2), "{flags:?}");
        assert!(run.stderr.contains(message), "{flags:?}: {}", run.stderr);
    }
}
