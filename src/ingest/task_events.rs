//! The task events a turn of ingest has already passed on to the writer.
//! Every allocation update repeats each task's last ten events; an update
//! passes on only the ones not seen before in this turn, so the events
//! waiting in the channel and the batches carry about one task event each
//! instead of all of them again. The archive keeps each task event once
//! whatever it is sent (`task_event_log`'s key, with its earliest
//! sighting), so forgetting only costs a few rows sent again: the record is
//! emptied past [`SeenTaskEvents::CAPACITY`] and starts again every turn.

use std::collections::HashMap;

use crate::nomad::Frame;
use crate::nomad::details::{Details, TaskEvent};

/// Task events seen, by allocation ID and Time, then task and Type.
#[derive(Debug, Default, Clone)]
pub struct SeenTaskEvents {
    seen: HashMap<Box<str>, HashMap<i64, Vec<(Box<str>, Box<str>)>>>,
    entries: usize,
}

impl SeenTaskEvents {
    /// About 100 bytes an entry: the task events of the last two thousand
    /// or so allocations updated.
    const CAPACITY: usize = 20_000;

    /// Drops from `frame`'s allocation updates the task events already
    /// passed on, and records the others.
    pub fn keep_new(&mut self, frame: &mut Frame) {
        if self.entries > Self::CAPACITY {
            self.seen.clear();
            self.entries = 0;
        }
        for event in &mut frame.events {
            let Details::Allocation(details) = &mut event.details else {
                continue;
            };
            if details.task_events.is_empty() {
                continue;
            }
            let by_time = match self.seen.get_mut(event.key.as_str()) {
                Some(by_time) => by_time,
                None => self.seen.entry(event.key.as_str().into()).or_default(),
            };
            let before = details.task_events.len();
            details
                .task_events
                .retain(|e| first_sighting(by_time.entry(e.time_ns).or_default(), e));
            // The events wait in the channel and the batches: keep only
            // what is left.
            details.task_events.shrink_to_fit();
            self.entries += details.task_events.len().min(before);
        }
    }
}

/// Records `event` among the task events of its time; false if it was there.
fn first_sighting(same_time: &mut Vec<(Box<str>, Box<str>)>, event: &TaskEvent) -> bool {
    let seen = same_time
        .iter()
        .any(|(task, event_type)| *task == event.task && *event_type == event.event_type);
    if !seen {
        same_time.push((event.task.clone(), event.event_type.clone()));
    }
    !seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nomad::{Line, parse_line};

    fn frame(index: u64, events: &[(&str, i64)]) -> Frame {
        let list: Vec<String> = events
            .iter()
            .map(|(t, time)| format!(r#"{{"Type":"{t}","Time":{time}}}"#))
            .collect();
        let line = format!(
            r#"{{"Index":{index},"Events":[{{"Topic":"Allocation","Type":"AllocationUpdated","Key":"a1","Namespace":"default","Index":{index},"Payload":{{"Allocation":{{"ID":"a1","TaskStates":{{"web":{{"Events":[{}]}}}}}}}}}}]}}"#,
            list.join(",")
        );
        match parse_line(line.as_bytes()) {
            Ok(Line::Frame(frame)) => frame,
            other => panic!("{other:?}"),
        }
    }

    fn kept(frame: &Frame) -> Vec<(String, i64)> {
        match &frame.events[0].details {
            Details::Allocation(d) => d
                .task_events
                .iter()
                .map(|e| (e.event_type.to_string(), e.time_ns))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_update_passes_on_only_the_task_events_not_seen_before() {
        let mut seen = SeenTaskEvents::default();
        let mut first = frame(10, &[("Received", 1), ("Started", 2)]);
        seen.keep_new(&mut first);
        assert_eq!(
            kept(&first),
            [("Received".into(), 1), ("Started".into(), 2)]
        );
        let mut second = frame(11, &[("Received", 1), ("Started", 2), ("Killed", 2)]);
        seen.keep_new(&mut second);
        assert_eq!(kept(&second), [("Killed".into(), 2)]);
        // The raw event is left as it arrived.
        assert!(second.events[0].raw.contains("Received"));
    }
}
