//! What every command does with what `--db` names before it reads or
//! writes: anything that is not an archive is refused untouched, only
//! `ingest` and `import` create one, reads never write (not even on a
//! read-only mount), and an older archive is migrated by writers only.

use std::path::Path;
use std::time::Duration;

use sqlx::Connection;

use crate::common::role::Role;
use crate::common::{Archive, Backend, eval_frame, finish, on_both_backends, read_until};

/// Every command, with the arguments it needs to reach the archive.
fn every_command(capture: &str) -> Vec<Vec<String>> {
    let commands: [&[&str]; 9] = [
        &["status"],
        &["query", "events"],
        &["replay"],
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            "ingest",
            "--address",
            "http://127.0.0.1:1",
            "--until-index",
            "5",
        ],
        &["import", capture],
        &["prune", "--before-index", "5"],
        &["compact"],
        &["migrate"],
    ];
    commands
        .iter()
        .map(|c| c.iter().map(|a| a.to_string()).collect())
        .collect()
}

/// The read commands, with their arguments.
fn reads() -> Vec<Vec<String>> {
    every_command("-").into_iter().take(4).collect()
}

/// A file and whatever SQLite may have created beside it.
fn snapshot(path: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            (suffix.to_string(), std::fs::read(&name).ok())
        })
        .collect()
}

/// An application's own SQLite database, in WAL mode or not.
async fn application_database(path: &Path, wal: bool) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("create");
    let mut statements = vec![
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO users (name) VALUES ('ada')",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)",
    ];
    if wal {
        statements.insert(0, "PRAGMA journal_mode = WAL");
    }
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect(sql);
    }
    conn.close().await.expect("close");
}

#[tokio::test]
async fn a_file_that_is_not_an_archive_is_refused_by_every_command_and_left_byte_identical() {
    let archive = Archive::new(Backend::Sqlite).await;
    let capture = archive.capture("capture.ndjson", &[]);
    let text = archive.file("notes.txt");
    std::fs::write(&text, "not a database\n").expect("write");
    let plain = archive.file("app.db");
    application_database(&plain, false).await;
    let wal = archive.file("app-wal.db");
    application_database(&wal, true).await;
    let marked = archive.file("marked.db");
    application_database(&marked, false).await;
    let url = format!("sqlite://{}", marked.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
    sqlx::raw_sql("PRAGMA application_id = 42")
        .execute(&mut conn)
        .await
        .expect("mark");
    conn.close().await.expect("close");
    let cases = [
        (
            &marked,
            "its header names another application (`application_id` 42)",
        ),
        (&text, "it is not an SQLite database"),
        (
            &plain,
            "it holds the tables `events`, `users` but no archive's migrations",
        ),
        (
            &wal,
            "it holds the tables `events`, `users` but no archive's migrations",
        ),
    ];
    for (path, why) in cases {
        let before = snapshot(path);
        let db = format!("sqlite://{}", path.display());
        for command in every_command(&capture) {
            let mut args = vec!["--db", &db];
            args.extend(command.iter().map(String::as_str));
            let run = archive.run(&args).await;
            assert_eq!(run.code, Some(2), "{command:?}: {}", run.stderr);
            assert_eq!(
                run.stderr.trim(),
                format!(
                    "error: `{db}` is not a nomad-chronicle archive ({why}); nothing was changed: \
                     check --db, or give the archive a database of its own"
                ),
                "{command:?}"
            );
            assert_eq!(snapshot(path), before, "{command:?} changed {db}");
        }
    }
}

async fn no_command_but_ingest_and_import_creates_an_archive(backend: Backend) {
    let archive = Archive::new(backend).await;
    for command in every_command("-")
        .into_iter()
        .filter(|c| !matches!(c[0].as_str(), "ingest" | "import"))
    {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let run = archive.run(&args).await;
        assert_eq!(run.code, Some(2), "{command:?}: {}", run.stderr);
        let masked = match backend {
            Backend::Sqlite => archive.url.clone(),
            Backend::Postgres => "postgres://".to_owned(),
        };
        assert!(
            run.stderr.contains("error: no archive at `")
                && run.stderr.contains(&masked)
                && run.stderr.contains(
                    "run `nomad-chronicle ingest` or `import` to create one, or check the path in --db"
                ),
            "{command:?}: {}",
            run.stderr
        );
    }
    match backend {
        Backend::Sqlite => assert!(!archive.path.exists(), "no file was created"),
        Backend::Postgres => assert_eq!(tables(&archive.url).await, Vec::<String>::new()),
    }
    let capture = archive.capture("capture.ndjson", &[]);
    let lines: String = [eval_frame(10, 2_000_000_000)].join("\n");
    std::fs::write(&capture, lines).expect("write capture");
    archive.run(&["import", &capture]).await.assert_success();
    archive.run(&["status"]).await.assert_success();
}

/// The tables of a PostgreSQL database's public schema.
async fn tables(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let names = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    conn.close().await.expect("close");
    names
}

#[tokio::test]
async fn a_postgres_database_with_another_applications_tables_is_refused_untouched() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    archive
        .execute(&["CREATE TABLE events (id bigint PRIMARY KEY, what text)"])
        .await;
    let capture = archive.capture("capture.ndjson", &[]);
    for command in every_command(&capture) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let run = archive.run(&args).await;
        assert_eq!(run.code, Some(2), "{command:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(
                "is not a nomad-chronicle archive (it holds the table `events` but no archive's migrations)"
            ),
            "{command:?}: {}",
            run.stderr
        );
    }
    assert_eq!(tables(&archive.url).await, vec!["events".to_owned()]);
}

