//! How the simulator frames `/v1/event/stream` bodies, as the Nomad versions
//! in the field do (see `nomad-event-stream.md`, "Response"): chunked, chunked
//! and gzip-compressed, or close-delimited after `Connection: close` — the
//! last written by hand on the raw socket, since an HTTP server library
//! cannot send a body that ends when the socket closes.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::server::{Answer, Inner, StreamRequest, answer};
use super::stream;

/// The event stream's framing, by Nomad version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Framing {
    /// Nomad <= 1.11.1: `Transfer-Encoding: chunked`; errors after the 200
    /// end the body with a raw close reason.
    #[default]
    Chunked,
    /// Nomad <= 1.11.1 when the client sends `Accept-Encoding: gzip`: as
    /// `Chunked`, gzip-compressed and flushed after every write.
    ChunkedGzip,
    /// Nomad >= 1.11.3: `200 OK` with `Connection: close`, no chunking, no
    /// gzip; the body ends when the socket closes, and errors (a denied
    /// token too) simply close it.
    CloseDelimited,
    /// Nomad 1.11.2: as `CloseDelimited`, with the status line
    /// `HTTP/0.0 200 OK` that HTTP clients reject.
    Http00,
}

impl Framing {
    /// Whether the connection is taken over and the body ends at close.
    pub fn is_close_delimited(self) -> bool {
        matches!(self, Framing::CloseDelimited | Framing::Http00)
    }
}

/// Whether the request's `Accept-Encoding` allows gzip.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| coding.split(';').next().is_some_and(|c| c.trim() == "gzip"))
}

/// Compresses a body with gzip, flushing after every chunk so each line
/// reaches the client at once, as Nomad's gzip writer does.
pub(crate) fn gzip<S>(body: S) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
{
    let encoder = Some(GzEncoder::new(Vec::new(), Compression::fast()));
    futures_util::stream::unfold(
        (Box::pin(body), encoder),
        |(mut body, mut encoder)| async move {
            let gz = encoder.as_mut()?;
            let out = match body.next().await {
                Some(Ok(chunk)) => gz
                    .write_all(&chunk)
                    .and_then(|()| gz.flush())
                    .map(|()| Bytes::from(std::mem::take(gz.get_mut()))),
                Some(Err(e)) => {
                    encoder = None;
                    Err(e)
                }
                None => encoder.take()?.finish().map(Bytes::from),
            };
            Some((out, (body, encoder)))
        },
    )
}

/// The listener the router serves from. With a close-delimited framing,
/// connections whose first request is `/v1/event/stream` are answered here
/// by hand; every other connection goes to the router.
pub(crate) struct SimListener {
    /// The bound socket.
    tcp: TcpListener,
    /// The simulator, for the framing and the stream bodies.
    inner: Arc<Inner>,
    /// Connections a sorting task found to be for the router.
    for_router: mpsc::Receiver<(TcpStream, SocketAddr)>,
    /// Handed to each sorting task.
    to_router: mpsc::Sender<(TcpStream, SocketAddr)>,
}

impl SimListener {
    pub(crate) fn new(tcp: TcpListener, inner: Arc<Inner>) -> Self {
        let (to_router, for_router) = mpsc::channel(64);
        SimListener {
            tcp,
            inner,
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
                    Ok(conn) if !self.inner.framing().is_close_delimited() => return conn,
                    Ok((tcp, addr)) => {
                        // Sorting waits for the request line; it must not
                        // hold up other connections.
                        let inner = self.inner.clone();
                        let to_router = self.to_router.clone();
                        tokio::spawn(async move {
                            if is_event_stream(&tcp).await {
                                serve_by_hand(inner, tcp).await;
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
async fn serve_by_hand(inner: Arc<Inner>, mut tcp: TcpStream) {
    let Some((method, target, headers)) = read_head(&mut tcp).await else {
        return;
    };
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut record = StreamRequest::new(query, &headers);
    let status_line = if inner.framing() == Framing::Http00 {
        "HTTP/0.0 200 OK"
    } else {
        "HTTP/1.1 200 OK"
    };
    let stream_head = format!(
        "{status_line}\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    match answer(&inner, &method, &headers, &mut record) {
        Answer::Text(status, body) => {
            record.status = status.as_u16();
            inner.record(record);
            let _ = tcp.write_all(text_response(status, &body).as_bytes()).await;
        }
        Answer::Empty => {
            record.status = 200;
            inner.record(record);
            let _ = tcp.write_all(stream_head.as_bytes()).await;
        }
        Answer::Stream { sub, fault } => {
            record.status = 200;
            inner.record(record);
            if tcp.write_all(stream_head.as_bytes()).await.is_err() {
                return;
            }
            let (mut reader, mut writer) = tcp.into_split();
            let body = stream::body(inner.clone(), sub, fault, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_only_when_listed() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip"));
        assert!(with("br, gzip;q=0.5"));
        assert!(!with("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_gzipped_body_decodes_to_the_lines_it_was_given() {
        let lines = ["{}\n", "{\"Index\":1,\"Events\":[]}\n", "event dropped"];
        let body = futures_util::stream::iter(
            lines.map(|l| Ok::<_, io::Error>(Bytes::from_static(l.as_bytes()))),
        );
        let chunks: Vec<Bytes> = gzip(body)
            .map(|c| c.expect("chunk"))
            .collect::<Vec<_>>()
            .await;
        assert!(chunks.len() >= lines.len(), "one flush per line");
        let compressed: Vec<u8> = chunks.concat();
        let mut decoded = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&compressed[..]),
            &mut decoded,
        )
        .expect("valid gzip");
        assert_eq!(decoded, lines.concat());
    }
}
