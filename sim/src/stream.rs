//! One subscriber's response body: greeting, frames from its cursor, heartbeats, and injected faults.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::buffer::{Cursor, Entry, Fetch};
use super::cluster::Cluster;
use super::framing::BodyFormat;
use super::namespaces::Namespaces;
use super::published::Published;
use nomad_chronicle::nomad::Subscription;

/// The heartbeat line, also the greeting.
const HEARTBEAT: &[u8] = b"{}\n";
/// What Nomad writes when a reader fell out of the buffer.
const DROPPED: &str = "event dropped from buffer";
/// What Nomad writes when a server shuts down or loses leadership.
const RESUBSCRIBE: &str = "subscription closed by server, client should resubscribe";
/// How many buffer entries a subscriber copies out per lock.
const BATCH: usize = 16;
/// Time given to the server to flush the half frame before a cut.
const CUT_FLUSH: Duration = Duration::from_millis(5);

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

/// What a stream body reads from and answers to.
#[derive(Clone)]
pub(crate) struct Sources {
    /// The frames it sends.
    pub(crate) published: Arc<Published>,
    /// Ends it on a restart.
    pub(crate) cluster: Arc<Cluster>,
    /// Which namespaces a `namespace=*` subscription covers.
    pub(crate) namespaces: Arc<Namespaces>,
    /// How big the body chunks may be.
    pub(crate) format: Arc<BodyFormat>,
    /// Ends it when the simulator shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Interval between `{}` heartbeats.
    pub(crate) heartbeat: Duration,
    /// Stream bodies currently alive.
    pub(crate) open: Arc<AtomicUsize>,
}

/// The body of one stream response, as a stream of chunks; an error item
/// makes the server abort the connection mid-body. `close_reasons` says
/// whether the body may end with Nomad's raw close reason (chunked framing)
/// or simply ends (close-delimited framing: Nomad >= 1.11.2 only closes).
pub(crate) fn body(
    sources: Sources,
    sub: Subscription,
    fault: Option<ConnFault>,
    close_reasons: bool,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let state = StreamState::new(sources, sub, fault, close_reasons);
    futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next_chunk().await?;
        Some((item, state))
    })
}

/// A piece of output waiting to be handed to the server.
enum Out {
    /// A whole line, or a raw close reason.
    Data(Bytes),
    /// Part of a split line; the stream yields before each so pieces arrive separately.
    Piece(Bytes),
    /// Abort the connection (a simulated cut).
    Abort,
}

/// Why an idle subscriber woke up.
enum Wake {
    /// A frame was published.
    Published,
    /// The heartbeat interval elapsed.
    Heartbeat,
    /// The simulator is shutting down.
    Shutdown,
    /// The simulator restarted: the subscription is over.
    Restart,
    /// The namespace table changed.
    Namespaces,
}

/// Everything one subscriber needs; dropped when the client goes away.
struct StreamState {
    /// The frames, the namespaces and the body format.
    sources: Sources,
    /// The subscriber's filter.
    sub: Subscription,
    /// The fault this connection still has to act out.
    fault: Option<ConnFault>,
    /// Where the subscriber is in the buffer.
    cursor: Cursor,
    /// The index of the last entry taken off `queue`, sent or filtered out.
    consumed: Option<u64>,
    /// Whether the body may end with a raw close reason.
    close_reasons: bool,
    /// Entries copied out of the buffer, not yet sent (at most `BATCH`).
    queue: VecDeque<Arc<Entry>>,
    /// Bytes ready to be written.
    out: VecDeque<Out>,
    /// Frames written so far (heartbeats and garbage do not count).
    frames_sent: usize,
    /// Whether the `{}` greeting went out.
    greeted: bool,
    /// Whether the body ends once `out` is drained.
    finished: bool,
    /// The `{}` heartbeat timer.
    heartbeat: Interval,
    /// Wakes the subscriber when a frame is published.
    updates: watch::Receiver<u64>,
    /// Ends the stream when the simulator shuts down.
    shutdown: watch::Receiver<bool>,
    /// Ends the stream when the simulator restarts.
    restarts: watch::Receiver<u64>,
    /// For `namespace=*`: the namespace table's index when the subscription
    /// started; namespaces created after it are not covered.
    namespaces_at: Option<u64>,
    /// Tells when the namespace table changed since `hidden` was computed.
    namespace_updates: watch::Receiver<u64>,
    /// Namespaces this subscription does not cover.
    hidden: Vec<String>,
    /// Counts this stream in `connection_count` while it lives.
    _guard: ConnectionGuard,
}

