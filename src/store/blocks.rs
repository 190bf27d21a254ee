//! The blocks of older events ([`super::block`]) a store reads back: each
//! read loads the blocks its rows name before decoding them, from a cache
//! the store keeps (a block holds about 1 MB decoded, so the cache is
//! bounded by [`CACHE_BYTES`]), and decodes with the blocks it loaded
//! itself, whatever another read evicts meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::StoreError;
use super::block::{Block, Identity};
use super::codec::DecodeError;

/// Decoded bytes the cache keeps beyond what the current reads hold.
const CACHE_BYTES: usize = 64 << 20;

/// Rows decoded together: their blocks are loaded at once, so a read holds
/// at most this many blocks besides the cache.
pub const ROWS_PER_LOAD: usize = 32;

/// A block as loading found it.
#[derive(Clone)]
enum Entry {
    Ready(Arc<Block>),
    /// Its stored bytes do not decode.
    Damaged(DecodeError),
}

/// Blocks by `event_blocks.id`, as loaded.
#[derive(Default)]
pub struct Blocks {
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<i64, Entry>,
    bytes: usize,
}

/// The blocks one read loaded, for decoding its rows.
#[derive(Default)]
pub struct Loaded {
    entries: HashMap<i64, Entry>,
}

impl Loaded {
    /// The JSON of the event `event` of block `id`.
    pub fn event(&self, id: i64, event: &Identity<'_>) -> Result<String, DecodeError> {
        match self.entries.get(&id) {
            Some(Entry::Ready(block)) => block.event(event),
            Some(Entry::Damaged(reason)) => Err(reason.clone()),
            None => Err(DecodeError::MissingBlock(id)),
        }
    }
}

/// Where a backend keeps its blocks.
#[async_trait]
pub trait BlockSource: Sync {
    /// The store's cache.
    fn blocks(&self) -> &Blocks;
    /// `(id, bytes)` of the stored blocks among `ids`.
    async fn read_blocks(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
}

/// The blocks among `ids` (a row's `block_id`, if any), from the cache or
/// read and decoded now. A block named but not stored is left out, and
/// decoding a row of it is an error naming the row's event.
pub async fn load(
    source: &dyn BlockSource,
    ids: impl IntoIterator<Item = Option<i64>>,
) -> Result<Loaded, StoreError> {
    let mut wanted: Vec<i64> = ids.into_iter().flatten().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut loaded = Loaded::default();
    if wanted.is_empty() {
        return Ok(loaded);
    }
    let missing = source.blocks().take(&wanted, &mut loaded);
    if missing.is_empty() {
        return Ok(loaded);
    }
    let rows = source.read_blocks(&missing).await?;
    let decoded = decode(rows).await?;
    source.blocks().keep(&decoded);
    loaded.entries.extend(decoded);
    Ok(loaded)
}

/// Decodes stored blocks on blocking threads, a share of them per core
/// (a timeline over packed history decodes hundreds of blocks).
async fn decode(rows: Vec<(i64, Vec<u8>)>) -> Result<Vec<(i64, Entry)>, StoreError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = rows.len().div_ceil(cores).max(1);
    let mut rows = rows.into_iter().peekable();
    let mut tasks = Vec::new();
    while rows.peek().is_some() {
        let part: Vec<(i64, Vec<u8>)> = rows.by_ref().take(share).collect();
        tasks.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|(id, bytes)| (id, entry(&bytes)))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        let decoded = task.await.map_err(|e| {
            StoreError::Query(sqlx::Error::Protocol(format!(
                "decoding blocks of events failed: {e}"
            )))
        })?;
        out.extend(decoded);
    }
    Ok(out)
}

/// A stored block decoded, or why it cannot be.
fn entry(bytes: &[u8]) -> Entry {
    Block::unpack(bytes).map_or_else(Entry::Damaged, |b| Entry::Ready(Arc::new(b)))
}

impl Blocks {
    /// Copies the cached blocks among `wanted` into `loaded`; returns the
    /// others.
    fn take(&self, wanted: &[i64], loaded: &mut Loaded) -> Vec<i64> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut missing = Vec::new();
        for id in wanted {
            match cache.entries.get(id) {
                Some(entry) => {
                    loaded.entries.insert(*id, entry.clone());
                }
                None => missing.push(*id),
            }
        }
        missing
    }

    /// Caches blocks just decoded, emptying the cache first when they
    /// would take it past [`CACHE_BYTES`].
    fn keep(&self, decoded: &[(i64, Entry)]) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let adding: usize = decoded.iter().map(|(_, e)| size(e)).sum();
        if cache.bytes + adding > CACHE_BYTES {
            cache.entries.clear();
            cache.bytes = 0;
        }
        for (id, entry) in decoded {
            cache.bytes += size(entry);
            cache.entries.insert(*id, entry.clone());
        }
    }
}

fn size(entry: &Entry) -> usize {
    match entry {
        Entry::Ready(block) => block.decoded_bytes(),
        Entry::Damaged(_) => 0,
    }
}
