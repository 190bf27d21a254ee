//! What the reporting views read, stored beside the events (migration 0015):
//! the details ingest read from each event's payload
//! ([`crate::nomad::details`]), as rows for each backend to insert in the
//! batch's transaction, and the task events a batch brings that the archive
//! does not hold yet.

use std::collections::HashMap;

use crate::nomad::details::{
    AllocationDetails, DeploymentDetails, Details, JobDetails, NodeDetails, TaskEvent,
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

/// (allocation, task, Time, Type): what names a task event.
type TaskEventKey = (i64, String, i64, String);

/// The task events this writer stored recently, with where each was first
/// seen. Every allocation update repeats its tasks' last ten events; those
/// known to be stored from an earlier place are not sent again. Forgetting
/// is harmless (the database keeps the earliest sighting either way), so the
/// cache is emptied when it grows past [`TaskEventCache::CAPACITY`].
#[derive(Default)]
pub struct TaskEventCache {
    stored: HashMap<TaskEventKey, Place>,
}

/// What the cache learns from a batch once it is committed.
pub struct Learned(HashMap<TaskEventKey, Place>);

impl BatchTaskEvents<'_> {
    /// What the cache learns if the batch commits.
    pub fn learned(self) -> Learned {
        Learned(self.learned)
    }
}

/// The task events of one batch to store, and what the cache learns once
/// the batch is committed.
pub struct BatchTaskEvents<'r> {
    pub rows: Vec<TaskEventRow<'r>>,
    learned: HashMap<TaskEventKey, Place>,
}

impl TaskEventCache {
    /// About 150 bytes an entry: the task events of the last few thousand
    /// allocations updated.
    const CAPACITY: usize = 20_000;

    /// The task events of `rows` (with their `refs`) not known to be stored
    /// from an earlier or the same place.
    pub fn batch<'r>(&self, rows: &'r [EventRow<'_>], refs: &'r [RowRefs]) -> BatchTaskEvents<'r> {
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
                let key = (
                    refs.key,
                    event.task.to_string(),
                    event.time_ns,
                    event.event_type.to_string(),
                );
                let known = batch.learned.get(&key).or(self.stored.get(&key));
                if known.is_some_and(|&first| first <= place) {
                    continue;
                }
                batch.learned.insert(key, place);
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
        if self.stored.len() + learned.0.len() > Self::CAPACITY {
            self.stored.clear();
        }
        for (key, place) in learned.0 {
            let first = self.stored.entry(key).or_insert(place);
            *first = (*first).min(place);
        }
    }
}
