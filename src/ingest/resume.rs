//! Where the archive's history stands, and what each arriving frame means for
//! it: store it, skip it as already archived, record a gap first, or refuse
//! it as another cluster's.
//!
//! Nomad's `index` parameter is inclusive and its buffer is small (see
//! ../shared/nomad-event-stream.md, "The buffer"), so the first frame of every
//! connection tells whether the history is continuous:
//! - its Index equals the resume point: continuous; the frame is a resend,
//!   stored again idempotently (a wider filter may add events to it);
//! - it is greater: the resume point had left the buffer; events between may
//!   be lost, and a gap is recorded;
//! - it is smaller: the server's history is behind the archive; [`behind`]
//!   decides between the same cluster (frames up to the resume point are
//!   skipped, and it is reported once per episode, however many reconnects
//!   it lasts) and another cluster (refused, nothing stored).
//!
//! When Nomad ends a stream with `event dropped from buffer`, this reader's
//! place left the buffer, and [`Resume::lost`] marks it. The next
//! connection's first frame still decides: a gap is recorded from the last
//! index handed on to that frame, unless the frame *is* the resume point —
//! then Nomad still held it and everything after it, and claiming a gap
//! would be false.
//!
//! A namespace created after a `namespace=*` subscription started is not
//! covered by it, and its first events may already have gone by when the
//! watch reports it; [`Resume::rewind`] moves the resume point back to the
//! last frame handed on before the namespace existed, so the next
//! subscription re-reads from there (resends are stored idempotently).
//!
//! What a frame below the resume point means, and which identity to
//! record, is decided in [`cluster`].
//!
//! [`behind`]: super::behind

pub mod capture;
mod cluster;

use std::collections::VecDeque;

use super::behind::{Behind, Foreign, ServerIdentity};
use crate::archive::{Gap, GapKind, now_millis};
use crate::nomad::ClusterIdentity;

/// Frame indexes remembered for [`Resume::rewind`]; Nomad's buffer holds 100
/// entries by default, so anything older is gone from it anyway.
const RECENT_FRAMES: usize = 4096;

/// How frames at or below the archive's end are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live ingest: frames below the resume point are skipped.
    Follow,
    /// Import of a capture: every frame is stored (the store skips events it
    /// already has), so an older capture can fill in history.
    Backfill,
}

/// Something the reader must act on besides storing or skipping.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The server is behind the archive (reported once per episode).
    Behind(Behind),
    /// The server is another cluster: stop, store nothing.
    Foreign(Box<Foreign>),
    /// Record this identity with the frame, in the same batch; `replaces` is
    /// the recorded identity of a different cluster it takes over from.
    Identity {
        identity: ClusterIdentity,
        replaces: Option<ClusterIdentity>,
    },
}

/// What to do with a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub store: bool,
    /// A gap to record before the frame, in the same transaction.
    pub gap: Option<Gap>,
    pub notice: Option<Notice>,
}

/// The resume state of one cluster's history.
#[derive(Debug, Clone)]
pub struct Resume {
    mode: Mode,
    /// Highest index handed to the writer (or found stored at start).
    high: Option<u64>,
    /// The last frame handed on in stream order: the resume point. Equal to
    /// `high`, except after a rewind until the stream has caught up.
    at: Option<u64>,
    /// `--from-index` on an empty archive, or with `--override-checkpoint`:
    /// where the user asked to begin.
    requested: Option<u64>,
    /// The checkpoint `--override-checkpoint` started away from: the first
    /// frame stored past it records the stretch between as skipped.
    skipped_from: Option<u64>,
    /// The previous frame on this connection, for malformed-line gaps.
    prev: Option<u64>,
    /// Set by `connected`, cleared by the first frame after it.
    fresh: bool,
    /// A malformed line was skipped since the last frame.
    malformed: bool,
    /// The server-behind condition was already reported.
    behind_reported: bool,
    /// Nomad dropped this reader from its buffer since the last frame.
    lost: bool,
    /// The resume point was moved back for a new namespace since the last frame.
    rewound: bool,
    /// The indexes of the last frames handed on, oldest first.
    recent: VecDeque<u64>,
    /// Backfill: the stretches of stream stored whole, as closed index
    /// ranges from one frame to the last frame continuous with it.
    covered: Vec<(u64, u64)>,
    /// The identity of the cluster whose history the archive holds.
    archived: Option<ClusterIdentity>,
    /// The identity of the agent on the current connection, once asked.
    server: Option<ServerIdentity>,
    /// The server's identity is to be recorded with the next stored frame.
    identity_pending: bool,
}

