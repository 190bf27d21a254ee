//! Filling `evaluation_details` (migration 0019) for the Evaluation events
//! stored compressed before it: the migration's SQL reads the plain ones
//! and cannot decode the others, so it marks the archive in
//! `pending_details` (migration 0020) and the first writer of a version
//! that knows them decodes those events and fills their rows, in chunks
//! of their own transaction, then clears the mark. Reads refuse an archive
//! still marked ([`pending`]): `query evals` would leave those evaluations
//! out without a word.
//!
//! Each backend ([`Unfilled`]) reads the events without a row after a
//! cursor and writes the rows; [`run`] drives it.

use async_trait::async_trait;

use super::backfill::progress;
use super::dictionaries::Dictionaries;
use super::rows::to_u64;
use super::{StoreError, UnreadableEvent};
use crate::nomad::details::{self, Details, EvaluationDetails};

/// Events read per chunk.
pub const CHUNK_ROWS: i64 = 2_000;

/// Whether the archive is marked; the same SQL on both backends.
pub const MARKED: &str = "SELECT EXISTS (SELECT 1 FROM pending_details)";

/// The mark cleared.
pub const CLEAR: &str = "DELETE FROM pending_details";

/// An event `e` without its row in `evaluation_details`.
pub const WITHOUT_ROW: &str = "NOT EXISTS (SELECT 1 FROM evaluation_details AS d \
     WHERE d.cluster_id = e.cluster_id AND d.raft_index = e.raft_index \
     AND d.position = e.position)";

/// How many compressed Evaluation events have no row.
pub const COUNT: &str = "SELECT COUNT(*) FROM event_log AS e \
     WHERE e.topic = 'Evaluation' AND e.dictionary_id IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM evaluation_details AS d \
       WHERE d.cluster_id = e.cluster_id AND d.raft_index = e.raft_index \
       AND d.position = e.position)";

/// Why a read refuses an archive still marked.
pub const UNFILLED: &str = "holds evaluations stored compressed that `query evals` cannot list yet \
     (an upgrade that did not finish)";

/// A compressed Evaluation event without its details row.
#[derive(Debug, sqlx::FromRow)]
pub struct EvaluationEvent {
    pub cluster_id: i64,
    /// The cluster's name and the event's key, to name it in an error.
    pub cluster: String,
    pub key: String,
    pub raft_index: i64,
    pub position: i32,
    pub event: Vec<u8>,
    pub dictionary_id: i64,
}

/// A details row to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRow {
    pub cluster_id: i64,
    pub raft_index: i64,
    pub position: i32,
    pub details: EvaluationDetails,
}

/// What a backend does for the fill.
#[async_trait]
pub trait Unfilled: Sync {
    /// Whether the archive is marked.
    async fn marked(&self) -> Result<bool, StoreError>;
    /// How many compressed Evaluation events have no details row.
    async fn count(&self) -> Result<u64, StoreError>;
    /// Up to [`CHUNK_ROWS`] of them after `after` (cluster, index,
    /// position), in that order.
    async fn chunk(&self, after: (i64, i64, i32)) -> Result<Vec<EvaluationEvent>, StoreError>;
    /// Inserts rows in one transaction.
    async fn write(&self, rows: &[EvaluationRow]) -> Result<(), StoreError>;
    /// Clears the mark.
    async fn clear(&self) -> Result<(), StoreError>;
    /// `(id, bytes)` of the stored dictionaries among `ids`.
    async fn dictionaries(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
}

/// Whether a read must refuse the archive.
pub async fn pending(db: &dyn Unfilled) -> Result<bool, StoreError> {
    db.marked().await
}

/// Fills every missing row of a marked archive, then clears the mark;
/// returns how many events were read.
pub async fn run(db: &dyn Unfilled) -> Result<u64, StoreError> {
    if !db.marked().await? {
        return Ok(0);
    }
    let total = db.count().await?;
    if total > 0 {
        tracing::info!("listing {total} evaluations stored compressed (once, after an upgrade)");
    }
    let bar = progress(total, "listing evaluations stored compressed");
    let dictionaries = Dictionaries::default();
    let mut after = (i64::MIN, i64::MIN, i32::MIN);
    loop {
        let events = db.chunk(after).await?;
        let Some(last) = events.last() else {
            break;
        };
        after = (last.cluster_id, last.raft_index, last.position);
        let missing = dictionaries.missing(events.iter().map(|e| Some(e.dictionary_id)));
        if !missing.is_empty() {
            dictionaries.add(&missing, db.dictionaries(&missing).await?);
        }
        db.write(&rows(&events, &dictionaries)?).await?;
        bar.inc(events.len() as u64);
    }
    bar.finish_and_clear();
    db.clear().await?;
    Ok(total)
}

/// The details of `events`; an event that cannot be decoded is an error
/// naming it, never a row left out.
fn rows(
    events: &[EvaluationEvent],
    dictionaries: &Dictionaries,
) -> Result<Vec<EvaluationRow>, StoreError> {
    events
        .iter()
        .map(|e| {
            let raw = dictionaries
                .text(e.event.clone(), Some(e.dictionary_id))
                .map_err(|reason| {
                    StoreError::Undecodable(Box::new(UnreadableEvent {
                        cluster: e.cluster.clone(),
                        index: to_u64(e.raft_index),
                        topic: "Evaluation".to_owned(),
                        key: e.key.clone(),
                        reason,
                    }))
                })?;
            let details = match details::read("Evaluation", &raw) {
                Details::Evaluation(details) => details,
                _ => EvaluationDetails::default(),
            };
            Ok(EvaluationRow {
                cluster_id: e.cluster_id,
                raft_index: e.raft_index,
                position: e.position,
                details,
            })
        })
        .collect()
}
