//! Compressing an archive's plain events in place (`nomad-chronicle
//! compact`): a dictionary is trained from the archive itself for each topic
//! of the cluster that has none and enough events, then the plain events of
//! those topics are re-encoded chunk by chunk, each chunk in a transaction
//! of its own, every value checked to decode back to the event's exact bytes
//! before it is written. A value that would not is left plain.
//!
//! Each backend ([`Compact`]) reads and writes the rows; [`run`] drives it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::StoreError;
use super::codec::{DICTIONARY_BYTES, Dictionary, Encoder, decompress};
use super::compress::training::{self, Samples, Trained};
use super::compress::{SAMPLE_BYTES, Settings, StoredDictionary};
use crate::archive::Cluster;

/// Rows re-encoded per transaction.
pub const CHUNK_ROWS: i64 = 2_000;

/// A plain event, as `compact` reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct PlainRow {
    pub raft_index: i64,
    pub position: i32,
    pub topic: String,
    pub namespace: String,
    pub key_ref: i64,
    pub event: String,
}

/// A plain event re-encoded: its identity and its new value.
#[derive(Debug)]
pub struct Rewritten {
    pub raft_index: i64,
    pub topic: String,
    pub namespace: String,
    pub key_ref: i64,
    pub dictionary_id: i64,
    pub bytes: Vec<u8>,
    /// The bytes of its JSON.
    pub raw_len: usize,
}

/// What a backend does for `compact`.
#[async_trait]
pub trait Compact: Sync {
    /// How many plain events each topic of the cluster has.
    async fn plain_counts(&self, cluster_id: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// The newest `limit` plain events of a topic, oldest first.
    async fn samples(
        &self,
        cluster_id: i64,
        topic: &str,
        limit: i64,
    ) -> Result<Samples, StoreError>;
    /// Up to [`CHUNK_ROWS`] plain events after `(raft_index, position)`, in
    /// stream order.
    async fn plain_rows(
        &self,
        cluster_id: i64,
        after: (i64, i32),
    ) -> Result<Vec<PlainRow>, StoreError>;
    /// Writes re-encoded events in one transaction (a row no longer plain
    /// is left as it is).
    async fn rewrite(&self, cluster_id: i64, rows: &[Rewritten]) -> Result<(), StoreError>;
    /// The newest dictionary of each topic of the cluster.
    async fn dictionaries(&self, cluster_id: i64) -> Result<Vec<StoredDictionary>, StoreError>;
    /// Stores a trained dictionary; returns its id.
    async fn store_dictionary(&self, cluster_id: i64, trained: &Trained)
    -> Result<i64, StoreError>;
    /// Gives the space freed back: on PostgreSQL `VACUUM event_log`, after
    /// rebuilding the archive's indexes when `vacuum`; on SQLite `VACUUM`
    /// when `vacuum` (the file is rewritten), else the free pages, on an
    /// archive created with `auto_vacuum = INCREMENTAL` (others reuse them
    /// for new events).
    async fn reclaim(&self, vacuum: bool) -> Result<(), StoreError>;
}

/// What `compact` did to a cluster.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Compacted {
    /// Dictionaries trained, by topic.
    pub trained: Vec<String>,
    /// Events re-encoded.
    pub events: u64,
    /// Their JSON bytes, and their bytes compressed.
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// Events whose compressed value did not decode back exactly; left plain.
    pub left_plain: u64,
}

