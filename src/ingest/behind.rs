//! A server whose history is behind the archive: the same cluster after a
//! restart or a leader change (skip what is already archived, carry on), or
//! another cluster at the same address (refuse to mix the two histories).
//!
//! The first frame of a subscription made at the checkpoint is the server's
//! newest entry when the checkpoint is newer than anything it holds, so
//! "behind" says how far the server's history reaches. Two facts decide:
//! - how far behind: a lagging server or a new leader trails by a few
//!   entries; a cluster whose whole history is less than half the archive's
//!   ([`far_behind`]) is not the one archived, unless its identity says so;
//! - the identity ([`ClusterIdentity`]) recorded with the checkpoint against
//!   the one the agent reports now. When either is missing, the index alone
//!   decides, and every message says so.

use std::fmt;

use crate::nomad::ClusterIdentity;

/// What is known of the cluster of the agent on the current connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerIdentity {
    Known(ClusterIdentity),
    /// It could not be read; the reason, for messages.
    Unknown(String),
}

/// The archive's recorded identity held against the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both are known and name the same cluster.
    Same,
    /// Both are known and name different clusters.
    Different {
        archived: ClusterIdentity,
        server: ClusterIdentity,
    },
    /// One of them is missing; why, in words.
    Unknown(String),
}

impl Verdict {
    /// Compares what the archive recorded with what the server reports.
    pub fn of(archived: Option<&ClusterIdentity>, server: Option<&ServerIdentity>) -> Verdict {
        match (archived, server) {
            (_, None) => Verdict::Unknown("the agent's cluster identity was not read".to_owned()),
            (_, Some(ServerIdentity::Unknown(why))) => Verdict::Unknown(why.clone()),
            (None, Some(ServerIdentity::Known(_))) => Verdict::Unknown(
                "the archive has no identity recorded for this cluster yet".to_owned(),
            ),
            (Some(archived), Some(ServerIdentity::Known(server))) => {
                if archived.same_cluster(server) {
                    Verdict::Same
                } else {
                    Verdict::Different {
                        archived: archived.clone(),
                        server: server.clone(),
                    }
                }
            }
        }
    }
}

/// Whether a server whose stream starts at `first` is too far behind the
/// archive's `checkpoint` to be a restarted server or a new leader of the
/// same cluster: its history is less than half as long.
pub fn far_behind(first: u64, checkpoint: u64) -> bool {
    first.saturating_mul(2) < checkpoint
}

/// The same cluster, or one that cannot be told apart from it, behind the
/// archive: frames up to the resume point are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behind {
    /// The index of the server's first frame.
    pub first: u64,
    /// Where the archive's history stands (the resume point).
    pub resume: u64,
    pub verdict: Verdict,
}

impl fmt::Display for Behind {
    /// One line for the log, saying what is done about it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's history ends before the archive's: its stream resumed at index {}, \
             behind the checkpoint {}; frames up to the checkpoint are skipped as already archived",
            self.first, self.resume
        )?;
        match &self.verdict {
            Verdict::Same => write!(
                f,
                " (the same cluster: a restarted server or a leader change)"
            ),
            Verdict::Different { archived, server } => write!(
                f,
                " (its identity, {server}, differs from the recorded {archived}, but its history is \
                 too close to the archive's to be another cluster's: taken for the same cluster with \
                 its servers replaced; a gap is recorded)"
            ),
            Verdict::Unknown(why) => write!(
                f,
                " (the cluster could not be identified: {why}; a gap is recorded, as the skipped \
                 frames may differ from what the archive holds)"
            ),
        }
    }
}

/// Another cluster at the archived cluster's address: nothing is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// The index of the server's first frame.
    pub first: u64,
    /// The archive's checkpoint.
    pub checkpoint: u64,
    /// Known and different, or unknown (then the indexes alone decided).
    pub verdict: Verdict,
}

/// [`Foreign`] with what a message needs around it: the label and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCluster {
    /// The archive's label for the cluster (`--cluster`).
    pub label: String,
    /// The agent's address, as the user gave it.
    pub address: String,
    pub foreign: Foreign,
}

impl fmt::Display for ForeignCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Foreign {
            first,
            checkpoint,
            verdict,
        } = &self.foreign;
        let label = &self.label;
        write!(
            f,
            "Nomad at `{}` is not the cluster archived as `{label}`: its stream starts at index {first}, \
             far behind the archive's checkpoint {checkpoint}, ",
            self.address
        )?;
        match verdict {
            Verdict::Different { archived, server } => write!(
                f,
                "and it reports {server} where the archive recorded {archived}; nothing from it \
                 was stored (hint: to archive that cluster, give it a label of its own: \
                 --cluster <new label>)"
            ),
            Verdict::Same | Verdict::Unknown(_) => {
                let why = match verdict {
                    Verdict::Unknown(why) => why.as_str(),
                    _ => "",
                };
                write!(
                    f,
                    "and its identity could not be checked ({why}), so the indexes alone decide; \
                     nothing from it was stored (hint: to archive that cluster, give it a label of \
                     its own: --cluster <new label>; with `node:read` on the token ingest can tell \
                     clusters apart by identity)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(servers: &[&str]) -> ClusterIdentity {
        ClusterIdentity {
            region: "global".to_owned(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn far_behind_means_less_than_half_the_archives_history() {
        assert!(far_behind(40, 100));
        assert!(!far_behind(50, 100));
        assert!(!far_behind(95, 100));
        assert!(far_behind(0, 1));
    }

    #[test]
    fn the_verdict_needs_both_identities() {
        let known = ServerIdentity::Known(id(&["a", "b"]));
        assert_eq!(
            Verdict::of(Some(&id(&["b", "c"])), Some(&known)),
            Verdict::Same
        );
        assert_eq!(
            Verdict::of(Some(&id(&["z"])), Some(&known)),
            Verdict::Different {
                archived: id(&["z"]),
                server: id(&["a", "b"])
            }
        );
        assert!(matches!(
            Verdict::of(None, Some(&known)),
            Verdict::Unknown(_)
        ));
        let denied = ServerIdentity::Unknown("denied".to_owned());
        assert_eq!(
            Verdict::of(Some(&id(&["a"])), Some(&denied)),
            Verdict::Unknown("denied".to_owned())
        );
    }

    #[test]
    fn the_refusal_names_label_both_identities_and_the_fix() {
        let refusal = ForeignCluster {
            label: "prod".to_owned(),
            address: "http://nomad:4646".to_owned(),
            foreign: Foreign {
                first: 12,
                checkpoint: 9000,
                verdict: Verdict::Different {
                    archived: id(&["aaaaaaaa-1"]),
                    server: id(&["bbbbbbbb-2"]),
                },
            },
        };
        assert_eq!(
            refusal.to_string(),
            "Nomad at `http://nomad:4646` is not the cluster archived as `prod`: its stream starts at \
             index 12, far behind the archive's checkpoint 9000, and it reports region `global`, \
             servers `bbbbbbbb` where the archive recorded region `global`, servers `aaaaaaaa`; \
             nothing from it was stored (hint: to archive that cluster, give it a label of its own: \
             --cluster <new label>)"
        );
    }
}
