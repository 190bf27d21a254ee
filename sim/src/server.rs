//! The simulator handle and its HTTP server: `/v1/event/stream`,
//! `/v1/acl/token/self`, `/v1/status/leader`, and (in their own modules)
//! `/v1/namespaces`, `/v1/agent/members` and the read endpoints of
//! [`super::lists`].

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::buffer::{Buffer, Entry};
use super::cluster::{self, Membership};
use super::frame::SimFrame;
use super::framing::{self, Framing, SimListener};
use super::lists::{self, Objects};
use super::namespaces::{self, Namespaces};
use super::stream;
use nomad_chronicle::nomad::Subscription;

/// How the simulated Nomad agent behaves; the defaults are Nomad's.
#[derive(Clone)]
pub struct SimConfig {
    /// How many raft entries the event buffer keeps (Nomad's `event_buffer_size`, default 100).
    pub buffer_size: usize,
    /// How often an idle or busy stream gets a `{}` heartbeat (Nomad: 30 s).
    pub heartbeat: Duration,
    /// The ACL token a stream request must present; `None` means ACLs are off.
    pub token: Option<String>,
    /// How `/v1/event/stream` bodies are framed: as Nomad <= 1.11.1 or >= 1.11.2 does.
    pub framing: Framing,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            buffer_size: 100,
            heartbeat: Duration::from_secs(30),
            token: None,
            framing: Framing::Chunked,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("buffer_size", &self.buffer_size)
            .field("heartbeat", &self.heartbeat)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("framing", &self.framing)
            .finish()
    }
}

/// A misbehaviour injected into one stream connection, to test how a client copes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnFault {
    /// Answer with this status and plain-text body instead of streaming (e.g. 500 `No cluster leader`).
    Status {
        /// The HTTP status code.
        code: u16,
        /// The plain-text body.
        body: String,
    },
    /// After `frames` frames, send the first half of the next frame's bytes and abort the connection.
    CutAfter {
        /// Frames sent intact before the cut.
        frames: usize,
    },
    /// After `frames` frames, write `line` and a newline as if it were a frame, then go on normally.
    GarbageAfter {
        /// Frames sent before the garbage line.
        frames: usize,
        /// The bytes written in place of a frame.
        line: String,
    },
    /// After `frames` frames, send nothing more (not even heartbeats) but keep the connection open.
    StallAfter {
        /// Frames sent before the stall.
        frames: usize,
    },
    /// Answer 200 and end the body at once, before the `{}` greeting: how
    /// Nomad >= 1.11.2 shows an ACL denial.
    CloseBeforeGreeting,
    /// After `frames` frames, stop reading the buffer (as a subscriber whose
    /// client reads too slowly) until the entry it stands on has been
    /// evicted by later publishes, then end the body as Nomad does: with
    /// `event dropped from buffer` when chunked, by closing when not.
    FallBehindAfter {
        /// Frames sent before the subscriber stops reading.
        frames: usize,
    },
    /// After `frames` frames, write `reason` with no newline (if any) and end the body cleanly.
    CloseAfter {
        /// Frames sent before the close.
        frames: usize,
        /// Raw close reason, e.g. `subscription closed by server, client should resubscribe`.
        reason: Option<String>,
    },
}

/// One `/v1/event/stream` request as the server saw it, so tests can check
/// what a client asked for (resume index, topics) and what it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    /// The raw query string, without the `?`.
    pub query: String,
    /// The parsed start index (0 when the query did not parse).
    pub index: u64,
    /// The parsed topics (empty when the query did not parse).
    pub topics: Vec<(String, String)>,
    /// The parsed namespace (empty when the query did not parse).
    pub namespace: String,
    /// Whether an `X-Nomad-Token` or `Authorization` header was sent; the value is never kept.
    pub token_present: bool,
    /// The HTTP status the server answered with.
    pub status: u16,
    /// Whether the body was gzip-compressed (chunked-gzip framing, and the client asked).
    pub gzip: bool,
}

