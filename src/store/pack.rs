//! Packing older events into blocks (`compact --pack-older-than`, `ingest
//! --pack-older-than`, migration 0032): the cluster's events before its hot
//! window (those dated since a moment, by Nomad's clock), in stream order,
//! are read back (whether stored plain or compressed alone), cut into
//! blocks of about [`block::TARGET_BYTES`] of JSON, and each block is
//! written with its events marked as packed into it, in a transaction of
//! its own. Every block is checked to give back each of its
//! events byte for byte before it is written. Events still waiting for
//! their time are left alone, as is everything inside the hot window, which
//! keeps a frame per event for the reads of recent history.
//!
//! Each backend ([`Pack`]) reads and writes the rows; [`run`] drives it.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use super::block::{self, Block, Identity, Packed};
use super::dictionaries::{self, Source};
use super::filter::event_columns;
use super::params::Params;
use super::records::EventRecord;
use super::statement::{Placeholders, Statement};
use crate::archive::{ArchivedEvent, Cluster};

/// Events read per statement while filling a block.
pub const READ_ROWS: i64 = 512;

/// A block ready to be written.
#[derive(Debug)]
pub struct NewBlock {
    pub first_index: i64,
    pub last_index: i64,
    /// The identities of its events (raft index, topic, namespace, key),
    /// in stream order.
    pub keys: Vec<(i64, String, String, String)>,
    /// The zstd frame.
    pub bytes: Vec<u8>,
}

/// What a backend does to pack events.
#[async_trait]
pub trait Pack: Sync {
    /// Where the events read back are decoded.
    fn source(&self) -> &dyn Source;
    /// The raft index of the earliest event dated at or after `at` (through
    /// the index by time: not the least index of all such events, which
    /// would read them all).
    async fn first_index_at(&self, cluster_id: i64, at: i64) -> Result<Option<i64>, StoreError>;
    /// The last raft index of the cluster's newest block.
    async fn newest_block(&self, cluster_id: i64) -> Result<Option<i64>, StoreError>;
    /// Up to [`READ_ROWS`] events after `after`, below raft index `below`,
    /// dated and not packed yet, in stream order.
    async fn unpacked(
        &self,
        cluster_id: i64,
        after: (i64, i32),
        below: i64,
    ) -> Result<Vec<EventRecord>, StoreError>;
    /// Writes `block` and marks the events it holds (those still unpacked)
    /// as packed into it, in one transaction; returns how many it marked.
    /// None left to mark (a prune or another packer came first) writes
    /// nothing.
    async fn store_block(&self, cluster_id: i64, block: &NewBlock) -> Result<u64, StoreError>;
}

/// What packing did to a cluster.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PackReport {
    pub blocks: u64,
    pub events: u64,
    /// The JSON bytes of the events packed, and the bytes of their blocks.
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

impl PackReport {
    /// Logs what was packed in `cluster`.
    pub fn log(&self, cluster: &str) {
        tracing::info!(
            cluster,
            blocks = self.blocks,
            events = self.events,
            json_mb = format!("{:.1}", self.raw_bytes as f64 / 1e6),
            packed_mb = format!("{:.1}", self.stored_bytes as f64 / 1e6),
            "Packed history into blocks"
        );
    }
}

/// [`Pack::unpacked`]: `event` is how the backend reads a stored value as
/// bytes.
pub fn unpacked(
    cluster_id: i64,
    (index, position): (i64, i32),
    below: i64,
    style: Placeholders,
    event: &str,
) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    let (i, n) = (p.int(index), p.int(i64::from(position)));
    let (b, limit) = (p.int(below), p.int(READ_ROWS));
    let order = p.stream_order();
    p.statement(format!(
        "SELECT {} FROM event_log AS e{order} JOIN names AS k ON k.id = e.key_ref \
         WHERE e.cluster_id = {c} AND (e.raft_index, e.position) > ({i}, {n}) \
           AND e.raft_index < {b} AND e.block_id IS NULL AND e.event_at IS NOT NULL \
         ORDER BY e.raft_index, e.position LIMIT {limit}",
        event_columns(event)
    ))
}