impl Resume {
    /// `checkpoint` is the archive's last stored index; `requested` the
    /// `--from-index` to start at. Given both (`--override-checkpoint`),
    /// following starts at `requested`, and the first frame stored past
    /// the checkpoint records what lies between as a [`GapKind::Skipped`]
    /// gap.
    pub fn new(mode: Mode, checkpoint: Option<u64>, requested: Option<u64>) -> Self {
        let overridden = mode == Mode::Follow && requested.is_some();
        let (checkpoint, skipped_from) = match overridden {
            true => (None, checkpoint),
            false => (checkpoint, None),
        };
        Resume {
            mode,
            high: checkpoint,
            at: checkpoint,
            requested,
            skipped_from,
            prev: None,
            fresh: true,
            malformed: false,
            behind_reported: false,
            lost: false,
            rewound: false,
            recent: VecDeque::new(),
            covered: Vec::new(),
            archived: None,
            server: None,
            identity_pending: false,
        }
    }

    /// The identity recorded with the checkpoint.
    pub fn with_archived_identity(mut self, identity: Option<ClusterIdentity>) -> Self {
        self.archived = identity;
        self
    }

    /// The `index` to subscribe with.
    pub fn resume_index(&self) -> u64 {
        self.at.or(self.requested).unwrap_or(0)
    }

    /// The highest index handed on so far.
    pub fn high(&self) -> Option<u64> {
        self.high
    }

    /// A new connection starts: its first frame is checked for continuity.
    pub fn connected(&mut self) {
        self.fresh = true;
        self.prev = None;
    }

    /// What the agent about to be subscribed to says about its cluster.
    pub fn set_server_identity(&mut self, identity: ServerIdentity) {
        self.identity_pending = matches!(identity, ServerIdentity::Known(_));
        self.server = Some(identity);
    }

    /// Nomad said `event dropped from buffer`: events after the last one
    /// handed on may be lost; the next connection's first frame tells.
    pub fn lost(&mut self) {
        self.lost = true;
    }

    /// A line could not be parsed: whatever it held is missing.
    pub fn malformed(&mut self) {
        self.malformed = true;
    }

    /// A namespace created at `index` was not covered by the subscription:
    /// moves the resume point back to the last frame handed on at or before
    /// it, and returns the new resume point if it moved. Nomad resends that
    /// frame, which proves the new subscription continuous from there.
    pub fn rewind(&mut self, index: u64) -> Option<u64> {
        let at = self.at.filter(|at| *at > index)?;
        let to = self
            .recent
            .iter()
            .rev()
            .find(|i| **i <= index)
            .copied()
            .unwrap_or(index);
        self.at = Some(to.min(at));
        self.rewound = true;
        self.at
    }

    /// Decides about a frame with this index.
    pub fn frame(&mut self, index: u64) -> Decision {
        let first = std::mem::take(&mut self.fresh);
        let lost = first && std::mem::take(&mut self.lost);
        let rewound = first && std::mem::take(&mut self.rewound);
        let mut gap = None;
        if self.mode == Mode::Follow {
            if let Some(resume) = self.at.or(self.requested) {
                if index < resume {
                    return self.before_resume(index, resume, first);
                }
                if first {
                    gap = self.resumed_late(index, resume, lost, rewound);
                }
            }
        } else if first {
            gap = self.capture_starts_late(index);
        }
        if let Some(skipped) = self.skipped_gap(index) {
            gap = Some(skipped);
        }
        if std::mem::take(&mut self.malformed) && gap.is_none() {
            gap = self.malformed_gap(index);
        }
        self.cover(index, gap.is_some() || first);
        self.handed_on(index);
        Decision {
            store: true,
            gap,
            notice: self.identity_to_record(),
        }
    }

    /// The gap before the first frame of a connection when it comes after
    /// the resume point: Nomad's buffer no longer held it.
    fn resumed_late(&self, index: u64, resume: u64, lost: bool, rewound: bool) -> Option<Gap> {
        if index <= resume || (self.at.is_none() && resume == 0) {
            return None;
        }
        // A requested start is not stored itself, so the gap covers it:
        // from the index before it.
        let from = if self.at.is_some() {
            resume
        } else {
            resume - 1
        };
        let reason = if lost {
            format!(
                "Nomad dropped this reader from its event buffer (`event dropped from buffer`) \
                 after index {resume}; the stream resumed at {index}"
            )
        } else if rewound {
            format!(
                "the stream was re-read from index {resume} for a new namespace, but Nomad's \
                 event buffer no longer held it; the stream resumed at {index}, and the new \
                 namespace's events between may be missing"
            )
        } else {
            format!(
                "index {resume} was no longer in Nomad's event buffer; the stream resumed at {index}"
            )
        };
        Some(new_gap(from, index, GapKind::Buffer, reason))
    }

