//! `serve`: the archive as a Nomad `/v1/event/stream` endpoint, so existing
//! consumers can point `NOMAD_ADDR` at it and replay what really happened.
//!
//! Each client gets its own task that reads the archive page by page and
//! writes into a small bounded channel feeding the response body: a slow
//! client stalls only its own task, holds no database connection while it
//! waits, and costs at most one page of memory. Nothing a client sends can
//! change the archive: every route only reads.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::frames::{FrameQuery, FrameReader};
use crate::config::Secret;
pub use crate::metrics::ServeMetrics as Metrics;
use crate::nomad::Subscription;
use crate::store::Store;

/// Chunks that may wait for a slow client before its reader pauses.
const CLIENT_BUFFER: usize = 8;

/// How `serve` behaves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The label of the cluster whose history is served.
    pub cluster: String,
    /// Required from clients when set.
    pub token: Option<Secret>,
    /// `{}` is sent when a stream has been idle this long (Nomad: 30 s).
    pub heartbeat: Duration,
    /// How often a caught-up stream looks for newly archived events.
    pub poll: Duration,
}

#[derive(Clone)]
struct AppState {
    store: Arc<dyn Store>,
    options: Arc<ServeOptions>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

/// Serves until `shutdown` fires, then ends every open stream.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState {
        store,
        options: Arc::new(options),
        metrics,
        shutdown: shutdown.clone(),
    };
    let app = Router::new()
        .route("/v1/event/stream", get(event_stream))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let given = headers
        .get("X-Nomad-Token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.expose().as_bytes()))
}

/// Compares without stopping at the first difference, so response timing
/// does not reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn event_stream(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = &state.options.token {
        if !authorized(&headers, token) {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
    }
    let mut subscription = match Subscription::parse(query.as_deref().unwrap_or("")) {
        Ok(sub) => sub,
        Err(message) => return text(StatusCode::BAD_REQUEST, &message),
    };
    let cluster = match state.store.find_cluster(&state.options.cluster).await {
        Ok(Some(cluster)) => cluster,
        Ok(None) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the archive holds no such cluster",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the archive");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the archive cannot be read",
            );
        }
    };
    // Like Nomad's buffer: an index past the newest entry starts at the newest.
    if let Some(newest) = cluster
        .checkpoint
        .filter(|newest| subscription.index > *newest)
    {
        subscription.index = newest;
    }
    let reader = FrameReader::new(
        state.store.clone(),
        cluster,
        FrameQuery {
            subscription,
            to_index: None,
            since: None,
            until: None,
        },
    );
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
    state.metrics.streams.inc();
    tokio::spawn(stream_frames(reader, tx, state));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot build the response",
            )
        })
}

/// Counts a connected client for as long as it lives.
struct ClientGuard(Arc<Metrics>);

impl ClientGuard {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.clients.inc();
        ClientGuard(metrics)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.dec();
    }
}

/// One client's stream: the greeting, the archived frames, then new frames
/// as they are archived, with a heartbeat whenever it has been idle.
async fn stream_frames(mut reader: FrameReader, tx: mpsc::Sender<Bytes>, state: AppState) {
    let _guard = ClientGuard::new(state.metrics.clone());
    let heartbeat_every = state.options.heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if !send(&tx, Bytes::from_static(b"{}\n"), &state.shutdown).await {
        return;
    }
    loop {
        match reader.next().await {
            Ok(Some(frame)) => {
                let mut line = frame.line.into_bytes();
                line.push(b'\n');
                if !send(&tx, Bytes::from(line), &state.shutdown).await {
                    return;
                }
                heartbeat.reset();
                state.metrics.frames_sent.inc();
                state.metrics.events_sent.inc_by(frame.events as u64);
            }
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(state.options.poll) => {}
                    _ = heartbeat.tick() => {
                        if !send(&tx, Bytes::from_static(b"{}\n"), &state.shutdown).await {
                            return;
                        }
                    }
                    _ = tx.closed() => return,
                    _ = state.shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                // Ending the body is all a stream can say after its 200;
                // the client reconnects from its last index, as with Nomad.
                tracing::warn!(error = %e, "Cannot read the archive; ending a stream");
                return;
            }
        }
    }
}

/// Sends a chunk; `false` once the client is gone or the server stops.
async fn send(tx: &mpsc::Sender<Bytes>, chunk: Bytes, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        sent = tx.send(chunk) => sent.is_ok(),
        _ = shutdown.cancelled() => false,
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.find_cluster(&state.options.cluster).await {
        Ok(Some(_)) => text(StatusCode::OK, "ok\n"),
        Ok(None) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the archive holds no such cluster\n",
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the archive cannot be read\n",
        ),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}
