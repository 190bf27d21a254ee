//! The simulated event buffer: the last `buffer_size` raft entries, and where a subscription starts in it.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::frame::{SimEvent, SimFrame, frame_line};
use nomad_chronicle::nomad::Subscription;

/// A published frame, stored once and shared by the buffer, the history and
/// every subscriber that is about to send it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The frame's raft index.
    pub(crate) index: u64,
    /// The events' routing fields; their `json` is empty and lives in `line`.
    events: Vec<SimEvent>,
    /// Where each event's JSON sits inside `line`.
    spans: Vec<Range<usize>>,
    /// The unfiltered wire line with its newline, sent as is to subscribers
    /// that want everything.
    line: Bytes,
}

impl Entry {
    /// Serializes the frame's line once and keeps only one copy of each event's JSON.
    pub(crate) fn new(frame: SimFrame) -> Entry {
        let mut line = String::with_capacity(
            32 + frame.events.iter().map(|e| e.json.len() + 1).sum::<usize>(),
        );
        line.push_str("{\"Index\":");
        line.push_str(&frame.index.to_string());
        line.push_str(",\"Events\":[");
        let mut spans = Vec::with_capacity(frame.events.len());
        let mut events = frame.events;
        for (i, ev) in events.iter_mut().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let start = line.len();
            line.push_str(&ev.json);
            spans.push(start..line.len());
            ev.json = String::new();
        }
        line.push_str("]}\n");
        Entry {
            index: frame.index,
            events,
            spans,
            line: Bytes::from(line),
        }
    }

    /// The frame as it was published.
    pub(crate) fn to_frame(&self) -> SimFrame {
        let events = self
            .events
            .iter()
            .zip(&self.spans)
            .map(|(ev, span)| SimEvent {
                json: self.json(span.clone()).to_string(),
                ..ev.clone()
            })
            .collect();
        SimFrame {
            index: self.index,
            events,
        }
    }

    /// The line (with its newline) a subscriber receives, or `None` when none
    /// of the events match; the shared bytes when all of them do. Events of
    /// the `hidden` namespaces (created after the subscription) never match.
    pub(crate) fn line_for(&self, sub: &Subscription, hidden: &[String]) -> Option<Bytes> {
        if sub.is_everything() && hidden.is_empty() {
            return Some(self.line.clone());
        }
        let matching: Vec<usize> = (0..self.events.len())
            .filter(|&i| {
                let event = &self.events[i];
                event.reaches(sub) && !hidden.contains(&event.namespace)
            })
            .collect();
        if matching.is_empty() {
            None
        } else if matching.len() == self.events.len() {
            Some(self.line.clone())
        } else {
            let jsons = matching.iter().map(|&i| self.json(self.spans[i].clone()));
            let mut line = frame_line(self.index, jsons);
            line.push('\n');
            Some(Bytes::from(line))
        }
    }

    /// The frame's events (routing fields only) with each one's JSON.
    pub(crate) fn events(&self) -> impl Iterator<Item = (&SimEvent, &str)> {
        self.events
            .iter()
            .zip(&self.spans)
            .map(|(ev, span)| (ev, self.json(span.clone())))
    }

    /// One event's JSON inside the line.
    fn json(&self, span: Range<usize>) -> &str {
        self.line
            .get(span)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

/// Where a subscriber is in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Nothing read yet; the requested `index` decides the first entry.
    Start(u64),
    /// Every entry up to and including this index has been read.
    After(u64),
}

/// What a subscriber gets when it asks the buffer for more.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Some entries were appended to the subscriber's queue.
    Some,
    /// Nothing new yet: wait for a publish.
    Empty,
    /// The next entry this subscriber needed has been evicted.
    Dropped,
}

/// The last `capacity` published entries, oldest first.
#[derive(Debug)]
pub(crate) struct Buffer {
    /// The retained entries, in index order.
    entries: VecDeque<Arc<Entry>>,
    /// How many entries are kept (Nomad's `event_buffer_size`).
    capacity: usize,
    /// The index of the newest evicted entry, to tell a slow reader it lost events.
    evicted_through: Option<u64>,
}