/// The argument vector that runs `args` of the binary with `dir` read-only:
/// as root, whom permissions do not stop, in a mount namespace of its own
/// where `dir` is bind-mounted read-only (`None` when this system cannot);
/// otherwise with `dir` and its files made read-only.
fn read_only(dir: &Path) -> Option<Vec<String>> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        return Some(Vec::new());
    }
    let works = std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!("SKIPPED: running as root without `unshare -rm`: no read-only mount to test on");
        return None;
    }
    let dir = dir.display().to_string();
    Some(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            r#"mount --bind -o ro "$0" "$0" && exec "$@""#,
            &dir,
        ]
        .map(str::to_owned)
        .to_vec(),
    )
}

/// `prefix` then the binary with `args`, reading the archive `db`.
fn command(prefix: &[String], db: &str, args: &[&str]) -> tokio::process::Command {
    let binary = env!("CARGO_BIN_EXE_nomad-chronicle").to_owned();
    let mut argv: Vec<String> = prefix.to_vec();
    argv.push(binary);
    argv.extend(["--db".to_owned(), db.to_owned()]);
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn an_archive_on_a_read_only_mount_answers_every_read() {
    let archive = Archive::new(Backend::Sqlite).await;
    let capture = archive.file("capture.ndjson");
    let frames: Vec<String> = (10..13).map(|i| eval_frame(i, 2_000_000_000)).collect();
    std::fs::write(&capture, frames.join("\n")).expect("write capture");
    archive
        .run(&["import", &capture.display().to_string()])
        .await
        .assert_success();
    let dir = tempfile::tempdir().expect("directory");
    let copy = dir.path().join("archive.db");
    std::fs::copy(&archive.path, &copy).expect("copy the archive");
    let db = format!("sqlite://{}", copy.display());
    let before = snapshot(&copy);
    let Some(prefix) = read_only(dir.path()) else {
        return;
    };
    for args in [&["status"][..], &["query", "events"], &["replay"]] {
        let run = finish(command(&prefix, &db, args).spawn().expect("spawn")).await;
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        assert!(run.stdout.contains("12"), "{args:?}: {}", run.stdout);
    }
    let replayed = finish(command(&prefix, &db, &["replay"]).spawn().expect("spawn")).await;
    assert_eq!(replayed.stdout.lines().count(), 3);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut serve = command(&prefix, &db, &["serve", "--listen", &listen])
        .spawn()
        .expect("spawn serve");
    let mut stderr = serve.stderr.take().expect("stderr");
    read_until(&mut stderr, &mut Vec::new(), "Serving the archive").await;
    let mut response = reqwest::get(format!("http://{listen}/v1/event/stream"))
        .await
        .expect("request");
    let mut body = String::new();
    let read = async {
        while !body.contains("\"Index\":12") {
            match response.chunk().await {
                Ok(Some(chunk)) => body.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), read).await;
    serve.start_kill().expect("stop serve");
    assert!(body.contains("\"Index\":12"), "{body}");
    restore_permissions(dir.path());
    assert_eq!(snapshot(&copy), before, "nothing was written");
}

/// Lets the temporary directory be removed again.
fn restore_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

#[tokio::test]
async fn an_archive_without_its_mark_is_still_read_and_its_next_writer_marks_it() {
    let archive = Archive::new(Backend::Sqlite).await;
    archive.status().await;
    archive.execute(&["PRAGMA application_id = 0"]).await;
    let url = format!("sqlite://{}?mode=ro", archive.path.display());
    let header = |_: &Path| {
        let url = url.clone();
        async move {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
            let id: i32 = sqlx::query_scalar("PRAGMA application_id")
                .fetch_one(&mut conn)
                .await
                .expect("application_id");
            conn.close().await.expect("close");
            id
        }
    };
    assert_eq!(header(&archive.path).await, 0);
    archive.run(&["status"]).await.assert_success();
    assert_eq!(header(&archive.path).await, 0, "a read marks nothing");
    archive.run(&["migrate"]).await.assert_success();
    assert_eq!(header(&archive.path).await, 0x4E43_4852, "NCHR");
}

on_both_backends!(no_command_but_ingest_and_import_creates_an_archive);

#[tokio::test]
async fn a_postgres_user_who_may_only_select_can_run_every_read() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    let capture = archive.file("capture.ndjson");
    let frames: Vec<String> = (10..13).map(|i| eval_frame(i, 2_000_000_000)).collect();
    std::fs::write(&capture, frames.join("\n")).expect("write capture");
    archive
        .run(&["import", &capture.display().to_string()])
        .await
        .assert_success();
    let url = reqwest::Url::parse(&archive.url).expect("url");
    let reader = Role::create(
        &archive,
        &format!("reader_{}", url.path().trim_start_matches('/')),
        &[
            "USAGE ON SCHEMA public",
            "SELECT ON ALL TABLES IN SCHEMA public",
        ],
    )
    .await;
    let db = reader.url.clone();
    for command in reads().into_iter().filter(|c| c[0] != "serve") {
        let mut args = vec!["--db", &db];
        args.extend(command.iter().map(String::as_str));
        let run = archive.run(&args).await;
        assert_eq!(run.code, Some(0), "{command:?}: {}", run.stderr);
    }
    let write = archive.run(&["--db", &db, "migrate"]).await;
    assert_eq!(write.code, Some(2), "a writer needs more: {}", write.stderr);
    reader.drop_role(&archive).await;
}

async fn a_snapshot_read_without_keyframes_answers_the_same_and_builds_none(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = nomad_sim::Generator::new(73).frames(1_200);
    let file = archive.capture("capture.ndjson", &frames);
    let mut import = archive.command(&["import", &file, "--batch-size", "40"]);
    import.env(nomad_chronicle::store::keyframe::EVENTS_BETWEEN_ENV, "100");
    finish(import.spawn().expect("spawn import"))
        .await
        .assert_success();
    let at = frames[frames.len() * 3 / 4].index.to_string();
    let snapshot = ["query", "snapshot", "--at-index", &at, "--output", "json"];
    let with_keyframes = archive.run(&snapshot).await;
    with_keyframes.assert_success();
    archive
        .execute(&[
            "DELETE FROM keyframe_objects",
            "DELETE FROM terminal_counts",
            "DELETE FROM keyframes",
        ])
        .await;
    let without = archive.run(&snapshot).await;
    without.assert_success();
    assert_eq!(without.stdout, with_keyframes.stdout);
    archive.run(&["status"]).await.assert_success();
    assert_eq!(
        keyframe_count(&archive).await,
        0,
        "a read builds no keyframes"
    );
    let mut migrate = archive.command(&["migrate"]);
    migrate.env(nomad_chronicle::store::keyframe::EVENTS_BETWEEN_ENV, "100");
    finish(migrate.spawn().expect("spawn migrate"))
        .await
        .assert_success();
    assert!(keyframe_count(&archive).await > 0, "a writer catches up");
}

/// How many keyframes the archive holds, counted from outside.
async fn keyframe_count(archive: &Archive) -> i64 {
    let sql = "SELECT COUNT(*) FROM keyframes";
    match archive.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&archive.url)
                .await
                .expect("open");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&archive.url)
                .await
                .expect("open");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count")
        }
    }
}

on_both_backends!(a_snapshot_read_without_keyframes_answers_the_same_and_builds_none);
