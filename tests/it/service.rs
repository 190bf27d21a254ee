//! `ingest --listen`: what Prometheus scrapes from `/metrics` equals what was
//! stored, the lag falls to 0, reconnects, gaps and reconstructions are
//! counted, and `/readyz` follows the database and the writer lease.

use std::collections::BTreeMap;
use std::time::Duration;

use nomad_chronicle::archive::PartStatus;
use nomad_chronicle::archive::reconstruction::TOPICS;
use nomad_chronicle::config::DbUrl;
use nomad_chronicle::store;
use nomad_sim::{Framing, Generator};
use tokio::process::Child;

use crate::common::log::Log;
use crate::common::pg::{self, PgServer};
use crate::common::{Archive, Backend, SimAt, Stall, eventually, finish, on_both_backends};

on_both_backends!(metrics_equal_what_was_stored_and_count_the_reconnect_and_gap);

/// A free loopback address for `--listen`.
fn listen_address() -> String {
    format!("127.0.0.1:{}", pg::free_port().expect("a free port"))
}

/// One scrape of `/metrics`: each sample line's name with labels, and value.
async fn scrape(address: &str) -> BTreeMap<String, f64> {
    let Ok(response) = reqwest::get(format!("http://{address}/metrics")).await else {
        return BTreeMap::new();
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect()
}

/// `/readyz`'s status and its one line, or `None` while nothing listens.
async fn readyz(address: &str) -> Option<(u16, String)> {
    // A probe answers within seconds; one that does not is asked again.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let response = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let line = response.text().await.ok()?;
    Some((status, line.trim_end().to_owned()))
}

/// Stops ingest as an operator does, and waits for a clean exit.
async fn terminate(child: Child) {
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    finish(child).await.assert_success();
}

async fn metrics_equal_what_was_stored_and_count_the_reconnect_and_gap(backend: Backend) {
    let Stall {
        sim,
        stalled_at,
        later,
        last,
    } = SimAt::stalling(31, Framing::Chunked).await;
    let archive = Archive::new(backend).await;
    let listen = listen_address();
    let child = archive
        .command(&[
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "test",
            "--batch-interval",
            "20ms",
            "--listen",
            &listen,
        ])
        .spawn()
        .expect("spawn");
    eventually("the frames before the stall", || async {
        scrape(&listen)
            .await
            .get("nomad_chronicle_last_stored_index")
            .copied()
            == Some(stalled_at as f64)
    })
    .await;
    assert_eq!(
        readyz(&listen).await,
        Some((200, "active: subscribed and committing".to_owned()))
    );
    for frame in later {
        sim.sim.publish(frame);
    }
    eventually("the lag to fall to 0 at the last index", || async {
        let m = scrape(&listen).await;
        m.get("nomad_chronicle_last_stored_index") == Some(&(last as f64))
            && m.get("nomad_chronicle_ingest_lag_indexes") == Some(&0.0)
    })
    .await;
    eventually("the state to be reconstructed after the gap", || async {
        let m = scrape(&listen).await;
        m.get("nomad_chronicle_reconciliations_total") == Some(&(TOPICS.len() as f64))
    })
    .await;
    let metrics = scrape(&listen).await;
    terminate(child).await;

    let archived = archive.archived("test").await;
    let mut indexes: Vec<u64> = archived.iter().map(|e| e.index).collect();
    indexes.dedup();
    let mut by_topic: BTreeMap<String, f64> = BTreeMap::new();
    for event in archived {
        *by_topic
            .entry(format!(
                "nomad_chronicle_events_stored_total{{topic=\"{}\"}}",
                event.topic
            ))
            .or_default() += 1.0;
    }
    let scraped: BTreeMap<String, f64> = metrics
        .iter()
        .filter(|(name, _)| name.starts_with("nomad_chronicle_events_stored_total"))
        .map(|(name, value)| (name.clone(), *value))
        .collect();
    assert_eq!(scraped, by_topic);
    let get = |name: &str| metrics.get(name).copied();
    assert_eq!(
        get("nomad_chronicle_frames_stored_total"),
        Some(indexes.len() as f64)
    );
    assert_eq!(get("nomad_chronicle_nomad_last_index"), Some(last as f64));
    assert_eq!(get("nomad_chronicle_ingest_lag_seconds"), Some(0.0));
    assert_eq!(
        get("nomad_chronicle_reconnects_total{reason=\"events_dropped\"}"),
        Some(1.0)
    );
    assert_eq!(
        get("nomad_chronicle_gaps_total{cause=\"buffer\"}"),
        Some(1.0)
    );
    assert_eq!(
        get("nomad_chronicle_lease_state{state=\"active\"}"),
        Some(1.0)
    );
    assert_eq!(get("nomad_chronicle_malformed_lines_total"), Some(0.0));
    let store = store::connect(&DbUrl::parse(&archive.url).expect("url"))
        .await
        .expect("open");
    let reconstructions = store
        .reconstructions()
        .summary("test")
        .await
        .expect("reconstructions");
    store.close().await;
    let stored = reconstructions
        .iter()
        .filter(|part| part.status == PartStatus::Stored)
        .count();
    assert_eq!(stored, TOPICS.len(), "{reconstructions:?}");
    assert_eq!(
        get("nomad_chronicle_reconciliation_failures_total"),
        Some(0.0)
    );
    assert!(get("nomad_chronicle_bytes_received_total").is_some_and(|b| b > 0.0));
    let commits = get("nomad_chronicle_batch_commit_duration_seconds_count");
    assert!(commits.is_some_and(|n| n >= 2.0), "{commits:?}");
}

#[tokio::test]
async fn readyz_is_unavailable_while_postgres_is_stopped_and_ready_after() {
    if pg::shared_admin_url().is_none() {
        return;
    }
    let server = PgServer::start().expect("a private PostgreSQL server");
    let archive = Archive::new(Backend::Sqlite).await;
    let url = server.url("postgres");
    let sim = SimAt::roomy().await;
    sim.publish(&mut Generator::new(32), 100);
    let listen = listen_address();
    let mut child = archive
        .command(&[
            "--db",
            &url,
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "prod",
            "--batch-interval",
            "20ms",
            "--listen",
            &listen,
        ])
        .spawn()
        .expect("spawn");
    // Its log is read as it comes: while PostgreSQL is down it warns on
    // every retry, and a full pipe would stop it mid-write. It is kept, to
    // say what ingest did when a wait below fails.
    let log = Log::of(child.stderr.take().expect("stderr"));
    // Ready means writing: a starting ingester answers 200 as a standby
    // until it holds the lease.
    let answers = |status: u16, start: &'static str| {
        let listen = listen.clone();
        move || {
            let listen = listen.clone();
            async move {
                readyz(&listen)
                    .await
                    .is_some_and(|(s, line)| s == status && line.starts_with(start))
            }
        }
    };
    let active = answers(200, "active: ");
    log.eventually("ingest to be active", active.clone()).await;

    server.stop().expect("stop PostgreSQL");
    log.eventually(
        "/readyz to report the database",
        answers(503, "database unreachable for "),
    )
    .await;
    let (status, reason) = readyz(&listen).await.unwrap_or_default();
    assert_eq!(status, 503);
    assert!(
        reason.starts_with("database unreachable for ") && reason.ends_with('s'),
        "{reason}"
    );

    server.start_again().expect("start PostgreSQL");
    log.eventually("ingest to be active again", active).await;
    terminate(child).await;
}

