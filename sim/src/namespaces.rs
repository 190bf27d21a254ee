//! The simulated cluster's namespaces: `GET /v1/namespaces` as a blocking
//! query, and Nomad's (>= 1.9.6) rule that a `namespace=*` subscription
//! covers only the namespaces that existed when it started.
//!
//! The simulator starts with the namespaces its generator uses (`default`,
//! `platform`, `analytics`); a test adds more with [`crate::Sim::create_namespace`],
//! which takes a raft index of its own (namespace changes produce no event).
//! Events of a namespace the registry never heard of reach every subscriber,
//! so hand-made histories need not declare their namespaces.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::sync::watch;

use super::acl::Acl;
use super::reply::{json, text};
use super::sync::lock;

/// The namespaces a new simulator has: those the generator writes events in.
const INITIAL: [&str; 3] = ["analytics", "default", "platform"];
/// Nomad's default and longest blocking-query waits.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

/// The namespace table and the signal that announces its changes.
pub(crate) struct Namespaces {
    /// The table.
    table: Mutex<Table>,
    /// Bumped when the table changes: wakes blocking queries and tells
    /// streams to look at it again.
    updates: watch::Sender<u64>,
}

/// The namespaces, and how their list is answered.
#[derive(Debug)]
struct Table {
    /// Name → the raft index that created it.
    created: BTreeMap<String, u64>,
    /// The table's index, what `X-Nomad-Index` carries.
    index: u64,
    /// Whether list requests are refused (a token without namespace rights).
    denied: bool,
    /// Statuses to answer the next list requests with, one each.
    faults: VecDeque<u16>,
    /// List requests received, for tests.
    requests: usize,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            created: INITIAL.iter().map(|n| (n.to_string(), 1)).collect(),
            index: 1,
            denied: false,
            faults: VecDeque::new(),
            requests: 0,
        }
    }
}

impl Table {
    /// The namespaces created after the table stood at `index`: what a
    /// `namespace=*` subscription made then does not cover.
    fn created_after(&self, index: u64) -> Vec<String> {
        self.created
            .iter()
            .filter(|(_, created)| **created > index)
            .map(|(name, _)| name.clone())
            .collect()
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

impl Namespaces {
    /// The initial namespaces.
    pub(crate) fn new() -> Namespaces {
        Namespaces {
            table: Mutex::new(Table::default()),
            updates: watch::Sender::new(0),
        }
    }

    /// Creates a namespace at the raft index `take_index` returns given the
    /// table's own index, and returns that index.
    pub(crate) fn create(&self, name: &str, take_index: impl FnOnce(u64) -> u64) -> u64 {
        let index = {
            let mut table = lock(&self.table);
            let index = take_index(table.index);
            table.created.insert(name.to_owned(), index);
            table.index = index;
            index
        };
        self.updates.send_modify(|n| *n += 1);
        index
    }

    /// Forgets every namespace but the initial ones (another cluster).
    pub(crate) fn reset(&self) {
        *lock(&self.table) = Table::default();
        self.updates.send_modify(|n| *n += 1);
    }

    /// Refuses the list, or answers it again.
    pub(crate) fn set_denied(&self, denied: bool) {
        lock(&self.table).denied = denied;
    }

    /// Answers the next list request with this status.
    pub(crate) fn push_fault(&self, status: u16) {
        lock(&self.table).faults.push_back(status);
    }

    /// How many list requests arrived.
    pub(crate) fn requests(&self) -> usize {
        lock(&self.table).requests
    }

    /// The table's index now: where a `namespace=*` subscription stands.
    pub(crate) fn index(&self) -> u64 {
        lock(&self.table).index
    }

    /// The namespaces created after the table stood at `index`.
    pub(crate) fn created_after(&self, index: u64) -> Vec<String> {
        lock(&self.table).created_after(index)
    }

    /// Tells a stream when the table changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    /// `GET /v1/namespaces?index=N&wait=D`: answers at once when the
    /// table's index is past `N`, otherwise when it changes, `wait` has
    /// passed or the simulator shuts down.
    pub(crate) async fn list(
        &self,
        acl: &Acl,
        mut shutdown: watch::Receiver<bool>,
        query: &str,
        headers: &HeaderMap,
    ) -> Response {
        lock(&self.table).requests += 1;
        let (index, wait) = match blocking_params(query) {
            Ok(params) => params,
            Err(body) => return text(StatusCode::BAD_REQUEST, body),
        };
        if !acl.authorizes(headers) {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
        if let Some(refusal) = self.refusal() {
            return refusal;
        }
        let mut updates = self.updates.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let table = lock(&self.table);
                if table.index > index || tokio::time::Instant::now() >= deadline {
                    let mut response = json(table.to_json());
                    response
                        .headers_mut()
                        .insert("X-Nomad-Index", HeaderValue::from(table.index.max(1)));
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

    /// The answer when the list is denied or a fault is queued for it.
    fn refusal(&self) -> Option<Response> {
        let mut table = lock(&self.table);
        if table.denied {
            return Some(text(StatusCode::FORBIDDEN, "Permission denied"));
        }
        let code = table.faults.pop_front()?;
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some(text(status, "simulated failure"))
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
        let namespaces = Namespaces::new();
        assert_eq!(namespaces.create("staging", |_| 40), 40);
        assert_eq!(namespaces.index(), 40);
        assert_eq!(namespaces.created_after(1), vec!["staging".to_owned()]);
        assert!(namespaces.created_after(40).is_empty());
    }
}
