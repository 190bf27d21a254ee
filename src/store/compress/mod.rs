//! What a writer compresses, topic by topic of its cluster: the dictionary
//! in use, the events collected to train one, the training running in the
//! background, and how well recent events compress. Events of a topic are
//! stored plain until [`Settings::first_train_after`] of them have arrived;
//! a small first dictionary is then trained on them before the batch that
//! brings them is compressed ([`first`]), while events are collected for
//! the full one ([`Settings::train_after`]), trained off the commit path and
//! used from the batch after it is done, which replaces it; when recent events
//! compress clearly worse than the full dictionary did right after
//! training, a new one is trained (a new id: events keep the dictionary they
//! were compressed with).
//!
//! Each backend's writer calls [`Compression::prepare`] before its batch's
//! transaction (it stores finished dictionaries through a [`Ledger`] and
//! compresses the batch) and [`Compression::committed`] after it, which
//! starts trainings on a blocking thread.

mod first;
pub mod training;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinHandle;

use super::StoreError;
use super::codec::{DICTIONARY_BYTES, Dictionary, Encoder, FIRST_DICTIONARY_BYTES};
use super::rows::event_rows;
use crate::archive::{Batch, Cluster};
use training::{Samples, Trained};

/// When to train a topic's dictionary and when to train it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Events of a topic collected before its first, small dictionary is
    /// trained (fewer when they reach [`FIRST_SAMPLE_BYTES`] first); none
    /// when it is not below [`Settings::train_after`].
    pub first_train_after: u64,
    /// Events of a topic collected before its full dictionary is trained (fewer
    /// when they reach [`SAMPLE_BYTES`] first); also how many recent
    /// events the ratio is measured over. `u64::MAX` trains none: every
    /// event is stored plain ([`Settings::plain`]).
    pub train_after: u64,
    /// Train again when recent events compress to less than this fraction
    /// of the ratio the dictionary gave right after it was put in use (the
    /// first [`Settings::train_after`] events compressed with it).
    pub retrain_below: f64,
}

impl Settings {
    /// Stores every event plain (a writer for an archive that must stay
    /// readable as JSON in SQL, and tests of plain archives).
    pub fn plain() -> Settings {
        Settings {
            train_after: u64::MAX,
            ..Settings::default()
        }
    }

    /// Whether dictionaries are trained at all.
    fn trains(&self) -> bool {
        self.train_after != u64::MAX
    }

    /// Events of a topic collected before its first dictionary: a 16 KiB
    /// one trained on the first 100 Allocation events of the bench's history
    /// compresses later ones 6.6 × (the full one 8.0 ×; plain zstd 2.3 ×).
    pub const DEFAULT_FIRST_TRAIN_AFTER: u64 = 100;
    pub const DEFAULT_TRAIN_AFTER: u64 = 2_000;
    /// The drift measured over the bench's whole history was 12 %.
    pub const DEFAULT_RETRAIN_BELOW: f64 = 0.85;
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            first_train_after: Self::DEFAULT_FIRST_TRAIN_AFTER,
            train_after: Self::DEFAULT_TRAIN_AFTER,
            retrain_below: Self::DEFAULT_RETRAIN_BELOW,
        }
    }
}

/// Sample bytes that are enough to train on, whatever their count: zstd's
/// advice of about 100 × the dictionary's size.
pub const SAMPLE_BYTES: usize = 100 * DICTIONARY_BYTES;

/// Sample bytes that are enough to train a first dictionary on.
pub const FIRST_SAMPLE_BYTES: usize = 16 * FIRST_DICTIONARY_BYTES;

/// A dictionary as the writer reads it back from the archive.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredDictionary {
    pub id: i64,
    pub topic: String,
    pub ratio: f64,
    pub bytes: Vec<u8>,
}

/// Where a writer keeps its cluster's dictionaries: SQL on its own
/// connection, outside the batch's transaction.
#[async_trait]
pub trait Ledger: Send {
    /// The newest dictionary of each topic of the cluster.
    async fn newest(&mut self, cluster_id: i64) -> Result<Vec<StoredDictionary>, StoreError>;
    /// Stores a trained dictionary; returns its id.
    async fn store(&mut self, cluster_id: i64, trained: &Trained) -> Result<i64, StoreError>;
}

