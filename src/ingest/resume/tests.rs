//! What [`Resume`] decides, frame by frame: continuity, gaps, servers behind
//! the archive, other clusters, identities to record and rewinds.

use super::*;
use crate::ingest::behind::{Foreign, ServerIdentity, Verdict};

fn summary(d: &Decision) -> (bool, Option<(u64, u64, GapKind)>) {
    (
        d.store,
        d.gap.as_ref().map(|g| (g.from_index, g.to_index, g.kind)),
    )
}

#[test]
fn empty_archive_stores_from_whatever_the_buffer_holds_without_a_gap() {
    let mut r = Resume::new(Mode::Follow, None, None);
    assert_eq!(r.resume_index(), 0);
    assert_eq!(summary(&r.frame(500)), (true, None));
    assert_eq!(
        summary(&r.frame(502)),
        (true, None),
        "raft indexes skip numbers"
    );
    assert_eq!(r.resume_index(), 502);
}

#[test]
fn the_resent_frame_at_the_checkpoint_is_continuity_not_a_gap() {
    let mut r = Resume::new(Mode::Follow, Some(100), None);
    assert_eq!(r.resume_index(), 100);
    assert_eq!(
        summary(&r.frame(100)),
        (true, None),
        "stored again, idempotently"
    );
    assert_eq!(summary(&r.frame(101)), (true, None));
}

#[test]
fn a_checkpoint_that_left_the_buffer_records_a_gap() {
    let mut r = Resume::new(Mode::Follow, Some(100), None);
    assert_eq!(
        summary(&r.frame(250)),
        (true, Some((100, 250, GapKind::Buffer)))
    );
    r.connected();
    assert_eq!(summary(&r.frame(250)), (true, None));
    assert_eq!(summary(&r.frame(260)), (true, None));
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
    let mut r =
        Resume::new(Mode::Follow, Some(100), None).with_archived_identity(Some(id(&["s1", "s2"])));
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

#[test]
fn a_rewind_for_a_new_namespace_rereads_from_the_last_frame_before_it() {
    let mut r = Resume::new(Mode::Follow, None, None);
    for i in [10, 12, 15, 20] {
        r.frame(i);
    }
    assert_eq!(
        r.rewind(25),
        None,
        "created after everything read: no rewind"
    );
    assert_eq!(r.rewind(14), Some(12));
    assert_eq!(r.resume_index(), 12);
    assert_eq!(r.high(), Some(20), "the high-water mark stays");
    r.connected();
    assert_eq!(
        summary(&r.frame(12)),
        (true, None),
        "the resend proves continuity"
    );
    assert_eq!(
        summary(&r.frame(13)),
        (true, None),
        "the new namespace's event"
    );
    assert_eq!(
        summary(&r.frame(15)),
        (true, None),
        "read again, stored idempotently"
    );
    assert_eq!(r.resume_index(), 15);

    let mut r = Resume::new(Mode::Follow, None, None);
    r.frame(10);
    r.frame(20);
    r.rewind(14);
    r.connected();
    let d = r.frame(18);
    assert_eq!(summary(&d), (true, Some((10, 18, GapKind::Buffer))));
    assert!(d.gap.is_some_and(|g| g.reason.contains("new namespace")));
}

#[test]
fn from_index_on_an_empty_archive_is_inclusive_and_checked() {
    let mut r = Resume::new(Mode::Follow, None, Some(50));
    assert_eq!(r.resume_index(), 50);
    assert_eq!(
        summary(&r.frame(50)),
        (true, None),
        "the requested index itself is stored"
    );
    let mut r = Resume::new(Mode::Follow, None, Some(50));
    assert_eq!(
        summary(&r.frame(80)),
        (true, Some((49, 80, GapKind::Buffer))),
        "the requested index itself is missing too"
    );
}

#[test]
fn a_reader_dropped_from_the_buffer_gets_a_gap_unless_nomad_still_held_its_place() {
    let mut r = Resume::new(Mode::Follow, None, None);
    r.frame(10);
    r.frame(12);
    r.lost();
    r.connected();
    let d = r.frame(40);
    assert_eq!(summary(&d), (true, Some((12, 40, GapKind::Buffer))));
    assert!(
        d.gap
            .is_some_and(|g| g.reason.contains("event dropped from buffer")),
        "the gap says why"
    );
    assert_eq!(summary(&r.frame(41)), (true, None));

    let mut r = Resume::new(Mode::Follow, Some(12), None);
    r.lost();
    r.connected();
    assert_eq!(
        summary(&r.frame(12)),
        (true, None),
        "the resume point itself came back: nothing was lost"
    );
    r.connected();
    assert!(
        r.frame(50)
            .gap
            .is_some_and(|g| !g.reason.contains("dropped")),
        "the mark is spent on the first frame after it"
    );
}

#[test]
fn a_malformed_line_between_frames_is_a_gap() {
    let mut r = Resume::new(Mode::Follow, None, None);
    r.frame(10);
    r.malformed();
    assert_eq!(
        summary(&r.frame(12)),
        (true, Some((10, 12, GapKind::Malformed)))
    );
    assert_eq!(summary(&r.frame(13)), (true, None));
}

#[test]
fn backfill_stores_old_frames_and_flags_a_capture_that_starts_late() {
    let mut r = Resume::new(Mode::Backfill, Some(100), None);
    assert_eq!(summary(&r.frame(20)), (true, None));
    assert_eq!(summary(&r.frame(100)), (true, None));
    assert_eq!(r.high(), Some(100));
    let mut r = Resume::new(Mode::Backfill, Some(100), None);
    assert_eq!(
        summary(&r.frame(150)),
        (true, Some((100, 150, GapKind::Buffer)))
    );
}
