//! `serve` facing careless operators and hostile clients: no empty token,
//! the token where it is required and only there, connections that do not
//! send their request in time, and a cap on open streams.

use std::sync::Arc;
use std::time::Duration;

use nomad_chronicle::config::{DbUrl, Secret};
use nomad_chronicle::replay::connections::ConnectionLimits;
use nomad_chronicle::replay::serve::{self, Metrics, ServeOptions};
use nomad_chronicle::store;
use nomad_sim::Generator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::common::{Archive, Backend, SimAt, eventually, on_both_backends};

/// `serve` running in this process on an archive of cluster `test`.
struct Server {
    address: String,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(archive: &Archive, options: ServeOptions) -> Server {
        let store = store::connect(&DbUrl::parse(&archive.url).expect("url"))
            .await
            .expect("open the archive");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let address = listener.local_addr().expect("address").to_string();
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::default());
        let task = tokio::spawn(serve::serve(
            listener,
            store,
            options,
            metrics.clone(),
            shutdown.clone(),
        ));
        Server {
            address,
            metrics,
            shutdown,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "serve stops cleanly: {stopped:?}"
        );
    }
}

fn options(token: Option<&str>) -> ServeOptions {
    ServeOptions {
        cluster: "test".to_owned(),
        token: token.map(Secret::new),
        heartbeat: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        max_clients: ServeOptions::DEFAULT_MAX_CLIENTS,
        client_buffer: ServeOptions::DEFAULT_CLIENT_BUFFER,
        limits: ConnectionLimits::default(),
    }
}

/// An archive holding a short history of cluster `test`.
async fn archive_with_history(backend: Backend) -> Archive {
    archive_with_events(backend, 50).await
}

/// An archive holding `events` generated events of cluster `test`.
async fn archive_with_events(backend: Backend, events: usize) -> Archive {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(17), events);
    archive.ingest_until(&sim, last, &[]).await.assert_success();
    archive
}

/// Reads until the server closes the connection; `false` if it is still
/// open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

#[tokio::test]
async fn an_empty_serve_token_is_a_startup_error() {
    let archive = Archive::new(Backend::Sqlite).await;
    let empty = archive.file("empty-token");
    std::fs::write(&empty, "\n").expect("write the token file");
    let empty = empty.display().to_string();
    let by_flag = archive.run(&["serve", "--token", ""]).await;
    let by_file = archive.run(&["serve", "--token-file", &empty]).await;
    let by_env = archive
        .command(&["serve"])
        .env("NOMAD_CHRONICLE_SERVE_TOKEN", " ")
        .output()
        .await
        .expect("run serve");
    for (code, stderr) in [
        (by_flag.code, by_flag.stderr),
        (by_file.code, by_file.stderr),
        (
            by_env.status.code(),
            String::from_utf8_lossy(&by_env.stderr).into_owned(),
        ),
    ] {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("is empty"), "{stderr}");
        assert!(!stderr.contains("Serving the archive"), "{stderr}");
    }
}

async fn the_token_guards_the_stream_and_metrics_but_not_health(backend: Backend) {
    let archive = archive_with_history(backend).await;
    let server = Server::start(&archive, options(Some("s3cret"))).await;
    let client = reqwest::Client::new();
    let status = |path: &'static str, token: Option<&'static str>| {
        let mut request = client.get(server.url(path));
        if let Some(token) = token {
            request = request.header("X-Nomad-Token", token);
        }
        async move { request.send().await.expect("request").status().as_u16() }
    };
    assert_eq!(status("/v1/event/stream", Some("")).await, 403);
    assert_eq!(status("/v1/event/stream", None).await, 403);
    assert_eq!(status("/v1/event/stream", Some("s3cre")).await, 403);
    assert_eq!(status("/v1/event/stream", Some("s3cret")).await, 200);
    assert_eq!(status("/metrics", None).await, 403);
    assert_eq!(status("/metrics", Some("")).await, 403);
    assert_eq!(status("/metrics", Some("s3cret")).await, 200);
    assert_eq!(status("/healthz", None).await, 200);
    server.stop().await;
}

async fn connections_that_send_no_request_in_time_are_closed(backend: Backend) {
    let archive = archive_with_history(backend).await;
    let mut opts = options(None);
    opts.limits.header_timeout = Duration::from_millis(300);
    let server = Server::start(&archive, opts).await;

    // Connected, silent.
    let mut silent = TcpStream::connect(&server.address).await.expect("connect");
    // A request head trickling in, a line at a time, never finished.
    let mut trickle = TcpStream::connect(&server.address).await.expect("connect");
    trickle
        .write_all(b"GET /v1/event/stream HTTP/1.1\r\n")
        .await
        .expect("write");
    let trickling = async {
        for i in 0..100 {
            let line = format!("X-Padding-{i}: x\r\n");
            if trickle.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (silent_closed, ()) = tokio::join!(
        closed_within(&mut silent, Duration::from_secs(5)),
        trickling
    );
    assert!(silent_closed, "a silent connection stays open");
    assert!(
        closed_within(&mut trickle, Duration::from_secs(1)).await,
        "a trickling request head keeps its connection"
    );

    // Kept alive after a response, then idle.
    let mut idle = TcpStream::connect(&server.address).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut response = [0u8; 12];
    idle.read_exact(&mut response).await.expect("a response");
    assert_eq!(&response, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle keep-alive connection stays open"
    );
    server.stop().await;
}

async fn streams_beyond_max_clients_are_answered_503(backend: Backend) {
    let archive = archive_with_history(backend).await;
    let mut opts = options(None);
    opts.max_clients = 2;
    let server = Server::start(&archive, opts).await;
    let client = reqwest::Client::new();
    let url = server.url("/v1/event/stream?namespace=*");
    let open = || async {
        let response = client.get(&url).send().await.expect("request");
        (response.status().as_u16(), response)
    };
    let (first, first_stream) = open().await;
    let (second, _second_stream) = open().await;
    let (third, third_stream) = open().await;
    assert_eq!((first, second, third), (200, 200, 503));
    assert_eq!(
        third_stream.text().await.unwrap_or_default(),
        "too many streams are open; retry later"
    );
    // Other routes are not streams.
    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    drop(first_stream);
    eventually("a closed stream's place is free again", || async {
        open().await.0 == 200
    })
    .await;
    server.stop().await;
}

async fn streams_whose_clients_read_nothing_are_cut_off(backend: Backend) {
    // Several MB of history: more than the kernel buffers a connection
    // (up to tcp_wmem's 4 MiB by default), so the server has to wait.
    let archive = archive_with_events(backend, 10_000).await;
    let mut opts = options(None);
    opts.limits.stall_timeout = Duration::from_millis(500);
    opts.client_buffer = 16 << 10;
    let server = Server::start(&archive, opts).await;
    let clients = || server.metrics.clients.get();
    let mut streams = Vec::new();
    for _ in 0..20 {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .set_recv_buffer_size(4096)
            .expect("a small receive buffer");
        let address = server.address.parse().expect("an address");
        let mut stream = socket.connect(address).await.expect("connect");
        stream
            .write_all(b"GET /v1/event/stream?namespace=* HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        streams.push(stream);
    }
    eventually("20 streams open", || async { clients() == 20 }).await;
    eventually("every stream that nobody reads is cut off", || async {
        clients() == 0
    })
    .await;
    for stream in &mut streams {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
    server.stop().await;
}

on_both_backends!(
    streams_whose_clients_read_nothing_are_cut_off,
    the_token_guards_the_stream_and_metrics_but_not_health,
    connections_that_send_no_request_in_time_are_closed,
    streams_beyond_max_clients_are_answered_503,
);
