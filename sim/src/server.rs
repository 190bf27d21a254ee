//! The simulator handle and its HTTP server. The handle composes the
//! owners of the simulator's state (what was published, the cluster, its
//! namespaces, the read endpoints' objects, the ACL token, the event stream
//! endpoint) and the router sends each request to the owner it concerns.

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{MethodRouter, any, get};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::acl::Acl;
use super::cluster::Cluster;
use super::endpoint::{EventStream, StreamRequest};
use super::frame::SimFrame;
use super::framing::{BodyFormat, Framing};
use super::listener::SimListener;
use super::lists::{ApiRequest, Lists};
use super::namespaces::Namespaces;
use super::published::Published;
use super::reply::{json, text};
use super::stream::{ConnFault, Sources};
use nomad_chronicle::nomad::ClusterIdentity;

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

/// The simulator: a Nomad-compatible event stream fed by [`Sim::publish`].
///
/// Clones share one simulator; when the last clone is dropped, the server
/// stops as if [`Sim::shutdown`] had been called.
#[derive(Clone)]
pub struct Sim {
    /// The owners the server tasks share.
    state: Arc<Shared>,
    /// Shuts the server down when the last `Sim` clone goes away; the server
    /// tasks hold `state` only, so they do not keep it alive.
    _owner: Arc<Owner>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("buffer_size", &self.state.published.capacity())
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// Triggers shutdown when dropped.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// The owners of the simulator's state, shared by the handle, the server
/// and every stream; each concept keeps its own state behind its own type.
struct Shared {
    /// The buffer, the history and the raft index.
    published: Arc<Published>,
    /// The cluster's identity and its restarts.
    cluster: Arc<Cluster>,
    /// The namespace table behind `/v1/namespaces`.
    namespaces: Arc<Namespaces>,
    /// The objects the read endpoints list.
    lists: Lists,
    /// The token requests must carry.
    acl: Arc<Acl>,
    /// How new stream bodies are written.
    format: Arc<BodyFormat>,
    /// `/v1/event/stream`: its faults, its requests, its bodies.
    events: Arc<EventStream>,
    /// Set once to stop accepting and end every stream.
    shutdown: watch::Sender<bool>,
}

impl Sim {
    /// Creates a simulator with an empty buffer; call [`Sim::serve`] to expose it.
    pub fn new(config: SimConfig) -> Sim {
        let shutdown = watch::Sender::new(false);
        let acl = Arc::new(Acl::new(config.token));
        let sources = Sources {
            published: Arc::new(Published::new(config.buffer_size)),
            cluster: Arc::new(Cluster::new()),
            namespaces: Arc::new(Namespaces::new()),
            format: Arc::new(BodyFormat::new(config.framing)),
            shutdown: shutdown.subscribe(),
            heartbeat: config.heartbeat,
            open: Arc::new(AtomicUsize::new(0)),
        };
        let state = Arc::new(Shared {
            published: sources.published.clone(),
            cluster: sources.cluster.clone(),
            namespaces: sources.namespaces.clone(),
            lists: Lists::default(),
            format: sources.format.clone(),
            events: Arc::new(EventStream::new(acl.clone(), sources)),
            acl,
            shutdown,
        });
        Sim {
            _owner: Arc::new(Owner(state.clone())),
            state,
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
        let state = sim.state.clone();
        tokio::spawn(async move {
            if let Err(error) = serve(state, listener, std::future::pending()).await {
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
        serve(self.state.clone(), listener, shutdown).await
    }

    /// Stops accepting connections and ends every open stream; clients see EOF.
    pub fn shutdown(&self) {
        self.state.shutdown.send_replace(true);
    }

    /// Appends a frame to the buffer (evicting the oldest beyond `buffer_size`)
    /// and to the history, and wakes subscribers.
    ///
    /// A frame whose index is not above the last published one is a caller
    /// bug: it trips a debug assertion and is otherwise ignored. A frame
    /// without events is ignored too, as Nomad never buffers one.
    pub fn publish(&self, frame: SimFrame) {
        let lists = &self.state.lists;
        self.state
            .published
            .publish(frame, |entry| lists.apply(entry));
    }

    /// Every frame ever published, in order, for comparison with an archive.
    pub fn history(&self) -> Vec<SimFrame> {
        self.state.published.history()
    }

    /// Turns the full history off (or back on) so a long-running simulator
    /// keeps bounded memory; frames published while it is off are not in
    /// [`Sim::history`].
    pub fn set_record_history(&self, on: bool) {
        self.state.published.set_record_history(on);
    }

    /// Queues a fault: each new stream connection takes the next one, if any.
    pub fn push_fault(&self, fault: ConnFault) {
        self.state.events.push_fault(fault);
    }

    /// When `Some(k)`, writes every line as body chunks of at most `k` bytes,
    /// so clients see frames split across many reads.
    pub fn set_split_chunks(&self, max_bytes: Option<usize>) {
        self.state.format.set_split_chunks(max_bytes);
    }

    /// Changes the required ACL token for new requests; `None` turns ACLs off.
    pub fn set_token(&self, token: Option<String>) {
        self.state.acl.set_token(token);
    }

    /// Marks the configured token as expired (or valid again): new streams are
    /// refused and `/v1/acl/token/self` shows an expiration time in the past.
    pub fn set_token_expired(&self, expired: bool) {
        self.state.acl.set_expired(expired);
    }

    /// When on, every stream request is answered with 200 and an empty body,
    /// while `/v1/acl/token/self` still accepts the token: a valid token that
    /// may not read the requested topics, as Nomad >= 1.11.2 shows it.
    pub fn set_topic_denied(&self, denied: bool) {
        self.state.acl.set_topic_denied(denied);
    }

    /// Changes how new stream responses are framed.
    pub fn set_framing(&self, framing: Framing) {
        self.state.format.set_framing(framing);
    }

    /// Every `/v1/event/stream` request so far, in arrival order.
    pub fn requests(&self) -> Vec<StreamRequest> {
        self.state.events.requests()
    }

    /// How many stream connections are currently open.
    pub fn connection_count(&self) -> usize {
        self.state.events.open()
    }

    /// The cluster identity `/v1/agent/members` reports.
    pub fn identity(&self) -> ClusterIdentity {
        self.state.cluster.identity()
    }

    /// When on, `/v1/agent/members` answers 403 `Permission denied`, as for
    /// a token without `node:read`.
    pub fn set_members_denied(&self, denied: bool) {
        self.state.cluster.set_members_denied(denied);
    }

    /// A server restart or a leader change at the same address: every open
    /// stream ends (chunked ones with `subscription closed by server, client
    /// should resubscribe`), the event buffer starts empty, and the next
    /// publishes may start below the last index, as a new leader that lags
    /// behind the old one serves older entries first. The history keeps
    /// only frames above its last one, so re-published frames appear once.
    pub fn restart(&self) {
        self.state.published.restart();
        self.state.cluster.restart();
    }

    /// Another cluster now answers at this address: a new identity, an
    /// empty buffer, a history that starts over (indexes may begin at 1
    /// again), the initial namespaces only, no objects in the lists, and
    /// every open stream ended.
    pub fn become_another_cluster(&self) {
        self.state.cluster.renew();
        self.state.lists.reset();
        self.state.published.start_over();
        self.state.namespaces.reset();
        self.state.cluster.restart();
    }

    /// Creates a namespace at the next raft index (above every published
    /// frame, which later frames must then exceed) and returns that index.
    /// Open `namespace=*` streams do not deliver its events; new ones do.
    pub fn create_namespace(&self, name: &str) -> u64 {
        let published = &self.state.published;
        self.state
            .namespaces
            .create(name, |floor| published.take_index_above(floor))
    }

    /// When on, `GET /v1/namespaces` answers 403 `Permission denied`, as
    /// for a token that may not list namespaces.
    pub fn set_namespaces_denied(&self, denied: bool) {
        self.state.namespaces.set_denied(denied);
    }

    /// Answers the next `GET /v1/namespaces` with this status (a plain-text
    /// error), before any blocking.
    pub fn push_namespaces_fault(&self, status: u16) {
        self.state.namespaces.push_fault(status);
    }

    /// How many `GET /v1/namespaces` requests arrived.
    pub fn namespace_requests(&self) -> usize {
        self.state.namespaces.requests()
    }

    /// Forgets an object without an event, as Nomad's garbage collector
    /// does: it leaves the lists, and its topic's index moves to `index`.
    pub fn forget(&self, topic: &str, namespace: &str, key: &str, index: u64) {
        self.state.lists.forget(topic, namespace, key, index);
    }

    /// Makes the token lack the capability to list `topic` (HTTP 403
    /// `Permission denied`), or gives it back.
    pub fn set_list_denied(&self, topic: &str, denied: bool) {
        self.state.lists.set_denied(topic, denied);
    }

    /// Makes the list of `topic` fail with this status and plain-text body
    /// (e.g. 500 `No cluster leader`), or work again with `None`.
    pub fn set_list_failing(&self, topic: &str, failure: Option<(u16, &str)>) {
        self.state.lists.set_failing(topic, failure);
    }

    /// Every read request (lists and `/v1/job/:id`) so far, in arrival order.
    pub fn api_requests(&self) -> Vec<ApiRequest> {
        self.state.lists.requests()
    }
}

/// Runs the HTTP server until `shutdown` or the simulator's own shutdown signal.
async fn serve(
    state: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let signal_state = state.clone();
    let mut stopped = state.shutdown.subscribe();
    let signal = async move {
        tokio::select! {
            () = shutdown => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
        // Ends every open stream, which lets the graceful shutdown finish.
        signal_state.shutdown.send_replace(true);
    };
    let listener = SimListener::new(listener, state.events.clone());
    axum::serve(listener, router(state))
        .with_graceful_shutdown(signal)
        .await
}

/// Every path the simulator answers, each sent to the owner it concerns.
fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/event/stream", any(event_stream))
        .route("/v1/acl/token/self", get(token_self))
        .route("/v1/status/leader", get(leader))
        .route("/v1/namespaces", get(namespaces))
        .route("/v1/agent/members", get(members))
        .route("/v1/jobs", list_of("Job"))
        .route("/v1/job/{id}", get(job))
        .route("/v1/allocations", list_of("Allocation"))
        .route("/v1/evaluations", list_of("Evaluation"))
        .route("/v1/deployments", list_of("Deployment"))
        .route("/v1/nodes", list_of("Node"))
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            close_when_hijacking,
        ))
        .with_state(state)
}

/// With a close-delimited framing, every connection carries one request, so
/// a client cannot reuse a connection the router answered for a stream that
/// has to be written by hand.
async fn close_when_hijacking(
    State(state): State<Arc<Shared>>,
    mut response: Response,
) -> Response {
    if state.format.framing().is_close_delimited() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `/v1/event/stream` through the router.
async fn event_stream(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.events.routed(&method, &uri, &headers)
}

/// `GET /v1/acl/token/self`.
async fn token_self(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    state.acl.token_self(&headers)
}

/// `GET /v1/status/leader`: a constant leader address, for health checks.
async fn leader() -> Response {
    json("\"127.0.0.1:4647\"".to_owned())
}

/// `GET /v1/namespaces`, a blocking query.
async fn namespaces(State(state): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let shutdown = state.shutdown.subscribe();
    let query = uri.query().unwrap_or_default();
    state
        .namespaces
        .list(&state.acl, shutdown, query, &headers)
        .await
}

/// `GET /v1/agent/members`.
async fn members(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    state.cluster.members(&state.acl, &headers)
}

/// `GET /v1/job/:id`.
async fn job(
    State(state): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.lists.job(&state.acl, id, &uri, &headers)
}

/// The list of `topic`'s objects (`/v1/jobs`, `/v1/allocations`, …).
fn list_of(topic: &'static str) -> MethodRouter<Arc<Shared>> {
    get(
        move |State(state): State<Arc<Shared>>, uri: Uri, headers: HeaderMap| async move {
            state.lists.list(&state.acl, topic, &uri, &headers)
        },
    )
}

/// Any other path: Go's default 404.
async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found")
}
