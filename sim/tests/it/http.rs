//! The simulator over real HTTP, read with a hand-written HTTP/1.1 client so nothing is hidden.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use nomad_sim::{ConnFault, Framing, Generator, Sim, SimConfig, SimEvent, SimFrame};

/// Generous bound on every read, so a broken server fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(5);

/// A frame with one Job event in `namespace`.
pub(crate) fn job_frame(index: u64, namespace: &str) -> SimFrame {
    let ev = SimEvent::new(
        "Job",
        "JobRegistered",
        format!("job-{index}"),
        namespace,
        vec![],
        index,
        serde_json::json!({"Job": {"ID": format!("job-{index}")}}),
    );
    SimFrame {
        index,
        events: vec![ev],
    }
}

/// One HTTP response, read as it arrives.
pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    /// Decoded body bytes not yet returned as lines.
    body: Vec<u8>,
    /// Whether the terminating zero-size chunk arrived.
    ended: bool,
    /// Sizes of the chunks received, to check splitting.
    chunk_sizes: Vec<usize>,
}

/// Sends `GET path` with extra header lines and reads the status line and headers.
pub(crate) async fn get(addr: SocketAddr, path: &str, headers: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    timeout(WAIT, reader.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        timeout(WAIT, reader.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        let Some((name, value)) = line.trim_end().split_once(": ") else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.to_string()));
    }
    Response {
        status,
        headers,
        reader,
        body: Vec::new(),
        ended: false,
        chunk_sizes: Vec::new(),
    }
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads one chunk into `body`; `Err` when the connection breaks mid-body.
    async fn read_chunk(&mut self) -> std::io::Result<()> {
        let mut size = String::new();
        if self.reader.read_line(&mut size).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).await?;
        data.truncate(size);
        if size == 0 {
            self.ended = true;
        } else {
            self.chunk_sizes.push(size);
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    /// The next `\n`-terminated line of the body (without the newline).
    pub(crate) async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.body.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=end).collect();
                return String::from_utf8_lossy(&line[..end]).into_owned();
            }
            assert!(
                !self.ended,
                "body ended; rest {:?}",
                String::from_utf8_lossy(&self.body)
            );
            timeout(WAIT, self.read_chunk()).await.unwrap().unwrap();
        }
    }

    /// Everything up to the end of the body: `Ok(rest)` after a clean end, `Err(rest)` after a break.
    pub(crate) async fn rest(&mut self) -> Result<String, String> {
        while !self.ended {
            if timeout(WAIT, self.read_chunk()).await.unwrap().is_err() {
                return Err(String::from_utf8_lossy(&self.body).into_owned());
            }
        }
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }
}

pub(crate) fn fast() -> SimConfig {
    SimConfig {
        heartbeat: Duration::from_secs(3600),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_stream_greets_then_sends_buffered_and_new_frames() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    sim.publish(job_frame(10, "default"));
    sim.publish(job_frame(12, "default"));
    let mut resp = get(addr, "/v1/event/stream?index=11", "").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.line().await, "{}");
    assert_eq!(resp.line().await, job_frame(12, "default").to_line());
    sim.publish(job_frame(15, "default"));
    assert_eq!(resp.line().await, job_frame(15, "default").to_line());
    assert_eq!(sim.connection_count(), 1);
    assert_eq!(sim.requests()[0].index, 11);
    sim.shutdown();
    assert_eq!(resp.rest().await, Ok(String::new()));
}

#[tokio::test]
async fn filters_apply_and_heartbeats_keep_coming() {
    let config = SimConfig {
        heartbeat: Duration::from_millis(50),
        ..SimConfig::default()
    };
    let (sim, addr) = Sim::start(config).await.unwrap();
    sim.publish(job_frame(1, "prod"));
    sim.publish(job_frame(2, "default"));
    let mut resp = get(addr, "/v1/event/stream?topic=Job&namespace=prod", "").await;
    assert_eq!(resp.line().await, "{}");
    assert_eq!(resp.line().await, job_frame(1, "prod").to_line());
    assert_eq!(
        resp.line().await,
        "{}",
        "a heartbeat, frame 2 is filtered out"
    );
    assert_eq!(
        sim.requests()[0].topics,
        vec![("Job".to_string(), "*".to_string())]
    );
}

