//! The live side of ingest: subscribes to `/v1/event/stream` at the resume
//! point, pumps the body to the writer, and on anything short of a fatal
//! answer reconnects with backoff from wherever the archive now stands.
//!
//! Nomad's close reasons steer it: `event dropped from buffer` marks a
//! possible loss before reconnecting, `subscription closed by server`
//! reconnects, `ACL token expired` stops. Bodies that end before the `{}`
//! greeting (how Nomad >= 1.11.2 refuses a token) are retried once, with
//! backoff, and then explained from `GET /v1/acl/token/self`.
//!
//! Before each subscription it reads the agent's cluster identity, so a
//! server behind the archive can be told apart from another cluster (see
//! [`super::behind`]); a new namespace reported by the watch ends the body
//! and resubscribes at once, from early enough to cover its events.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::behind::{ForeignCluster, ServerIdentity};
use super::channel::Sender;
use super::namespaces::NewNamespace;
use super::pump::{Pump, PumpEnd, PumpSeen};
use super::rejection::{Rejection, Symptom};
use super::resume::Resume;
use super::stats::Stats;
use crate::backoff::Backoff;
use crate::nomad::{
    CloseReason, IdentityError, LineReader, NomadClient, StreamError, Subscription,
};

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
    /// Nomad will not stream with this token (bodies that end before the
    /// greeting, or `ACL token expired`); the message says why and what to do.
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// The agent serves another cluster's history than the one archived
    /// under this label; nothing of it was stored.
    #[error("{0}")]
    Foreign(Box<ForeignCluster>),
}

/// Bodies ended before the greeting, in a row, before asking Nomad about
/// the token: one may be a restart racing the subscription, two are a pattern.
const MAX_SILENT_REJECTIONS: u32 = 2;

/// Settings for following one agent.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// What to subscribe to; its index is replaced by the resume point.
    pub subscription: Subscription,
    /// The archive's label for the cluster (`--cluster`), for messages.
    pub cluster: String,
    pub until_index: Option<u64>,
    /// Silence longer than this means the connection is dead (Nomad sends a
    /// heartbeat every 30 s).
    pub idle_timeout: Duration,
    /// Lines longer than this are skipped.
    pub max_line: usize,
    pub backoff: Backoff,
}

/// Follows the stream until shutdown, `--until-index`, or a fatal error.
/// `new_namespaces` is the namespace watch, when there is one.
pub async fn follow(
    client: &NomadClient,
    options: &mut FollowOptions,
    resume: &mut Resume,
    mut new_namespaces: Option<&mut mpsc::UnboundedReceiver<NewNamespace>>,
    tx: &Sender,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<FollowEnd, FollowError> {
    let mut silent_rejections = 0;
    let mut probe = IdentityProbe::default();
    loop {
        // Namespaces that appeared while not streaming: the next
        // subscription covers them, if it starts early enough.
        if let Some(rx) = new_namespaces.as_deref_mut() {
            while let Ok(new) = rx.try_recv() {
                resume.rewind(new.create_index);
            }
        }
        let identity = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(FollowEnd::Stopped),
            identity = probe.read(client) => identity,
        };
        resume.set_server_identity(identity);
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
                    new_namespaces: new_namespaces.as_deref_mut(),
                };
                let end = pump.run(&mut lines).await;
                let seen = pump.seen;
                if seen.frames || seen.heartbeat {
                    options.backoff.reset();
                    silent_rejections = 0;
                } else if matches!(end, PumpEnd::Eof) {
                    silent_rejections += 1;
                    if silent_rejections >= MAX_SILENT_REJECTIONS {
                        let symptom = Symptom::EmptyStreams(silent_rejections);
                        return Err(rejected(client, &options.subscription, symptom).await);
                    }
                }
                match end {
                    PumpEnd::Stopped => return Ok(FollowEnd::Stopped),
                    PumpEnd::ReachedUntil => return Ok(FollowEnd::ReachedUntil),
                    PumpEnd::WriterGone => return Err(FollowError::WriterGone),
                    PumpEnd::Foreign(foreign) => {
                        return Err(FollowError::Foreign(Box::new(ForeignCluster {
                            label: options.cluster.clone(),
                            address: client.address().to_owned(),
                            foreign: *foreign,
                        })));
                    }
                    PumpEnd::Resubscribe(new) => {
                        let earliest = new.iter().map(|n| n.create_index).min().unwrap_or(0);
                        resume.rewind(earliest);
                        let names: Vec<&str> = new.iter().map(|n| n.name.as_str()).collect();
                        tracing::info!(
                            namespaces = ?names,
                            index = resume.resume_index(),
                            "Resubscribing to cover the new namespaces"
                        );
                        continue;
                    }
                    PumpEnd::Eof => StreamError::Closed.to_string(),
                    PumpEnd::Idle => StreamError::Idle(options.idle_timeout).to_string(),
                    PumpEnd::Failed(e) => e.to_string(),
                    PumpEnd::Closed(why) => match CloseReason::parse(&why) {
                        Some(CloseReason::TokenExpired) => {
                            let symptom = Symptom::ExpiredCloseReason;
                            return Err(rejected(client, &options.subscription, symptom).await);
                        }
                        Some(CloseReason::Dropped) => {
                            resume.lost();
                            format!(
                                "the server closed the stream: {why} (this reader fell behind; \
                                 events after index {} may be lost)",
                                resume.resume_index()
                            )
                        }
                        Some(CloseReason::Resubscribe) | None => {
                            format!("the server closed the stream: {why}")
                        }
                    },
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

/// Reads the agent's cluster identity before each subscription. A token
/// that may not read it is told once, and not asked again.
#[derive(Debug, Default)]
struct IdentityProbe {
    /// Why it cannot be read, once the agent refused.
    denied: Option<String>,
}

impl IdentityProbe {
    async fn read(&mut self, client: &NomadClient) -> ServerIdentity {
        if let Some(why) = &self.denied {
            return ServerIdentity::Unknown(why.clone());
        }
        match client.cluster_identity().await {
            Ok(identity) => ServerIdentity::Known(identity),
            Err(error @ IdentityError::Denied { .. }) => {
                tracing::warn!(
                    error = %error,
                    "Cannot read the cluster's identity: a server behind the archive is told apart from \
                     another cluster at this address by its indexes alone (hint: grant the token \
                     `node:read`)"
                );
                let why = error.to_string();
                self.denied = Some(why.clone());
                ServerIdentity::Unknown(why)
            }
            Err(error) => {
                tracing::debug!(error = %error, "Cannot read the cluster's identity now");
                ServerIdentity::Unknown(error.to_string())
            }
        }
    }
}

/// Asks Nomad about the token and builds the one message that explains why
/// it will not stream.
async fn rejected(
    client: &NomadClient,
    subscription: &Subscription,
    symptom: Symptom,
) -> FollowError {
    tracing::info!(
        address = client.address(),
        "Asking Nomad about the ACL token"
    );
    let check = client.token_self().await;
    FollowError::Rejected(Box::new(Rejection {
        address: client.address().to_owned(),
        symptom,
        check,
        topics: subscription.topics.clone(),
        namespace: subscription.namespace.clone(),
        has_token: client.has_token(),
    }))
}
