//! `serve`: the archive as a Nomad `/v1/event/stream` endpoint, so existing
//! consumers can point `NOMAD_ADDR` at it and replay what really happened.
//!
//! Each client gets its own task that reads the archive page by page and
//! writes into a channel feeding the response body, bounded in bytes until
//! the socket has taken them: a slow client stalls only its own task, holds
//! no database connection while it waits, and costs at most one page and
//! its buffer of memory. At most `max_clients` streams are open at once.
//! Nothing a client sends can change the archive: every route only reads.
//!
//! With a token, the event stream, `/metrics` and the routes given as
//! guarded (the web timeline's API) require it; `/healthz` and the routes
//! given as open (the web timeline's page) do not, so load balancers can
//! probe it and a browser can load the page that asks for the token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::connections::{self, ConnectionLimits};
use super::frames::{FrameQuery, FrameReader};
use crate::config::Secret;
pub use crate::metrics::ServeMetrics as Metrics;
use crate::nomad::Subscription;
use crate::store::Store;

/// Events a stream reads from the archive at a time: with the client's
/// buffer, what a stream whose client does not read holds until it is cut
/// off (a tenth of `replay`'s page: a few hundred KB of typical events,
/// for more round trips while a stream catches up).
const STREAM_PAGE: u32 = 100;

/// Chunks that may wait for a slow client before its reader pauses (the
/// bytes they hold are bounded by [`ServeOptions::client_buffer`]).
const CLIENT_CHUNKS: usize = 64;

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
    /// Streams open at once; a client beyond them is answered 503.
    pub max_clients: u32,
    /// Bytes of frames one stream may hold between the archive and its
    /// socket; a single larger frame is held alone.
    pub client_buffer: usize,
    /// How long connections may keep the server waiting.
    pub limits: ConnectionLimits,
}

impl ServeOptions {
    /// Streams open at once unless `--max-clients` says otherwise.
    pub const DEFAULT_MAX_CLIENTS: u32 = 256;
    /// Bytes one stream holds unless `--client-buffer` says otherwise:
    /// dozens of typical frames, on top of what the kernel buffers for the
    /// socket, so a client that reads steadily does not wait on it.
    pub const DEFAULT_CLIENT_BUFFER: usize = 64 << 10;
}

#[derive(Clone)]
struct AppState {
    store: Arc<dyn Store>,
    options: Arc<ServeOptions>,
    metrics: Arc<Metrics>,
    /// One permit per stream that may open; a stream holds its own.
    streams: Arc<Semaphore>,
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
    let routes = MoreRoutes::default();
    serve_with(listener, store, options, metrics, shutdown, routes).await
}

/// Routes served beside the event stream (the web timeline's).
#[derive(Default)]
pub struct MoreRoutes {
    /// Behind the token, as the event stream is.
    pub guarded: Router,
    /// Open to anyone, as `/healthz` is.
    pub open: Router,
}

/// [`serve`], with `routes` served too.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    routes: MoreRoutes,
) -> std::io::Result<()> {
    let limits = options.limits;
    let state = AppState {
        store,
        streams: Arc::new(Semaphore::new(options.max_clients as usize)),
        options: Arc::new(options),
        metrics,
        shutdown: shutdown.clone(),
    };
    let app = Router::new()
        .route("/v1/event/stream", get(event_stream))
        .route("/metrics", get(metrics_text))
        .with_state(state.clone())
        .merge(routes.guarded)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .with_state(state),
        )
        .merge(routes.open);
    connections::run(listener, app, limits, shutdown).await
}

/// Lets a request through when no token is required or it carries the token.
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.options.token {
        Some(token) if !authorized(request.headers(), token) => {
            text(StatusCode::FORBIDDEN, "Permission denied")
        }
        _ => next.run(request).await,
    }
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
    let expected = token.expose().as_bytes();
    // An empty token is refused at startup; should one get here, it
    // matches nothing rather than an empty header.
    !expected.is_empty() && given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected)))
}

