//! The HTTP side of Nomad: one client per agent address, with the Nomad CLI's
//! TLS and token settings, and a classification of everything that can go wrong
//! when subscribing to the event stream.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use super::{Subscription, TokenCheck};
use crate::config::{NomadConfig, redact_url};

mod read;
pub use read::{ReadAnswer, ReadError};

/// Everything that can end or prevent a subscription, classified so the ingest
/// loop can decide between reconnecting and giving up.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot reach Nomad at `{address}`: {detail}")]
    Connect { address: String, detail: String },
    /// The agent's TLS certificate was not accepted: every attempt fails
    /// the same way until the settings or the certificate change.
    #[error("the TLS certificate of Nomad at `{address}` was not accepted: {detail}")]
    Certificate { address: String, detail: String },
    #[error("Nomad answered HTTP {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("the stream broke off: {0}")]
    Body(String),
    #[error("no data or heartbeat for {0:?}; the connection is presumed dead")]
    Idle(Duration),
    #[error("the server ended the stream")]
    Closed,
    #[error("no answer to the subscription within {0:?}")]
    NoAnswer(Duration),
    /// The agent answered with a status line HTTP/1.1 clients reject; every
    /// attempt fails the same way.
    #[error(
        "Nomad at `{address}` answered with a status line HTTP clients reject (`{detail}`): \
         Nomad 1.11.2's event stream sends an invalid HTTP status line (`HTTP/0.0 200 OK`)"
    )]
    InvalidStatusLine { address: String, detail: String },
}

impl StreamError {
    /// Whether reconnecting can help. Client errors (bad parameters, denied
    /// token, wrong address) will fail the same way every time.
    pub fn is_retriable(&self) -> bool {
        match self {
            StreamError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            StreamError::InvalidStatusLine { .. } | StreamError::Certificate { .. } => false,
            _ => true,
        }
    }

    /// A hint for the user, for errors they have to fix.
    pub fn hint(&self) -> Option<&'static str> {
        let (status, body) = match self {
            StreamError::Status { status, body } => (status, body),
            StreamError::InvalidStatusLine { .. } => {
                return Some("upgrade Nomad to 1.11.3 or newer");
            }
            StreamError::Certificate { .. } => {
                return Some(
                    "pass the CA that issued the agent's certificate with --ca-cert (NOMAD_CACERT), \
                     or --tls-server-name when the certificate names another host",
                );
            }
            _ => return None,
        };
        if status.is_client_error() && body.contains("expired") {
            return Some(
                "the ACL token has expired: create a new one and set --token or NOMAD_TOKEN to it; \
                 ingest resumes from its checkpoint",
            );
        }
        match status.as_u16() {
            400 => Some("check the --topic and --from-index values"),
            401 | 403 => Some(
                "the ACL token lacks permission: subscribing to all topics needs a management token; \
                 with a least-privilege token name the topics it may read, e.g. \
                 --topic Job --topic Evaluation --topic Allocation --topic Deployment (namespace read-job) \
                 and --topic Node (node:read)",
            ),
            404 => Some("is --address a Nomad agent? the path /v1/event/stream was not found"),
            300..=399 => {
                Some("the agent redirected the request; point --address at the agent itself")
            }
            405 => Some("is --address a Nomad agent? it refused GET /v1/event/stream"),
            _ => None,
        }
    }
}

/// A body being streamed: chunks of bytes as they arrive.
pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, StreamError>> + Send>>;

/// A client for one Nomad agent.
#[derive(Clone)]
pub struct NomadClient {
    http: reqwest::Client,
    /// The agent's address; its host may be replaced by `--tls-server-name`.
    base: Url,
    /// What the user typed, for messages.
    display_address: String,
    region: Option<String>,
    /// Whether a token is sent, so messages can tell "no token" from "a bad one".
    has_token: bool,
}