/// The simulator: a Nomad-compatible event stream fed by [`Sim::publish`].
///
/// Clones share one simulator; when the last clone is dropped, the server
/// stops as if [`Sim::shutdown`] had been called.
#[derive(Clone)]
pub struct Sim {
    /// The state the server tasks share.
    pub(super) inner: Arc<Inner>,
    /// Shuts the server down when the last `Sim` clone goes away; the server
    /// tasks hold `inner` only, so they do not keep it alive.
    _owner: Arc<Owner>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("buffer_size", &self.inner.buffer_size)
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// Triggers shutdown when dropped.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// State shared by the handle, the server and every stream.
pub(crate) struct Inner {
    /// Capacity of the event buffer.
    pub(crate) buffer_size: usize,
    /// Interval between `{}` heartbeats.
    pub(crate) heartbeat: Duration,
    /// The required ACL token, if ACLs are on.
    pub(crate) token: Mutex<Option<String>>,
    /// Whether that token has expired: `/v1/acl/token/self` shows an
    /// expiration time in the past and new streams are refused.
    pub(crate) token_expired: AtomicBool,
    /// Whether every stream is refused as 200 and an empty body, as Nomad
    /// >= 1.11.2 refuses a token that may not read the requested topics.
    topic_denied: AtomicBool,
    /// How stream bodies are framed.
    framing: Mutex<Framing>,
    /// The buffer and the full history.
    pub(crate) state: Mutex<HistoryState>,
    /// Bumped on every publish so waiting streams wake up.
    pub(crate) updates: watch::Sender<u64>,
    /// Set once to stop accepting and end every stream.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Faults for the next stream connections, one each.
    faults: Mutex<VecDeque<ConnFault>>,
    /// Maximum body chunk size; 0 means lines are written whole.
    pub(crate) split_chunks: AtomicUsize,
    /// Every stream request seen.
    requests: Mutex<Vec<StreamRequest>>,
    /// Stream bodies currently alive.
    pub(crate) connections: AtomicUsize,
    /// The cluster's identity, as `/v1/agent/members` shows it.
    pub(crate) membership: Mutex<Membership>,
    /// The namespace table behind `/v1/namespaces`.
    pub(crate) namespaces: Mutex<Namespaces>,
    /// Bumped when the namespace table changes: wakes blocking queries and
    /// tells streams to look at it again.
    pub(crate) namespace_updates: watch::Sender<u64>,
    /// Bumped by a restart: every open stream ends.
    pub(crate) restarts: watch::Sender<u64>,
    /// The objects the read endpoints list.
    pub(crate) objects: Mutex<Objects>,
}

/// What has been published: the bounded buffer and, optionally, everything.
pub(crate) struct HistoryState {
    /// The last `buffer_size` entries, what subscribers read from.
    pub(crate) buffer: Buffer,
    /// Every entry ever published (when `record_history` is on).
    pub(crate) history: Vec<Arc<Entry>>,
    /// Whether `history` grows; a long-running demo turns it off.
    record_history: bool,
    /// The newest published index, to reject out-of-order publishes.
    pub(crate) last_index: Option<u64>,
}

/// Locks a mutex, recovering the data if another thread panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sim {
    /// Creates a simulator with an empty buffer; call [`Sim::serve`] to expose it.
    pub fn new(config: SimConfig) -> Sim {
        let inner = Arc::new(Inner {
            buffer_size: config.buffer_size,
            heartbeat: config.heartbeat,
            token: Mutex::new(config.token),
            token_expired: AtomicBool::new(false),
            topic_denied: AtomicBool::new(false),
            framing: Mutex::new(config.framing),
            state: Mutex::new(HistoryState {
                buffer: Buffer::new(config.buffer_size),
                history: Vec::new(),
                record_history: true,
                last_index: None,
            }),
            updates: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            faults: Mutex::new(VecDeque::new()),
            split_chunks: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            membership: Mutex::new(Membership::new()),
            namespaces: Mutex::new(Namespaces::default()),
            namespace_updates: watch::Sender::new(0),
            restarts: watch::Sender::new(0),
            objects: Mutex::new(Objects::default()),
        });
        Sim {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
        }
    }