/// How one event of a batch is stored.
#[derive(Debug, PartialEq)]
pub enum Value {
    /// Its JSON, as received.
    Plain,
    /// A zstd frame compressed with dictionary `dictionary_id`.
    Zstd { dictionary_id: i64, bytes: Vec<u8> },
}

impl Value {
    /// The `dictionary_id` column.
    pub fn dictionary_id(&self) -> Option<i64> {
        match self {
            Value::Plain => None,
            Value::Zstd { dictionary_id, .. } => Some(*dictionary_id),
        }
    }

    /// The frame, for a compressed value.
    pub fn zstd(&self) -> Option<&[u8]> {
        match self {
            Value::Plain => None,
            Value::Zstd { bytes, .. } => Some(bytes),
        }
    }
}

/// A writer's compression state (see the module's documentation).
#[derive(Default)]
pub struct Compression {
    settings: Settings,
    /// The cluster whose dictionaries are loaded.
    loaded: Option<i64>,
    topics: HashMap<String, Topic>,
}

/// One topic's state.
#[derive(Default)]
struct Topic {
    /// The dictionary new events are compressed with.
    active: Option<Active>,
    /// The dictionary in use compresses worse than it did: train another.
    retrain: bool,
    /// Events collected to train on, and their bytes.
    samples: Samples,
    sample_bytes: usize,
    /// A training running on a blocking thread.
    training: Option<JoinHandle<Result<Trained, String>>>,
    /// zstd could not train a first dictionary on its first events: the
    /// topic waits for its full one.
    first_failed: bool,
    /// Raw and compressed bytes of the events compressed since the ratio
    /// was last measured.
    recent: (u64, u64, u64),
}

/// A dictionary in use, with the ratio it gave right after it was put in
/// use (`None` until that is measured).
struct Active {
    dictionary: Arc<Dictionary>,
    ratio: Option<f64>,
    /// A first dictionary, to be replaced by a full one.
    first: bool,
}

impl Active {
    fn new(dictionary: Arc<Dictionary>, first: bool) -> Active {
        Active {
            dictionary,
            ratio: None,
            first,
        }
    }

    /// The newest dictionary stored for a topic: a first one when it is no
    /// larger than one (a full one trained on a topic's few small events
    /// can be, and is then trained once more after each restart).
    fn loaded(dictionary: Arc<Dictionary>) -> Active {
        let first = dictionary.bytes <= FIRST_DICTIONARY_BYTES;
        Active::new(dictionary, first)
    }
}

impl Topic {
    /// Whether its events are collected for a training.
    fn collects(&self) -> bool {
        self.training.is_none()
            && self
                .active
                .as_ref()
                .is_none_or(|active| active.first || self.retrain)
    }

    /// Whether it has collected enough events to train its full dictionary.
    fn ready_to_train(&self, settings: Settings) -> bool {
        self.collects()
            && (self.samples.len() as u64 >= settings.train_after
                || self.sample_bytes >= SAMPLE_BYTES)
    }
}

impl Compression {
    pub fn new(settings: Settings) -> Self {
        Compression {
            settings,
            ..Compression::default()
        }
    }

    /// Before a batch's transaction: loads the cluster's dictionaries on
    /// first use, stores those trained since the last batch, and compresses
    /// the batch's events (in [`event_rows`] order).
    pub async fn prepare(
        &mut self,
        ledger: &mut dyn Ledger,
        cluster: &Cluster,
        batch: &Batch,
    ) -> Result<Vec<Value>, StoreError> {
        if self.loaded != Some(cluster.id) {
            self.load(ledger, cluster.id).await?;
        }
        self.store_trained(ledger, cluster).await?;
        self.train_first(ledger, cluster, batch).await?;
        Ok(self.encode(batch))
    }

    /// Reads the newest dictionary of each topic.
    async fn load(&mut self, ledger: &mut dyn Ledger, cluster_id: i64) -> Result<(), StoreError> {
        self.topics.clear();
        for stored in ledger.newest(cluster_id).await? {
            if let Some(dictionary) = Dictionary::new(stored.id, &stored.bytes) {
                self.topics.entry(stored.topic).or_default().active =
                    Some(Active::loaded(dictionary));
            }
        }
        self.loaded = Some(cluster_id);
        Ok(())
    }