#[tokio::test]
async fn a_wrong_token_is_403_and_the_value_is_never_recorded() {
    let config = SimConfig {
        token: Some("s3cret".into()),
        ..fast()
    };
    let (sim, addr) = Sim::start(config).await.unwrap();
    let mut denied = get(addr, "/v1/event/stream", "X-Nomad-Token: nope\r\n").await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("content-length"), Some("17"));
    let mut body = vec![0; 17];
    denied.reader.read_exact(&mut body).await.unwrap();
    assert_eq!(body, b"Permission denied");
    assert_eq!(get(addr, "/v1/event/stream", "").await.status, 403);
    let mut ok = get(addr, "/v1/event/stream", "Authorization: Bearer s3cret\r\n").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.line().await, "{}");
    let requests = sim.requests();
    let seen: Vec<(bool, u16)> = requests
        .iter()
        .map(|r| (r.token_present, r.status))
        .collect();
    assert_eq!(seen, vec![(true, 403), (false, 403), (true, 200)]);
    assert!(!format!("{requests:?}").contains("s3cret"));
}

#[tokio::test]
async fn bad_parameters_are_400_with_nomads_message() {
    let (_sim, addr) = Sim::start(fast()).await.unwrap();
    let mut resp = get(addr, "/v1/event/stream?index=abc", "").await;
    assert_eq!(resp.status, 400);
    let want = "Unable to parse index: strconv.Atoi: parsing \"abc\": invalid syntax";
    let mut body = vec![0; want.len()];
    resp.reader.read_exact(&mut body).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&body), want);
    let leader = get(addr, "/v1/status/leader", "").await;
    assert_eq!(leader.status, 200);
}

#[tokio::test]
async fn a_reader_that_falls_out_of_the_buffer_is_told_and_cut_off() {
    let config = SimConfig {
        buffer_size: 3,
        ..fast()
    };
    let (sim, addr) = Sim::start(config).await.unwrap();
    sim.publish(job_frame(1, "default"));
    let mut resp = get(addr, "/v1/event/stream", "").await;
    assert_eq!(resp.line().await, "{}");
    assert_eq!(resp.line().await, job_frame(1, "default").to_line());
    // On this single-threaded runtime the stream cannot run between these publishes.
    for i in 2..10 {
        sim.publish(job_frame(i, "default"));
    }
    assert_eq!(
        resp.rest().await,
        Ok("event dropped from buffer".to_string())
    );
}

#[tokio::test]
async fn faults_apply_to_one_new_connection_each() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    let frames = Generator::new(3).frames(20);
    for frame in &frames {
        sim.publish(frame.clone());
    }
    let line = |i: usize| frames[i].to_line();
    sim.push_fault(ConnFault::Status {
        code: 500,
        body: "No cluster leader".into(),
    });
    sim.push_fault(ConnFault::CloseAfter {
        frames: 2,
        reason: Some("subscription closed by server, client should resubscribe".into()),
    });
    sim.push_fault(ConnFault::GarbageAfter {
        frames: 1,
        line: "{not json".into(),
    });
    sim.push_fault(ConnFault::CutAfter { frames: 1 });
    let everything = "/v1/event/stream?namespace=*";
    assert_eq!(get(addr, everything, "").await.status, 500);

    let mut closed = get(addr, everything, "").await;
    assert_eq!(closed.line().await, "{}");
    assert_eq!(closed.line().await, line(0));
    assert_eq!(closed.line().await, line(1));
    let reason = "subscription closed by server, client should resubscribe";
    assert_eq!(closed.rest().await, Ok(reason.to_string()));

    let mut garbage = get(addr, everything, "").await;
    assert_eq!(garbage.line().await, "{}");
    assert_eq!(garbage.line().await, line(0));
    assert_eq!(garbage.line().await, "{not json");
    assert_eq!(garbage.line().await, line(1));

    let mut cut = get(addr, everything, "").await;
    assert_eq!(cut.line().await, "{}");
    assert_eq!(cut.line().await, line(0));
    let half = cut.rest().await.expect_err("the connection breaks");
    assert!(line(1).starts_with(&half) && !half.is_empty() && half.len() < line(1).len());

    let mut normal = get(addr, everything, "").await;
    assert_eq!(normal.line().await, "{}");
    assert_eq!(normal.line().await, line(0));
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 200, 200, 200, 200]);
}

