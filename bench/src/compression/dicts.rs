//! Training zstd dictionaries on a stretch of the history: one per topic,
//! or one shared by all topics.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use super::corpus::Event;
use super::cpu::CpuClock;

/// Dictionaries trained on one stretch of events.
pub struct Trained {
    /// By topic; `""` is the shared dictionary.
    pub dicts: HashMap<String, Vec<u8>>,
    /// CPU time of the training, all dictionaries together.
    pub cpu: Duration,
    /// Topics left without a dictionary (too few samples to train on).
    pub untrained: Vec<String>,
}

impl Trained {
    /// Bytes of all the dictionaries.
    pub fn bytes(&self) -> usize {
        self.dicts.values().map(Vec::len).sum()
    }
}

/// zstd's advice: about a hundred times the dictionary's size in samples.
const SAMPLES_PER_DICT_BYTE: usize = 100;

/// Trains dictionaries of at most `size` bytes on `events[range]`: one per
/// topic, or one shared (`""`) when `shared`. Each takes the events of the
/// stretch in order up to `SAMPLES_PER_DICT_BYTE` × `size` bytes.
pub fn train(events: &[Event], range: Range<usize>, size: usize, shared: bool) -> Trained {
    let mut samples: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let budget = SAMPLES_PER_DICT_BYTE * size;
    for e in &events[range] {
        let group = if shared { "" } else { e.topic.as_str() };
        let used = taken.entry(group).or_default();
        if *used < budget {
            *used += e.json.len();
            samples.entry(group).or_default().push(&e.json);
        }
    }
    let clock = CpuClock::start();
    let mut dicts = HashMap::new();
    let mut untrained = Vec::new();
    for (group, samples) in samples {
        match zstd::dict::from_samples(&samples, size) {
            Ok(dict) => {
                dicts.insert(group.to_owned(), dict);
            }
            Err(_) => untrained.push(group.to_owned()),
        }
    }
    Trained {
        dicts,
        cpu: clock.elapsed(),
        untrained,
    }
}