impl fmt::Debug for NomadClient {
    // The token lives in the default headers of `http`; never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NomadClient")
            .field("address", &self.display_address)
            .field("region", &self.region)
            .field("has_token", &self.has_token)
            .finish_non_exhaustive()
    }
}

/// Why a client could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {what} `{path}`: {source}")]
    ReadFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} `{path}` is not a valid PEM file: {detail}")]
    BadPem {
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("--client-cert and --client-key must be given together")]
    HalfIdentity,
    #[error("the token contains characters that cannot be sent in an HTTP header")]
    BadToken,
    #[error("cannot resolve `{host}` for --tls-server-name: {detail}")]
    Resolve { host: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl NomadClient {
    /// Builds a client from validated settings. With `tls_server_name`, the
    /// agent's address is resolved here and requests go to it while TLS checks
    /// the certificate against the given name, as the Nomad CLI does.
    pub async fn new(config: &NomadConfig) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &config.token {
            let mut value =
                HeaderValue::from_str(token.expose()).map_err(|_| ClientError::BadToken)?;
            value.set_sensitive(true);
            headers.insert("X-Nomad-Token", value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("nomad-chronicle/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A redirect would carry X-Nomad-Token to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(path) = &config.ca_cert {
            for cert in ca_certificates(path).await? {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&config.client_cert, &config.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, "client certificate").await?;
                pem.push(b'\n');
                pem.extend(read(key, "client key").await?);
                let identity =
                    reqwest::Identity::from_pem(&pem).map_err(|e| ClientError::BadPem {
                        what: "client certificate or key",
                        path: cert.display().to_string(),
                        detail: e.to_string(),
                    })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err(ClientError::HalfIdentity),
        }
        if config.tls_skip_verify {
            tracing::warn!("TLS certificate verification is off (--tls-skip-verify)");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let mut base = config.address.clone();
        if let Some(name) = &config.tls_server_name {
            let host = base.host_str().unwrap_or_default().to_owned();
            let port = base.port_or_known_default().unwrap_or(4646);
            let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| ClientError::Resolve {
                    host: host.clone(),
                    detail: e.to_string(),
                })?
                .collect();
            builder = builder.resolve_to_addrs(name, &addrs);
            base.set_host(Some(name))
                .map_err(|e| ClientError::Build(e.to_string()))?;
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(NomadClient {
            http,
            base,
            display_address: redact_url(config.address.as_str())
                .trim_end_matches('/')
                .to_owned(),
            region: config.region.clone(),
            has_token: config.token.is_some(),
        })
    }

    /// Whether requests carry an ACL token.
    pub fn has_token(&self) -> bool {
        self.has_token
    }

    /// The region requests are forwarded to (`--region`), if any.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The address as the user gave it.
    pub fn address(&self) -> &str {
        &self.display_address
    }

    /// Opens `GET /v1/event/stream` and returns its body once Nomad answered
    /// 200; any other answer is an error carrying Nomad's message.
    pub async fn event_stream(&self, sub: &Subscription) -> Result<ByteStream, StreamError> {
        let mut url = self.url("/v1/event/stream");
        url.set_query(Some(&sub.query_string()));
        if let Some(region) = &self.region {
            url.query_pairs_mut().append_pair("region", region);
        }
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.connect_error(e))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(StreamError::Status {
                status,
                body: summarize(&error_body(response).await),
            });
        }
        use futures_util::StreamExt;
        Ok(Box::pin(response.bytes_stream().map(|chunk| {
            chunk.map_err(|e| StreamError::Body(error_chain(e)))
        })))
    }

    /// Asks `GET /v1/acl/token/self` what Nomad makes of the token (sent the
    /// same way as for the stream).
    pub async fn token_self(&self) -> TokenCheck {
        let mut url = self.url("/v1/acl/token/self");
        if let Some(region) = &self.region {
            url.query_pairs_mut().append_pair("region", region);
        }
        let ask = async {
            let response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| self.connect_error(e).to_string())?;
            let status = response.status().as_u16();
            Ok::<_, String>((status, error_body(response).await))
        };
        match tokio::time::timeout(Duration::from_secs(15), ask).await {
            Ok(Ok((status, body))) => {
                TokenCheck::from_answer(status, &body, std::time::SystemTime::now())
            }
            Ok(Err(detail)) => TokenCheck::Unanswered(detail),
            Err(_) => TokenCheck::Unanswered("no answer within 15s".to_owned()),
        }
    }

    /// `GET path?query` (with `region` when one is set), read whole within
    /// `limit`: the plain API calls beside the stream (namespaces, members).
    /// Any status comes back as an answer; only a failed exchange is an error.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        limit: Duration,
    ) -> Result<ApiAnswer, String> {
        let mut url = self.url(path);
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
            if let Some(region) = &self.region {
                pairs.append_pair("region", region);
            }
        }
        let ask = async {
            let response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| self.connect_error(e).to_string())?;
            let status = response.status();
            let index = response
                .headers()
                .get("X-Nomad-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            if status != StatusCode::OK {
                let body = summarize(&error_body(response).await);
                return Ok(ApiAnswer {
                    status,
                    index,
                    body: Bytes::from(body),
                });
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("the answer broke off: {}", error_chain(e)))?;
            Ok(ApiAnswer {
                status,
                index,
                body,
            })
        };
        match tokio::time::timeout(limit, ask).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {limit:?}")),
        }
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    fn connect_error(&self, e: reqwest::Error) -> StreamError {
        // For a failed connection the innermost cause ("Connection refused")
        // says it all; reqwest's wrappers around it add nothing.
        let cause = innermost(&e);
        if is_invalid_status_line(&cause) {
            return StreamError::InvalidStatusLine {
                address: self.display_address.clone(),
                detail: cause,
            };
        }
        if is_certificate_rejection(&e) {
            return StreamError::Certificate {
                address: self.display_address.clone(),
                detail: cause,
            };
        }
        let detail = if e.is_connect() {
            cause
        } else {
            error_chain(e)
        };
        StreamError::Connect {
            address: self.display_address.clone(),
            detail,
        }
    }
}