    /// Stores the dictionaries whose training finished and puts them in use.
    async fn store_trained(
        &mut self,
        ledger: &mut dyn Ledger,
        cluster: &Cluster,
    ) -> Result<(), StoreError> {
        let finished: Vec<String> = self
            .topics
            .iter()
            .filter(|(_, t)| t.training.as_ref().is_some_and(JoinHandle::is_finished))
            .map(|(name, _)| name.clone())
            .collect();
        for name in finished {
            let Some(handle) = self.topics.get_mut(&name).and_then(|t| t.training.take()) else {
                continue;
            };
            let trained = match handle.await {
                Ok(Ok(trained)) => trained,
                Ok(Err(reason)) => {
                    tracing::warn!(topic = %name, reason, "Could not train a dictionary; events stay as they are stored now");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e, "Training a dictionary failed");
                    continue;
                }
            };
            self.put_in_use(ledger, cluster, (&name, false), &trained)
                .await?;
        }
        Ok(())
    }

    /// Stores a trained dictionary (a `first` one, or a full one) and
    /// compresses the topic's next events with it.
    async fn put_in_use(
        &mut self,
        ledger: &mut dyn Ledger,
        cluster: &Cluster,
        (name, first): (&str, bool),
        trained: &Trained,
    ) -> Result<(), StoreError> {
        let id = ledger.store(cluster.id, trained).await?;
        if let Some(dictionary) = Dictionary::new(id, &trained.bytes) {
            tracing::info!(cluster = %cluster.name, topic = %name, dictionary = id, ratio = format!("{:.2}", trained.ratio), "Compressing with a new dictionary");
            let topic = self.topics.entry(name.to_owned()).or_default();
            topic.active = Some(Active::new(dictionary, first));
            topic.retrain = false;
            topic.recent = (0, 0, 0);
        }
        Ok(())
    }

    /// The batch's values: compressed where the topic has a dictionary
    /// (about 4 µs an event). Done by the writer's task before the
    /// transaction begins, a large batch's second half on a scoped thread
    /// meanwhile ([`encode_all`]).
    fn encode(&self, batch: &Batch) -> Vec<Value> {
        let rows: Vec<(&[u8], Option<&Dictionary>)> = event_rows(batch)
            .map(|row| {
                let active = self
                    .topics
                    .get(&row.event.topic)
                    .and_then(|t| t.active.as_ref());
                (row.event.raw.as_bytes(), active.map(|a| &*a.dictionary))
            })
            .collect();
        encode_all(&rows)
    }

    /// After the batch committed: counts what recent events gave, collects
    /// samples, and starts the trainings that have enough.
    pub fn committed(&mut self, batch: &Batch, values: &[Value]) {
        if !self.settings.trains() {
            return;
        }
        for (row, value) in event_rows(batch).zip(values) {
            let name = row.event.topic.as_str();
            if !self.topics.contains_key(name) {
                self.topics.insert(name.to_owned(), Topic::default());
            }
            let Some(topic) = self.topics.get_mut(name) else {
                continue;
            };
            if let Some(bytes) = value.zstd() {
                topic.recent.0 += 1;
                topic.recent.1 += row.event.raw.len() as u64;
                topic.recent.2 += bytes.len() as u64;
            }
            if topic.collects() && topic.sample_bytes < SAMPLE_BYTES {
                topic.sample_bytes += row.event.raw.len();
                topic.samples.push((row.index, row.event.raw.clone()));
            }
        }
        let settings = self.settings;
        // One training at a time: each takes tens of MB and a core for a
        // fraction of a second.
        let mut training = self.topics.values().any(|t| t.training.is_some());
        for (name, topic) in &mut self.topics {
            measure(name, topic, settings);
            if training || !topic.ready_to_train(settings) {
                continue;
            }
            training = true;
            let samples = std::mem::take(&mut topic.samples);
            topic.sample_bytes = 0;
            let name = name.clone();
            topic.training = Some(tokio::task::spawn_blocking(move || {
                training::train(&name, &samples, DICTIONARY_BYTES)
            }));
        }
    }
}