/// [`Pack::first_index_at`].
pub fn first_index_at(cluster_id: i64, at: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, t) = (p.int(cluster_id), p.int(at));
    p.statement(format!(
        "SELECT raft_index FROM event_log WHERE cluster_id = {c} AND event_at >= {t} \
         ORDER BY event_at, raft_index LIMIT 1"
    ))
}

/// [`Pack::newest_block`].
pub fn newest_block(cluster_id: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    p.statement(format!(
        "SELECT MAX(last_index) FROM event_blocks WHERE cluster_id = {c}"
    ))
}

/// What to pack, and into what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackSettings {
    /// Events from the first one dated at or after this (Unix ms, by
    /// Nomad's clock) on are left alone; `None` packs every event.
    pub before_time: Option<i64>,
    /// JSON bytes that close a block ([`block::TARGET_BYTES`]; tests make
    /// smaller blocks).
    pub target_bytes: usize,
    /// Start after the newest block (a background check, which must not
    /// read the packed history again every time) and leave the last block
    /// for a later check until it is full, rather than from the start of
    /// the stream (`compact`, which also packs what a gap's fill stored
    /// there later, and packs everything it reads).
    pub resume: bool,
}

impl PackSettings {
    /// Packs what is older than `age` at `now` (Unix ms, by Nomad's clock),
    /// as `prune --before` counts; a zero age packs every event.
    pub fn older_than(age: Duration, now: i64, target_bytes: usize, resume: bool) -> Self {
        let ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        PackSettings {
            before_time: (!age.is_zero()).then(|| now.saturating_sub(ms)),
            target_bytes,
            resume,
        }
    }
}

/// Packs the cluster's events as `settings` say; `progress` hears the
/// events packed.
pub async fn run(
    db: &dyn Pack,
    cluster: &Cluster,
    settings: PackSettings,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<PackReport, StoreError> {
    let mut report = PackReport::default();
    let target = settings.target_bytes.max(1);
    let below = hot_start(db, cluster, settings.before_time).await?;
    let mut after = (i64::MIN, i32::MIN);
    if settings.resume {
        if let Some(index) = db.newest_block(cluster.id).await? {
            after = (index, i32::MIN);
        }
    }
    let mut pending: Vec<ArchivedEvent> = Vec::new();
    let mut exhausted = false;
    loop {
        while !exhausted && !full(&pending, target) {
            let records = db.unpacked(cluster.id, after, below).await?;
            exhausted = records.len() < READ_ROWS as usize;
            if let Some(last) = records.last() {
                after = (last.raft_index, last.position);
            }
            pending.extend(dictionaries::decode_all(db.source(), cluster, records).await?);
        }
        let take = block_length(&pending, target);
        // A background check leaves a block that is not full for later.
        let partial = !full(&pending, target);
        if take == 0 || (settings.resume && partial) {
            return Ok(report);
        }
        let events: Vec<ArchivedEvent> = pending.drain(..take).collect();
        let (block, raw) = tokio::task::spawn_blocking(move || build(&events))
            .await
            .map_err(|e| packing_failed(e.to_string()))?
            .map_err(packing_failed)?;
        let marked = db.store_block(cluster.id, &block).await?;
        if marked == 0 {
            continue;
        }
        report.blocks += 1;
        report.events += marked;
        report.raw_bytes += raw;
        report.stored_bytes += block.bytes.len() as u64;
        progress(report.events);
    }
}

/// The raft index the hot window starts at, the first event dated at or
/// after `before_time`: events below it are packed (all of them when no
/// event is dated so late).
async fn hot_start(
    db: &dyn Pack,
    cluster: &Cluster,
    before_time: Option<i64>,
) -> Result<i64, StoreError> {
    let Some(time) = before_time else {
        return Ok(i64::MAX);
    };
    Ok(db
        .first_index_at(cluster.id, time)
        .await?
        .unwrap_or(i64::MAX))
}

/// Whether `pending` holds a whole block.
fn full(pending: &[ArchivedEvent], target: usize) -> bool {
    block_length(pending, target) < pending.len()
}

/// How many of the first events of `pending` make the next block: up to
/// `target` bytes of JSON (at least one event) and [`block::MAX_EVENTS`]
/// events.
fn block_length(pending: &[ArchivedEvent], target: usize) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for event in pending.iter().take(block::MAX_EVENTS) {
        if n > 0 && bytes >= target {
            break;
        }
        bytes += event.raw.len();
        n += 1;
    }
    n
}

