//! The dictionaries a store's events were compressed with, read from the
//! archive once and kept for the store's life (a few hundred KB per
//! cluster), and decoding the events read back with them. A dictionary is
//! looked up by the id its events name, so events deleted around it never
//! change how the others decode.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::block::Identity;
use super::blocks::{self, BlockSource, Loaded, ROWS_PER_LOAD};
use super::codec::{self, DecodeError, Dictionary};
use super::records::EventRecord;
use super::rows::to_u64;
use super::{StoreError, UnreadableEvent};
use crate::archive::{ArchivedEvent, Cluster};

/// Dictionaries by `dictionaries.id`, as loaded.
#[derive(Default)]
pub struct Dictionaries {
    cache: RwLock<HashMap<i64, Entry>>,
}

/// What loading a dictionary found.
enum Entry {
    Ready(Arc<Dictionary>),
    /// Stored bytes that are no zstd dictionary.
    Unreadable,
    /// Named by an event but not in the table. A dictionary is stored
    /// before any event names it, so it will not appear later.
    Absent,
}

impl Dictionaries {
    /// The ids among `ids` not loaded yet, each once.
    pub fn missing(&self, ids: impl IntoIterator<Item = Option<i64>>) -> Vec<i64> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<i64> = ids
            .into_iter()
            .flatten()
            .filter(|id| !cache.contains_key(id))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Keeps the dictionaries read from the archive (`rows`: id and
    /// bytes) for the ids `asked`.
    pub fn add(&self, asked: &[i64], rows: Vec<(i64, Vec<u8>)>) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        for id in asked {
            cache.insert(*id, Entry::Absent);
        }
        for (id, bytes) in rows {
            let entry = Dictionary::new(id, &bytes).map_or(Entry::Unreadable, Entry::Ready);
            cache.insert(id, entry);
        }
    }

    /// The dictionary `id`, when it was loaded and is readable.
    pub fn get(&self, id: i64) -> Result<Arc<Dictionary>, DecodeError> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        match cache.get(&id) {
            Some(Entry::Ready(dict)) => Ok(dict.clone()),
            Some(Entry::Unreadable) => Err(DecodeError::Damaged(format!(
                "its dictionary `{id}` is no zstd dictionary"
            ))),
            Some(Entry::Absent) | None => Err(DecodeError::MissingDictionary(id)),
        }
    }

    /// A stored value as JSON text: `stored` itself when plain
    /// (`dictionary_id` NULL), else its zstd frame decoded with that
    /// dictionary (loaded first).
    pub fn text(&self, stored: Vec<u8>, dictionary_id: Option<i64>) -> Result<String, DecodeError> {
        match dictionary_id {
            None => String::from_utf8(stored).map_err(|_| DecodeError::NotText),
            Some(id) => self
                .get(id)
                .and_then(|dict| codec::decompress(&stored, &dict)),
        }
    }

    /// An event read back, its stored value decoded (from its block, in
    /// `blocks`, when it was packed into one); an error naming the event
    /// when it cannot be.
    pub fn decode(
        &self,
        cluster: &str,
        mut record: EventRecord,
        blocks: &Loaded,
    ) -> Result<ArchivedEvent, StoreError> {
        let raw = match record.block_id {
            Some(id) => blocks.event(
                id,
                &Identity {
                    raft_index: record.raft_index,
                    topic: &record.topic,
                    namespace: &record.namespace,
                    key: &record.key,
                },
            ),
            None => self.text(std::mem::take(&mut record.event), record.dictionary_id),
        };
        match raw {
            Ok(raw) => Ok(record.into_event(raw)),
            Err(reason) => Err(StoreError::Undecodable(Box::new(UnreadableEvent {
                cluster: cluster.to_owned(),
                index: to_u64(record.raft_index),
                topic: record.topic,
                key: record.key,
                reason,
            }))),
        }
    }
}

/// Where a backend keeps its dictionaries.
#[async_trait]
pub trait Source: Sync {
    /// The store's loaded dictionaries.
    fn dictionaries(&self) -> &Dictionaries;
    /// `(id, bytes)` of the stored dictionaries among `ids`.
    async fn read(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
    /// The ids of a cluster's dictionaries.
    async fn ids(&self, cluster_id: i64) -> Result<Vec<i64>, StoreError>;
    /// Where the store's blocks of older events are read from.
    fn block_source(&self) -> &dyn BlockSource;
}

/// Loads the dictionaries among `ids` not loaded yet.
pub async fn load(
    source: &dyn Source,
    ids: impl IntoIterator<Item = Option<i64>>,
) -> Result<(), StoreError> {
    let missing = source.dictionaries().missing(ids);
    if !missing.is_empty() {
        let rows = source.read(&missing).await?;
        source.dictionaries().add(&missing, rows);
    }
    Ok(())
}

/// Loads every dictionary of the cluster not loaded yet: before a stream
/// of events, which holds its connection while it is read (a snapshot's
/// events were all stored, with their dictionaries, before its moment was
/// resolved).
pub async fn load_cluster(source: &dyn Source, cluster: &Cluster) -> Result<(), StoreError> {
    let ids = source.ids(cluster.id).await?;
    load(source, ids.into_iter().map(Some)).await
}

/// `records` decoded, their dictionaries loaded first, and the blocks of
/// each [`ROWS_PER_LOAD`] of them before those are decoded: a page of a
/// timeline may name a different block in every row, and only so many are
/// held at once.
pub async fn decode_all(
    source: &dyn Source,
    cluster: &Cluster,
    records: Vec<EventRecord>,
) -> Result<Vec<ArchivedEvent>, StoreError> {
    load(source, records.iter().map(|r| r.dictionary_id)).await?;
    let dictionaries = source.dictionaries();
    let mut out = Vec::with_capacity(records.len());
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let group: Vec<EventRecord> = records.by_ref().take(ROWS_PER_LOAD).collect();
        let blocks = blocks::load(source.block_source(), group.iter().map(|r| r.block_id)).await?;
        for record in group {
            out.push(dictionaries.decode(&cluster.name, record, &blocks)?);
        }
    }
    Ok(out)
}
