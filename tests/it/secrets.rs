//! Where secrets may live and where they never show: a PostgreSQL password
//! in the URL's user info or `password` parameter, in a file, or in
//! PGPASSWORD; an ACL token in a file.

use nomad_sim::{Generator, SimConfig};

use crate::common::{Archive, Backend, SimAt, pg};

/// Skips the test (loudly, in `pg::shared_admin_url`) without PostgreSQL.
fn available() -> bool {
    pg::shared_admin_url().is_some()
}

/// The archive's URL without its password, and that password.
fn split_password(url: &str) -> (String, String) {
    let mut parsed = reqwest::Url::parse(url).expect("a PostgreSQL URL");
    let password = parsed
        .password()
        .expect("the test URL has a password")
        .to_owned();
    parsed.set_password(None).expect("a URL with a host");
    (parsed.to_string(), password)
}

/// Asserts `text` shows no trace of `password`, in any of the forms it was given.
fn assert_hidden(text: &str, password: &str) {
    assert!(
        !text.contains(&format!("password={password}")) && !text.contains(&format!(":{password}@")),
        "password leaked: {text}"
    );
}

#[tokio::test]
async fn a_password_given_as_a_url_parameter_is_masked_everywhere() {
    if !available() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    archive.status().await; // creates the archive the reads below open
    let (bare, password) = split_password(&archive.url);
    let url = format!("{bare}?password={password}");
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(3), 20);
    let until = last.to_string();
    let ingest = archive
        .run(&[
            "--db",
            &url,
            "ingest",
            "--address",
            &sim.address,
            "--until-index",
            &until,
        ])
        .await;
    ingest.assert_success();
    assert!(ingest.stderr.contains("password=***"), "{}", ingest.stderr);
    assert_hidden(&ingest.stderr, &password);
    for output in ["table", "json"] {
        let status = archive
            .run(&["--db", &url, "status", "--output", output])
            .await;
        status.assert_success();
        assert!(status.stdout.contains("password=***"), "{}", status.stdout);
        assert_hidden(&status.stdout, &password);
        assert_hidden(&status.stderr, &password);
    }
    // An error names the URL too, masked.
    let refused = "postgres://app@127.0.0.1:1/x?sslmode=disable&password=hunter2";
    let run = archive.run(&["--db", refused, "status"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("`postgres://app@127.0.0.1:1/x?sslmode=disable&password=***`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[tokio::test]
async fn a_password_file_stands_in_for_the_password_in_the_url() {
    if !available() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    archive.status().await; // creates the archive the reads below open
    let (bare, password) = split_password(&archive.url);
    let file = archive.file("db-password");
    std::fs::write(&file, format!("{password}\n")).expect("write the password file");
    let file = file.display().to_string();

    let by_flag = archive
        .run(&["--db", &bare, "--db-password-file", &file, "status"])
        .await;
    by_flag.assert_success();
    assert!(
        by_flag.stdout.contains("password=***"),
        "{}",
        by_flag.stdout
    );
    assert_hidden(&by_flag.stdout, &password);
    let by_env = archive
        .command(&["--db", &bare, "status", "--output", "json"])
        .env("NOMAD_CHRONICLE_DB_PASSWORD_FILE", &file)
        .output()
        .await
        .expect("run status");
    assert_eq!(by_env.status.code(), Some(0), "{by_env:?}");

    let twice = archive
        .run(&["--db", &archive.url, "--db-password-file", &file, "status"])
        .await;
    assert_eq!(twice.code, Some(2));
    assert!(twice.stderr.contains("not both"), "{}", twice.stderr);
    assert_hidden(&twice.stderr, &password);

    let empty = archive.file("empty");
    std::fs::write(&empty, "\n").expect("write an empty file");
    let run = archive
        .run(&[
            "--db",
            &bare,
            "--db-password-file",
            &empty.display().to_string(),
            "status",
        ])
        .await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("is empty"), "{}", run.stderr);

    let sqlite = format!("sqlite://{}", archive.file("a.db").display());
    let run = archive
        .run(&["--db", &sqlite, "--db-password-file", &file, "status"])
        .await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("is for PostgreSQL"), "{}", run.stderr);
}

#[tokio::test]
async fn pgpassword_is_used_and_never_printed() {
    if !available() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    archive.status().await; // creates the archive the reads below open
    let (bare, password) = split_password(&archive.url);
    let run = archive
        .command(&["--db", &bare, "status"])
        .env("PGPASSWORD", &password)
        .output()
        .await
        .expect("run status");
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let wrong = archive
        .command(&["--db", &bare, "status"])
        .env("PGPASSWORD", "env-secret-9431")
        .output()
        .await
        .expect("run status");
    assert_eq!(wrong.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("env-secret-9431"), "{stderr}");
}

#[tokio::test]
async fn ingest_reads_its_token_from_a_file() {
    let sim = SimAt::start(SimConfig {
        token: Some("file-token".to_owned()),
        ..SimConfig::default()
    })
    .await;
    let last = sim.publish(&mut Generator::new(5), 20);
    let archive = Archive::new(Backend::Sqlite).await;
    let file = archive.file("token");
    std::fs::write(&file, "file-token\n").expect("write the token file");
    let file = file.display().to_string();
    let run = archive
        .ingest_until(&sim, last, &["--token-file", &file])
        .await;
    run.assert_success();
    assert!(!run.stderr.contains("file-token"), "{}", run.stderr);
    let sent: usize = sim.sim.history().iter().map(|f| f.events.len()).sum();
    assert_eq!(archive.events("test").await.len(), sent);

    let empty = archive.file("empty");
    std::fs::write(&empty, "").expect("write an empty file");
    let run = archive
        .ingest_until(&sim, last, &["--token-file", &empty.display().to_string()])
        .await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains(&format!("the token file `{}` is empty", empty.display())),
        "{}",
        run.stderr
    );
}