impl Buffer {
    /// An empty buffer holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Buffer {
        Buffer {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            evicted_through: None,
        }
    }

    /// Appends an entry, evicting the oldest beyond the capacity.
    pub(crate) fn push(&mut self, entry: Arc<Entry>) {
        self.entries.push_back(entry);
        while self.entries.len() > self.capacity {
            if let Some(old) = self.entries.pop_front() {
                self.evicted_through = Some(old.index);
            }
        }
    }

    /// Moves up to `max` entries after `cursor` into `out` and advances the cursor.
    pub(crate) fn fetch(
        &self,
        cursor: &mut Cursor,
        max: usize,
        out: &mut VecDeque<Arc<Entry>>,
    ) -> Fetch {
        let Some(newest) = self.entries.back() else {
            return Fetch::Empty;
        };
        let start = match *cursor {
            Cursor::Start(0) => 0,
            Cursor::Start(wanted) => {
                let at_or_after = self.entries.partition_point(|e| e.index < wanted);
                if at_or_after == self.entries.len() {
                    // Newer than anything buffered: Nomad starts at the newest entry.
                    self.entries.len() - 1
                } else {
                    at_or_after
                }
            }
            Cursor::After(read) => {
                if self.evicted_through.is_some_and(|gone| gone > read) {
                    return Fetch::Dropped;
                }
                if newest.index <= read {
                    return Fetch::Empty;
                }
                self.entries.partition_point(|e| e.index <= read)
            }
        };
        let taken = self.entries.range(start..).take(max.max(1));
        let before = out.len();
        out.extend(taken.cloned());
        match out.back() {
            Some(last) if out.len() > before => {
                *cursor = Cursor::After(last.index);
                Fetch::Some
            }
            _ => Fetch::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Arc<Entry> {
        Arc::new(Entry::new(SimFrame::job_registered(index)))
    }

    /// A buffer holding entries 10, 20, 30.
    fn buffer() -> Buffer {
        let mut b = Buffer::new(10);
        for i in [10, 20, 30] {
            b.push(entry(i));
        }
        b
    }

    fn first_from(buffer: &Buffer, index: u64) -> Option<u64> {
        let mut out = VecDeque::new();
        let mut cursor = Cursor::Start(index);
        buffer.fetch(&mut cursor, 100, &mut out);
        out.front().map(|e| e.index)
    }

    #[test]
    fn index_zero_starts_at_the_oldest_entry() {
        assert_eq!(first_from(&buffer(), 0), Some(10));
    }

    #[test]
    fn an_index_in_the_buffer_starts_there_inclusive() {
        assert_eq!(first_from(&buffer(), 20), Some(20));
    }

    #[test]
    fn an_index_older_than_the_buffer_starts_at_the_oldest_entry() {
        assert_eq!(first_from(&buffer(), 3), Some(10));
    }

    #[test]
    fn an_index_between_entries_starts_at_the_next_one() {
        assert_eq!(first_from(&buffer(), 21), Some(30));
    }

    #[test]
    fn an_index_newer_than_the_buffer_starts_at_the_newest_entry() {
        assert_eq!(first_from(&buffer(), 99), Some(30));
    }

    #[test]
    fn an_empty_buffer_makes_the_subscriber_wait() {
        let mut out = VecDeque::new();
        let mut cursor = Cursor::Start(5);
        assert_eq!(
            Buffer::new(3).fetch(&mut cursor, 10, &mut out),
            Fetch::Empty
        );
        assert_eq!(cursor, Cursor::Start(5));
    }

    #[test]
    fn push_evicts_the_oldest_beyond_capacity() {
        let mut b = Buffer::new(2);
        for i in 1..=5 {
            b.push(entry(i));
        }
        assert_eq!(first_from(&b, 0), Some(4));
        let mut out = VecDeque::new();
        b.fetch(&mut Cursor::Start(0), 10, &mut out);
        assert_eq!(out.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5]);
    }

    #[test]
    fn a_reader_whose_next_entry_was_evicted_is_dropped() {
        let mut b = Buffer::new(2);
        b.push(entry(1));
        b.push(entry(2));
        let mut out = VecDeque::new();
        let mut cursor = Cursor::Start(0);
        b.fetch(&mut cursor, 1, &mut out);
        assert_eq!(cursor, Cursor::After(1));
        b.push(entry(3)); // evicts 1: fine, already read
        assert_eq!(b.fetch(&mut cursor, 1, &mut out), Fetch::Some);
        assert_eq!(cursor, Cursor::After(2));
        b.push(entry(4));
        b.push(entry(5)); // evicts 3, which the reader has not read
        assert_eq!(b.fetch(&mut cursor, 10, &mut out), Fetch::Dropped);
    }

    #[test]
    fn a_caught_up_reader_waits_and_then_reads_in_order() {
        let mut b = buffer();
        let mut out = VecDeque::new();
        let mut cursor = Cursor::Start(0);
        assert_eq!(b.fetch(&mut cursor, 2, &mut out), Fetch::Some);
        assert_eq!(b.fetch(&mut cursor, 2, &mut out), Fetch::Some);
        assert_eq!(b.fetch(&mut cursor, 2, &mut out), Fetch::Empty);
        b.push(entry(31));
        assert_eq!(b.fetch(&mut cursor, 2, &mut out), Fetch::Some);
        let got: Vec<u64> = out.iter().map(|e| e.index).collect();
        assert_eq!(got, vec![10, 20, 30, 31]);
    }

    #[test]
    fn entry_round_trips_the_frame_and_filters_lines() {
        let alloc = SimEvent::new(
            "Allocation",
            "PlanResult",
            "a1",
            "prod",
            vec!["web".into(), "d1".into()],
            7,
            serde_json::json!({"Allocation": {"ID": "a1"}}),
        );
        let job = SimEvent::new(
            "Job",
            "PlanResult",
            "web",
            "prod",
            vec![],
            7,
            serde_json::json!({}),
        );
        let frame = SimFrame {
            index: 7,
            events: vec![alloc.clone(), job],
        };
        let e = Entry::new(frame.clone());
        assert_eq!(e.to_frame(), frame);
        let everything = Subscription::parse("namespace=*").unwrap();
        assert_eq!(
            e.line_for(&everything, &[]).unwrap(),
            format!("{}\n", frame.to_line())
        );
        let allocs = Subscription::parse("topic=Allocation&namespace=prod").unwrap();
        let want = SimFrame {
            index: 7,
            events: vec![alloc],
        };
        assert_eq!(
            e.line_for(&allocs, &[]).unwrap(),
            format!("{}\n", want.to_line())
        );
        assert_eq!(frame.filtered(&allocs), Some(want));
        assert_eq!(
            e.line_for(&everything, &["prod".to_owned()]),
            None,
            "a namespace created after the subscription hides its events"
        );
        assert_eq!(e.line_for(&Subscription::parse("").unwrap(), &[]), None);
    }
}