    /// Binds `127.0.0.1:0`, serves in a background task and returns the address.
    ///
    /// The task ends on [`Sim::shutdown`] or when every clone of the returned
    /// `Sim` has been dropped.
    pub async fn start(config: SimConfig) -> std::io::Result<(Sim, SocketAddr)> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let sim = Sim::new(config);
        let inner = sim.inner.clone();
        tokio::spawn(async move {
            if let Err(error) = serve(inner, listener, std::future::pending()).await {
                tracing::warn!(%error, "Simulator server failed");
            }
        });
        Ok((sim, addr))
    }

    /// Serves on `listener` until `shutdown` completes or [`Sim::shutdown`] is called.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serve(self.inner.clone(), listener, shutdown).await
    }

    /// Stops accepting connections and ends every open stream; clients see EOF.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Appends a frame to the buffer (evicting the oldest beyond `buffer_size`)
    /// and to the history, and wakes subscribers.
    ///
    /// A frame whose index is not above the last published one is a caller
    /// bug: it trips a debug assertion and is otherwise ignored. A frame
    /// without events is ignored too, as Nomad never buffers one.
    pub fn publish(&self, frame: SimFrame) {
        if frame.events.is_empty() {
            return;
        }
        let index = frame.index;
        let entry = Arc::new(Entry::new(frame));
        {
            let mut state = lock(&self.inner.state);
            if state.last_index.is_some_and(|last| index <= last) {
                debug_assert!(false, "published index {index} is not above the last one");
                return;
            }
            state.last_index = Some(index);
            // After a restart, frames the history already holds come again.
            let new = state.history.last().is_none_or(|last| last.index < index);
            lock(&self.inner.objects).apply(&entry);
            if state.record_history && new {
                state.history.push(entry.clone());
            }
            state.buffer.push(entry);
        }
        self.inner.updates.send_modify(|n| *n += 1);
    }

    /// Every frame ever published, in order, for comparison with an archive.
    pub fn history(&self) -> Vec<SimFrame> {
        let state = lock(&self.inner.state);
        state.history.iter().map(|e| e.to_frame()).collect()
    }

    /// Turns the full history off (or back on) so a long-running simulator
    /// keeps bounded memory; frames published while it is off are not in
    /// [`Sim::history`].
    pub fn set_record_history(&self, on: bool) {
        lock(&self.inner.state).record_history = on;
    }

    /// Queues a fault: each new stream connection takes the next one, if any.
    pub fn push_fault(&self, fault: ConnFault) {
        lock(&self.inner.faults).push_back(fault);
    }

    /// When `Some(k)`, writes every line as body chunks of at most `k` bytes,
    /// so clients see frames split across many reads.
    pub fn set_split_chunks(&self, max_bytes: Option<usize>) {
        let k = max_bytes.map_or(0, |k| k.max(1));
        self.inner.split_chunks.store(k, Ordering::Relaxed);
    }

    /// Changes the required ACL token for new requests; `None` turns ACLs off.
    pub fn set_token(&self, token: Option<String>) {
        *lock(&self.inner.token) = token;
    }

    /// Marks the configured token as expired (or valid again): new streams are
    /// refused and `/v1/acl/token/self` shows an expiration time in the past.
    pub fn set_token_expired(&self, expired: bool) {
        self.inner.token_expired.store(expired, Ordering::SeqCst);
    }

    /// When on, every stream request is answered with 200 and an empty body,
    /// while `/v1/acl/token/self` still accepts the token: a valid token that
    /// may not read the requested topics, as Nomad >= 1.11.2 shows it.
    pub fn set_topic_denied(&self, denied: bool) {
        self.inner.topic_denied.store(denied, Ordering::SeqCst);
    }

    /// Changes how new stream responses are framed.
    pub fn set_framing(&self, framing: Framing) {
        *lock(&self.inner.framing) = framing;
    }

    /// Every `/v1/event/stream` request so far, in arrival order.
    pub fn requests(&self) -> Vec<StreamRequest> {
        lock(&self.inner.requests).clone()
    }

    /// How many stream connections are currently open.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }
}

