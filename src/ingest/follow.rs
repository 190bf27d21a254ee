//! The live side of ingest: subscribes to `/v1/event/stream` at the resume
//! point, pumps the body to the writer, and on anything short of a fatal
//! answer reconnects with backoff from wherever the archive now stands.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::pump::{Pump, PumpEnd, PumpSeen};
use super::resume::Resume;
use super::stats::Stats;
use super::writer::Msg;
use crate::nomad::{LineReader, NomadClient, StreamError, Subscription};

/// How following the stream ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowEnd {
    /// Shutdown was requested.
    Stopped,
    /// `--until-index` was reached.
    ReachedUntil,
}

/// Why following the stream failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Nomad refused the subscription in a way that retrying cannot fix.
    #[error("{error}{}", error.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Refused { error: StreamError },
    /// The writer stopped; its own error says why.
    #[error("the archive stopped accepting events")]
    WriterGone,
    /// Nomad accepted the subscription and closed it before its `{}`
    /// greeting, again and again: how an ACL denial looks on Nomad >= 1.11.2.
    #[error(
        "Nomad ended the event stream before its first heartbeat {0} times in a row at `{1}`: \
         the token is probably missing, expired or lacks permission for the requested topics \
         (hint: subscribing to all topics needs a management token; with a least-privilege token name the topics, \
         e.g. --topic Job --topic Evaluation --topic Allocation --topic Deployment (namespace read-job) and --topic Node (node:read))"
    )]
    Rejected(u32, String),
}

/// Bodies ended before the greeting, in a row, before giving up.
const MAX_SILENT_REJECTIONS: u32 = 3;

/// Settings for following one agent.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// What to subscribe to; its index is replaced by the resume point.
    pub subscription: Subscription,
    pub until_index: Option<u64>,
    /// Silence longer than this means the connection is dead (Nomad sends a
    /// heartbeat every 30 s).
    pub idle_timeout: Duration,
    /// Lines longer than this are skipped.
    pub max_line: usize,
    pub backoff: Backoff,
}

/// Follows the stream until shutdown, `--until-index`, or a fatal error.
pub async fn follow(
    client: &NomadClient,
    options: &mut FollowOptions,
    resume: &mut Resume,
    tx: &mpsc::Sender<Msg>,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<FollowEnd, FollowError> {
    let mut silent_rejections = 0;
    loop {
        let subscription = Subscription {
            index: resume.resume_index(),
            ..options.subscription.clone()
        };
        let opened = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(FollowEnd::Stopped),
            _ = tx.closed() => return Err(FollowError::WriterGone),
            opened = tokio::time::timeout(options.idle_timeout, client.event_stream(&subscription)) => {
                opened.unwrap_or(Err(StreamError::NoAnswer(options.idle_timeout)))
            }
        };
        let reason = match opened {
            Err(error) if !error.is_retriable() => return Err(FollowError::Refused { error }),
            Err(error) => error.to_string(),
            Ok(body) => {
                tracing::info!(
                    address = client.address(),
                    index = subscription.index,
                    "Connected"
                );
                resume.connected();
                let mut lines = LineReader::new(body, options.max_line);
                let mut pump = Pump {
                    resume,
                    tx,
                    stats,
                    shutdown,
                    until_index: options.until_index,
                    idle_timeout: Some(options.idle_timeout),
                    source: client.address(),
                    seen: PumpSeen::default(),
                };
                let end = pump.run(&mut lines).await;
                let seen = pump.seen;
                if seen.frames || seen.heartbeat {
                    options.backoff.reset();
                    silent_rejections = 0;
                } else if matches!(end, PumpEnd::Eof) {
                    silent_rejections += 1;
                    if silent_rejections >= MAX_SILENT_REJECTIONS {
                        return Err(FollowError::Rejected(
                            silent_rejections,
                            client.address().to_owned(),
                        ));
                    }
                }
                match end {
                    PumpEnd::Stopped => return Ok(FollowEnd::Stopped),
                    PumpEnd::ReachedUntil => return Ok(FollowEnd::ReachedUntil),
                    PumpEnd::WriterGone => return Err(FollowError::WriterGone),
                    PumpEnd::Eof => StreamError::Closed.to_string(),
                    PumpEnd::Idle => StreamError::Idle(options.idle_timeout).to_string(),
                    PumpEnd::Failed(e) => e.to_string(),
                    PumpEnd::Closed(why) => format!("the server closed the stream: {why}"),
                }
            }
        };
        let delay = options.backoff.next_delay();
        tracing::warn!(reason = %reason, retry_in = ?delay, resume_index = resume.resume_index(), "Reconnecting");
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(FollowEnd::Stopped),
            _ = tx.closed() => return Err(FollowError::WriterGone),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}
