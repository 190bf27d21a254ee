//! Training a topic's dictionary on events of that topic, off the commit
//! path (a blocking task), and measuring what it gives on events it was not
//! trained on, recorded with it (`dictionaries.ratio`).

use std::sync::Arc;

use crate::archive::now_millis;
use crate::store::codec::{Dictionary, Encoder};

/// Events of a topic to train on: raft index and JSON, in stream order.
pub type Samples = Vec<(i64, Arc<str>)>;

/// A dictionary trained and measured, not stored yet.
#[derive(Debug, Clone)]
pub struct Trained {
    pub topic: String,
    pub from_index: i64,
    pub to_index: i64,
    pub trained_at: i64,
    /// Raw over compressed bytes of the held-out samples.
    pub ratio: f64,
    pub bytes: Vec<u8>,
}

/// One sample in this many is held out of training to measure the ratio.
const HOLD_OUT_EVERY: usize = 5;

/// Trains a dictionary of at most `size` bytes on `samples` (all of one
/// topic) and measures it on the samples held out; an error in words when
/// zstd cannot train on them (too few, too small).
pub fn train(topic: &str, samples: &Samples, size: usize) -> Result<Trained, String> {
    let (from_index, to_index) = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => (first.0, last.0),
        _ => return Err("no events to train on".to_owned()),
    };
    let (held, used): (Vec<_>, Vec<_>) = samples
        .iter()
        .enumerate()
        .partition(|(i, _)| i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1);
    let used: Vec<&[u8]> = used.iter().map(|(_, (_, raw))| raw.as_bytes()).collect();
    let bytes = zstd::dict::from_samples(&used, size)
        .map_err(|e| format!("zstd could not train on {} events: {e}", used.len()))?;
    let dictionary =
        Dictionary::new(0, &bytes).ok_or_else(|| "zstd trained no dictionary".to_owned())?;
    let held: Vec<&[u8]> = held.iter().map(|(_, (_, raw))| raw.as_bytes()).collect();
    let ratio = ratio(&held, &dictionary)?;
    Ok(Trained {
        topic: topic.to_owned(),
        from_index,
        to_index,
        trained_at: now_millis(),
        ratio,
        bytes,
    })
}

/// Raw over compressed bytes of `events` compressed with `dictionary`.
fn ratio(events: &[&[u8]], dictionary: &Dictionary) -> Result<f64, String> {
    let mut encoder = Encoder::new()?;
    let (mut raw, mut stored) = (0usize, 0usize);
    for event in events {
        raw += event.len();
        stored += encoder.compress(event, dictionary)?.len();
    }
    Ok(raw as f64 / stored.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::DICTIONARY_BYTES;

    #[test]
    fn a_dictionary_is_trained_on_a_topics_events_and_measured_on_others() {
        let samples: Samples = (0..500)
            .map(|i| {
                let raw = format!(
                    r#"{{"Topic":"Allocation","Type":"AllocationUpdated","Key":"a-{i:05}","Index":{i},"Payload":{{"Allocation":{{"ID":"a-{i:05}","JobID":"web-{}","ClientStatus":"running","DesiredStatus":"run","TaskGroup":"frontend"}}}}}}"#,
                    i % 13
                );
                (i64::from(i), Arc::from(raw))
            })
            .collect();
        let trained = train("Allocation", &samples, DICTIONARY_BYTES).expect("trained");
        assert_eq!((trained.from_index, trained.to_index), (0, 499));
        assert!(trained.ratio > 3.0, "ratio {}", trained.ratio);
        assert!(trained.bytes.len() <= DICTIONARY_BYTES);
    }

    #[test]
    fn too_few_events_are_an_error_not_a_panic() {
        let samples: Samples = vec![(1, Arc::from("{}"))];
        assert!(train("Job", &samples, DICTIONARY_BYTES).is_err());
    }
}