/// Once enough events were compressed, compares their ratio with the
/// dictionary's and asks for a new one when it fell below the threshold.
fn measure(name: &str, topic: &mut Topic, settings: Settings) {
    let (events, raw, stored) = topic.recent;
    let Some(active) = topic.active.as_mut().filter(|active| !active.first) else {
        return;
    };
    if events < settings.train_after {
        return;
    }
    topic.recent = (0, 0, 0);
    let ratio = raw as f64 / stored.max(1) as f64;
    let Some(baseline) = active.ratio else {
        active.ratio = Some(ratio);
        return;
    };
    if !topic.retrain && ratio < settings.retrain_below * baseline {
        tracing::info!(
            topic = name,
            dictionary = active.dictionary.id,
            ratio = format!("{ratio:.2}"),
            trained = format!("{baseline:.2}"),
            "Recent events compress worse than the dictionary did; training a new one"
        );
        topic.retrain = true;
    }
}

/// Batches of at least this many events are compressed on two threads.
const PARALLEL_FROM: usize = 256;

/// [`encode_rows`], a large batch's second half on a thread of its own:
/// `ingest` and `import` read the stream and prepare each batch on one
/// thread, and compressing was the largest part of that thread's work
/// (docs/performance.md, "Compressing on two threads").
fn encode_all(rows: &[(&[u8], Option<&Dictionary>)]) -> Vec<Value> {
    if rows.len() < PARALLEL_FROM {
        return encode_rows(rows);
    }
    let (first, second) = rows.split_at(rows.len() / 2);
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("compress".to_owned())
            .spawn_scoped(scope, || encode_rows(second));
        let mut values = encode_rows(first);
        let rest = match helper {
            Ok(helper) => helper.join().unwrap_or_else(|_| {
                tracing::warn!(
                    "Compressing half a batch on a thread of its own failed; compressing it here"
                );
                encode_rows(second)
            }),
            // No thread to be had (a limit on processes): all of it here.
            Err(_) => encode_rows(second),
        };
        values.extend(rest);
        values
    })
}

/// Each event compressed with its topic's dictionary, or kept plain.
fn encode_rows(rows: &[(&[u8], Option<&Dictionary>)]) -> Vec<Value> {
    let mut encoder = match rows.iter().any(|(_, d)| d.is_some()) {
        true => Encoder::new().ok(),
        false => None,
    };
    rows.iter()
        .map(|&(raw, dictionary)| {
            let (Some(dictionary), Some(encoder)) = (dictionary, encoder.as_mut()) else {
                return Value::Plain;
            };
            match encoder.compress(raw, dictionary) {
                Ok(bytes) => Value::Zstd {
                    dictionary_id: dictionary.id,
                    bytes,
                },
                // zstd always can; the event is then stored as it is.
                Err(_) => Value::Plain,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::decompress;

    #[test]
    fn a_large_batch_compressed_on_two_threads_keeps_its_order_and_bytes() {
        let events: Vec<String> = (0..3 * PARALLEL_FROM)
            .map(|i| {
                format!(
                    r#"{{"Topic":"Job","Type":"JobRegistered","Key":"job-{i}","Index":{i},"Payload":{{"Job":{{"ID":"job-{i}","Version":{}}}}}}}"#,
                    i % 7
                )
            })
            .collect();
        let trained = zstd::dict::from_samples(&events, 4096).expect("train");
        let dictionary = Dictionary::new(1, &trained).expect("a dictionary");
        // Every third event of a topic without a dictionary: kept plain.
        let rows: Vec<(&[u8], Option<&Dictionary>)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.as_bytes(), (i % 3 != 0).then_some(&*dictionary)))
            .collect();
        let values = encode_all(&rows);
        assert_eq!(values.len(), rows.len());
        for ((raw, dictionary), value) in rows.iter().zip(&values) {
            match (dictionary, value) {
                (None, Value::Plain) => {}
                (Some(d), Value::Zstd { bytes, .. }) => {
                    assert_eq!(decompress(bytes, d).expect("decodes").as_bytes(), *raw);
                }
                _ => panic!("a value of the wrong kind for its event"),
            }
        }
    }
}
