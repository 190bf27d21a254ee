//! Dating events archived before migration 0011: their `event_at`,
//! `time_source` and `presence` are read from their payloads, as ingest now
//! does for every new event, frame by frame, in small transactions, when
//! the archive is first opened by a writer (`ingest`, `import`, `migrate`,
//! `compact`, `prune`) of a version that knows them; reads refuse an
//! archive with events left to date ([`pending`]). Progress goes to a
//! terminal when there is one.
//!
//! Each backend ([`Undated`]) reads, per cluster, a chunk of the rows still
//! to date in raft-index order (through the time index, where undated rows
//! have a range of their own: the check costs nothing once every row is
//! dated) after a cursor, and writes back what [`date`] computed; [`run`]
//! drives it, and the cursor makes every row read once.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use async_trait::async_trait;

use super::StoreError;
use super::dictionaries::Dictionaries;
use super::marker_changes;
use super::minutes;
use super::statement::{Placeholders, Statement};
use crate::archive::{EventTime, ReceivedFrame, frame_times};
use crate::nomad::{Frame, wire};

/// What a backend does for the backfill.
#[async_trait]
pub trait Undated: Sync {
    /// Every cluster's id.
    async fn clusters(&self) -> Result<Vec<i64>, StoreError>;
    /// How many rows of the cluster are still to date.
    async fn count(&self, cluster_id: i64) -> Result<u64, StoreError>;
    /// Up to [`CHUNK_ROWS`] rows to date with an index above `after`, in
    /// raft-index order.
    async fn chunk(&self, cluster_id: i64, after: i64) -> Result<Vec<UndatedRow>, StoreError>;
    /// Every row to date of one frame.
    async fn frame(&self, cluster_id: i64, index: i64) -> Result<Vec<UndatedRow>, StoreError>;
    /// Writes dated rows in one transaction.
    async fn write(&self, rows: &[DatedRow]) -> Result<(), StoreError>;
    /// `(id, bytes)` of the stored dictionaries among `ids`, for rows
    /// stored compressed (migration 0016).
    async fn dictionaries(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
}

/// Dates every row still to date; returns how many there were.
pub async fn run(db: &dyn Undated) -> Result<u64, StoreError> {
    let mut total = 0;
    for cluster_id in db.clusters().await? {
        total += db.count(cluster_id).await?;
    }
    if total == 0 {
        return Ok(0);
    }
    tracing::info!("dating {total} archived events by Nomad's clock (once, after an upgrade)");
    let bar = progress(total, "dating archived events by Nomad's clock");
    let dictionaries = Dictionaries::default();
    for cluster_id in db.clusters().await? {
        let mut after = i64::MIN;
        loop {
            let rows = db.chunk(cluster_id, after).await?;
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= CHUNK_ROWS;
            let (rows, end) = match whole_frames(rows, full) {
                Chunk::Frames(rows, end) => (rows, end),
                Chunk::LargeFrame(index) => (db.frame(cluster_id, index).await?, index),
                Chunk::Done => break,
            };
            let missing = dictionaries.missing(rows.iter().map(|r| r.dictionary_id));
            if !missing.is_empty() {
                dictionaries.add(&missing, db.dictionaries(&missing).await?);
            }
            db.write(&date(&rows, &dictionaries)).await?;
            bar.inc(rows.len() as u64);
            after = end;
        }
    }
    bar.finish_and_clear();
    Ok(total)
}

/// Whether any event still waits to be dated: a writer's upgrade that did
/// not finish, which a read must not answer from. Costs one look at the
/// time index per cluster.
pub async fn pending(db: &dyn Undated) -> Result<bool, StoreError> {
    for cluster_id in db.clusters().await? {
        if db.count(cluster_id).await? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Rows read per chunk (whole frames: a chunk's last frame, possibly cut by
/// the limit, waits for the next chunk).
pub const CHUNK_ROWS: i64 = 5_000;

/// A row still to date.
#[derive(Debug, sqlx::FromRow)]
pub struct UndatedRow {
    pub cluster_id: i64,
    pub raft_index: i64,
    pub position: i32,
    pub received_at: i64,
    /// The event's JSON, or its zstd frame when `dictionary_id` is set.
    pub event: Vec<u8>,
    pub dictionary_id: Option<i64>,
}

impl UndatedRow {
    /// The event's JSON; `None` when it cannot be read.
    fn json(&self, dictionaries: &Dictionaries) -> Option<String> {
        dictionaries
            .text(self.event.clone(), self.dictionary_id)
            .ok()
    }
}

/// What a row is updated with.
#[derive(Debug, Clone, PartialEq)]
pub struct DatedRow {
    pub cluster_id: i64,
    pub raft_index: i64,
    pub position: i32,
    pub time: EventTime,
    pub presence: Option<i16>,
}

/// What a chunk of rows read in raft-index order holds.
#[derive(Debug)]
pub enum Chunk {
    /// Whole frames, sorted in stream order, and the last index they reach.
    Frames(Vec<UndatedRow>, i64),
    /// A full chunk of one frame only: that frame must be read whole.
    LargeFrame(i64),
    /// Nothing left.
    Done,
}

/// Keeps the whole frames of a chunk read in raft-index order: when the
/// chunk was full, the rows of its last index may continue in the next
/// chunk, so they are left for it.
pub fn whole_frames(mut rows: Vec<UndatedRow>, full: bool) -> Chunk {
    let Some(last) = rows.last().map(|r| r.raft_index) else {
        return Chunk::Done;
    };
    if full {
        rows.retain(|r| r.raft_index != last);
    }
    rows.sort_by_key(|r| (r.raft_index, r.position));
    match rows.last().map(|r| r.raft_index) {
        Some(end) => Chunk::Frames(rows, end),
        None => Chunk::LargeFrame(last),
    }
}

/// The statements that date what is kept beside the events just dated,
/// per cluster: `marker_changes`' rows over the span of its rows' indexes
/// ([`super::marker_changes::dated`]), and the minutes the events now fall
/// in ([`super::minutes::of_times`]).
pub fn redated(rows: &[DatedRow], style: Placeholders) -> Vec<Statement> {
    let mut clusters: BTreeMap<i64, Vec<&DatedRow>> = BTreeMap::new();
    for row in rows {
        clusters.entry(row.cluster_id).or_default().push(row);
    }
    let mut statements = Vec::new();
    for (cluster_id, rows) in clusters {
        let indexes = rows.iter().map(|r| r.raft_index);
        if let (Some(lo), Some(hi)) = (indexes.clone().min(), indexes.max()) {
            statements.push(marker_changes::dated(cluster_id, (lo, hi), style));
        }
        let times = rows.iter().map(|r| (r.raft_index, r.time.at));
        statements.extend(minutes::of_times(cluster_id, times, style));
    }
    statements
}

/// Dates the rows of whole frames, as ingest dates a frame's events (a
/// compressed one decoded with `dictionaries`). A row whose JSON cannot be
/// read (which ingest never stores) keeps its receipt time and no presence.
pub fn date(rows: &[UndatedRow], dictionaries: &Dictionaries) -> Vec<DatedRow> {
    let mut out = Vec::with_capacity(rows.len());
    for frame_rows in
        rows.chunk_by(|a, b| (a.cluster_id, a.raft_index) == (b.cluster_id, b.raft_index))
    {
        let index = u64::try_from(frame_rows[0].raft_index).unwrap_or_default();
        let events = frame_rows
            .iter()
            .map(|r| {
                r.json(dictionaries)
                    .and_then(|json| wire::parse_stored(&json, index).ok())
                    .unwrap_or_default()
            })
            .collect();
        let received = ReceivedFrame {
            frame: Frame { index, events },
            received_at: frame_rows[0].received_at,
            preceding: None,
        };
        let times = frame_times(&received);
        for ((row, event), time) in frame_rows.iter().zip(&received.frame.events).zip(times) {
            out.push(DatedRow {
                cluster_id: row.cluster_id,
                raft_index: row.raft_index,
                position: row.position,
                time,
                presence: event.presence.map(|p| p.code()),
            });
        }
    }
    out
}

/// A progress bar on stderr for `total` steps of `what`, hidden unless
/// stderr is a terminal.
pub fn progress(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let template = format!("{what} {{bar:30}} {{pos}}/{{len}} ({{eta}} left)");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Builds the keyframes each cluster lacks (an archive written before
/// them, or history imported behind them), after [`run`] dated its events;
/// costs a look at the newest keyframe when there is nothing to build.
pub async fn keyframes(store: &dyn super::Store) -> Result<(), StoreError> {
    for name in store.cluster_names().await? {
        let Some(cluster) = store.find_cluster(&name).await? else {
            continue;
        };
        let bar = progress(0, &format!("building keyframes of `{name}` up to index"));
        let report = {
            let bar = bar.clone();
            move |index: u64, last: u64| {
                bar.set_length(last);
                bar.set_position(index);
            }
        };
        let built = store.build_keyframes(&cluster, &report).await?;
        bar.finish_and_clear();
        if built > 0 {
            tracing::info!(cluster = %name, built, "built the keyframes the archive lacked");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: i64, position: i32, event: &str) -> UndatedRow {
        UndatedRow {
            cluster_id: 1,
            raft_index: index,
            position,
            received_at: 5_000,
            event: event.as_bytes().to_vec(),
            dictionary_id: None,
        }
    }

    const ALLOC: &str = r#"{"Topic":"Allocation","Type":"PlanResult","Key":"a","Payload":{"Allocation":{"ModifyTime":2000000000,"ClientStatus":"failed"}}}"#;
    const EVAL: &str =
        r#"{"Topic":"Evaluation","Type":"PlanResult","Key":"e","Payload":{"Evaluation":{}}}"#;
    const POOL: &str =
        r#"{"Topic":"NodePool","Type":"NodePoolUpserted","Key":"p","Payload":{"NodePool":{}}}"#;

    #[test]
    fn stored_frames_are_dated_as_ingest_dates_them() {
        let rows = vec![
            row(7, 0, ALLOC),
            row(7, 1, EVAL),
            row(8, 0, POOL),
            row(9, 0, "not json"),
        ];
        let dated = date(&rows, &Dictionaries::default());
        let got: Vec<_> = dated
            .iter()
            .map(|d| (d.raft_index, d.time.at, d.time.source.as_str(), d.presence))
            .collect();
        assert_eq!(
            got,
            vec![
                (7, 2_000, "nomad", Some(1)),
                (7, 2_000, "nomad", None),
                (8, 5_000, "received", None),
                (9, 5_000, "received", None),
            ]
        );
    }

    #[test]
    fn a_full_chunk_leaves_its_last_frame_to_the_next() {
        let rows = vec![row(7, 1, EVAL), row(7, 0, EVAL), row(8, 0, EVAL)];
        match whole_frames(rows, true) {
            Chunk::Frames(kept, 7) => {
                assert_eq!(kept.iter().map(|r| r.position).collect::<Vec<_>>(), [0, 1]);
            }
            other => panic!("{other:?}"),
        }
        let rows = vec![row(8, 0, EVAL), row(8, 1, EVAL)];
        assert!(matches!(whole_frames(rows, true), Chunk::LargeFrame(8)));
        let rows = vec![row(8, 0, EVAL), row(8, 1, EVAL)];
        assert!(matches!(whole_frames(rows, false), Chunk::Frames(kept, 8) if kept.len() == 2));
        assert!(matches!(whole_frames(Vec::new(), true), Chunk::Done));
    }
}
