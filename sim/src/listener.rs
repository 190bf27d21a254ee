//! The listener the simulator serves from. With a close-delimited framing
//! (Nomad >= 1.11.2), a connection whose first request is the event stream
//! is answered here, by hand on the raw socket, since an HTTP server library
//! cannot send a body that ends when the socket closes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::endpoint::{Answer, EventStream, StreamRequest};
use super::framing::Framing;

/// The listener the router serves from. With a close-delimited framing,
/// connections whose first request is `/v1/event/stream` are answered here
/// by hand; every other connection goes to the router.
pub(crate) struct SimListener {
    /// The bound socket.
    tcp: TcpListener,
    /// The event stream endpoint, for the framing and the stream bodies.
    events: Arc<EventStream>,
    /// Connections a sorting task found to be for the router.
    for_router: mpsc::Receiver<(TcpStream, SocketAddr)>,
    /// Handed to each sorting task.
    to_router: mpsc::Sender<(TcpStream, SocketAddr)>,
}

impl SimListener {
    pub(crate) fn new(tcp: TcpListener, events: Arc<EventStream>) -> Self {
        let (to_router, for_router) = mpsc::channel(64);
        SimListener {
            tcp,
            events,
            for_router,
            to_router,
        }
    }
}

impl axum::serve::Listener for SimListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            tokio::select! {
                Some(conn) = self.for_router.recv() => return conn,
                accepted = self.tcp.accept() => match accepted {
                    Ok(conn) if !self.events.framing().is_close_delimited() => return conn,
                    Ok((tcp, addr)) => {
                        // Sorting waits for the request line; it must not
                        // hold up other connections.
                        let events = self.events.clone();
                        let to_router = self.to_router.clone();
                        tokio::spawn(async move {
                            if is_event_stream(&tcp).await {
                                serve_by_hand(&events, tcp).await;
                            } else {
                                let _ = to_router.send((tcp, addr)).await;
                            }
                        });
                    }
                    Err(error) => {
                        tracing::debug!(%error, "Simulator accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Whether the connection's first request line asks for the event stream;
/// peeks, so the router still reads the request when it does not.
async fn is_event_stream(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 2048];
    for _ in 0..5000 {
        let Ok(n) = tcp.peek(&mut buf).await else {
            return false;
        };
        if n == 0 {
            return false;
        }
        if let Some(end) = memchr::memchr(b'\n', &buf[..n]) {
            let line = String::from_utf8_lossy(&buf[..end]);
            let target = line.split(' ').nth(1).unwrap_or_default();
            return target == "/v1/event/stream" || target.starts_with("/v1/event/stream?");
        }
        if n == buf.len() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

/// One request on a taken-over connection: the head is read here, answered
/// as the router would, and a stream body is written raw until it ends;
/// then the socket closes, which ends the body.
async fn serve_by_hand(events: &EventStream, mut tcp: TcpStream) {
    let Some((method, target, headers)) = read_head(&mut tcp).await else {
        return;
    };
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut record = StreamRequest::new(query, &headers);
    let status_line = if events.framing() == Framing::Http00 {
        "HTTP/0.0 200 OK"
    } else {
        "HTTP/1.1 200 OK"
    };
    let stream_head = format!(
        "{status_line}\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    match events.answer(&method, &headers, &mut record) {
        Answer::Text(status, body) => {
            record.status = status.as_u16();
            events.record(record);
            let _ = tcp.write_all(text_response(status, &body).as_bytes()).await;
        }
        Answer::Empty => {
            record.status = 200;
            events.record(record);
            let _ = tcp.write_all(stream_head.as_bytes()).await;
        }
        Answer::Stream { sub, fault } => {
            record.status = 200;
            events.record(record);
            if tcp.write_all(stream_head.as_bytes()).await.is_err() {
                return;
            }
            let (mut reader, mut writer) = tcp.into_split();
            let body = events.body(sub, fault, false);
            let mut body = std::pin::pin!(body);
            let mut scratch = [0u8; 512];
            loop {
                let item = tokio::select! {
                    item = body.next() => item,
                    // The client went away; stop producing for it.
                    _ = reader.read(&mut scratch) => return,
                };
                match item {
                    Some(Ok(bytes)) => {
                        if writer.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(_)) => {
                        // A simulated cut: reset the connection rather than
                        // close it, or the client would see a clean end.
                        if let Ok(tcp) = reader.reunite(writer) {
                            let _ = tcp.set_zero_linger();
                        }
                        return;
                    }
                    None => break,
                }
            }
            let _ = writer.shutdown().await;
            return;
        }
    }
    let _ = tcp.shutdown().await;
}

/// Reads the request head up to its blank line and parses what the answer
/// needs: method, target and headers.
async fn read_head(tcp: &mut TcpStream) -> Option<(Method, String, HeaderMap)> {
    const LIMIT: usize = 64 * 1024;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while memchr::memmem::find(&head, b"\r\n\r\n").is_none() {
        if head.len() > LIMIT {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = Method::from_bytes(request_line.next()?.as_bytes()).ok()?;
    let target = request_line.next()?.to_owned();
    let mut headers = HeaderMap::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }
    Some((method, target, headers))
}

/// A complete plain-text response that closes the connection.
fn text_response(status: StatusCode, body: &str) -> String {
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
}
