//! Whose history a frame belongs to: a server behind the archive (the same
//! cluster, restarted or restored, or one that cannot be told from it),
//! another cluster at the same address, and the agent's identity to record.

use super::{Decision, Notice, Resume, new_gap};
use crate::archive::GapKind;
use crate::ingest::behind::{Behind, Foreign, ServerIdentity, Verdict, far_behind};

impl Resume {
    /// A frame below the resume point: skipped; on a connection's first
    /// frame, checked for another cluster, or reported once per episode as
    /// a server behind the archive.
    pub(super) fn before_resume(&mut self, index: u64, resume: u64, first: bool) -> Decision {
        let mut decision = Decision {
            store: false,
            gap: None,
            notice: None,
        };
        if first {
            // Every connection is checked, even within an episode already
            // reported: the agent behind the address may have changed since.
            if let Some(foreign) = self.foreign(index) {
                decision.notice = Some(Notice::Foreign(Box::new(foreign)));
            } else if !self.behind_reported {
                self.behind_reported = true;
                decision = self.behind(index, resume);
            }
        }
        self.prev = Some(index);
        decision
    }

    /// The server's identity, once per connection, with its first stored
    /// frame; from then on it is the archive's.
    pub(super) fn identity_to_record(&mut self) -> Option<Notice> {
        if !std::mem::take(&mut self.identity_pending) {
            return None;
        }
        let Some(ServerIdentity::Known(identity)) = &self.server else {
            return None;
        };
        if self.archived.as_ref() == Some(identity) {
            return None;
        }
        let replaces = self
            .archived
            .take()
            .filter(|archived| !archived.same_cluster(identity));
        self.archived = Some(identity.clone());
        Some(Notice::Identity {
            identity: identity.clone(),
            replaces,
        })
    }

    /// The first frame of a connection is behind the resume point: is it
    /// another cluster? Only when the archive has history, the server's is
    /// far behind it, and the identities do not say it is the same cluster.
    fn foreign(&self, first: u64) -> Option<Foreign> {
        let checkpoint = self.high.filter(|c| far_behind(first, *c))?;
        let verdict = Verdict::of(self.archived.as_ref(), self.server.as_ref());
        (verdict != Verdict::Same).then_some(Foreign {
            first,
            checkpoint,
            verdict,
        })
    }