#[tokio::test]
async fn a_stalled_stream_sends_nothing_and_counts_as_open() {
    let config = SimConfig {
        heartbeat: Duration::from_millis(20),
        ..SimConfig::default()
    };
    let (sim, addr) = Sim::start(config).await.unwrap();
    sim.publish(job_frame(1, "default"));
    sim.push_fault(ConnFault::StallAfter { frames: 1 });
    let mut resp = get(addr, "/v1/event/stream", "").await;
    assert_eq!(resp.line().await, "{}");
    assert_eq!(resp.line().await, job_frame(1, "default").to_line());
    sim.publish(job_frame(2, "default"));
    let waited = timeout(Duration::from_millis(200), resp.read_chunk()).await;
    assert!(waited.is_err(), "no frame and no heartbeat while stalled");
    assert_eq!(sim.connection_count(), 1);
    sim.shutdown();
    assert_eq!(resp.rest().await, Ok(String::new()));
}

#[tokio::test]
async fn split_chunks_cut_lines_into_small_reads() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    sim.set_split_chunks(Some(7));
    let frame = job_frame(1, "default");
    sim.publish(frame.clone());
    let mut resp = get(addr, "/v1/event/stream", "").await;
    assert_eq!(resp.line().await, "{}");
    assert_eq!(resp.line().await, frame.to_line());
    assert!(resp.chunk_sizes.iter().all(|&n| n <= 7));
    assert!(resp.chunk_sizes.len() > frame.to_line().len() / 7);
}

#[tokio::test]
async fn dropping_every_handle_stops_the_server() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    let mut resp = get(addr, "/v1/event/stream", "").await;
    assert_eq!(resp.line().await, "{}");
    drop(sim);
    assert_eq!(resp.rest().await, Ok(String::new()));
    let refused = async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, refused).await.expect("the listener closes");
}

#[tokio::test]
async fn a_client_that_leaves_is_no_longer_counted() {
    let (sim, addr) = Sim::start(fast()).await.unwrap();
    let mut resp = get(addr, "/v1/event/stream", "").await;
    assert_eq!(resp.line().await, "{}");
    assert_eq!(sim.connection_count(), 1);
    drop(resp);
    let gone = async {
        while sim.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, gone)
        .await
        .expect("the stream notices the client left");
}

#[tokio::test]
async fn a_close_delimited_stream_is_not_chunked_and_ends_without_a_reason() {
    let (sim, addr) = Sim::start(SimConfig {
        framing: Framing::CloseDelimited,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.publish(job_frame(5, "default"));
    sim.push_fault(ConnFault::CloseAfter {
        frames: 1,
        reason: Some("subscription closed by server, client should resubscribe".into()),
    });

    let mut r = get(addr, "/v1/event/stream?namespace=*", "").await;

    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("transfer-encoding"), None);
    let mut body = String::new();
    timeout(WAIT, r.reader.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    assert!(
        body.starts_with("{}\n{\"Index\":5,\"Events\":[") && body.ends_with("]}\n"),
        "the greeting, one frame, then the socket closed: {body:?}"
    );
}

#[tokio::test]
async fn nomad_1_11_2_framing_sends_an_http_0_0_status_line_and_the_router_still_answers() {
    let (sim, addr) = Sim::start(SimConfig {
        framing: Framing::Http00,
        token: Some("t".into()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.publish(job_frame(5, "default"));

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/event/stream?index=0 HTTP/1.1\r\nHost: {addr}\r\nX-Nomad-Token: wrong\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    timeout(WAIT, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with("HTTP/0.0 200 OK\r\n") && answer.ends_with("\r\n\r\n"),
        "a refused token is 200 and no body once the connection is taken over: {answer:?}"
    );

    let r = get(addr, "/v1/acl/token/self", "X-Nomad-Token: t\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "one request per connection"
    );
}
