//! What the reporting views read, stored beside the events (migration 0015):
//! which events have details, and which topic's table holds them. Each
//! backend fills the tables in the batch's transaction from the events' JSON
//! with the expressions the views used to apply to the stored events, so the
//! views answer exactly as before without reading the events.

use crate::store::names::RowRefs;
use crate::store::rows::EventRow;

/// The topics whose events have a row of details, each in its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detailed {
    Allocation,
    Job,
    Deployment,
    Node,
}

impl Detailed {
    pub const ALL: [Detailed; 4] = [
        Detailed::Allocation,
        Detailed::Job,
        Detailed::Deployment,
        Detailed::Node,
    ];

    /// The event topic.
    pub fn topic(self) -> &'static str {
        match self {
            Detailed::Allocation => "Allocation",
            Detailed::Job => "Job",
            Detailed::Deployment => "Deployment",
            Detailed::Node => "Node",
        }
    }
}

/// One event with details to store, with the references its row was given.
pub struct DetailRow<'r, 'a> {
    pub row: &'r EventRow<'a>,
    pub refs: &'r RowRefs,
}

/// The events of `rows` (with their `refs`, in the same order) of `topic`.
pub fn of_topic<'r, 'a>(
    rows: &'r [EventRow<'a>],
    refs: &'r [RowRefs],
    topic: Detailed,
) -> Vec<DetailRow<'r, 'a>> {
    rows.iter()
        .zip(refs)
        .filter(|(row, _)| row.event.topic == topic.topic())
        .map(|(row, refs)| DetailRow { row, refs })
        .collect()
}