/// Runs the HTTP server until `shutdown` or the simulator's own shutdown signal.
async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let signal_inner = inner.clone();
    let mut stopped = inner.shutdown.subscribe();
    let signal = async move {
        tokio::select! {
            () = shutdown => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
        // Ends every open stream, which lets the graceful shutdown finish.
        signal_inner.shutdown.send_replace(true);
    };
    let app = Router::new()
        .route("/v1/event/stream", any(event_stream))
        .route("/v1/acl/token/self", get(token_self))
        .route("/v1/status/leader", get(leader))
        .route("/v1/namespaces", get(namespaces::list))
        .route("/v1/agent/members", get(cluster::members))
        .route("/v1/jobs", get(lists::jobs))
        .route("/v1/job/{id}", get(lists::job))
        .route("/v1/allocations", get(lists::allocations))
        .route("/v1/evaluations", get(lists::evaluations))
        .route("/v1/deployments", get(lists::deployments))
        .route("/v1/nodes", get(lists::nodes))
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(
            inner.clone(),
            close_when_hijacking,
        ))
        .with_state(inner.clone());
    axum::serve(SimListener::new(listener, inner), app)
        .with_graceful_shutdown(signal)
        .await
}

/// With a close-delimited framing, every connection carries one request, so
/// a client cannot reuse a connection the router answered for a stream that
/// has to be written by hand.
async fn close_when_hijacking(State(inner): State<Arc<Inner>>, mut response: Response) -> Response {
    if inner.framing().is_close_delimited() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `GET /v1/acl/token/self`: the configured token, as Nomad describes it.
async fn token_self(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let Some(secret) = lock(&inner.token).clone() else {
        return text(StatusCode::BAD_REQUEST, "ACL support disabled");
    };
    if !authorized(&inner, &headers) {
        return text(StatusCode::FORBIDDEN, "Permission denied");
    }
    let expiration = inner
        .token_expired
        .load(Ordering::SeqCst)
        .then_some("2025-01-01T00:00:00Z");
    let token = serde_json::json!({
        "AccessorID": SIM_TOKEN_ACCESSOR,
        "SecretID": secret,
        "Name": SIM_TOKEN_NAME,
        "Type": "client",
        "Policies": ["event-reader"],
        "Global": false,
        "ExpirationTime": expiration,
        "CreateIndex": 7,
        "ModifyIndex": 7,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        token.to_string(),
    )
        .into_response()
}

/// The configured token's accessor ID, as `/v1/acl/token/self` shows it.
pub const SIM_TOKEN_ACCESSOR: &str = "3c1d9a52-7e0b-4f6a-8d21-5b9e0c4f7a13";
/// The configured token's name, as `/v1/acl/token/self` shows it.
pub const SIM_TOKEN_NAME: &str = "event-archiver";

/// `GET /v1/status/leader`: a constant leader address, for health checks.
async fn leader() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "\"127.0.0.1:4647\"",
    )
        .into_response()
}

/// Any other path: Go's default 404.
async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found")
}