/// Keeps the count of open stream bodies accurate, however the stream ends.
struct ConnectionGuard(Arc<AtomicUsize>);

impl ConnectionGuard {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(open)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StreamState {
    fn new(
        sources: Sources,
        sub: Subscription,
        fault: Option<ConnFault>,
        close_reasons: bool,
    ) -> Self {
        let period = sources.heartbeat.max(Duration::from_millis(1));
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut restarts = sources.cluster.restarts();
        restarts.borrow_and_update();
        let namespaces_at = (sub.namespace == nomad_chronicle::nomad::subscription::ALL)
            .then(|| sources.namespaces.index());
        StreamState {
            restarts,
            namespaces_at,
            namespace_updates: sources.namespaces.subscribe(),
            hidden: Vec::new(),
            cursor: Cursor::Start(sub.index),
            consumed: None,
            close_reasons,
            updates: sources.published.subscribe(),
            shutdown: sources.shutdown.clone(),
            _guard: ConnectionGuard::new(sources.open.clone()),
            sources,
            sub,
            fault,
            queue: VecDeque::new(),
            out: VecDeque::new(),
            frames_sent: 0,
            greeted: false,
            finished: false,
            heartbeat,
        }
    }

    /// The next body chunk, `None` at the end of the body.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, io::Error>> {
        loop {
            match self.out.pop_front() {
                Some(Out::Data(bytes)) => return Some(Ok(bytes)),
                Some(Out::Piece(bytes)) => {
                    tokio::task::yield_now().await;
                    return Some(Ok(bytes));
                }
                Some(Out::Abort) => {
                    tokio::time::sleep(CUT_FLUSH).await;
                    self.out.clear();
                    self.finished = true;
                    let cut = io::Error::new(io::ErrorKind::ConnectionAborted, "simulated cut");
                    return Some(Err(cut));
                }
                None if self.finished => return None,
                None => self.produce().await,
            }
        }
    }

    /// Adds output, or marks the body finished; may wait for a publish or a heartbeat.
    async fn produce(&mut self) {
        if matches!(self.fault, Some(ConnFault::CloseBeforeGreeting)) {
            self.finished = true;
            return;
        }
        if !self.greeted {
            self.greeted = true;
            self.push_line(Bytes::from_static(HEARTBEAT));
            return;
        }
        if *self.shutdown.borrow() {
            self.finished = true;
            return;
        }
        if self.restarts.has_changed().unwrap_or(true) {
            self.close(RESUBSCRIBE.to_owned());
            return;
        }
        if self.namespace_updates.has_changed().unwrap_or(false) {
            self.refresh_hidden();
        }
        if self.act_out_fault().await {
            return;
        }
        loop {
            if let Some(entry) = self.queue.pop_front() {
                self.consumed = Some(entry.index);
                let Some(line) = entry.line_for(&self.sub, &self.hidden) else {
                    continue;
                };
                if matches!(self.fault, Some(ConnFault::CutAfter { frames }) if frames == self.frames_sent)
                {
                    self.push_line(line.slice(..line.len() / 2));
                    self.out.push_back(Out::Abort);
                } else {
                    self.frames_sent += 1;
                    self.push_line(line);
                }
                return;
            }
            self.updates.borrow_and_update();
            let fetched = self
                .sources
                .published
                .fetch(&mut self.cursor, BATCH, &mut self.queue);
            match fetched {
                Fetch::Some => {}
                Fetch::Dropped => {
                    self.close(DROPPED.to_owned());
                    return;
                }
                Fetch::Empty => break,
            }
        }
        let woke = tokio::select! {
            _ = self.updates.changed() => Wake::Published,
            _ = self.heartbeat.tick() => Wake::Heartbeat,
            _ = self.shutdown.wait_for(|stop| *stop) => Wake::Shutdown,
            _ = self.restarts.changed() => Wake::Restart,
            _ = self.namespace_updates.changed() => Wake::Namespaces,
        };
        match woke {
            Wake::Published => {}
            Wake::Heartbeat => self.push_line(Bytes::from_static(HEARTBEAT)),
            Wake::Shutdown => self.finished = true,
            Wake::Restart => self.close(RESUBSCRIBE.to_owned()),
            Wake::Namespaces => self.refresh_hidden(),
        }
    }

