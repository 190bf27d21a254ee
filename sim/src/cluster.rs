//! Which cluster the simulator is, and the signal that ends every stream
//! when it stops being the same agent: a restart or leader change (same
//! cluster) or another cluster at the same address (a new identity). The
//! handle empties the buffer and the other state alongside.
//!
//! Its identity is what `GET /v1/agent/members` shows: a region and the
//! node IDs of its servers, drawn at random for each simulator, so two
//! simulators are two clusters.

use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::sync::watch;

use super::acl::Acl;
use super::reply::{json, text};
use super::sync::lock;
use nomad_chronicle::nomad::ClusterIdentity;

/// How many servers a simulated cluster has.
const SERVERS: usize = 3;

/// The cluster's identity, and the signal that ends every stream when the
/// agent restarts.
pub(crate) struct Cluster {
    /// Who the cluster is and who may read that.
    membership: Mutex<Membership>,
    /// Bumped by a restart: every open stream ends.
    restarts: watch::Sender<u64>,
}

/// The simulated cluster's identity and who may read it.
#[derive(Debug)]
struct Membership {
    /// The region its servers report.
    region: String,
    /// Server node IDs, in member order.
    servers: Vec<String>,
    /// Whether `/v1/agent/members` is refused (a token without `node:read`).
    denied: bool,
}

impl Membership {
    /// A cluster of its own in region `global`.
    fn new() -> Membership {
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

impl Cluster {
    /// A cluster of its own, never restarted.
    pub(crate) fn new() -> Cluster {
        Cluster {
            membership: Mutex::new(Membership::new()),
            restarts: watch::Sender::new(0),
        }
    }

    /// The cluster identity `/v1/agent/members` reports.
    pub(crate) fn identity(&self) -> ClusterIdentity {
        let membership = lock(&self.membership);
        ClusterIdentity {
            region: membership.region.clone(),
            servers: membership.servers.iter().cloned().collect(),
        }
    }

    /// Refuses `/v1/agent/members`, or answers it again.
    pub(crate) fn set_members_denied(&self, denied: bool) {
        lock(&self.membership).denied = denied;
    }

    /// Another cluster at this address: a new identity.
    pub(crate) fn renew(&self) {
        *lock(&self.membership) = Membership::new();
    }

    /// Ends every open stream, as a restart or a leader change does.
    pub(crate) fn restart(&self) {
        self.restarts.send_modify(|n| *n += 1);
    }

    /// Tells a stream when the agent restarts.
    pub(crate) fn restarts(&self) -> watch::Receiver<u64> {
        self.restarts.subscribe()
    }

    /// `GET /v1/agent/members`: the servers of the gossip pool, with the
    /// tags Nomad's servers carry (`role`, `region`, `dc`, `id`, …).
    pub(crate) fn members(&self, acl: &Acl, headers: &HeaderMap) -> Response {
        if !acl.authorizes(headers) {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
        let membership = lock(&self.membership);
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
        json(body.to_string())
    }
}
