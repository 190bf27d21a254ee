//! `GET /v1/namespaces` as a blocking query: the namespaces that exist, and
//! the index to wait on for the next change.
//!
//! Since Nomad 1.9.6 a subscription to `namespace=*` covers the namespaces
//! that existed when it started; events of a namespace created later only
//! reach a new subscription. Watching this list tells when to resubscribe.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::NomadClient;

/// One namespace, as much of it as the watch needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Namespace {
    pub name: String,
    /// The raft index that created it: none of its events can be older.
    #[serde(default)]
    pub create_index: u64,
}

/// The namespaces and the index of the list (`X-Nomad-Index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceList {
    /// The index to send as `?index=` to wait for the next change.
    pub index: u64,
    pub namespaces: Vec<Namespace>,
}

/// Why the list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespacesError {
    /// Nomad answered with an error status.
    #[error("`GET /v1/namespaces` answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The exchange failed (unreachable, cut, timed out) or the answer did
    /// not parse.
    #[error("`GET /v1/namespaces` failed: {0}")]
    Failed(String),
}

impl NamespacesError {
    /// Whether asking again later can succeed: network trouble and server
    /// errors can pass, a refusal (403) or a missing endpoint (404) cannot.
    pub fn is_retriable(&self) -> bool {
        match self {
            NamespacesError::Status { status, .. } => *status >= 500 || *status == 429,
            NamespacesError::Failed(_) => true,
        }
    }

    /// Whether the token may not list namespaces.
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            NamespacesError::Status {
                status: 401 | 403,
                ..
            }
        )
    }
}

impl NomadClient {
    /// Lists the namespaces. With `index` > 0 this is a blocking query: Nomad
    /// answers once the list's index passes `index`, or after about `wait`.
    /// With `index` 0 the list is read at once, and `wait` bounds the call.
    pub async fn namespaces(
        &self,
        index: u64,
        wait: Duration,
    ) -> Result<NamespaceList, NamespacesError> {
        let mut query = vec![("index", index.to_string())];
        if index > 0 {
            query.push(("wait", format!("{}ms", wait.as_millis())));
        }
        // Nomad adds up to wait/16 of jitter; leave room for it and the network.
        let limit = if index > 0 {
            wait + wait / 16 + Duration::from_secs(30)
        } else {
            wait
        };
        let answer = self
            .get("/v1/namespaces", &query, limit)
            .await
            .map_err(NamespacesError::Failed)?;
        if answer.status != StatusCode::OK {
            return Err(NamespacesError::Status {
                status: answer.status.as_u16(),
                body: String::from_utf8_lossy(&answer.body).into_owned(),
            });
        }
        let namespaces: Vec<Namespace> = serde_json::from_slice(&answer.body).map_err(|e| {
            NamespacesError::Failed(format!("the answer is not a namespace list: {e}"))
        })?;
        Ok(NamespaceList {
            index: answer.index.unwrap_or(0),
            namespaces,
        })
    }
}
