//! Turns lines into messages for the writer: parses each line, skips
//! heartbeats, asks [`Resume`] what each frame means (and acts on what it
//! notices: a server behind the archive, another cluster, an identity to
//! record), and counts and reports malformed lines without stopping. Shared
//! by the live stream and `import`; the live stream also stops it when a new
//! namespace calls for a new subscription.

use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::behind::Foreign;
use super::channel::Sender;
use super::msg::Msg;
use super::namespaces::NewNamespace;
use super::resume::{Notice, Resume};
use super::stats::Stats;
use crate::archive::{ReceivedFrame, newest_time, now_millis};
use crate::nomad::wire::LineError;
use crate::nomad::{ClusterIdentity, Line, LineItem, LineReader, parse_line};

/// How reading a body ended.
#[derive(Debug)]
pub enum PumpEnd<E> {
    /// The body ended after a complete line.
    Eof,
    /// The body ended with text that is not a line: the server's close reason.
    Closed(String),
    /// The underlying stream failed.
    Failed(E),
    /// No data and no heartbeat for the idle timeout.
    Idle,
    /// Shutdown was requested.
    Stopped,
    /// A frame with Index >= `--until-index` was handed on.
    ReachedUntil,
    /// The writer is gone (it failed); nothing more can be stored.
    WriterGone,
    /// The server is another cluster than the archived one; nothing of it
    /// was handed on.
    Foreign(Box<Foreign>),
    /// Namespaces appeared that this subscription does not cover.
    Resubscribe(Vec<NewNamespace>),
}

/// What one body delivered, for the reconnect logic.
#[derive(Debug, Default, Clone, Copy)]
pub struct PumpSeen {
    /// The `{}` greeting or any heartbeat arrived.
    pub heartbeat: bool,
    /// At least one frame arrived.
    pub frames: bool,
}

/// Settings for one pump.
pub struct Pump<'a> {
    pub resume: &'a mut Resume,
    pub tx: &'a Sender,
    pub stats: &'a Stats,
    pub shutdown: &'a CancellationToken,
    pub until_index: Option<u64>,
    pub idle_timeout: Option<Duration>,
    /// Where the lines come from, for log messages.
    pub source: &'a str,
    pub seen: PumpSeen,
    /// New namespaces, which end the body so a new subscription covers them.
    pub new_namespaces: Option<&'a mut mpsc::UnboundedReceiver<NewNamespace>>,
    /// How a frame without any time of its own is dated.
    pub undated: Undated,
}

/// How a frame that carries no time of its own is dated.
#[derive(Debug, Clone, Copy)]
pub enum Undated {
    /// By when it was received: the live stream.
    ByReceipt,
    /// By the newest time Nomad gave the frames before it (`None` until
    /// one had a time): a capture, whose receipt time is the import's.
    ByPreceding(Option<i64>),
}

impl Undated {
    /// The time that dates the next frame if it has none ([`ReceivedFrame::preceding`]),
    /// then takes in that frame's `newest` time.
    fn next(&mut self, newest: Option<i64>) -> Option<i64> {
        match self {
            Undated::ByReceipt => None,
            Undated::ByPreceding(seen) => {
                let before = *seen;
                *seen = before.max(newest);
                before
            }
        }
    }
}