/// What Nomad answered to a plain API call.
#[derive(Debug, Clone)]
pub(crate) struct ApiAnswer {
    pub(crate) status: StatusCode,
    /// `X-Nomad-Index`, the index a blocking query waits on.
    pub(crate) index: Option<u64>,
    /// The body; for an error status, its first line, shortened.
    pub(crate) body: Bytes,
}

/// Whether hyper refused the response's status line for its HTTP version, as
/// it does for Nomad 1.11.2's `HTTP/0.0 200 OK`.
fn is_invalid_status_line(detail: &str) -> bool {
    detail.contains("invalid HTTP version") || detail.contains("HTTP/0.0")
}

/// The start of an error response's body, read with a size and time limit.
async fn error_body(mut response: reqwest::Response) -> String {
    const LIMIT: usize = 4096;
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    body.truncate(LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

async fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, ClientError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| ClientError::ReadFile {
            what,
            path: path.display().to_string(),
            source,
        })
}

/// The error and its `source()` chain on one line, without the request URL
/// (reqwest puts it in its messages; it is noise here and may carry a region).
/// The certificates of a `--ca-cert` file; one holding none is an error
/// rather than a file that silently changes nothing.
async fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let bad_pem = |detail: String| ClientError::BadPem {
        what: "CA certificate",
        path: path.display().to_string(),
        detail,
    };
    let pem = read(path, "CA certificate").await?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad_pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad_pem("it holds no certificate".to_owned()));
    }
    Ok(certs)
}

/// Whether TLS refused the agent's certificate (rustls reports this as
/// "invalid peer certificate: …": an unknown issuer, another host's name,
/// an expired certificate), as opposed to a network fault that can pass.
fn is_certificate_rejection(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.to_string().contains("invalid peer certificate") {
            return true;
        }
        current = err.source();
    }
    false
}

fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The first line of a response body, shortened for an error message.
fn summarize(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}
