//! Nomad's read endpoints (`/v1/jobs`, `/v1/allocations`, `/v1/job/:id`, …):
//! one GET, its body and the `X-Nomad-Index` it reports, with failures
//! classified so a caller can tell a refused token from a passing fault.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;

use super::{NomadClient, error_body, error_chain, summarize};

/// How long one read may take, body included. Lists of a large cluster run
/// to tens of megabytes.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// A read endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAnswer {
    /// `X-Nomad-Index`: the raft index the answer is as of.
    pub index: u64,
    pub body: Bytes,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// 401 or 403: the token may not read this.
    #[error("Nomad refused `{path}` (HTTP {status}: {body})")]
    Denied {
        path: String,
        status: u16,
        body: String,
    },
    #[error("Nomad answered `{path}` with HTTP {status}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
    #[error("cannot read `{path}` from Nomad at `{address}`: {detail}")]
    Transport {
        path: String,
        address: String,
        detail: String,
    },
    #[error("`{path}` answered without a valid `X-Nomad-Index` header")]
    NoIndex { path: String },
    #[error("no answer from `{path}` within {timeout:?}")]
    Timeout { path: String, timeout: Duration },
    /// The answer is not what the endpoint returns (not JSON, not a list).
    #[error("`{path}` answered with something unreadable: {detail}")]
    Unreadable { path: String, detail: String },
}

impl ReadError {
    /// Whether asking again later can succeed (a network fault, a busy or
    /// leaderless server), as opposed to an answer that will not change.
    pub fn is_retriable(&self) -> bool {
        match self {
            ReadError::Status { status, .. } => *status >= 500 || *status == 429,
            ReadError::Transport { .. } | ReadError::Timeout { .. } => true,
            ReadError::Denied { .. } | ReadError::NoIndex { .. } | ReadError::Unreadable { .. } => {
                false
            }
        }
    }
}

impl NomadClient {
    /// `GET path?query` (plus `region` when configured), sent with the
    /// client's token like the stream.
    pub async fn read(&self, path: &str, query: &[(&str, &str)]) -> Result<ReadAnswer, ReadError> {
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
        if url.query() == Some("") {
            url.set_query(None);
        }
        let transport = |detail: String| ReadError::Transport {
            path: path.to_owned(),
            address: self.display_address.clone(),
            detail,
        };
        let ask = async {
            let response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| transport(error_chain(e)))?;
            let status = response.status();
            if status != StatusCode::OK {
                let body = summarize(&error_body(response).await);
                let (path, status) = (path.to_owned(), status.as_u16());
                return Err(if matches!(status, 401 | 403) {
                    ReadError::Denied { path, status, body }
                } else {
                    ReadError::Status { path, status, body }
                });
            }
            let index = response
                .headers()
                .get("X-Nomad-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ReadError::NoIndex {
                    path: path.to_owned(),
                })?;
            let body = response
                .bytes()
                .await
                .map_err(|e| transport(error_chain(e)))?;
            Ok(ReadAnswer { index, body })
        };
        tokio::time::timeout(READ_TIMEOUT, ask)
            .await
            .unwrap_or_else(|_| {
                Err(ReadError::Timeout {
                    path: path.to_owned(),
                    timeout: READ_TIMEOUT,
                })
            })
    }
}
