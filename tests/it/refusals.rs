//! Settings refused before anything runs, and failures that end a run at
//! once because retrying cannot help: a blank cluster label, a CA file
//! without a certificate, an agent certificate TLS does not accept. And a
//! time argument at the very start of the calendar, which is no mistake.

use std::process::Stdio;

use nomad_sim::Generator;

use crate::common::{Archive, Backend, SimAt, eventually, on_both_backends, pg};

#[tokio::test]
async fn a_blank_cluster_label_is_refused_by_every_command() {
    let archive = Archive::new(Backend::Sqlite).await;
    let capture = archive.capture("empty.ndjson", &[]);
    let commands: [&[&str]; 5] = [
        &["ingest", "--cluster", ""],
        &["import", "--cluster", " ", &capture],
        &["query", "events", "--cluster", ""],
        &["replay", "--cluster", ""],
        &["serve", "--cluster", ""],
    ];
    for args in commands {
        let run = archive.run(args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("the cluster label is blank"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_is_refused() {
    let archive = Archive::new(Backend::Sqlite).await;
    let no_cert = archive.file("no-cert.pem");
    std::fs::write(&no_cert, "# the CA goes here\n").expect("write");
    let no_cert = no_cert.display().to_string();
    let run = archive
        .run(&[
            "ingest",
            "--address",
            "https://127.0.0.1:1",
            "--ca-cert",
            &no_cert,
        ])
        .await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains(&format!(
            "CA certificate `{no_cert}` is not a valid PEM file: it holds no certificate"
        )),
        "{}",
        run.stderr
    );
}

/// A self-signed certificate and its key, written by `openssl`; `None`
/// when there is no `openssl` to write them.
fn self_signed(archive: &Archive) -> Option<(String, String)> {
    let cert = archive.file("agent.pem").display().to_string();
    let key = archive.file("agent-key.pem").display().to_string();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=nomad.example"])
        .args(["-keyout", &key, "-out", &cert])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match made {
        Ok(status) if status.success() => Some((cert, key)),
        _ => {
            eprintln!("*** SKIPPING: `openssl` cannot write a test certificate ***");
            None
        }
    }
}

#[tokio::test]
async fn an_agent_certificate_tls_rejects_ends_ingest_with_the_reason() {
    let archive = Archive::new(Backend::Sqlite).await;
    let Some((cert, key)) = self_signed(&archive) else {
        return;
    };
    let port = pg::free_port().expect("a free port");
    let accept = format!("127.0.0.1:{port}");
    let mut agent = tokio::process::Command::new("openssl")
        .args([
            "s_server", "-quiet", "-accept", &accept, "-cert", &cert, "-key", &key,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start openssl s_server");
    eventually("the TLS agent listening", || async {
        tokio::net::TcpStream::connect(&accept).await.is_ok()
    })
    .await;

    let address = format!("https://{accept}");
    let run = archive.run(&["ingest", "--address", &address]).await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the TLS certificate of Nomad at `{address}` was not accepted: invalid peer certificate"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--ca-cert"), "{}", run.stderr);
    assert!(!run.stderr.contains("Reconnecting"), "{}", run.stderr);
    let _ = agent.start_kill();
}

async fn a_time_at_the_start_of_the_calendar_is_accepted(backend: Backend) {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(63), 30);
    archive.ingest_until(&sim, last, &[]).await.assert_success();
    let everything = archive.run(&["replay"]).await;
    everything.assert_success();
    let since = archive
        .run(&["replay", "--since", "0001-01-01T00:00:00Z"])
        .await;
    since.assert_success();
    assert_eq!(since.stdout, everything.stdout);
    let query = archive
        .run(&["query", "events", "--since", "0001-01-01T00:00:00Z"])
        .await;
    query.assert_success();
    assert!(query.stdout.lines().count() > 30, "{}", query.stdout);
}

on_both_backends!(a_time_at_the_start_of_the_calendar_is_accepted);