/// `/v1/event/stream` through the router: every framing's error answers,
/// and the stream itself when it is chunked.
async fn event_stream(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut record = StreamRequest::new(uri.query().unwrap_or_default(), &headers);
    let gzip = inner.framing() == Framing::ChunkedGzip && framing::accepts_gzip(&headers);
    let response = match answer(&inner, &method, &headers, &mut record) {
        Answer::Text(status, body) => text(status, body),
        Answer::Empty => json_response(Body::empty()),
        Answer::Stream { sub, fault } => {
            let body = stream::body(inner.clone(), sub, fault, true);
            if gzip {
                record.gzip = true;
                let mut response = json_response(Body::from_stream(framing::gzip(body)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
            } else {
                json_response(Body::from_stream(body))
            }
        }
    };
    record.status = response.status().as_u16();
    inner.record(record);
    response
}

/// A 200 with the event stream's headers.
fn json_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

impl StreamRequest {
    /// A request as it arrived, before anything was parsed or answered.
    pub(crate) fn new(query: &str, headers: &HeaderMap) -> Self {
        StreamRequest {
            query: query.to_owned(),
            index: 0,
            topics: Vec::new(),
            namespace: String::new(),
            token_present: headers.contains_key("x-nomad-token")
                || headers.contains_key(header::AUTHORIZATION),
            status: 0,
            gzip: false,
        }
    }
}

impl Inner {
    /// The framing for a new stream response.
    pub(crate) fn framing(&self) -> Framing {
        *lock(&self.framing)
    }

    /// Keeps a finished request for [`Sim::requests`].
    pub(crate) fn record(&self, record: StreamRequest) {
        tracing::debug!(query = %record.query, status = record.status, "Stream request");
        lock(&self.requests).push(record);
    }
}

/// What a stream request gets, whatever the framing writes it as.
pub(crate) enum Answer {
    /// A plain-text error response with this status.
    Text(StatusCode, String),
    /// 200 and an empty body, before the greeting: how Nomad >= 1.11.2
    /// refuses a token (and, in this simulator, a denied topic).
    Empty,
    /// 200 and the event stream.
    Stream {
        /// What the client subscribed to.
        sub: Subscription,
        /// The fault this connection acts out, if any.
        fault: Option<ConnFault>,
    },
}

/// Validates, authorizes and applies a queued fault, filling in what was parsed.
pub(crate) fn answer(
    inner: &Arc<Inner>,
    method: &Method,
    headers: &HeaderMap,
    record: &mut StreamRequest,
) -> Answer {
    if method != Method::GET {
        return Answer::Text(StatusCode::METHOD_NOT_ALLOWED, "Invalid method".into());
    }
    let sub = match Subscription::parse(&record.query) {
        Ok(sub) => sub,
        Err(body) => return Answer::Text(StatusCode::BAD_REQUEST, body),
    };
    record.index = sub.index;
    record.topics = sub.topics.clone();
    record.namespace = sub.namespace.clone();
    // Nomad >= 1.11.2 takes the connection over before it checks the token,
    // so a refusal can only end the body.
    let hijacked = inner.framing().is_close_delimited();
    if !authorized(inner, headers) {
        if hijacked {
            return Answer::Empty;
        }
        return Answer::Text(StatusCode::FORBIDDEN, "Permission denied".into());
    }
    if lock(&inner.token).is_some() && inner.token_expired.load(Ordering::SeqCst) {
        if hijacked {
            return Answer::Empty;
        }
        return Answer::Text(StatusCode::FORBIDDEN, "ACL token expired".into());
    }
    if inner.topic_denied.load(Ordering::SeqCst) {
        return Answer::Empty;
    }
    let fault = lock(&inner.faults).pop_front();
    if let Some(ConnFault::Status { code, body }) = fault {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Answer::Text(status, body);
    }
    Answer::Stream { sub, fault }
}

/// Whether the request carries the configured token (always, with ACLs off).
pub(crate) fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let token = lock(&inner.token);
    let Some(want) = token.as_deref() else {
        return true;
    };
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let nomad = header_str(header::HeaderName::from_static("x-nomad-token"));
    let bearer = header_str(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
    nomad == Some(want) || bearer.map(str::trim) == Some(want)
}

/// A plain-text response, as Nomad's HTTP layer writes its errors.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
