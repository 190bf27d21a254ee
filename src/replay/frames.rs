//! Reads a cluster's archived events back as Nomad frames, page by page:
//! events of one raft index grouped in their original order, filtered with
//! Nomad's subscription rules, and written exactly as they were received.
//! Memory is one page, however long the history.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::archive::{ArchivedEvent, Cluster, PageQuery, now_millis};
use crate::nomad::Subscription;
use crate::nomad::wire::filter_keys;
use crate::store::{Store, StoreError};

/// Events read per database round trip, unless [`FrameReader::with_page_size`]
/// says otherwise.
pub const PAGE_SIZE: u32 = 1000;

/// How long after its end (ms) a time window can still gain events.
const CLOSE_AFTER: i64 = 10 * 60 * 1000;

/// One frame ready to send: `{"Index":N,"Events":[…]}` without its newline.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFrame {
    pub index: u64,
    /// When the frame happened (Unix ms, its newest event time: Nomad's
    /// clock, or the receipt time when it carried none), for pacing.
    pub time: i64,
    pub events: usize,
    pub line: String,
}

/// Where and what to read.
#[derive(Debug, Clone)]
pub struct FrameQuery {
    /// The filter; its `index` is the first index to read (inclusive).
    pub subscription: Subscription,
    pub to_index: Option<u64>,
    /// Time bounds (Nomad's clock), Unix ms.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Reads frames from the archive in stream order.
pub struct FrameReader {
    store: Arc<dyn Store>,
    cluster: Cluster,
    query: FrameQuery,
    /// The last event read from the store, where the next page starts.
    after: Option<(u64, u32)>,
    /// Events read but not yet grouped into frames.
    pending: VecDeque<ArchivedEvent>,
    /// The last page came back short: everything committed so far is read.
    caught_up: bool,
    /// The stretch of the stream dated in the time window, once found
    /// (the end is left open while events may still be received in it).
    window: Option<(u64, Option<u64>)>,
    /// Events read per round trip: what the reader holds at most, besides
    /// a frame larger than a page.
    page_size: u32,
}

impl FrameReader {
    pub fn new(store: Arc<dyn Store>, cluster: Cluster, query: FrameQuery) -> Self {
        FrameReader {
            store,
            cluster,
            query,
            after: None,
            pending: VecDeque::new(),
            caught_up: false,
            window: None,
            page_size: PAGE_SIZE,
        }
    }

    /// Reads `events` per round trip (at least one): fewer hold less memory
    /// for a reader that waits on its consumer, at more round trips.
    pub fn with_page_size(mut self, events: u32) -> Self {
        self.page_size = events.max(1);
        self
    }

    /// The next frame, or `None` when everything archived so far has been
    /// read (a later call sees frames committed since: that is `--follow`).
    pub async fn next(&mut self) -> Result<Option<OutFrame>, StoreError> {
        loop {
            // A frame is committed whole, so its events are all here once a
            // later index shows up or the store has nothing more to give.
            let complete = match (self.pending.front(), self.pending.back()) {
                (Some(first), Some(last)) => last.index > first.index || self.caught_up,
                _ => false,
            };
            if !complete {
                if self.fetch().await? == 0 && self.pending.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            let Some(index) = self.pending.front().map(|e| e.index) else {
                continue;
            };
            let mut time = i64::MIN;
            let mut events = Vec::new();
            while let Some(event) = self.pending.front().filter(|e| e.index == index) {
                time = time.max(event.time);
                if self.passes(event) {
                    events.push(event.raw.clone());
                }
                self.pending.pop_front();
            }
            if !events.is_empty() {
                return Ok(Some(OutFrame {
                    index,
                    time,
                    events: events.len(),
                    line: frame_line(index, &events),
                }));
            }
        }
    }

    /// Reads the next page; returns how many events it held.
    async fn fetch(&mut self) -> Result<usize, StoreError> {
        let sub = &self.query.subscription;
        let mut page = PageQuery {
            after: self.after,
            from_index: self.after.map_or(sub.index, |(index, _)| index),
            to_index: self.query.to_index,
            since: self.query.since,
            until: self.query.until,
            topics: sub
                .topic_names()
                .map(|names| names.into_iter().map(str::to_owned).collect()),
            namespace: (sub.namespace != crate::nomad::subscription::ALL)
                .then(|| sub.namespace.clone()),
            limit: self.page_size,
            ..PageQuery::default()
        };
        if page.since.is_some() || page.until.is_some() {
            if self.window.is_none() {
                self.window = self.find_window().await?;
            }
            match self.window {
                Some((first, last)) => page.within(first, last),
                // Nothing dated in the window yet.
                None => {
                    self.caught_up = true;
                    return Ok(0);
                }
            }
        }
        // History before the cut in force was pruned: the stream starts at
        // the first index kept, as Nomad's own buffer starts at its oldest
        // entry (the events kept before it are for snapshots only).
        if let Some(cut) = self.store.pruned(&self.cluster).await? {
            if page.from_index < cut.before_index {
                page.from_index = cut.before_index;
                page.after = None;
            }
        }
        let events = self.store.page(&self.cluster, &page).await?;
        self.caught_up = events.len() < self.page_size as usize;
        if let Some(last) = events.last() {
            self.after = Some((last.index, last.position));
        }
        let n = events.len();
        self.pending.extend(events);
        Ok(n)
    }

    /// Where the events dated in the time window are, read once rather
    /// than by every page. A window that ended a while ago is closed: a
    /// frame is stamped when it arrives but committed up to a batch
    /// interval (and any retries) later, and the writer's clock may be
    /// another host's, so its end stays open for [`CLOSE_AFTER`] first.
    async fn find_window(&self) -> Result<Option<(u64, Option<u64>)>, StoreError> {
        let (since, until) = (self.query.since, self.query.until);
        let span = self.store.time_span(&self.cluster, since, until).await?;
        let closed = until.is_some_and(|until| until.saturating_add(CLOSE_AFTER) <= now_millis());
        Ok(span.map(|(first, last)| (first, closed.then_some(last))))
    }

    fn passes(&self, event: &ArchivedEvent) -> bool {
        let sub = &self.query.subscription;
        if sub.is_everything() {
            return true;
        }
        let keys = if sub.uses_keys() {
            filter_keys(&event.raw)
        } else {
            Vec::new()
        };
        sub.matches(&event.topic, &event.key, &event.namespace, &keys)
    }
}

/// A frame as Nomad writes it.
pub fn frame_line(index: u64, events: &[String]) -> String {
    let size = events.iter().map(|e| e.len() + 1).sum::<usize>() + 32;
    let mut line = String::with_capacity(size);
    line.push_str("{\"Index\":");
    line.push_str(&index.to_string());
    line.push_str(",\"Events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(event);
    }
    line.push_str("]}");
    line
}