/// The block of `events`, checked to give each back byte for byte, and
/// their JSON bytes.
fn build(events: &[ArchivedEvent]) -> Result<(NewBlock, u64), String> {
    let list: Vec<Packed<'_>> = events
        .iter()
        .map(|e| Packed {
            id: Identity {
                raft_index: crate::store::to_i64(e.index),
                topic: &e.topic,
                namespace: &e.namespace,
                key: &e.key,
            },
            json: e.raw.as_bytes(),
        })
        .collect();
    let bytes = block::pack(&list)?;
    let decoded = Block::unpack(&bytes).map_err(|e| e.to_string())?;
    for e in &list {
        let back = decoded.event(&e.id).map_err(|err| err.to_string())?;
        if back.as_bytes() != e.json {
            return Err(format!(
                "the event at index {} did not read back",
                e.id.raft_index
            ));
        }
    }
    let raw = list.iter().map(|e| e.json.len() as u64).sum();
    let block = NewBlock {
        first_index: list.first().map_or(0, |e| e.id.raft_index),
        last_index: list.last().map_or(0, |e| e.id.raft_index),
        keys: events
            .iter()
            .map(|e| {
                let index = crate::store::to_i64(e.index);
                (index, e.topic.clone(), e.namespace.clone(), e.key.clone())
            })
            .collect(),
        bytes,
    };
    Ok((block, raw))
}

fn packing_failed(detail: String) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(format!(
        "a block could not be built: {detail}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::TimeSource;

    fn event(index: u64, bytes: usize) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: "Job".into(),
            key: "web".into(),
            namespace: "default".into(),
            received_at: 0,
            time: 0,
            time_source: TimeSource::Nomad,
            raw: "x".repeat(bytes),
        }
    }

    #[test]
    fn a_block_closes_at_its_target_bytes_or_its_most_events() {
        let target = 1_000;
        let big: Vec<_> = (0..5).map(|i| event(i, target / 2)).collect();
        assert_eq!(block_length(&big, target), 2);
        assert!(full(&big, target));
        let huge = vec![event(1, target * 3), event(2, 10)];
        assert_eq!(block_length(&huge, target), 1);
        let small: Vec<_> = (0..5_000).map(|i| event(i, 0)).collect();
        assert_eq!(block_length(&small, target), block::MAX_EVENTS);
        assert!(!full(&small[..100], target));
        assert_eq!(block_length(&[], target), 0);
    }

    #[test]
    fn an_age_counts_back_from_now_and_zero_packs_everything() {
        let day = PackSettings::older_than(Duration::from_secs(86_400), 100_000_000, 10, true);
        assert_eq!(day.before_time, Some(100_000_000 - 86_400_000));
        assert!(day.resume);
        let all = PackSettings::older_than(Duration::ZERO, 100_000_000, 10, false);
        assert_eq!(all.before_time, None);
    }

    #[test]
    fn a_built_block_names_its_first_and_last_index() {
        let events: Vec<_> = (7..10).map(|i| event(i, 20)).collect();
        let (block, raw) = build(&events).expect("build");
        assert_eq!((block.first_index, block.last_index), (7, 9));
        let indexes: Vec<i64> = block.keys.iter().map(|k| k.0).collect();
        assert_eq!(indexes, vec![7, 8, 9]);
        assert_eq!(block.keys[0].1, "Job");
        assert_eq!(raw, 60);
    }
}