#[tokio::test]
async fn a_standby_is_ready_and_says_so_until_it_takes_over() {
    if pg::shared_admin_url().is_none() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    let (_store, _cluster, lease) = archive.writer("test").await;
    let sim = SimAt::roomy().await;
    sim.publish(&mut Generator::new(34), 100);
    let listen = listen_address();
    let child = archive
        .command(&[
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "test",
            "--listen",
            &listen,
        ])
        .spawn()
        .expect("spawn");
    let standby = Some((
        200,
        "standby: another ingester holds the writer lease".to_owned(),
    ));
    eventually("the standby to be ready", || async {
        readyz(&listen).await == standby
    })
    .await;
    let metrics = scrape(&listen).await;
    assert_eq!(
        metrics.get("nomad_chronicle_lease_state{state=\"standby\"}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics.get("nomad_chronicle_lease_state{state=\"active\"}"),
        Some(&0.0)
    );

    drop(lease);
    let active = Some((200, "active: subscribed and committing".to_owned()));
    eventually("the standby to take over", || async {
        readyz(&listen).await == active
    })
    .await;
    terminate(child).await;
}

#[tokio::test]
async fn a_listen_address_in_use_is_one_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let archive = Archive::new(Backend::Sqlite).await;

    let run = archive.run(&["ingest", "--listen", &address]).await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: cannot listen on `{address}`: ")),
        "{last}"
    );
}