    /// The gap `--override-checkpoint` leaves before the first frame stored
    /// past the checkpoint it started away from; it takes in the gap a late
    /// first frame would record after the requested start.
    fn skipped_gap(&mut self, index: u64) -> Option<Gap> {
        let from = self.skipped_from.take()?;
        if index <= from.saturating_add(1) {
            return None;
        }
        let requested = self.requested.unwrap_or(index);
        let mut reason = format!(
            "ingest was started at index {requested} with --override-checkpoint while the \
             archive's checkpoint was {from}, so the events between were never read"
        );
        if index > requested {
            reason.push_str(&format!("; the stream resumed at {index}"));
        }
        Some(new_gap(from, index, GapKind::Skipped, reason))
    }

    /// The gap before a capture that begins after the archive's last index.
    fn capture_starts_late(&self, index: u64) -> Option<Gap> {
        let high = self.high.filter(|h| index > *h)?;
        Some(new_gap(
            high,
            index,
            GapKind::Buffer,
            format!("the capture begins at index {index}, after the archive's last index {high}"),
        ))
    }

    /// The gap a skipped malformed line leaves before this frame.
    fn malformed_gap(&self, index: u64) -> Option<Gap> {
        let prev = self.prev.or(self.at).filter(|p| index > *p)?;
        Some(new_gap(
            prev,
            index,
            GapKind::Malformed,
            "a malformed line was skipped; the events it held are missing".to_owned(),
        ))
    }

    /// The stretches of the capture stored whole so far (backfill only):
    /// gaps recorded before are narrowed by them once they are committed.
    pub fn covered(&self) -> &[(u64, u64)] {
        &self.covered
    }

    /// Extends the stretch the previous frame ended, or starts one at
    /// `index` after a break (the first frame, a gap, a step backwards).
    fn cover(&mut self, index: u64, broken: bool) {
        if self.mode != Mode::Backfill {
            return;
        }
        match self.covered.last_mut() {
            Some(last) if !broken && self.prev.is_some_and(|p| p == last.1 && index >= p) => {
                last.1 = index;
            }
            _ => self.covered.push((index, index)),
        }
    }

    /// Moves the resume point to a frame handed on to the writer.
    fn handed_on(&mut self, index: u64) {
        self.prev = Some(index);
        self.high = Some(self.high.map_or(index, |h| h.max(index)));
        self.at = match self.mode {
            Mode::Follow => Some(index),
            Mode::Backfill => self.high,
        };
        self.recent.push_back(index);
        if self.recent.len() > RECENT_FRAMES {
            self.recent.pop_front();
        }
        self.behind_reported = false;
    }
}

fn new_gap(from_index: u64, to_index: u64, kind: GapKind, reason: String) -> Gap {
    Gap {
        from_index,
        to_index,
        kind,
        reason,
        detected_at: now_millis(),
    }
}

#[cfg(test)]
mod tests {
    //! What [`Resume`] decides, frame by frame, about continuity, gaps and
    //! rewinds.

    use super::*;

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
    fn an_override_past_the_checkpoint_records_the_skipped_stretch_as_a_gap() {
        let mut r = Resume::new(Mode::Follow, Some(300), Some(800));
        assert_eq!(r.resume_index(), 800);
        let d = r.frame(800);
        assert_eq!(summary(&d), (true, Some((300, 800, GapKind::Skipped))));
        assert_eq!(
            d.gap.map(|g| g.reason),
            Some(
                "ingest was started at index 800 with --override-checkpoint while the archive's \
                 checkpoint was 300, so the events between were never read"
                    .to_owned()
            )
        );
        assert_eq!(summary(&r.frame(801)), (true, None));

        let mut r = Resume::new(Mode::Follow, Some(300), Some(800));
        let d = r.frame(850);
        assert_eq!(
            summary(&d),
            (true, Some((300, 850, GapKind::Skipped))),
            "one gap takes in the buffer's"
        );
        assert!(
            d.gap
                .is_some_and(|g| g.reason.ends_with("the stream resumed at 850"))
        );
    }

    #[test]
    fn an_override_back_behind_the_checkpoint_records_nothing() {
        let mut r = Resume::new(Mode::Follow, Some(300), Some(100));
        assert_eq!(r.resume_index(), 100);
        assert_eq!(summary(&r.frame(100)), (true, None));
        assert_eq!(summary(&r.frame(400)), (true, None));
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
    fn backfill_knows_the_stretches_it_stored_whole() {
        let mut r = Resume::new(Mode::Backfill, Some(100), None);
        for i in [20, 25, 30] {
            r.frame(i);
        }
        r.malformed();
        r.frame(40);
        r.frame(41);
        r.frame(10);
        r.frame(12);
        assert_eq!(r.covered(), [(20, 30), (40, 41), (10, 12)]);
        let mut r = Resume::new(Mode::Follow, Some(100), None);
        r.frame(100);
        assert!(r.covered().is_empty(), "only a backfill keeps them");
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
}
