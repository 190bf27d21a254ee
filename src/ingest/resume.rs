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
//! [`behind`]: super::behind

use std::collections::VecDeque;

use super::behind::{Behind, Foreign, ServerIdentity, Verdict, far_behind};
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
    /// `--from-index` on an empty archive: where the user asked to begin.
    requested: Option<u64>,
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
    /// The identity of the cluster whose history the archive holds.
    archived: Option<ClusterIdentity>,
    /// The identity of the agent on the current connection, once asked.
    server: Option<ServerIdentity>,
    /// The server's identity is to be recorded with the next stored frame.
    identity_pending: bool,
}

impl Resume {
    /// `checkpoint` is the archive's last stored index; `requested` the
    /// `--from-index` to use when the archive is empty (or overridden).
    pub fn new(mode: Mode, checkpoint: Option<u64>, requested: Option<u64>) -> Self {
        Resume {
            mode,
            high: checkpoint,
            at: checkpoint,
            requested,
            prev: None,
            fresh: true,
            malformed: false,
            behind_reported: false,
            lost: false,
            rewound: false,
            recent: VecDeque::new(),
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
            let resume = self.at.or(self.requested);
            if let Some(resume) = resume {
                if index < resume {
                    let mut decision = Decision {
                        store: false,
                        gap: None,
                        notice: None,
                    };
                    if first {
                        // Every connection is checked, even within an episode
                        // already reported: the agent behind the address may
                        // have changed since.
                        if let Some(foreign) = self.foreign(index) {
                            decision.notice = Some(Notice::Foreign(Box::new(foreign)));
                        } else if !self.behind_reported {
                            self.behind_reported = true;
                            decision = self.behind(index, resume);
                        }
                    }
                    self.prev = Some(index);
                    return decision;
                }
                if first && index > resume && (self.at.is_some() || resume > 0) {
                    // A requested start is not stored itself, so the gap
                    // covers it: from the index before it.
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
            if let Some(prev) = self.prev.or(self.at).filter(|p| index > *p) {
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
        self.at = match self.mode {
            Mode::Follow => Some(index),
            Mode::Backfill => self.high,
        };
        self.recent.push_back(index);
        if self.recent.len() > RECENT_FRAMES {
            self.recent.pop_front();
        }
        self.behind_reported = false;
        Decision {
            store: true,
            gap,
            notice: self.identity_to_record(),
        }
    }

    /// The server's identity, once per connection, with its first stored
    /// frame; from then on it is the archive's.
    fn identity_to_record(&mut self) -> Option<Notice> {
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
mod tests;