async fn event_stream(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many streams are open; retry later",
        );
    };
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
    )
    .with_page_size(STREAM_PAGE);
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_CHUNKS);
    let out = Outbox::new(tx, state.options.client_buffer, permit);
    state.metrics.streams.inc();
    tokio::spawn(stream_frames(reader, out, state));
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
async fn stream_frames(mut reader: FrameReader, out: Outbox, state: AppState) {
    let _guard = ClientGuard::new(state.metrics.clone());
    let shutdown = &state.shutdown;
    let heartbeat_every = state.options.heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if !out.heartbeat(shutdown).await {
        return;
    }
    loop {
        match reader.next().await {
            Ok(Some(frame)) => {
                let mut line = frame.line.into_bytes();
                line.push(b'\n');
                if !out.frame(line, shutdown).await {
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
                        if !out.heartbeat(shutdown).await {
                            return;
                        }
                    }
                    _ = out.tx.closed() => return,
                    _ = shutdown.cancelled() => return,
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

/// One stream's way to its client: chunks in order, holding at most
/// `total` bytes of frames until the connection has written them.
struct Outbox {
    /// Feeds the response body, in order.
    tx: mpsc::Sender<Bytes>,
    /// `total` permits, one per byte held; a frame takes its share before
    /// it is queued and its bytes give it back once written.
    budget: Arc<Semaphore>,
    /// The whole budget, which caps what one frame takes.
    total: u32,
    /// The stream's place among `max_clients`, given back when it ends.
    _stream: OwnedSemaphorePermit,
}

impl Outbox {
    fn new(tx: mpsc::Sender<Bytes>, bytes: usize, stream: OwnedSemaphorePermit) -> Self {
        let total = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        Outbox {
            tx,
            budget: Arc::new(Semaphore::new(total as usize)),
            total,
            _stream: stream,
        }
    }

    /// Queues a frame once the budget has room for it (a frame larger than
    /// the budget waits for all of it); `false` once the client is gone or
    /// the server stops.
    async fn frame(&self, line: Vec<u8>, shutdown: &CancellationToken) -> bool {
        let want = u32::try_from(line.len())
            .unwrap_or(u32::MAX)
            .min(self.total);
        let share = tokio::select! {
            share = self.budget.clone().acquire_many_owned(want) => share,
            () = self.tx.closed() => return false,
            () = shutdown.cancelled() => return false,
        };
        let Ok(share) = share else {
            return false;
        };
        let held = Held {
            bytes: line,
            _share: share,
        };
        self.send(Bytes::from_owner(held), shutdown).await
    }

    /// Queues `{}`, which holds no budget.
    async fn heartbeat(&self, shutdown: &CancellationToken) -> bool {
        self.send(Bytes::from_static(b"{}\n"), shutdown).await
    }

    async fn send(&self, chunk: Bytes, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            sent = self.tx.send(chunk) => sent.is_ok(),
            () = shutdown.cancelled() => false,
        }
    }
}

/// A frame's bytes with their share of the stream's budget, given back when
/// the connection has written them and lets them go.
struct Held {
    /// The frame's line, newline included.
    bytes: Vec<u8>,
    /// Its bytes' share of the budget, given back on drop.
    _share: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
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

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn outbox(bytes: usize) -> (Outbox, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(CLIENT_CHUNKS);
        let stream = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a place");
        (Outbox::new(tx, bytes, stream), rx)
    }

    #[tokio::test]
    async fn a_stream_holds_frames_up_to_its_buffer_until_they_are_written() {
        let (out, mut rx) = outbox(100);
        let shutdown = CancellationToken::new();
        assert_eq!(
            out.frame(vec![b'a'; 60], &shutdown).now_or_never(),
            Some(true)
        );
        // Heartbeats hold nothing.
        assert_eq!(out.heartbeat(&shutdown).now_or_never(), Some(true));
        let taken = rx.recv().await.expect("the first frame");
        let mut second = std::pin::pin!(out.frame(vec![b'b'; 60], &shutdown));
        assert_eq!(second.as_mut().now_or_never(), None, "60 + 60 > 100");
        // The connection wrote the first frame and let it go.
        drop(taken);
        assert!(second.await);
        // A frame larger than the whole buffer waits for all of it, then goes alone.
        let mut large = std::pin::pin!(out.frame(vec![b'c'; 500], &shutdown));
        assert_eq!(large.as_mut().now_or_never(), None);
        let _heartbeat = rx.recv().await;
        drop(rx.recv().await);
        assert!(large.await);
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(500));
    }

    #[test]
    fn an_empty_token_lets_nobody_in() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Nomad-Token", "".parse().expect("a header value"));
        assert!(!authorized(&headers, &Secret::new("")));
        assert!(!authorized(&headers, &Secret::new("s3cret")));
        headers.insert("X-Nomad-Token", "s3cret".parse().expect("a header value"));
        assert!(authorized(&headers, &Secret::new("s3cret")));
    }
}
