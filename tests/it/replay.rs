//! `replay` and `serve`: stored history re-emitted in Nomad's wire format,
//! checked frame by frame against what the simulator streamed.

use std::time::Duration;

use nomad_sim::{Generator, SimFrame, Subscription};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{Archive, Backend, SimAt, eval_frame, finish, on_both_backends, read_until};

/// Archives `events` generated events of two namespaces and more; returns the frames.
async fn archived_history(archive: &Archive, seed: u64, events: usize) -> Vec<SimFrame> {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(seed), events);
    archive.ingest_until(&sim, last, &[]).await.assert_success();
    sim.sim.history()
}

fn lines(frames: &[SimFrame]) -> Vec<String> {
    frames.iter().map(SimFrame::to_line).collect()
}

/// What Nomad itself would send a subscriber with this query.
fn nomad_would_send(frames: &[SimFrame], query: &str) -> Vec<String> {
    let sub = Subscription::parse(query).expect("query");
    frames
        .iter()
        .filter_map(|f| f.filtered(&sub))
        .map(|f| f.to_line())
        .collect()
}

async fn replay_reproduces_the_stream_byte_for_byte(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 51, 2_000).await;

    let run = archive.run(&["replay"]).await;

    run.assert_success();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), lines(&history));
}

async fn replay_filters_as_nomad_would_have(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 52, 2_000).await;
    let job = history
        .iter()
        .flat_map(|f| &f.events)
        .find(|e| e.topic == "Allocation")
        .and_then(|e| e.filter_keys.first().cloned())
        .expect("an allocation with a job");

    let cases: [(&[&str], String); 4] = [
        (&["--topic", "Node"], "topic=Node&namespace=*".to_owned()),
        (&["--namespace", "default"], "namespace=default".to_owned()),
        (
            &["--topic", &format!("Allocation:{job}")],
            format!("topic=Allocation:{job}&namespace=*"),
        ),
        (
            &[
                "--topic",
                "Job",
                "--topic",
                "Deployment",
                "--namespace",
                "default",
            ],
            "topic=Job&topic=Deployment".to_owned(),
        ),
    ];
    for (flags, query) in cases {
        let mut args = vec!["replay"];
        args.extend_from_slice(flags);
        let run = archive.run(&args).await;
        run.assert_success();
        let want = nomad_would_send(&history, &query);
        assert!(!want.is_empty(), "{query} selects something");
        assert_eq!(run.stdout.lines().collect::<Vec<_>>(), want, "{flags:?}");
    }
}

async fn replay_honours_the_index_range(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 53, 1_000).await;
    let (from, to) = (history[100].index, history[200].index);

    let run = archive
        .run(&[
            "replay",
            "--from-index",
            &from.to_string(),
            "--to-index",
            &to.to_string(),
        ])
        .await;

    run.assert_success();
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        lines(&history[100..=200])
    );
}

async fn replay_into_a_closed_pipe_ends_quietly(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived_history(&archive, 54, 3_000).await;
    let mut child = archive.command(&["replay"]).spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).await.expect("a line");
    drop(stdout);

    let run = finish(child).await;

    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.is_empty(), "quietly: {}", run.stderr);
    assert!(first.starts_with("{\"Index\":"));
}

