//! Frames a byte stream into NDJSON lines.
//!
//! The body of `/v1/event/stream` arrives in reads that end anywhere: one frame
//! may span many reads, and one read may hold many frames. The reader keeps
//! what it has not yet framed in a buffer, hands out complete lines, and keeps
//! memory bounded: a line longer than `max_line` bytes is skipped (and
//! reported) instead of being buffered whole. When the body ends with bytes
//! that have no newline, they are handed out as a trailing fragment: that is
//! how Nomad tells a client why it closed the stream.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// What the reader found next.
#[derive(Debug, PartialEq)]
pub enum LineItem {
    /// A complete line, without its `\n` (and without a `\r` before it).
    Line { line: Bytes, number: u64 },
    /// A line longer than the limit; its bytes were discarded.
    Oversized { number: u64, len: usize },
    /// Bytes after the last newline when the body ended.
    Trailing { fragment: Bytes, number: u64 },
    /// The body ended cleanly after a newline.
    Eof,
}

/// Splits a stream of byte chunks into lines.
pub struct LineReader<S> {
    /// Where the chunks come from.
    stream: S,
    /// Bytes received but not yet handed out as a line.
    buf: BytesMut,
    /// How far `buf` has been searched for a newline, so each byte is scanned once.
    scanned: usize,
    /// The longest line kept; longer ones are dropped while they stream past.
    max_line: usize,
    /// Length of the over-long line being skipped, if any.
    discarding: Option<usize>,
    /// Lines seen so far, for error messages.
    line_number: u64,
    /// Bytes consumed so far, for progress reporting.
    bytes_read: u64,
    /// Set once the stream has ended.
    done: bool,
}

impl<S, E> LineReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    /// Wraps `stream`; lines longer than `max_line` bytes are skipped.
    pub fn new(stream: S, max_line: usize) -> Self {
        LineReader {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            scanned: 0,
            max_line,
            discarding: None,
            line_number: 0,
            bytes_read: 0,
            done: false,
        }
    }

    /// Bytes consumed from the stream so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Returns the next line, or the end of the body. An error from the
    /// underlying stream (a connection cut mid-body) is passed on; whatever was
    /// buffered before it is dropped, as it cannot be a complete line.
    pub async fn next(&mut self) -> Result<LineItem, E> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + pos;
                let mut line = self.buf.split_to(end + 1);
                self.scanned = 0;
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                self.line_number += 1;
                if let Some(skipped) = self.discarding.take() {
                    return Ok(LineItem::Oversized {
                        number: self.line_number,
                        len: skipped + line.len(),
                    });
                }
                return Ok(LineItem::Line {
                    line: line.freeze(),
                    number: self.line_number,
                });
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max_line {
                *self.discarding.get_or_insert(0) += self.buf.len();
                self.buf.clear();
                self.scanned = 0;
            }
            if self.done {
                return Ok(self.finish());
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.bytes_read += chunk.len() as u64;
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = None;
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
    }

    fn finish(&mut self) -> LineItem {
        self.scanned = 0;
        if let Some(skipped) = self.discarding.take() {
            self.line_number += 1;
            let len = skipped + self.buf.len();
            self.buf.clear();
            return LineItem::Oversized {
                number: self.line_number,
                len,
            };
        }
        let fragment = self.buf.split().freeze();
        if fragment.iter().all(u8::is_ascii_whitespace) {
            return LineItem::Eof;
        }
        self.line_number += 1;
        LineItem::Trailing {
            fragment,
            number: self.line_number,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    type Chunk = Result<Bytes, &'static str>;

    fn reader(
        chunks: Vec<Chunk>,
        max_line: usize,
    ) -> LineReader<impl Stream<Item = Chunk> + Unpin> {
        LineReader::new(stream::iter(chunks), max_line)
    }

    fn ok(s: &str) -> Chunk {
        Ok(Bytes::copy_from_slice(s.as_bytes()))
    }

    async fn collect(
        mut r: LineReader<impl Stream<Item = Chunk> + Unpin>,
    ) -> Vec<Result<LineItem, &'static str>> {
        let mut out = Vec::new();
        loop {
            let item = r.next().await;
            let end = matches!(
                item,
                Ok(LineItem::Eof) | Ok(LineItem::Trailing { .. }) | Err(_)
            );
            out.push(item);
            if end {
                return out;
            }
        }
    }

    fn line(s: &str, number: u64) -> Result<LineItem, &'static str> {
        Ok(LineItem::Line {
            line: Bytes::copy_from_slice(s.as_bytes()),
            number,
        })
    }

    #[tokio::test]
    async fn a_line_split_across_many_chunks_is_reassembled() {
        let chunks = vec![ok("{\"In"), ok("dex\":1"), ok(",\"Events\":[]}"), ok("\n")];
        assert_eq!(
            collect(reader(chunks, 1024)).await,
            vec![line("{\"Index\":1,\"Events\":[]}", 1), Ok(LineItem::Eof)]
        );
    }

    #[tokio::test]
    async fn several_lines_in_one_chunk_come_out_one_by_one() {
        let chunks = vec![ok("{}\n{\"a\":1}\r\n{\"b\""), ok(":2}\n")];
        assert_eq!(
            collect(reader(chunks, 1024)).await,
            vec![
                line("{}", 1),
                line("{\"a\":1}", 2),
                line("{\"b\":2}", 3),
                Ok(LineItem::Eof)
            ]
        );
    }

    #[tokio::test]
    async fn bytes_without_newline_at_the_end_are_the_close_reason() {
        let chunks = vec![ok("{}\nevent dropped "), ok("from buffer")];
        assert_eq!(
            collect(reader(chunks, 1024)).await,
            vec![
                line("{}", 1),
                Ok(LineItem::Trailing {
                    fragment: Bytes::from_static(b"event dropped from buffer"),
                    number: 2
                })
            ]
        );
    }

    #[tokio::test]
    async fn an_overlong_line_is_skipped_and_the_next_one_is_read() {
        let long = "x".repeat(50);
        let chunks = vec![
            ok("{}\n"),
            ok(&long[..20]),
            ok(&long[20..]),
            ok("\n{\"c\":3}\n"),
        ];
        assert_eq!(
            collect(reader(chunks, 16)).await,
            vec![
                line("{}", 1),
                Ok(LineItem::Oversized { number: 2, len: 50 }),
                line("{\"c\":3}", 3),
                Ok(LineItem::Eof)
            ]
        );
    }

    #[tokio::test]
    async fn a_cut_mid_line_is_an_error_not_a_line() {
        let chunks = vec![ok("{}\n{\"Index\":5,\"Ev"), Err("connection reset")];
        assert_eq!(
            collect(reader(chunks, 1024)).await,
            vec![line("{}", 1), Err("connection reset")]
        );
    }

    #[tokio::test]
    async fn a_large_line_within_the_limit_is_kept_whole() {
        let big = format!("{{\"p\":\"{}\"}}", "y".repeat(3 * 1024 * 1024));
        let chunks: Vec<Chunk> = big
            .as_bytes()
            .chunks(16 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .chain([ok("\n")])
            .collect();
        let mut r = reader(chunks, 8 * 1024 * 1024);
        match r.next().await {
            Ok(LineItem::Line { line, .. }) => assert_eq!(line.len(), big.len()),
            other => panic!("expected the line, got {other:?}"),
        }
        assert_eq!(r.bytes_read(), big.len() as u64 + 1);
    }
}
