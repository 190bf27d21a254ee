//! Which Nomad cluster an agent belongs to, so that a different cluster
//! answering at an archived cluster's address is told apart from the same
//! cluster after a restart or a leader change.
//!
//! Nomad keeps a cluster ID in its Raft state, but no HTTP endpoint of the
//! community edition returns it. What an ordinary token can read is the
//! server gossip pool, `GET /v1/agent/members` (ACL `node:read`, which an
//! archiver of the Node topic has anyway): every server's `id` tag is its
//! node ID, a UUID kept in its data directory for life (a `-dev` agent draws
//! a new one at every start, and its history starts over too). So a cluster
//! is named by its region and the node IDs of its servers, and two answers
//! name the same cluster when the regions match and they share a server:
//! restarts and leader changes keep every ID, and replacing servers one at a
//! time always leaves one in common with the last answer recorded.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::NomadClient;

/// How long reading the members may take before the identity is unknown.
const MEMBERS_LIMIT: Duration = Duration::from_secs(10);

/// A cluster as the archive records it: its region and its servers' node IDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// The region the agent serves (`global` unless configured).
    pub region: String,
    /// The node IDs of the region's servers, sorted.
    pub servers: BTreeSet<String>,
}

impl ClusterIdentity {
    /// Whether both name the same cluster: the same region and at least one
    /// server in common.
    pub fn same_cluster(&self, other: &ClusterIdentity) -> bool {
        self.region == other.region && !self.servers.is_disjoint(&other.servers)
    }

    /// The identity as stored in the archive (JSON).
    pub fn to_json(&self) -> String {
        // Strings only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An identity read back from the archive; `None` if it does not parse
    /// (a newer format), which counts as "not recorded".
    pub fn from_json(text: &str) -> Option<ClusterIdentity> {
        serde_json::from_str(text).ok()
    }

    /// Builds the identity from a `/v1/agent/members` answer: the servers of
    /// `region` (or of the answering server's own region).
    pub fn from_members(body: &[u8], region: Option<&str>) -> Result<ClusterIdentity, String> {
        let members: Members = serde_json::from_slice(body)
            .map_err(|e| format!("cannot read `GET /v1/agent/members`: {e}"))?;
        let region = region.map(str::to_owned).unwrap_or(members.server_region);
        let servers: BTreeSet<String> = members
            .members
            .into_iter()
            .filter(|m| m.tags.role.as_deref() == Some("nomad"))
            .filter(|m| m.tags.region.as_deref() == Some(region.as_str()))
            .filter_map(|m| m.tags.id.filter(|id| !id.is_empty()))
            .collect();
        if servers.is_empty() {
            return Err(format!(
                "`GET /v1/agent/members` names no server of region `{region}` with a node ID"
            ));
        }
        Ok(ClusterIdentity { region, servers })
    }
}

impl fmt::Display for ClusterIdentity {
    /// `region `global`, servers `1b2c3d4e`, `5f6a7b8c``: node IDs shortened
    /// to 8 characters, as the Nomad CLI shows IDs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "region `{}`, servers ", self.region)?;
        for (i, id) in self.servers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let short: String = id.chars().take(8).collect();
            write!(f, "`{short}`")?;
        }
        Ok(())
    }
}

/// Why the identity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The token may not read the members (it lacks `node:read`): asking
    /// again will not help.
    #[error("`GET /v1/agent/members` answered HTTP {status}: {body}")]
    Denied { status: u16, body: String },
    /// Anything else: the agent was unreachable, answered an error, or the
    /// answer named no server.
    #[error("{0}")]
    Unavailable(String),
}

/// The part of `/v1/agent/members` an identity is built from.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Members {
    #[serde(default)]
    server_region: String,
    #[serde(default)]
    members: Vec<Member>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Member {
    #[serde(default)]
    tags: Tags,
}

#[derive(Default, Deserialize)]
struct Tags {
    role: Option<String>,
    region: Option<String>,
    id: Option<String>,
}

impl NomadClient {
    /// Reads the identity of the cluster this agent belongs to from
    /// `GET /v1/agent/members`.
    pub async fn cluster_identity(&self) -> Result<ClusterIdentity, IdentityError> {
        let answer = self
            .get("/v1/agent/members", &[], MEMBERS_LIMIT)
            .await
            .map_err(IdentityError::Unavailable)?;
        let body = String::from_utf8_lossy(&answer.body);
        match answer.status {
            StatusCode::OK => ClusterIdentity::from_members(&answer.body, self.region())
                .map_err(IdentityError::Unavailable),
            status @ (StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED) => {
                Err(IdentityError::Denied {
                    status: status.as_u16(),
                    body: body.into_owned(),
                })
            }
            status => Err(IdentityError::Unavailable(format!(
                "`GET /v1/agent/members` answered HTTP {}: {body}",
                status.as_u16()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(region: &str, servers: &[&str]) -> ClusterIdentity {
        ClusterIdentity {
            region: region.to_owned(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_members_answer_names_the_regions_servers_by_node_id() {
        let body = br#"{"ServerName":"s1","ServerRegion":"global","ServerDC":"dc1","Members":[
            {"Name":"s1.global","Tags":{"role":"nomad","region":"global","id":"bbbb-2"},"Status":"alive"},
            {"Name":"s2.global","Tags":{"role":"nomad","region":"global","id":"aaaa-1"},"Status":"failed"},
            {"Name":"s9.europe","Tags":{"role":"nomad","region":"europe","id":"cccc-3"},"Status":"alive"},
            {"Name":"old","Tags":{"role":"nomad","region":"global"},"Status":"alive"},
            {"Name":"consul","Tags":{"role":"consul","region":"global","id":"dddd-4"}}
        ]}"#;
        assert_eq!(
            ClusterIdentity::from_members(body, None),
            Ok(identity("global", &["aaaa-1", "bbbb-2"]))
        );
        assert_eq!(
            ClusterIdentity::from_members(body, Some("europe")),
            Ok(identity("europe", &["cccc-3"])),
            "--region picks the servers of that region"
        );
        assert!(ClusterIdentity::from_members(body, Some("asia")).is_err());
        assert!(ClusterIdentity::from_members(b"<html>", None).is_err());
    }

    #[test]
    fn one_shared_server_in_the_same_region_is_the_same_cluster() {
        let a = identity("global", &["s1", "s2", "s3"]);
        assert!(a.same_cluster(&identity("global", &["s3", "s4", "s5"])));
        assert!(!a.same_cluster(&identity("global", &["s4"])));
        assert!(!a.same_cluster(&identity("europe", &["s1"])));
    }

    #[test]
    fn the_stored_form_round_trips_and_the_display_is_short() {
        let a = identity(
            "global",
            &[
                "5f2c9e1a-0b7d-4c3e-9a21-7d0e4b6c8f13",
                "0a1b2c3d-0000-0000-0000-000000000000",
            ],
        );
        assert_eq!(ClusterIdentity::from_json(&a.to_json()), Some(a.clone()));
        assert_eq!(ClusterIdentity::from_json("not json"), None);
        assert_eq!(
            a.to_string(),
            "region `global`, servers `0a1b2c3d`, `5f2c9e1a`"
        );
    }
}