    /// Acts out a fault whose frame count has been reached; `true` if it produced output or ended the body.
    async fn act_out_fault(&mut self) -> bool {
        let sent = self.frames_sent;
        match self.fault.take() {
            Some(ConnFault::GarbageAfter { frames, line }) if frames == sent => {
                let mut line = line.into_bytes();
                line.push(b'\n');
                self.push_line(Bytes::from(line));
                true
            }
            Some(ConnFault::StallAfter { frames }) if frames == sent => {
                // Nothing more, not even heartbeats, until the simulator stops;
                // a client that leaves drops this future.
                let _ = self.shutdown.wait_for(|stop| *stop).await;
                self.finished = true;
                true
            }
            Some(ConnFault::CloseAfter { frames, reason }) if frames == sent => {
                match reason {
                    Some(reason) => self.close(reason),
                    None => self.finished = true,
                }
                true
            }
            Some(ConnFault::FallBehindAfter { frames }) if frames == sent => {
                self.fall_behind().await;
                true
            }
            other => {
                self.fault = other;
                false
            }
        }
    }

    /// Recomputes which namespaces this subscription does not cover.
    fn refresh_hidden(&mut self) {
        self.namespace_updates.borrow_and_update();
        if let Some(at) = self.namespaces_at {
            self.hidden = self.sources.namespaces.created_after(at);
        }
    }

    /// Ends the body with Nomad's close reason, where the framing carries one.
    fn close(&mut self, reason: String) {
        if self.close_reasons {
            self.out.push_back(Out::Data(Bytes::from(reason)));
        }
        self.finished = true;
    }

    /// Stops reading at the last consumed entry, as a subscriber whose client
    /// reads too slowly, until later publishes evict that entry; then ends
    /// the body as Nomad does for a reader that lost its place.
    async fn fall_behind(&mut self) {
        self.queue.clear();
        if let Some(index) = self.consumed {
            self.cursor = Cursor::After(index);
        }
        loop {
            self.updates.borrow_and_update();
            let mut probe = self.cursor;
            let mut scratch = VecDeque::new();
            let dropped =
                self.sources.published.fetch(&mut probe, 1, &mut scratch) == Fetch::Dropped;
            if dropped {
                self.close(DROPPED.to_owned());
                return;
            }
            tokio::select! {
                _ = self.updates.changed() => {}
                _ = self.shutdown.wait_for(|stop| *stop) => {
                    self.finished = true;
                    return;
                }
            }
        }
    }

    /// Queues a line whole, or in pieces when chunk splitting is on.
    fn push_line(&mut self, line: Bytes) {
        let max = self.sources.format.split_chunks();
        if max == 0 || line.len() <= max {
            self.out.push_back(Out::Data(line));
            return;
        }
        let mut start = 0;
        while start < line.len() {
            let end = (start + max).min(line.len());
            self.out.push_back(Out::Piece(line.slice(start..end)));
            start = end;
        }
    }
}