async fn replay_follow_emits_events_as_they_are_archived(backend: Backend) {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(55);
    let first = sim.publish(&mut generator, 300);
    archive
        .ingest_until(&sim, first, &[])
        .await
        .assert_success();
    let mut replay = archive
        .command(&["replay", "--follow", "--poll-interval", "50ms"])
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(replay.stdout.take().expect("stdout")).lines();

    let last = sim.publish(&mut generator, 300);
    archive.ingest_until(&sim, last, &[]).await.assert_success();
    let mut seen = Vec::new();
    let want = lines(&sim.sim.history());
    let read = async {
        while seen.len() < want.len() {
            match stdout.next_line().await {
                Ok(Some(line)) => seen.push(line),
                _ => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("follow caught up");
    replay.start_kill().expect("stop replay");

    assert_eq!(seen, want);
}

async fn several_clusters_need_a_choice(backend: Backend) {
    let archive = Archive::new(backend).await;
    for (name, seed) in [("east", 56), ("west", 57)] {
        let frames = Generator::new(seed).frames(50);
        let file = archive.file(&format!("{name}.ndjson"));
        std::fs::write(
            &file,
            frames
                .iter()
                .map(|f| f.to_line() + "\n")
                .collect::<String>(),
        )
        .expect("write");
        archive
            .run(&["import", &file.display().to_string(), "--cluster", name])
            .await
            .assert_success();
    }

    let run = archive.run(&["replay"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("several clusters (east, west): choose one with --cluster"),
        "{}",
        run.stderr
    );
    let run = archive.run(&["replay", "--cluster", "north"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("no cluster `north` (it holds: east, west)"),
        "{}",
        run.stderr
    );
    archive
        .run(&["replay", "--cluster", "west"])
        .await
        .assert_success();
}

/// A running `serve` and its address.
struct Served {
    child: tokio::process::Child,
    address: String,
}

async fn serve(archive: &Archive, extra: &[&str]) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--listen", &listen, "--poll-interval", "50ms"];
    args.extend_from_slice(extra);
    let mut child = archive.command(&args).spawn().expect("spawn serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = Vec::new();
    read_until(&mut stderr, &mut log, "Serving the archive").await;
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
    });
    Served {
        child,
        address: format!("http://{listen}"),
    }
}

/// An open event stream, read frame by frame (heartbeats skipped).
struct FrameStream {
    response: reqwest::Response,
    buf: Vec<u8>,
    frames: Vec<String>,
}

impl FrameStream {
    async fn open(url: &str, token: Option<&str>) -> FrameStream {
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.header("X-Nomad-Token", token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 200);
        FrameStream {
            response,
            buf: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Every frame read so far, once at least `count` arrived (or 60 s passed).
    async fn until(&mut self, count: usize) -> Vec<String> {
        let read = async {
            while self.frames.len() < count {
                let Ok(Some(chunk)) = self.response.chunk().await else {
                    break;
                };
                self.buf.extend_from_slice(&chunk);
                while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    if line != "{}" {
                        self.frames.push(line);
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), read).await;
        self.frames.clone()
    }
}

/// Reads `frames` frames (skipping heartbeats) from a new stream.
async fn read_frames(url: &str, token: Option<&str>, frames: usize) -> Vec<String> {
    FrameStream::open(url, token).await.until(frames).await
}

async fn an_ingester_pointed_at_serve_archives_the_same_history(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 58, 2_000).await;
    let mut served = serve(&archive, &[]).await;
    let copy = Archive::new(Backend::Sqlite).await;
    let last = history.last().map(|f| f.index).unwrap_or_default();

    let run = copy
        .run(&[
            "ingest",
            "--address",
            &served.address,
            "--cluster",
            "copy",
            "--until-index",
            &last.to_string(),
        ])
        .await;

    run.assert_success();
    assert_eq!(copy.events("copy").await, archive.events("test").await);
    served.child.start_kill().expect("stop serve");
}

async fn serve_speaks_nomads_protocol(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 59, 1_000).await;
    let mut served = serve(&archive, &["--token", "s3cret", "--heartbeat", "200ms"]).await;
    let url = format!("{}/v1/event/stream", served.address);
    let client = reqwest::Client::new();

    let denied = client
        .get(&url)
        .header("X-Nomad-Token", "wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.text().await.unwrap_or_default(), "Permission denied");
    let bad = client
        .get(format!("{url}?index=abc"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.text().await.unwrap_or_default(),
        "Unable to parse index: strconv.Atoi: parsing \"abc\": invalid syntax"
    );
    let bad = client
        .get(format!("{url}?topic=Job:a:b"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status(), 400);
    let post = client
        .post(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(post.status(), 405);

    // Default namespace `default`, inclusive index, then heartbeats when idle.
    let from = history[10].index;
    let want: Vec<String> = nomad_would_send(&history, &format!("index={from}"))
        .into_iter()
        .filter(|l| frame_index(l) >= from)
        .collect();
    let got = read_frames(&format!("{url}?index={from}"), Some("s3cret"), want.len()).await;
    assert_eq!(got, want);

    // A subscription that matches nothing still gets the greeting and a
    // heartbeat whenever it has been idle for --heartbeat.
    let mut idle = client
        .get(format!("{url}?topic=Job:no-such-job"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("request");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(900), async {
        while let Ok(Some(chunk)) = idle.chunk().await {
            raw.extend_from_slice(&chunk);
        }
    })
    .await;
    let heartbeats = String::from_utf8_lossy(&raw)
        .lines()
        .filter(|l| *l == "{}")
        .count();
    assert!(
        raw.starts_with(b"{}\n") && heartbeats >= 3,
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        String::from_utf8_lossy(&raw).lines().count(),
        heartbeats,
        "only heartbeats"
    );

    // An index past the newest entry starts at the newest, as Nomad's buffer does.
    let newest = history.last().map(|f| f.index).unwrap_or_default();
    let got = read_frames(
        &format!("{url}?index={}&namespace=*", newest + 1000),
        Some("s3cret"),
        1,
    )
    .await;
    assert_eq!(got.first().map(|l| frame_index(l)), Some(newest));

    let health = client
        .get(format!("{}/healthz", served.address))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let metrics = client
        .get(format!("{}/metrics", served.address))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("metrics");
    let metrics = metrics.text().await.unwrap_or_default();
    assert!(
        metrics.contains("nomad_chronicle_serve_frames_sent_total"),
        "{metrics}"
    );
    served.child.start_kill().expect("stop serve");
}

fn frame_index(line: &str) -> u64 {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["Index"].as_u64())
        .unwrap_or_default()
}

async fn python_nomad_reads_history_from_serve(backend: Backend) {
    let Some(python) = crate::common::python::with_python_nomad() else {
        return;
    };
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 60, 1_500).await;
    let mut served = serve(&archive, &[]).await;
    let port = served
        .address
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let from = history[20].index;
    let want: Vec<Value> = nomad_would_send(
        &history,
        &format!("index={from}&namespace=*&topic=Allocation&topic=Node"),
    )
    .iter()
    .filter(|l| frame_index(l) >= from)
    .map(|l| serde_json::from_str(l).expect("json"))
    .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/read_stream.py");

    let output = tokio::process::Command::new(&python)
        .args([
            script,
            "127.0.0.1",
            &port,
            &from.to_string(),
            &want.len().to_string(),
            "Allocation",
            "Node",
        ])
        .output()
        .await
        .expect("run python");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    served.child.start_kill().expect("stop serve");
}

async fn fifty_clients_from_different_indexes_each_get_their_frames(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived_history(&archive, 61, 3_000).await;
    let mut served = serve(&archive, &[]).await;
    // One client that never reads must not hold up the others.
    let stalled = reqwest::Client::new()
        .get(format!("{}/v1/event/stream?namespace=*", served.address))
        .send()
        .await
        .expect("stalled client");
    let clients = (0..50).map(|i| {
        let start = history[i * history.len() / 50].index;
        let url = format!(
            "{}/v1/event/stream?index={start}&namespace=*",
            served.address
        );
        let want: Vec<String> = lines(&history)
            .into_iter()
            .filter(|l| frame_index(l) >= start)
            .collect();
        async move {
            let got = read_frames(&url, None, want.len()).await;
            (got == want, start)
        }
    });

    let results = futures_util::future::join_all(clients).await;

    for (same, start) in &results {
        assert!(same, "client from index {start} got other frames");
    }
    let pid = served.child.id().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default();
    // The history is ~5 MB; 50 clients each holding it whole would need
    // ~250 MB. Paging keeps the server far below that.
    assert!(rss_kb > 0 && rss_kb < 120_000, "peak RSS {rss_kb} kB");
    drop(stalled);
    served.child.start_kill().expect("stop serve");
}

/// Pacing follows Nomad's clock: two entries 1.2 s apart by their payloads
/// are replayed 1.2 s apart (0.3 s at four times the speed), however fast
/// they were imported.
async fn realtime_replay_keeps_the_original_pauses(backend: Backend) {
    let archive = Archive::new(backend).await;
    let t0 = 1_800_000_000_000_000_000_i64;
    let capture = [eval_frame(10, t0), eval_frame(11, t0 + 1_200_000_000)].join("\n");
    let file = archive.file("capture.ndjson");
    std::fs::write(&file, capture + "\n").expect("write capture");
    archive
        .run(&["import", &file.display().to_string()])
        .await
        .assert_success();
    let unpaced = archive.run(&["replay"]).await.stdout;

    for (flags, at_least) in [(&["--realtime"][..], 1000), (&["--speed", "4"][..], 250)] {
        let started = std::time::Instant::now();
        let mut args = vec!["replay"];
        args.extend_from_slice(flags);
        let run = archive.run(&args).await;
        run.assert_success();
        assert_eq!(run.stdout, unpaced, "pacing changes timing, not content");
        let took = started.elapsed().as_millis();
        assert!(
            took >= at_least,
            "{flags:?} took {took} ms, less than the paced pause"
        );
    }
}

async fn a_serve_stream_stays_open_for_newly_archived_events(backend: Backend) {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    let mut generator = Generator::new(63);
    let first = sim.publish(&mut generator, 300);
    archive
        .ingest_until(&sim, first, &[])
        .await
        .assert_success();
    let mut served = serve(&archive, &[]).await;
    let url = format!("{}/v1/event/stream?namespace=*", served.address);
    let mut stream = FrameStream::open(&url, None).await;
    let stored = sim.sim.history().len();
    assert_eq!(stream.until(stored).await, lines(&sim.sim.history()));

    let last = sim.publish(&mut generator, 300);
    archive.ingest_until(&sim, last, &[]).await.assert_success();

    let all = sim.sim.history();
    assert_eq!(stream.until(all.len()).await, lines(&all));
    served.child.start_kill().expect("stop serve");
}

on_both_backends!(
    realtime_replay_keeps_the_original_pauses,
    a_serve_stream_stays_open_for_newly_archived_events,
    python_nomad_reads_history_from_serve,
    fifty_clients_from_different_indexes_each_get_their_frames,
    replay_reproduces_the_stream_byte_for_byte,
    replay_filters_as_nomad_would_have,
    replay_honours_the_index_range,
    replay_into_a_closed_pipe_ends_quietly,
    replay_follow_emits_events_as_they_are_archived,
    several_clusters_need_a_choice,
    an_ingester_pointed_at_serve_archives_the_same_history,
    serve_speaks_nomads_protocol,
);
