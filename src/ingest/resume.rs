//! Where the archive's history stands, and what each arriving frame means for
//! it: store it, skip it as already archived, or record a gap first.
//!
//! Nomad's `index` parameter is inclusive and its buffer is small (see
//! ../shared/nomad-event-stream.md, "The buffer"), so the first frame of every
//! connection tells whether the history is continuous:
//! - its Index equals the resume point: continuous; the frame is a resend,
//!   stored again idempotently (a wider filter may add events to it);
//! - it is greater: the resume point had left the buffer; events between may
//!   be lost, and a gap is recorded;
//! - it is smaller: the server's history is behind the archive; that is
//!   recorded once, and frames up to the resume point are skipped.
//!
//! When Nomad ends a stream with `event dropped from buffer`, this reader's
//! place left the buffer, and [`Resume::lost`] marks it. The next
//! connection's first frame still decides: a gap is recorded from the last
//! index handed on to that frame, unless the frame *is* the resume point —
//! then Nomad still held it and everything after it, and claiming a gap
//! would be false.

use crate::store::{Gap, GapKind, now_millis};

/// How frames at or below the archive's end are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live ingest: frames below the resume point are skipped.
    Follow,
    /// Import of a capture: every frame is stored (the store skips events it
    /// already has), so an older capture can fill in history.
    Backfill,
}

/// What to do with a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub store: bool,
    /// A gap to record before the frame, in the same transaction.
    pub gap: Option<Gap>,
}

/// The resume state of one cluster's history.
#[derive(Debug, Clone)]
pub struct Resume {
    mode: Mode,
    /// Highest index handed to the writer (or found stored at start).
    high: Option<u64>,
    /// `--from-index` on an empty archive: where the user asked to begin.
    requested: Option<u64>,
    /// The previous frame on this connection, for malformed-line gaps.
    prev: Option<u64>,
    /// Set by `connected`, cleared by the first frame after it.
    fresh: bool,
    /// A malformed line was skipped since the last frame.
    malformed: bool,
    /// The server-behind condition was already recorded.
    behind_reported: bool,
    /// Nomad dropped this reader from its buffer since the last frame.
    lost: bool,
}

impl Resume {
    /// `checkpoint` is the archive's last stored index; `requested` the
    /// `--from-index` to use when the archive is empty (or overridden).
    pub fn new(mode: Mode, checkpoint: Option<u64>, requested: Option<u64>) -> Self {
        Resume {
            mode,
            high: checkpoint,
            requested,
            prev: None,
            fresh: true,
            malformed: false,
            behind_reported: false,
            lost: false,
        }
    }

    /// The `index` to subscribe with.
    pub fn resume_index(&self) -> u64 {
        self.high.or(self.requested).unwrap_or(0)
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

    /// Nomad said `event dropped from buffer`: events after the last one
    /// handed on may be lost; the next connection's first frame tells.
    pub fn lost(&mut self) {
        self.lost = true;
    }

    /// A line could not be parsed: whatever it held is missing.
    pub fn malformed(&mut self) {
        self.malformed = true;
    }

    /// Decides about a frame with this index.
    pub fn frame(&mut self, index: u64) -> Decision {
        let first = std::mem::take(&mut self.fresh);
        let lost = first && std::mem::take(&mut self.lost);
        let mut gap = None;
        if self.mode == Mode::Follow {
            let resume = self.high.or(self.requested);
            if let Some(resume) = resume {
                if index < resume {
                    if first && index < resume && !self.behind_reported {
                        self.behind_reported = true;
                        gap = Some(new_gap(
                            index,
                            resume,
                            GapKind::ServerBehind,
                            format!(
                                "the server's history starts at index {index}, behind the archive's {resume}: \
                                 a restored snapshot, a restarted dev agent or another cluster at the same address"
                            ),
                        ));
                    }
                    self.prev = Some(index);
                    return Decision { store: false, gap };
                }
                if first && index > resume && (self.high.is_some() || resume > 0) {
                    // A requested start is not stored itself, so the gap
                    // covers it: from the index before it.
                    let from = if self.high.is_some() {
                        resume
                    } else {
                        resume - 1
                    };
                    let reason = if lost {
                        format!(
                            "Nomad dropped this reader from its event buffer (`event dropped from buffer`) \
                             after index {resume}; the stream resumed at {index}"
                        )
                    } else {
                        format!(
                            "index {resume} was no longer in Nomad's event buffer; the stream resumed at {index}"
                        )
                    };
                    gap = Some(new_gap(from, index, GapKind::Buffer, reason));
                }
            }
        } else if first {
            if let Some(high) = self.high.filter(|h| index > *h) {
                gap = Some(new_gap(
                    high,
                    index,
                    GapKind::Buffer,
                    format!(
                        "the capture begins at index {index}, after the archive's last index {high}"
                    ),
                ));
            }
        }
        if std::mem::take(&mut self.malformed) && gap.is_none() {
            if let Some(prev) = self.prev.or(self.high).filter(|p| index > *p) {
                gap = Some(new_gap(
                    prev,
                    index,
                    GapKind::Malformed,
                    "a malformed line was skipped; the events it held are missing".to_owned(),
                ));
            }
        }
        self.prev = Some(index);
        self.high = Some(self.high.map_or(index, |h| h.max(index)));
        self.behind_reported = false;
        Decision { store: true, gap }
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
    fn a_server_behind_the_archive_is_recorded_once_and_old_frames_skipped() {
        let mut r = Resume::new(Mode::Follow, Some(100), None);
        assert_eq!(
            summary(&r.frame(40)),
            (false, Some((40, 100, GapKind::ServerBehind)))
        );
        assert_eq!(summary(&r.frame(60)), (false, None));
        r.connected();
        assert_eq!(summary(&r.frame(60)), (false, None), "reported once");
        assert_eq!(summary(&r.frame(101)), (true, None));
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
}
