//! What the reporting views and list queries read, stored beside the
//! events (migrations 0015 and 0019):
//! the details ingest read from each event's payload
//! ([`crate::nomad::details`]), as rows for each backend to insert in the
//! batch's transaction, and the task events a batch brings that the archive
//! does not hold yet.

use std::collections::HashMap;

use crate::nomad::details::{
    AllocationDetails, DeploymentDetails, Details, EvaluationDetails, JobDetails, NodeDetails,
    TaskEvent,
};
use crate::store::names::RowRefs;
use crate::store::rows::EventRow;

/// Where an event is in the stream: its raft index and position.
pub type Place = (i64, i32);

/// One event's details with its place and references.
pub struct DetailRow<'r, T> {
    pub place: Place,
    pub refs: &'r RowRefs,
    pub details: &'r T,
}

/// A batch's details, by table.
#[derive(Default)]
pub struct BatchDetails<'r> {
    pub allocations: Vec<DetailRow<'r, AllocationDetails>>,
    pub jobs: Vec<DetailRow<'r, JobDetails>>,
    pub deployments: Vec<DetailRow<'r, DeploymentDetails>>,
    pub nodes: Vec<DetailRow<'r, NodeDetails>>,
    pub evaluations: Vec<DetailRow<'r, EvaluationDetails>>,
}

impl<'r> BatchDetails<'r> {
    /// The details of the events of `rows` (with their `refs`, in order).
    pub fn of(rows: &'r [EventRow<'_>], refs: &'r [RowRefs]) -> Self {
        let mut out = BatchDetails::default();
        for (row, refs) in rows.iter().zip(refs) {
            let place = (row.index, row.position);
            match &row.event.details {
                Details::Allocation(details) => out.allocations.push(DetailRow {
                    place,
                    refs,
                    details: &**details,
                }),
                Details::Job(details) => out.jobs.push(DetailRow {
                    place,
                    refs,
                    details,
                }),
                Details::Deployment(details) => out.deployments.push(DetailRow {
                    place,
                    refs,
                    details,
                }),
                Details::Node(details) => out.nodes.push(DetailRow {
                    place,
                    refs,
                    details,
                }),
                Details::Evaluation(details) => out.evaluations.push(DetailRow {
                    place,
                    refs,
                    details,
                }),
                Details::None => {}
            }
        }
        out
    }
}

/// A task event to store, first seen at `place` as far as the batch goes.
pub struct TaskEventRow<'r> {
    pub alloc_ref: i64,
    pub namespace: &'r str,
    pub job_ref: Option<i64>,
    pub place: Place,
    pub event: &'r TaskEvent,
}

/// Task events by (allocation, Time), then by task and Type: looked up
/// without building a key.
type TaskEventIndex = HashMap<(i64, i64), Vec<(Box<str>, Box<str>, Place)>>;

/// The cache's entry for `event` of allocation `alloc_ref`, if any.
fn first_place(index: &TaskEventIndex, alloc_ref: i64, event: &TaskEvent) -> Option<Place> {
    index
        .get(&(alloc_ref, event.time_ns))?
        .iter()
        .find(|(task, event_type, _)| *task == event.task && *event_type == event.event_type)
        .map(|&(_, _, place)| place)
}

/// Records that `event` of allocation `alloc_ref` is stored from `place`
/// (or an earlier place already recorded).
fn record(index: &mut TaskEventIndex, alloc_ref: i64, event: &TaskEvent, place: Place) {
    let entries = index.entry((alloc_ref, event.time_ns)).or_default();
    match entries
        .iter_mut()
        .find(|(task, event_type, _)| *task == event.task && *event_type == event.event_type)
    {
        Some(entry) => entry.2 = entry.2.min(place),
        None => entries.push((event.task.clone(), event.event_type.clone(), place)),
    }
}

/// The task events this writer stored recently, with where each was first
/// seen. Every allocation update repeats its tasks' last ten events; those
/// known to be stored from an earlier place are not sent again. Forgetting
/// is harmless (the database keeps the earliest sighting either way), so the
/// cache is emptied when it grows past [`TaskEventCache::CAPACITY`].
#[derive(Default)]
pub struct TaskEventCache {
    stored: TaskEventIndex,
    entries: usize,
}

/// What the cache learns from a batch once it is committed.
pub struct Learned(TaskEventIndex, usize);

impl BatchTaskEvents<'_> {
    /// What the cache learns if the batch commits.
    pub fn learned(self) -> Learned {
        Learned(self.learned, self.rows.len())
    }
}

/// The task events of one batch to store, and what the cache learns once
/// the batch is committed.
pub struct BatchTaskEvents<'r> {
    pub rows: Vec<TaskEventRow<'r>>,
    learned: TaskEventIndex,
}

impl TaskEventCache {
    /// About 150 bytes an entry: the task events of the last few thousand
    /// allocations updated.
    const CAPACITY: usize = 20_000;

    /// The task events of `rows` (with their `refs`) not known to be stored
    /// from an earlier or the same place.
    pub fn batch<'r>(&self, rows: &'r [EventRow<'_>], refs: &[RowRefs]) -> BatchTaskEvents<'r> {
        let mut batch = BatchTaskEvents {
            rows: Vec::new(),
            learned: HashMap::new(),
        };
        for (row, refs) in rows.iter().zip(refs) {
            let Details::Allocation(details) = &row.event.details else {
                continue;
            };
            let place = (row.index, row.position);
            for event in &details.task_events {
                let known = first_place(&batch.learned, refs.key, event)
                    .or_else(|| first_place(&self.stored, refs.key, event));
                if known.is_some_and(|first| first <= place) {
                    continue;
                }
                record(&mut batch.learned, refs.key, event, place);
                batch.rows.push(TaskEventRow {
                    alloc_ref: refs.key,
                    namespace: &row.event.namespace,
                    job_ref: refs.job,
                    place,
                    event,
                });
            }
        }
        batch
    }

    /// Remembers a committed batch's task events.
    pub fn remember(&mut self, learned: Learned) {
        if self.entries + learned.1 > Self::CAPACITY {
            self.stored.clear();
            self.entries = 0;
        }
        self.entries += learned.1;
        for (key, events) in learned.0 {
            let stored = self.stored.entry(key).or_default();
            for (task, event_type, place) in events {
                match stored
                    .iter_mut()
                    .find(|(t, e, _)| *t == task && *e == event_type)
                {
                    Some(entry) => entry.2 = entry.2.min(place),
                    None => stored.push((task, event_type, place)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(task: &str, time_ns: i64, event_type: &str) -> TaskEvent {
        TaskEvent {
            task: task.into(),
            time_ns,
            event_type: event_type.into(),
            exit_code: None,
            oom_killed: [false; 2],
            message: None,
        }
    }

    #[test]
    fn an_event_is_skipped_only_where_it_is_known_from_an_earlier_place() {
        let mut index = TaskEventIndex::default();
        let started = event("web", 10, "Started");
        record(&mut index, 1, &started, (20, 0));
        assert_eq!(first_place(&index, 1, &started), Some((20, 0)));
        assert_eq!(first_place(&index, 2, &started), None, "another allocation");
        assert_eq!(first_place(&index, 1, &event("web", 10, "Killed")), None);
        assert_eq!(
            first_place(&index, 1, &event("sidecar", 10, "Started")),
            None
        );
        record(&mut index, 1, &started, (15, 3));
        assert_eq!(
            first_place(&index, 1, &started),
            Some((15, 3)),
            "the earlier place"
        );
    }
}
