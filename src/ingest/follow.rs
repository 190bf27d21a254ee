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
use super::pump::{Pump, PumpEnd, PumpSeen, Undated};
use super::rejection::{Rejection, Symptom};
use super::resume::Resume;
use super::stats::Stats;
use crate::backoff::Backoff;
use crate::nomad::client::ByteStream;
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
    new_namespaces: Option<&mut mpsc::UnboundedReceiver<NewNamespace>>,
    tx: &Sender,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<FollowEnd, FollowError> {
    let mut follower = Follower {
        client,
        options,
        resume,
        new_namespaces,
        tx,
        stats,
        shutdown,
        silent_rejections: 0,
    };
    follower.run().await
}

/// What to do once a subscription is over.
enum Next {
    /// Stop following, with this outcome.
    End(Result<FollowEnd, FollowError>),
    /// Subscribe again at once (new namespaces to cover).
    Resubscribe,
    /// Back off, then subscribe again: the reason's kind (a metric label)
    /// and the reason, which is logged.
    Reconnect(&'static str, String),
}

/// One agent followed across reconnects.
struct Follower<'a> {
    client: &'a NomadClient,
    options: &'a mut FollowOptions,
    resume: &'a mut Resume,
    /// The namespace watch, when there is one.
    new_namespaces: Option<&'a mut mpsc::UnboundedReceiver<NewNamespace>>,
    tx: &'a Sender,
    stats: &'a Stats,
    shutdown: &'a CancellationToken,
    /// Bodies in a row that ended before the greeting.
    silent_rejections: u32,
}

impl Follower<'_> {
    /// Subscribes, reads the body, and reconnects with backoff, until an end.
    async fn run(&mut self) -> Result<FollowEnd, FollowError> {
        let mut probe = IdentityProbe::default();
        loop {
            // Namespaces that appeared while not streaming: the next
            // subscription covers them, if it starts early enough.
            if let Some(rx) = self.new_namespaces.as_deref_mut() {
                while let Ok(new) = rx.try_recv() {
                    self.resume.rewind(new.create_index);
                }
            }
            let identity = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(FollowEnd::Stopped),
                identity = probe.read(self.client) => identity,
            };
            self.resume.set_server_identity(identity);
            let subscription = Subscription {
                index: self.resume.resume_index(),
                ..self.options.subscription.clone()
            };
            let idle_timeout = self.options.idle_timeout;
            let opened = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(FollowEnd::Stopped),
                _ = self.tx.closed() => return Err(FollowError::WriterGone),
                opened = tokio::time::timeout(idle_timeout, self.client.event_stream(&subscription)) => {
                    opened.unwrap_or(Err(StreamError::NoAnswer(idle_timeout)))
                }
            };
            let next = match opened {
                Err(error) if !error.is_retriable() => {
                    Next::End(Err(FollowError::Refused { error }))
                }
                Err(error) => Next::Reconnect("connect_failed", error.to_string()),
                Ok(body) => self.read(body, subscription.index).await,
            };
            let reason = match next {
                Next::End(end) => return end,
                Next::Resubscribe => {
                    self.stats.metrics.reconnected("new_namespace");
                    continue;
                }
                Next::Reconnect(kind, reason) => {
                    self.stats.metrics.reconnected(kind);
                    self.stats.health.stream_closed(&reason);
                    reason
                }
            };
            let delay = self.options.backoff.next_delay();
            tracing::warn!(reason = %reason, retry_in = ?delay, resume_index = self.resume.resume_index(), "Reconnecting");
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(FollowEnd::Stopped),
                _ = self.tx.closed() => return Err(FollowError::WriterGone),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Pumps one body subscribed at `index` to the writer, and counts
    /// bodies that end before the greeting.
    async fn read(&mut self, body: ByteStream, index: u64) -> Next {
        let client = self.client;
        tracing::info!(address = client.address(), index, "Connected");
        self.resume.connected();
        self.stats.health.stream_opened();
        let mut lines = LineReader::new(body, self.options.max_line);
        let mut pump = Pump {
            resume: self.resume,
            tx: self.tx,
            stats: self.stats,
            shutdown: self.shutdown,
            until_index: self.options.until_index,
            idle_timeout: Some(self.options.idle_timeout),
            source: client.address(),
            seen: PumpSeen::default(),
            new_namespaces: self.new_namespaces.as_deref_mut(),
            undated: Undated::ByReceipt,
        };
        let end = pump.run(&mut lines).await;
        let seen = pump.seen;
        if seen.frames || seen.heartbeat {
            self.options.backoff.reset();
            self.silent_rejections = 0;
        } else if matches!(end, PumpEnd::Eof) {
            self.silent_rejections += 1;
            if self.silent_rejections >= MAX_SILENT_REJECTIONS {
                let symptom = Symptom::EmptyStreams(self.silent_rejections);
                return Next::End(Err(
                    rejected(client, &self.options.subscription, symptom).await
                ));
            }
        }
        self.ended(end).await
    }

    /// What a body's end means: an outcome, a new subscription, or a reconnect.
    async fn ended(&mut self, end: PumpEnd<StreamError>) -> Next {
        let client = self.client;
        let (kind, reason) = match end {
            PumpEnd::Stopped => return Next::End(Ok(FollowEnd::Stopped)),
            PumpEnd::ReachedUntil => return Next::End(Ok(FollowEnd::ReachedUntil)),
            PumpEnd::WriterGone => return Next::End(Err(FollowError::WriterGone)),
            PumpEnd::Foreign(foreign) => {
                return Next::End(Err(FollowError::Foreign(Box::new(ForeignCluster {
                    label: self.options.cluster.clone(),
                    address: client.address().to_owned(),
                    foreign: *foreign,
                }))));
            }
            PumpEnd::Resubscribe(new) => {
                let earliest = new.iter().map(|n| n.create_index).min().unwrap_or(0);
                self.resume.rewind(earliest);
                let names: Vec<&str> = new.iter().map(|n| n.name.as_str()).collect();
                tracing::info!(
                    namespaces = ?names,
                    index = self.resume.resume_index(),
                    "Resubscribing to cover the new namespaces"
                );
                return Next::Resubscribe;
            }
            PumpEnd::Eof => ("closed", StreamError::Closed.to_string()),
            PumpEnd::Idle => (
                "idle_timeout",
                StreamError::Idle(self.options.idle_timeout).to_string(),
            ),
            PumpEnd::Failed(e) => ("read_failed", e.to_string()),
            PumpEnd::Closed(why) => match CloseReason::parse(&why) {
                Some(CloseReason::TokenExpired) => {
                    let symptom = Symptom::ExpiredCloseReason;
                    let rejection = rejected(client, &self.options.subscription, symptom).await;
                    return Next::End(Err(rejection));
                }
                Some(CloseReason::Dropped) => {
                    self.resume.lost();
                    let reason = format!(
                        "the server closed the stream: {why} (this reader fell behind; \
                         events after index {} may be lost)",
                        self.resume.resume_index()
                    );
                    ("events_dropped", reason)
                }
                Some(CloseReason::Resubscribe) | None => (
                    "server_closed",
                    format!("the server closed the stream: {why}"),
                ),
            },
        };
        Next::Reconnect(kind, reason)
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
