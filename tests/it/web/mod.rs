//! `serve`'s web timeline: the JSON API over loopback ([`api`]) and the
//! page in a real headless Chromium ([`browser`]), on archives the
//! simulator's history was ingested into.

mod api;
mod bands;
mod browser;
mod front;
mod lives;
mod markers;
mod slots;

use std::collections::{BTreeMap, BTreeSet};

use nomad_chronicle::archive::TimeSource;
use nomad_sim::Generator;
use serde_json::Value;

use crate::common::{Archive, SimAt, read_until};

/// Archives `events` generated events into cluster `test`.
async fn archived_history(archive: &Archive, seed: u64, events: usize) {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(seed), events);
    archive.ingest_until(&sim, last, &[]).await.assert_success();
}

/// A running `serve` and its base URL.
struct Served {
    _child: tokio::process::Child,
    base: String,
}

async fn serve(archive: &Archive, extra: &[&str]) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--listen", &listen];
    args.extend_from_slice(extra);
    let mut child = archive.command(&args).spawn().expect("spawn serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = Vec::new();
    read_until(&mut stderr, &mut log, "Serving the archive").await;
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
    });
    Served {
        _child: child,
        base: format!("http://{listen}"),
    }
}

/// What the archive holds, as the tests count it.
struct Facts {
    /// The window covering every event dated by Nomad's clock: the first
    /// one's time and just after the last one's (a node pool's events,
    /// which carry no time, are dated when they were received).
    from: i64,
    to: i64,
    /// Distinct allocation IDs per `namespace/job` lane.
    allocs_by_lane: BTreeMap<String, BTreeSet<String>>,
    /// The index and time of the event in the middle of the archive.
    middle_index: u64,
    middle_time: i64,
    /// Every archived event, in stream order.
    events: Vec<nomad_chronicle::archive::ArchivedEvent>,
}

async fn facts(archive: &Archive) -> Facts {
    let events = archive.archived("test").await;
    let mut allocs_by_lane: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.topic == "Allocation") {
        let raw: Value = serde_json::from_str(&event.raw).expect("archived JSON");
        let alloc = &raw["Payload"]["Allocation"];
        let lane = format!(
            "{}/{}",
            alloc["Namespace"].as_str().unwrap_or_default(),
            alloc["JobID"].as_str().unwrap_or_default()
        );
        allocs_by_lane
            .entry(lane)
            .or_default()
            .insert(event.key.clone());
    }
    let dated = || {
        events
            .iter()
            .filter(|e| e.time_source == TimeSource::Nomad)
            .map(|e| e.time)
    };
    Facts {
        from: dated().min().expect("events"),
        to: dated().max().expect("events") + 1,
        allocs_by_lane,
        middle_index: events[events.len() / 2].index,
        middle_time: events[events.len() / 2].time,
        events,
    }
}
