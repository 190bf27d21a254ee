//! The texts of a batch's details that are stored as references into
//! `names` (migrations 0024 and 0025): an allocation event's task group,
//! node name and client description, and a task event's task name, type and
//! message. A long history repeats a few of each over millions of rows.
//!
//! A free-form text (a message, a client description) longer than
//! [`LONGEST_NAMED`] bytes is stored in its row instead: PostgreSQL's index
//! of `names` takes entries of at most 2,704 bytes, and Nomad passes a
//! driver's error on as it is. The length is the text's as received; on
//! PostgreSQL, where a NUL is stored as U+FFFD, migration 0024/0025
//! measured the stored text, so a text with NULs near the limit may be kept
//! either way (the views read both). Names (tasks, task groups, nodes,
//! types) are not limited, as IDs are not: like an ID, one over 2,704 bytes
//! would not fit PostgreSQL's index.

use crate::nomad::details::{AllocationDetails, TaskEvent};
use crate::store::StoreError;
use crate::store::details::{BatchDetails, BatchTaskEvents};

/// The longest free-form text kept in `names`, in bytes. PostgreSQL stores
/// a NUL as U+FFFD (3 bytes), so a text this long takes at most 1,536 bytes
/// there.
pub const LONGEST_NAMED: usize = 512;

/// Whether a free-form text is kept in `names`.
fn named(text: &str) -> bool {
    text.len() <= LONGEST_NAMED
}

/// An allocation event's texts kept in `names`: task group, node name and
/// client description.
fn allocation_names(d: &AllocationDetails) -> [Option<&str>; 3] {
    [
        d.task_group.as_deref(),
        d.node_name.as_deref(),
        d.client_description.as_deref().filter(|t| named(t)),
    ]
}

/// A task event's texts kept in `names`: task name, type and message.
fn task_event_names(e: &TaskEvent) -> (&str, &str, Option<&str>) {
    (
        &e.task,
        &e.event_type,
        e.message.as_deref().filter(|t| named(t)),
    )
}

/// The texts of a batch's allocation events and new task events that are
/// kept in `names`, as often as they occur.
pub fn texts<'r>(details: &BatchDetails<'r>, task_events: &BatchTaskEvents<'r>) -> Vec<&'r str> {
    let allocations = details
        .allocations
        .iter()
        .flat_map(|r| allocation_names(r.details).into_iter().flatten());
    let task_events = task_events.rows.iter().flat_map(|r| {
        let (task, event_type, message) = task_event_names(r.event);
        [Some(task), Some(event_type), message]
            .into_iter()
            .flatten()
    });
    allocations.chain(task_events).collect()
}

/// A batch's [`texts`] as `names.id`s, row by row.
pub struct DetailTexts<'r> {
    pub allocations: Vec<AllocationTexts<'r>>,
    pub task_events: Vec<TaskEventTexts<'r>>,
}

/// An allocation event's texts: `names.id`s, and a client description too
/// long for `names`.
pub struct AllocationTexts<'r> {
    pub task_group: Option<i64>,
    pub node_name: Option<i64>,
    pub client_description: Option<i64>,
    pub long_description: Option<&'r str>,
}

/// A task event's texts: `names.id`s, and a message too long for `names`.
pub struct TaskEventTexts<'r> {
    pub task: i64,
    pub event_type: i64,
    pub message: Option<i64>,
    pub long_message: Option<&'r str>,
}

impl<'r> DetailTexts<'r> {
    /// Looks each text of `details` and `task_events` kept in `names` up
    /// by `id`.
    pub fn resolve(
        details: &BatchDetails<'r>,
        task_events: &BatchTaskEvents<'r>,
        id: impl Fn(&str) -> Result<i64, StoreError>,
    ) -> Result<Self, StoreError> {
        let optional = |text: Option<&str>| text.map(&id).transpose();
        let allocations = details
            .allocations
            .iter()
            .map(|r| {
                let [task_group, node_name, client_description] = allocation_names(r.details);
                Ok(AllocationTexts {
                    task_group: optional(task_group)?,
                    node_name: optional(node_name)?,
                    client_description: optional(client_description)?,
                    long_description: long(&r.details.client_description),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let task_events = task_events
            .rows
            .iter()
            .map(|r| {
                let (task, event_type, message) = task_event_names(r.event);
                Ok(TaskEventTexts {
                    task: id(task)?,
                    event_type: id(event_type)?,
                    message: optional(message)?,
                    long_message: long(&r.event.message),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(DetailTexts {
            allocations,
            task_events,
        })
    }
}

/// A free-form text too long for `names`.
fn long<T: AsRef<str>>(text: &Option<T>) -> Option<&str> {
    text.as_ref().map(AsRef::as_ref).filter(|t| !named(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_form_text_is_named_up_to_the_longest_and_kept_in_its_row_beyond() {
        let short = "x".repeat(LONGEST_NAMED);
        let too_long = "x".repeat(LONGEST_NAMED + 1);
        let details = AllocationDetails {
            task_group: Some("web".to_owned()),
            client_description: Some(too_long.clone()),
            ..AllocationDetails::default()
        };
        assert_eq!(allocation_names(&details), [Some("web"), None, None]);
        assert_eq!(long(&details.client_description), Some(too_long.as_str()));
        let event = TaskEvent {
            task: "web".into(),
            time_ns: 1,
            event_type: "Started".into(),
            exit_code: None,
            oom_killed: [false; 2],
            message: Some(short.clone().into()),
        };
        assert_eq!(task_event_names(&event).2, Some(short.as_str()));
        assert_eq!(long(&event.message), None);
    }
}
