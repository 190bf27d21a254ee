//! The simulated cluster's namespaces: `GET /v1/namespaces` as a blocking
//! query, and Nomad's (>= 1.9.6) rule that a `namespace=*` subscription
//! covers only the namespaces that existed when it started.
//!
//! The simulator starts with the namespaces its generator uses (`default`,
//! `platform`, `analytics`); a test adds more with [`Sim::create_namespace`],
//! which takes a raft index of its own (namespace changes produce no event).
//! Events of a namespace the registry never heard of reach every subscriber,
//! so hand-made histories need not declare their namespaces.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::server::{Inner, Sim, authorized, lock, text};

/// The namespaces a new simulator has: those the generator writes events in.
const INITIAL: [&str; 3] = ["analytics", "default", "platform"];
/// Nomad's default and longest blocking-query waits.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

/// The namespace table.
#[derive(Debug)]
pub(crate) struct Namespaces {
    /// Name → the raft index that created it.
    created: BTreeMap<String, u64>,
    /// The table's index, what `X-Nomad-Index` carries.
    pub(crate) index: u64,
    /// Whether list requests are refused (a token without namespace rights).
    denied: bool,
    /// Statuses to answer the next list requests with, one each.
    faults: VecDeque<u16>,
    /// List requests received, for tests.
    requests: usize,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            created: INITIAL.iter().map(|n| (n.to_string(), 1)).collect(),
            index: 1,
            denied: false,
            faults: VecDeque::new(),
            requests: 0,
        }
    }
}

impl Namespaces {
    /// The namespaces created after the table stood at `index`: what a
    /// `namespace=*` subscription made then does not cover.
    pub(crate) fn created_after(&self, index: u64) -> Vec<String> {
        self.created
            .iter()
            .filter(|(_, created)| **created > index)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Forgets every namespace but the initial ones (another cluster).
    pub(crate) fn reset(&mut self) {
        *self = Namespaces::default();
    }

    /// The list as Nomad writes it, sorted by name.
    fn to_json(&self) -> String {
        let list: Vec<serde_json::Value> = self
            .created
            .iter()
            .map(|(name, index)| {
                serde_json::json!({
                    "Capabilities": null,
                    "CreateIndex": index,
                    "Description": if name == "default" { "Default shared namespace" } else { "" },
                    "Meta": null,
                    "ModifyIndex": index,
                    "Name": name,
                    "NodePoolConfiguration": null,
                    "Quota": "",
                    "VaultConfiguration": null,
                })
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }
}

impl Sim {
    /// Creates a namespace at the next raft index (above every published
    /// frame, which later frames must then exceed) and returns that index.
    /// Open `namespace=*` streams do not deliver its events; new ones do.
    pub fn create_namespace(&self, name: &str) -> u64 {
        let index = {
            let mut state = lock(&self.inner.state);
            let mut namespaces = lock(&self.inner.namespaces);
            let index = state.last_index.unwrap_or(0).max(namespaces.index) + 1;
            state.last_index = Some(index);
            namespaces.created.insert(name.to_owned(), index);
            namespaces.index = index;
            index
        };
        self.inner.namespace_updates.send_modify(|n| *n += 1);
        index
    }

    /// When on, `GET /v1/namespaces` answers 403 `Permission denied`, as
    /// for a token that may not list namespaces.
    pub fn set_namespaces_denied(&self, denied: bool) {
        lock(&self.inner.namespaces).denied = denied;
    }

    /// Answers the next `GET /v1/namespaces` with this status (a plain-text
    /// error), before any blocking.
    pub fn push_namespaces_fault(&self, status: u16) {
        lock(&self.inner.namespaces).faults.push_back(status);
    }

    /// How many `GET /v1/namespaces` requests arrived.
    pub fn namespace_requests(&self) -> usize {
        lock(&self.inner.namespaces).requests
    }
}

/// `GET /v1/namespaces?index=N&wait=D`: answers at once when the table's
/// index is past `N`, otherwise when it changes or `wait` has passed.
pub(crate) async fn list(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    lock(&inner.namespaces).requests += 1;
    let (index, wait) = match blocking_params(uri.query().unwrap_or_default()) {
        Ok(params) => params,
        Err(body) => return text(StatusCode::BAD_REQUEST, body),
    };
    if !authorized(&inner, &headers) {
        return text(StatusCode::FORBIDDEN, "Permission denied");
    }
    {
        let mut namespaces = lock(&inner.namespaces);
        if namespaces.denied {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
        if let Some(code) = namespaces.faults.pop_front() {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return text(status, "simulated failure");
        }
    }
    let mut updates = inner.namespace_updates.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        {
            let namespaces = lock(&inner.namespaces);
            if namespaces.index > index || tokio::time::Instant::now() >= deadline {
                let mut response = (
                    [(header::CONTENT_TYPE, "application/json")],
                    namespaces.to_json(),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("X-Nomad-Index", HeaderValue::from(namespaces.index.max(1)));
                return response;
            }
        }
        tokio::select! {
            _ = updates.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
            }
        }
    }
}

/// `index` and `wait` as Nomad parses them, with its 400 messages.
fn blocking_params(query: &str) -> Result<(u64, Duration), &'static str> {
    let mut index = 0;
    let mut wait = DEFAULT_WAIT;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "index" if !value.is_empty() => {
                index = value.parse().map_err(|_| "Invalid index")?;
            }
            "wait" if !value.is_empty() => {
                wait = humantime::parse_duration(&value).map_err(|_| "Invalid wait time")?;
            }
            _ => {}
        }
    }
    Ok((index, wait.min(MAX_WAIT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_parameters_parse_as_nomad_does() {
        assert_eq!(blocking_params(""), Ok((0, DEFAULT_WAIT)));
        assert_eq!(
            blocking_params("index=42&wait=1500ms"),
            Ok((42, Duration::from_millis(1500)))
        );
        assert_eq!(blocking_params("wait=1h"), Ok((0, MAX_WAIT)));
        assert_eq!(blocking_params("index=x"), Err("Invalid index"));
        assert_eq!(blocking_params("wait=soon"), Err("Invalid wait time"));
    }

    #[test]
    fn a_namespace_is_hidden_from_subscriptions_made_before_it() {
        let mut namespaces = Namespaces::default();
        namespaces.created.insert("staging".to_owned(), 40);
        namespaces.index = 40;
        assert_eq!(namespaces.created_after(1), vec!["staging".to_owned()]);
        assert!(namespaces.created_after(40).is_empty());
    }
}
