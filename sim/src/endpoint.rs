//! `/v1/event/stream` as an endpoint: what a request is answered with
//! (method, query, ACL, a queued fault), the faults queued for the next
//! connections, every request seen, and the chunked response the router
//! sends; close-delimited responses are written by the `listener` module.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;

use super::acl::Acl;
use super::framing::{self, Framing};
use super::reply::text;
use super::stream::{self, ConnFault, Sources};
use super::sync::lock;
use nomad_chronicle::nomad::Subscription;

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

/// The event stream endpoint.
pub(crate) struct EventStream {
    /// Who may subscribe.
    acl: Arc<Acl>,
    /// What the stream bodies read from.
    sources: Sources,
    /// The faults to act out and the requests seen.
    book: Mutex<Book>,
}

/// What the endpoint is told and what it saw, under one lock.
#[derive(Default)]
struct Book {
    /// Faults for the next stream connections, one each.
    faults: VecDeque<ConnFault>,
    /// Every stream request seen.
    requests: Vec<StreamRequest>,
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

impl EventStream {
    /// An endpoint checking tokens with `acl` and streaming from `sources`.
    pub(crate) fn new(acl: Arc<Acl>, sources: Sources) -> EventStream {
        EventStream {
            acl,
            sources,
            book: Mutex::new(Book::default()),
        }
    }

    /// The framing for a new stream response.
    pub(crate) fn framing(&self) -> Framing {
        self.sources.format.framing()
    }

    /// Queues a fault: each new stream connection takes the next one, if any.
    pub(crate) fn push_fault(&self, fault: ConnFault) {
        lock(&self.book).faults.push_back(fault);
    }

    /// Every stream request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<StreamRequest> {
        lock(&self.book).requests.clone()
    }

    /// How many stream bodies are open.
    pub(crate) fn open(&self) -> usize {
        self.sources.open.load(Ordering::SeqCst)
    }

    /// Keeps a finished request for [`crate::Sim::requests`].
    pub(crate) fn record(&self, record: StreamRequest) {
        tracing::debug!(query = %record.query, status = record.status, "Stream request");
        lock(&self.book).requests.push(record);
    }

    /// The body of a stream for `sub`; `close_reasons` says whether it may
    /// end with Nomad's raw close reason (chunked) or simply ends.
    pub(crate) fn body(
        &self,
        sub: Subscription,
        fault: Option<ConnFault>,
        close_reasons: bool,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        stream::body(self.sources.clone(), sub, fault, close_reasons)
    }

    /// Validates, authorizes and applies a queued fault, filling in what was parsed.
    pub(crate) fn answer(
        &self,
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
        let hijacked = self.framing().is_close_delimited();
        if !self.acl.authorizes(headers) {
            if hijacked {
                return Answer::Empty;
            }
            return Answer::Text(StatusCode::FORBIDDEN, "Permission denied".into());
        }
        if self.acl.expired() {
            if hijacked {
                return Answer::Empty;
            }
            return Answer::Text(StatusCode::FORBIDDEN, "ACL token expired".into());
        }
        if self.acl.topic_denied() {
            return Answer::Empty;
        }
        let fault = lock(&self.book).faults.pop_front();
        if let Some(ConnFault::Status { code, body }) = fault {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Answer::Text(status, body);
        }
        Answer::Stream { sub, fault }
    }

    /// `/v1/event/stream` through the router: every framing's error
    /// answers, and the stream itself when it is chunked.
    pub(crate) fn routed(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        let mut record = StreamRequest::new(uri.query().unwrap_or_default(), headers);
        let gzip = self.framing() == Framing::ChunkedGzip && framing::accepts_gzip(headers);
        let response = match self.answer(method, headers, &mut record) {
            Answer::Text(status, body) => text(status, body),
            Answer::Empty => json_response(Body::empty()),
            Answer::Stream { sub, fault } => {
                let body = self.body(sub, fault, true);
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
        self.record(record);
        response
    }
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
