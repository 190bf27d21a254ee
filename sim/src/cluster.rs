//! Which cluster the simulator is, and the ways it stops being the same
//! agent: a restart or leader change (same cluster, empty buffer) and
//! becoming another cluster at the same address (new identity, new history).
//!
//! Its identity is what `GET /v1/agent/members` shows: a region and the
//! node IDs of its servers, drawn at random for each simulator, so two
//! simulators are two clusters.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::buffer::Buffer;
use super::server::{Inner, Sim, authorized, lock, text};
use nomad_chronicle::nomad::ClusterIdentity;

/// How many servers a simulated cluster has.
const SERVERS: usize = 3;

/// The simulated cluster's identity and who may read it.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) region: String,
    /// Server node IDs, in member order.
    pub(crate) servers: Vec<String>,
    /// Whether `/v1/agent/members` is refused (a token without `node:read`).
    pub(crate) denied: bool,
}

impl Membership {
    /// A cluster of its own in region `global`.
    pub(crate) fn new() -> Membership {
        Membership {
            region: "global".to_owned(),
            servers: (0..SERVERS).map(|_| node_id()).collect(),
            denied: false,
        }
    }
}

/// A random UUID-shaped node ID, as Nomad draws one for a new server.
fn node_id() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}

impl Sim {
    /// The cluster identity `/v1/agent/members` reports.
    pub fn identity(&self) -> ClusterIdentity {
        let membership = lock(&self.inner.membership);
        ClusterIdentity {
            region: membership.region.clone(),
            servers: membership.servers.iter().cloned().collect(),
        }
    }

    /// When on, `/v1/agent/members` answers 403 `Permission denied`, as for
    /// a token without `node:read`.
    pub fn set_members_denied(&self, denied: bool) {
        lock(&self.inner.membership).denied = denied;
    }

    /// A server restart or a leader change at the same address: every open
    /// stream ends (chunked ones with `subscription closed by server, client
    /// should resubscribe`), the event buffer starts empty, and the next
    /// publishes may start below the last index, as a new leader that lags
    /// behind the old one serves older entries first. The history keeps
    /// only frames above its last one, so re-published frames appear once.
    pub fn restart(&self) {
        {
            let mut state = lock(&self.inner.state);
            state.buffer = Buffer::new(self.inner.buffer_size);
            state.last_index = None;
        }
        self.inner.restarts.send_modify(|n| *n += 1);
    }

    /// Another cluster now answers at this address: a new identity, an
    /// empty buffer, a history that starts over (indexes may begin at 1
    /// again), the initial namespaces only, no objects in the lists, and
    /// every open stream ended.
    pub fn become_another_cluster(&self) {
        *lock(&self.inner.membership) = Membership::new();
        *lock(&self.inner.objects) = Default::default();
        lock(&self.inner.namespaces).reset();
        {
            let mut state = lock(&self.inner.state);
            state.buffer = Buffer::new(self.inner.buffer_size);
            state.last_index = None;
            state.history.clear();
        }
        self.inner.namespace_updates.send_modify(|n| *n += 1);
        self.inner.restarts.send_modify(|n| *n += 1);
    }
}

/// `GET /v1/agent/members`: the servers of the gossip pool, with the tags
/// Nomad's servers carry (`role`, `region`, `dc`, `id`, …).
pub(crate) async fn members(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !authorized(&inner, &headers) {
        return text(StatusCode::FORBIDDEN, "Permission denied");
    }
    let membership = lock(&inner.membership);
    if membership.denied {
        return text(StatusCode::FORBIDDEN, "Permission denied");
    }
    let region = &membership.region;
    let members: Vec<serde_json::Value> = membership
        .servers
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({
                "Name": format!("server-{i}.{region}"),
                "Addr": "127.0.0.1",
                "Port": 4648 + i,
                "Tags": {
                    "build": "1.11.3", "dc": "dc1", "expect": "3", "id": id, "port": "4647",
                    "raft_vsn": "3", "region": region, "role": "nomad", "rpc_addr": "127.0.0.1",
                },
                "Status": "alive",
                "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
            })
        })
        .collect();
    let body = serde_json::json!({
        "ServerName": format!("server-0.{region}"),
        "ServerRegion": region,
        "ServerDC": "dc1",
        "Members": members,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