    /// The first frame of a connection is behind the resume point, and it is
    /// the same cluster (or cannot be told from it): its frames up to the
    /// resume point are skipped; a gap is recorded when the identities
    /// cannot vouch for them.
    fn behind(&self, first: u64, resume: u64) -> Decision {
        let verdict = Verdict::of(self.archived.as_ref(), self.server.as_ref());
        let gap = (verdict != Verdict::Same).then(|| {
            new_gap(
                first,
                resume,
                GapKind::ServerBehind,
                format!(
                    "the server's history was behind the archive (its stream resumed at index {first}, \
                     the archive's checkpoint was {resume}) and its cluster could not be confirmed as the \
                     archived one, so the frames it sent up to the checkpoint were skipped unchecked"
                ),
            )
        });
        Decision {
            store: false,
            gap,
            notice: Some(Notice::Behind(Behind {
                first,
                resume,
                verdict,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    //! What [`Resume`] decides about servers behind the archive, other
    //! clusters and identities to record.

    use super::*;
    use crate::ingest::resume::Mode;
    use crate::nomad::ClusterIdentity;

    fn summary(d: &Decision) -> (bool, Option<(u64, u64, GapKind)>) {
        (
            d.store,
            d.gap.as_ref().map(|g| (g.from_index, g.to_index, g.kind)),
        )
    }

    fn id(servers: &[&str]) -> ClusterIdentity {
        ClusterIdentity {
            region: "global".to_owned(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A follower at checkpoint 100 of the cluster with servers `s1`, `s2`,
    /// connected to an agent that reports `server`.
    fn following(server: ServerIdentity) -> Resume {
        let mut r = Resume::new(Mode::Follow, Some(100), None)
            .with_archived_identity(Some(id(&["s1", "s2"])));
        r.set_server_identity(server);
        r
    }

    fn behind_verdict(d: &Decision) -> Option<&Verdict> {
        match &d.notice {
            Some(Notice::Behind(b)) => Some(&b.verdict),
            _ => None,
        }
    }

    #[test]
    fn the_same_cluster_behind_the_archive_is_reported_once_and_its_old_frames_skipped() {
        let mut r = following(ServerIdentity::Known(id(&["s2", "s3"])));
        let d = r.frame(80);
        assert_eq!(summary(&d), (false, None), "nothing is missing: no gap");
        assert_eq!(behind_verdict(&d), Some(&Verdict::Same));
        assert_eq!(
            r.frame(90),
            Decision {
                store: false,
                gap: None,
                notice: None
            }
        );
        for _ in 0..3 {
            r.connected();
            assert_eq!(
                r.frame(85),
                Decision {
                    store: false,
                    gap: None,
                    notice: None
                },
                "a reconnect storm is the same episode: reported once"
            );
        }
        assert_eq!(
            summary(&r.frame(100)),
            (true, None),
            "the checkpoint is a resend"
        );
        assert_eq!(summary(&r.frame(101)), (true, None));
        r.connected();
        assert!(
            behind_verdict(&r.frame(95)).is_some(),
            "a new episode is reported again"
        );
    }

    #[test]
    fn a_server_behind_that_cannot_be_identified_gets_a_server_behind_gap_once() {
        let mut r = following(ServerIdentity::Unknown("denied".to_owned()));
        let d = r.frame(60);
        assert_eq!(summary(&d), (false, Some((60, 100, GapKind::ServerBehind))));
        assert_eq!(
            behind_verdict(&d),
            Some(&Verdict::Unknown("denied".to_owned()))
        );
        r.connected();
        assert_eq!(summary(&r.frame(70)), (false, None), "reported once");
        assert_eq!(summary(&r.frame(101)), (true, None));
    }

    #[test]
    fn a_server_far_behind_is_another_cluster_unless_its_identity_matches() {
        let mut r = following(ServerIdentity::Known(id(&["x9"])));
        let d = r.frame(12);
        assert!(!d.store);
        assert_eq!(
            d.notice,
            Some(Notice::Foreign(Box::new(Foreign {
                first: 12,
                checkpoint: 100,
                verdict: Verdict::Different {
                    archived: id(&["s1", "s2"]),
                    server: id(&["x9"])
                }
            })))
        );
        let mut r = following(ServerIdentity::Unknown("denied".to_owned()));
        assert!(
            matches!(r.frame(12).notice, Some(Notice::Foreign(_))),
            "without an identity the indexes alone decide"
        );
        let mut r = following(ServerIdentity::Known(id(&["s1"])));
        assert_eq!(behind_verdict(&r.frame(12)), Some(&Verdict::Same));
        let mut r = following(ServerIdentity::Known(id(&["x9"])));
        assert!(
            matches!(
                behind_verdict(&r.frame(60)),
                Some(Verdict::Different { .. })
            ),
            "another identity close behind is taken for replaced servers"
        );
    }

    #[test]
    fn another_cluster_is_caught_even_inside_an_episode_already_reported() {
        let mut r = following(ServerIdentity::Unknown("down".to_owned()));
        assert!(behind_verdict(&r.frame(70)).is_some());
        r.connected();
        r.set_server_identity(ServerIdentity::Known(id(&["x9"])));
        assert!(matches!(r.frame(12).notice, Some(Notice::Foreign(_))));
    }

    #[test]
    fn a_from_index_beyond_the_servers_history_is_skipped_to_not_refused() {
        let mut r = Resume::new(Mode::Follow, None, Some(500));
        r.set_server_identity(ServerIdentity::Known(id(&["s1"])));
        assert_eq!(
            summary(&r.frame(40)),
            (false, Some((40, 500, GapKind::ServerBehind))),
            "an empty archive has no history to protect"
        );
    }

    #[test]
    fn the_servers_identity_is_recorded_with_the_first_stored_frame_of_a_connection() {
        let mut r = following(ServerIdentity::Known(id(&["s2", "s3"])));
        assert_eq!(
            r.frame(101).notice,
            Some(Notice::Identity {
                identity: id(&["s2", "s3"]),
                replaces: None
            }),
            "a replaced server changes the recorded set, silently"
        );
        assert_eq!(r.frame(102).notice, None);
        r.connected();
        r.set_server_identity(ServerIdentity::Known(id(&["s2", "s3"])));
        assert_eq!(r.frame(102).notice, None, "unchanged: nothing to record");
        r.connected();
        r.set_server_identity(ServerIdentity::Known(id(&["x9"])));
        assert_eq!(
            r.frame(150).notice,
            Some(Notice::Identity {
                identity: id(&["x9"]),
                replaces: Some(id(&["s2", "s3"]))
            })
        );
        r.connected();
        r.set_server_identity(ServerIdentity::Unknown("down".to_owned()));
        assert_eq!(r.frame(151).notice, None);
    }
}
