//! How the simulator frames `/v1/event/stream` bodies, as the Nomad versions
//! in the field do (see `nomad-event-stream.md`, "Response"): chunked, chunked
//! and gzip-compressed, or close-delimited after `Connection: close` (written
//! by hand by the `listener` module); and the shape new bodies are written in.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::{Stream, StreamExt};

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

impl Framing {
    /// Every framing, indexed by its number in [`BodyFormat`].
    const ALL: [Framing; 4] = [
        Framing::Chunked,
        Framing::ChunkedGzip,
        Framing::CloseDelimited,
        Framing::Http00,
    ];
}

/// How new stream bodies are written: their framing and the largest body
/// chunk. Each is read once per response or line, so plain atomics do.
#[derive(Debug)]
pub(crate) struct BodyFormat {
    /// The framing, as its position in [`Framing::ALL`].
    framing: AtomicU8,
    /// Maximum body chunk size; 0 means lines are written whole.
    split_chunks: AtomicUsize,
}

impl BodyFormat {
    /// Bodies framed as `framing`, lines written whole.
    pub(crate) fn new(framing: Framing) -> BodyFormat {
        let format = BodyFormat {
            framing: AtomicU8::new(0),
            split_chunks: AtomicUsize::new(0),
        };
        format.set_framing(framing);
        format
    }

    /// The framing for a new stream response.
    pub(crate) fn framing(&self) -> Framing {
        let at = usize::from(self.framing.load(Ordering::SeqCst));
        Framing::ALL.get(at).copied().unwrap_or_default()
    }

    /// Changes how new stream responses are framed.
    pub(crate) fn set_framing(&self, framing: Framing) {
        let at = Framing::ALL.iter().position(|f| *f == framing).unwrap_or(0);
        self.framing
            .store(u8::try_from(at).unwrap_or(0), Ordering::SeqCst);
    }

    /// The largest body chunk a line is written in; 0 when lines go whole.
    pub(crate) fn split_chunks(&self) -> usize {
        self.split_chunks.load(Ordering::Relaxed)
    }

    /// Splits lines into chunks of at most `max_bytes`, or writes them
    /// whole again with `None`.
    pub(crate) fn set_split_chunks(&self, max_bytes: Option<usize>) {
        let k = max_bytes.map_or(0, |k| k.max(1));
        self.split_chunks.store(k, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

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

    #[test]
    fn a_body_format_gives_back_the_framing_and_chunk_size_set() {
        let format = BodyFormat::new(Framing::Http00);
        assert_eq!(format.framing(), Framing::Http00);
        for framing in Framing::ALL {
            format.set_framing(framing);
            assert_eq!(format.framing(), framing);
        }
        assert_eq!(format.split_chunks(), 0, "lines go whole at first");
        format.set_split_chunks(Some(0));
        assert_eq!(format.split_chunks(), 1);
        format.set_split_chunks(Some(7));
        assert_eq!(format.split_chunks(), 7);
        format.set_split_chunks(None);
        assert_eq!(format.split_chunks(), 0);
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
