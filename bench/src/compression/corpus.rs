//! The events measured: a generated history, each event's JSON as the
//! archive stores it, and where each object's previous version is.

use std::collections::HashMap;

use nomad_sim::Generator;

/// One event as the archive keeps it.
pub struct Event {
    /// The event's topic (`Allocation`, `Job`, …): dictionaries are per topic.
    pub topic: String,
    /// The event's JSON exactly as streamed (the archive's `event` column).
    pub json: Vec<u8>,
}

/// The first `events` events (rounded up to a whole frame) of the history
/// of `seed`: the same events `bench all`'s capture of that seed holds.
pub fn generate(events: usize, seed: u64) -> (Vec<Event>, Vec<Option<usize>>) {
    let mut generator = Generator::new(seed);
    let mut out = Vec::with_capacity(events);
    let mut objects = Vec::with_capacity(events);
    while out.len() < events {
        for e in generator.next_frame().events {
            objects.push((e.topic.clone(), e.namespace, e.key));
            out.push(Event {
                topic: e.topic,
                json: e.json.into_bytes(),
            });
        }
    }
    let previous = previous_versions(&objects);
    (out, previous)
}

/// For each event, the position of the previous event about the same
/// object (same topic, namespace and key), if any.
pub fn previous_versions<K: std::hash::Hash + Eq + Clone>(objects: &[K]) -> Vec<Option<usize>> {
    let mut last: HashMap<K, usize> = HashMap::new();
    objects
        .iter()
        .enumerate()
        .map(|(i, object)| last.insert(object.clone(), i))
        .collect()
}

/// For each event, how many earlier versions of its object a chain of
/// deltas reaches back through before a base (a version stored without a
/// delta): 0 for a base. A base is every object's first event and every
/// `restart`-th version after it, so no lookup decodes more than `restart`
/// events.
pub fn chain_depths(previous: &[Option<usize>], restart: usize) -> Vec<usize> {
    let mut depths = Vec::with_capacity(previous.len());
    for p in previous {
        let depth = match p {
            Some(p) if depths[*p] + 1 < restart => depths[*p] + 1,
            _ => 0,
        };
        depths.push(depth);
    }
    depths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_versions_link_each_event_to_its_objects_last_one() {
        let objects = ["a", "b", "a", "a", "c", "b"];
        assert_eq!(
            previous_versions(&objects),
            [None, None, Some(0), Some(2), None, Some(1)]
        );
    }

    #[test]
    fn chains_restart_at_a_base_every_restart_versions() {
        let previous = previous_versions(&["a", "a", "b", "a", "a", "b"]);
        assert_eq!(chain_depths(&previous, 3), [0, 1, 0, 2, 0, 1]);
        assert_eq!(chain_depths(&previous, 1), [0; 6]);
    }
}
