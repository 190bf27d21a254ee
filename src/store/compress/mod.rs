//! What a writer compresses, topic by topic of its cluster: the dictionary
//! in use, the events collected to train one, the training running in the
//! background, and how well recent events compress. Events of a topic are
//! stored plain until [`Settings::train_after`] of them have arrived; a
//! dictionary is then trained off the commit path and used from the next
//! batch on; when recent events compress clearly worse than the dictionary
//! did right after training, a new one is trained (a new id: events keep
//! the dictionary they were compressed with).
//!
//! Each backend's writer calls [`Compression::prepare`] before its batch's
//! transaction (it stores finished dictionaries through a [`Ledger`] and
//! compresses the batch) and [`Compression::committed`] after it, which
//! starts trainings on a blocking thread.

pub mod training;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinHandle;

use super::StoreError;
use super::codec::{DICTIONARY_BYTES, Dictionary, Encoder};
use super::rows::event_rows;
use crate::archive::{Batch, Cluster};
use training::{Samples, Trained};

/// When to train a topic's dictionary and when to train it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Events of a topic collected before its dictionary is trained (fewer
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

    pub const DEFAULT_TRAIN_AFTER: u64 = 2_000;
    /// The drift measured over the bench's whole history was 12 %.
    pub const DEFAULT_RETRAIN_BELOW: f64 = 0.85;
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            train_after: Self::DEFAULT_TRAIN_AFTER,
            retrain_below: Self::DEFAULT_RETRAIN_BELOW,
        }
    }
}

/// Sample bytes that are enough to train on, whatever their count: zstd's
/// advice of about 100 × the dictionary's size.
pub const SAMPLE_BYTES: usize = 100 * DICTIONARY_BYTES;

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
    /// Raw and compressed bytes of the events compressed since the ratio
    /// was last measured.
    recent: (u64, u64, u64),
}

/// A dictionary in use, with the ratio it gave right after it was put in
/// use (`None` until that is measured).
struct Active {
    dictionary: Arc<Dictionary>,
    ratio: Option<f64>,
}

impl Topic {
    /// Whether its events are collected for a training.
    fn collects(&self) -> bool {
        self.training.is_none() && (self.active.is_none() || self.retrain)
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
        Ok(self.encode(batch))
    }

    /// Reads the newest dictionary of each topic.
    async fn load(&mut self, ledger: &mut dyn Ledger, cluster_id: i64) -> Result<(), StoreError> {
        self.topics.clear();
        for stored in ledger.newest(cluster_id).await? {
            if let Some(dictionary) = Dictionary::new(stored.id, &stored.bytes) {
                self.topics.entry(stored.topic).or_default().active = Some(Active {
                    dictionary,
                    ratio: None,
                });
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
            let id = ledger.store(cluster.id, &trained).await?;
            if let (Some(topic), Some(dictionary)) = (
                self.topics.get_mut(&name),
                Dictionary::new(id, &trained.bytes),
            ) {
                tracing::info!(cluster = %cluster.name, topic = %name, dictionary = id, ratio = format!("{:.2}", trained.ratio), "Compressing with a new dictionary");
                topic.active = Some(Active {
                    dictionary,
                    ratio: None,
                });
                topic.retrain = false;
                topic.recent = (0, 0, 0);
            }
        }
        Ok(())
    }

    /// The batch's values: compressed where the topic has a dictionary
    /// (about 4 µs an event). Done on the writer's task before the
    /// transaction begins: on a thread of its own it measured slower, with
    /// two cores shared by the reader, the writer and the database.
    fn encode(&self, batch: &Batch) -> Vec<Value> {
        let active = |topic: &str| self.topics.get(topic)?.active.as_ref();
        let mut encoder = match self.topics.values().any(|t| t.active.is_some()) {
            true => Encoder::new().ok(),
            false => None,
        };
        event_rows(batch)
            .map(|row| {
                let (Some(active), Some(encoder)) = (active(&row.event.topic), encoder.as_mut())
                else {
                    return Value::Plain;
                };
                let dictionary = &active.dictionary;
                match encoder.compress(row.event.raw.as_bytes(), dictionary) {
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
            let enough = topic.samples.len() as u64 >= settings.train_after
                || topic.sample_bytes >= SAMPLE_BYTES;
            if topic.collects() && enough && !training {
                training = true;
                let samples = std::mem::take(&mut topic.samples);
                topic.sample_bytes = 0;
                let name = name.clone();
                topic.training = Some(tokio::task::spawn_blocking(move || {
                    training::train(&name, &samples)
                }));
            }
        }
    }
}

/// Once enough events were compressed, compares their ratio with the
/// dictionary's and asks for a new one when it fell below the threshold.
fn measure(name: &str, topic: &mut Topic, settings: Settings) {
    let (events, raw, stored) = topic.recent;
    let Some(active) = &mut topic.active else {
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