/// Compresses the cluster's plain events; `progress` hears the events done
/// and the events to do.
pub async fn run(
    db: &dyn Compact,
    cluster: &Cluster,
    settings: Settings,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Compacted, StoreError> {
    let mut report = Compacted::default();
    let dictionaries = dictionaries(db, cluster, settings, &mut report).await?;
    let counts = db.plain_counts(cluster.id).await?;
    let total: i64 = counts
        .iter()
        .filter(|(topic, _)| dictionaries.contains_key(topic))
        .map(|(_, n)| n)
        .sum();
    let total = u64::try_from(total).unwrap_or_default();
    let mut after = (i64::MIN, i32::MIN);
    let mut done = 0;
    loop {
        let rows = db.plain_rows(cluster.id, after).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = (last.raft_index, last.position);
        let dicts = dictionaries.clone();
        let (rewritten, left_plain) = tokio::task::spawn_blocking(move || encode(&rows, &dicts))
            .await
            .unwrap_or_default();
        report.left_plain += left_plain;
        for row in &rewritten {
            report.raw_bytes += row.raw_len as u64;
            report.stored_bytes += row.bytes.len() as u64;
        }
        report.events += rewritten.len() as u64;
        db.rewrite(cluster.id, &rewritten).await?;
        done += rewritten.len() as u64 + left_plain;
        progress(done.min(total), total);
    }
    Ok(report)
}

/// The dictionary of each topic to compress: the newest stored one, or one
/// trained now on the topic's newest plain events when it has enough.
async fn dictionaries(
    db: &dyn Compact,
    cluster: &Cluster,
    settings: Settings,
    report: &mut Compacted,
) -> Result<Arc<HashMap<String, Arc<Dictionary>>>, StoreError> {
    let mut out = HashMap::new();
    for stored in db.dictionaries(cluster.id).await? {
        if let Some(dictionary) = Dictionary::new(stored.id, &stored.bytes) {
            out.insert(stored.topic, dictionary);
        }
    }
    let limit = i64::try_from(settings.train_after).unwrap_or(i64::MAX);
    for (topic, count) in db.plain_counts(cluster.id).await? {
        if out.contains_key(&topic) || count < limit {
            continue;
        }
        let mut samples = db.samples(cluster.id, &topic, limit).await?;
        keep_newest_bytes(&mut samples);
        let name = topic.clone();
        let trained =
            tokio::task::spawn_blocking(move || training::train(&name, &samples, DICTIONARY_BYTES))
                .await;
        let trained = match trained {
            Ok(Ok(trained)) => trained,
            Ok(Err(reason)) => {
                tracing::warn!(
                    topic,
                    reason,
                    "Could not train a dictionary; its events stay plain"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(topic, error = %e, "Training a dictionary failed");
                continue;
            }
        };
        let id = db.store_dictionary(cluster.id, &trained).await?;
        if let Some(dictionary) = Dictionary::new(id, &trained.bytes) {
            tracing::info!(cluster = %cluster.name, topic, dictionary = id, ratio = format!("{:.2}", trained.ratio), "Trained a dictionary");
            report.trained.push(topic.clone());
            out.insert(topic, dictionary);
        }
    }
    Ok(Arc::new(out))
}

/// Drops the oldest samples beyond [`SAMPLE_BYTES`].
fn keep_newest_bytes(samples: &mut Samples) {
    let mut bytes = 0;
    let keep = samples
        .iter()
        .rev()
        .take_while(|(_, raw)| {
            bytes += raw.len();
            bytes <= SAMPLE_BYTES
        })
        .count();
    samples.drain(..samples.len() - keep);
}

/// Compresses the rows of topics with a dictionary, each checked to decode
/// back to the same bytes; returns them and how many did not.
fn encode(
    rows: &[PlainRow],
    dictionaries: &HashMap<String, Arc<Dictionary>>,
) -> (Vec<Rewritten>, u64) {
    let Ok(mut encoder) = Encoder::new() else {
        return (Vec::new(), 0);
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut left_plain = 0;
    for row in rows {
        let Some(dictionary) = dictionaries.get(&row.topic) else {
            continue;
        };
        let bytes = encoder.compress(row.event.as_bytes(), dictionary);
        match bytes {
            Ok(bytes) if decompress(&bytes, dictionary).as_deref() == Ok(row.event.as_str()) => {
                out.push(Rewritten {
                    raft_index: row.raft_index,
                    topic: row.topic.clone(),
                    namespace: row.namespace.clone(),
                    key_ref: row.key_ref,
                    dictionary_id: dictionary.id,
                    bytes,
                    raw_len: row.event.len(),
                });
            }
            _ => left_plain += 1,
        }
    }
    (out, left_plain)
}