impl Pump<'_> {
    /// Reads lines until the body ends, shutdown, or `--until-index`.
    pub async fn run<S, E>(&mut self, lines: &mut LineReader<S>) -> PumpEnd<E>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut last_bytes = 0;
        let idle_timeout = self.idle_timeout;
        loop {
            let next = async {
                match idle_timeout {
                    Some(limit) => tokio::time::timeout(limit, lines.next()).await.ok(),
                    None => Some(lines.next().await),
                }
            };
            // Only here, between lines, may the body be abandoned for a new
            // subscription: a frame is never half handed on.
            let item = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return PumpEnd::Stopped,
                _ = self.tx.closed() => return PumpEnd::WriterGone,
                new = next_namespace(&mut self.new_namespaces) => {
                    let mut all = vec![new];
                    if let Some(rx) = self.new_namespaces.as_mut() {
                        while let Ok(more) = rx.try_recv() {
                            all.push(more);
                        }
                    }
                    return PumpEnd::Resubscribe(all);
                }
                item = next => item,
            };
            let read = lines.bytes_read();
            Stats::add(&self.stats.bytes_read, read - last_bytes);
            last_bytes = read;
            let end = match item {
                None => return PumpEnd::Idle,
                Some(Err(e)) => return PumpEnd::Failed(e),
                Some(Ok(LineItem::Eof)) => return PumpEnd::Eof,
                Some(Ok(LineItem::Line { line, number })) => self.line(&line, number).await,
                Some(Ok(LineItem::Oversized { number, len })) => {
                    tracing::warn!(
                        source = self.source,
                        line = number,
                        bytes = len,
                        "Skipped a line longer than the limit"
                    );
                    self.malformed().await
                }
                Some(Ok(LineItem::Trailing { fragment, number })) => {
                    // A final frame without its newline is still a frame.
                    if let Ok(Line::Frame(_)) = parse_line(&fragment) {
                        if let Some(end) = self.line(&fragment, number).await {
                            return end;
                        }
                        return PumpEnd::Eof;
                    }
                    return PumpEnd::Closed(preview(&fragment));
                }
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    async fn line<E>(&mut self, line: &[u8], number: u64) -> Option<PumpEnd<E>> {
        let frame = match parse_line(line) {
            Ok(Line::Heartbeat) => {
                self.seen.heartbeat = true;
                return None;
            }
            Ok(Line::Frame(frame)) => frame,
            Err(e) => {
                self.report_malformed(&e, line, number);
                return self.malformed().await;
            }
        };
        self.seen.frames = true;
        let index = frame.index;
        Stats::raise(&self.stats.received_index, index);
        let newest = newest_time(&frame);
        Stats::raise_time(&self.stats.newest_nomad_time, newest);
        let preceding = self.undated.next(newest);
        let decision = self.resume.frame(index);
        let (behind, identity) = match self.notice(decision.notice) {
            Ok(meaning) => meaning,
            Err(end) => return Some(end),
        };
        if let Some(gap) = decision.gap {
            if !behind {
                tracing::warn!(
                    source = self.source,
                    from = gap.from_index,
                    to = gap.to_index,
                    kind = gap.kind.as_str(),
                    "Gap in the history: {}",
                    gap.reason
                );
            }
            Stats::add(&self.stats.gaps, 1);
            self.stats.metrics.gap(gap.kind);
            if let Some(end) = self.send(Msg::Gap(gap)).await {
                return Some(end);
            }
        }
        if let Some(identity) = identity {
            if let Some(end) = self.send(Msg::Identity(identity)).await {
                return Some(end);
            }
        }
        if decision.store {
            let events = frame.events.len();
            let msg = Msg::Frame(ReceivedFrame {
                frame,
                received_at: now_millis(),
                preceding,
            });
            if let Some(end) = self.send(msg).await {
                return Some(end);
            }
            tracing::trace!(
                source = self.source,
                index,
                events,
                "Handed a frame to the writer"
            );
        }
        match self.until_index {
            Some(until) if index >= until => Some(PumpEnd::ReachedUntil),
            _ => None,
        }
    }

    /// Acts on what [`Resume`] noticed about a frame: whether the server is
    /// behind the archive and an identity to record, or the end of the body.
    fn notice<E>(
        &self,
        notice: Option<Notice>,
    ) -> Result<(bool, Option<ClusterIdentity>), PumpEnd<E>> {
        match notice {
            Some(Notice::Foreign(foreign)) => Err(PumpEnd::Foreign(foreign)),
            Some(Notice::Behind(behind)) => {
                tracing::warn!(
                    source = self.source,
                    first = behind.first,
                    checkpoint = behind.resume,
                    "Behind the archive: {behind}"
                );
                Ok((true, None))
            }
            Some(Notice::Identity {
                identity: id,
                replaces,
            }) => {
                if let Some(old) = replaces {
                    tracing::warn!(
                        source = self.source,
                        "The agent reports another cluster ({id}) than the archive recorded ({old}); \
                     its history is not far behind the archive's, so it is taken for the same cluster \
                     with its servers replaced, and its identity is recorded (hint: if it is another \
                     cluster, stop ingest and give it a label of its own with --cluster)"
                    );
                } else {
                    tracing::debug!(source = self.source, identity = %id, "Recording the cluster's identity");
                }
                Ok((false, Some(id)))
            }
            None => Ok((false, None)),
        }
    }

    async fn malformed<E>(&mut self) -> Option<PumpEnd<E>> {
        Stats::add(&self.stats.malformed_lines, 1);
        self.resume.malformed();
        self.send(Msg::Malformed).await
    }

    fn report_malformed(&self, error: &LineError, line: &[u8], number: u64) {
        tracing::warn!(
            source = self.source,
            line = number,
            error = %error,
            preview = %preview(line),
            "Skipped a malformed line"
        );
    }

    async fn send<E>(&mut self, msg: Msg) -> Option<PumpEnd<E>> {
        tokio::select! {
            biased;
            sent = self.tx.send(msg) => sent.err().map(|_| PumpEnd::WriterGone),
            _ = self.shutdown.cancelled() => Some(PumpEnd::Stopped),
        }
    }
}

/// The next new namespace, or never when there is no watch (or it ended).
async fn next_namespace(
    rx: &mut Option<&mut mpsc::UnboundedReceiver<NewNamespace>>,
) -> NewNamespace {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(new) => new,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The start of a line, printable, for log messages.
pub fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX * 4)]);
    let text = text.trim();
    let mut out: String = text.chars().take(MAX).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}
