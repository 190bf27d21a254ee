//! Storing a batch's events with `COPY event_log … FROM STDIN (FORMAT binary)`.
//!
//! COPY inserts rows in bulk (several tuples per heap page and WAL record)
//! without the parameter arrays, their unpacking and the tuple store an
//! `INSERT … SELECT FROM UNNEST(…)` needs (docs/performance.md, PostgreSQL).
//! It has no `ON CONFLICT`, so the events of the batch already stored are
//! looked up first (by the identity index) and left out, as are repeats
//! within the batch; the unique index still guards the identity, and a
//! COPY that hits it (a writer racing outside the writer lock) fails whole,
//! for the caller to store the batch again with `ON CONFLICT DO NOTHING`.
//!
//! The binary format needs no escaping: each value is its length and its
//! bytes (big-endian integers; `text` and `json` as their UTF-8 text, which
//! PostgreSQL validates as JSON as it would any `json` input; `bytea` as
//! its bytes).

use std::collections::HashSet;

use foldhash::fast::RandomState;
use sqlx::PgConnection;

use crate::store::compress::Value;
use crate::store::names::RowRefs;
use crate::store::rows::EventRow;

/// The columns, in the order each row gives them.
const COPY_SQL: &str = "COPY event_log (cluster_id, raft_index, key_ref, job_ref, node_ref, \
     eval_ref, deployment_ref, received_at, position, topic, type, namespace, event, event_at, \
     time_source, presence, event_zstd, dictionary_id) FROM STDIN (FORMAT binary)";

/// Values per row.
const COLUMNS: i16 = 18;

/// The binary format's signature, flags (none) and header extension length (0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows are sent in pieces of about this size, so PostgreSQL works on the
/// first while the rest are encoded.
const CHUNK: usize = 1 << 20;

/// An event's identity, as the unique index `event_log_identity` has it
/// (within one cluster): raft index, topic, namespace, key.
type Identity<'a> = (i64, &'a str, &'a str, i64);

/// The identity of an event already stored, as read back.
#[derive(Debug, sqlx::FromRow)]
struct Stored {
    raft_index: i64,
    topic: String,
    namespace: String,
    key_ref: i64,
}

/// Stores the events of `rows` (with their resolved `refs` and stored
/// `values`, in the same order) that `event_log` does not hold yet; returns
/// how many were stored.
/// Must run in the batch's transaction.
pub(super) async fn insert_new(
    conn: &mut PgConnection,
    cluster_id: i64,
    rows: &[EventRow<'_>],
    refs: &[RowRefs],
    values: &[Value],
) -> Result<u64, sqlx::Error> {
    let mut indexes: Vec<i64> = rows.iter().map(|r| r.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    // A batch past everything stored (ingest keeping up, the usual case)
    // skips the probe of the identity index: the one-time condition on the
    // newest stored index is evaluated first.
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT raft_index, topic, namespace, key_ref FROM event_log \
         WHERE cluster_id = $1 AND raft_index = ANY($2::bigint[]) \
         AND $3 <= (SELECT max(raft_index) FROM event_log WHERE cluster_id = $1)",
    )
    .bind(cluster_id)
    .bind(&indexes)
    .bind(indexes.first().copied().unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?;
    let mut seen: HashSet<Identity<'_>, RandomState> =
        HashSet::with_capacity_and_hasher(rows.len() + stored.len(), RandomState::default());
    seen.extend(stored.iter().map(|s| {
        (
            s.raft_index,
            s.topic.as_str(),
            s.namespace.as_str(),
            s.key_ref,
        )
    }));

    let fresh: Vec<((&EventRow<'_>, &RowRefs), &Value)> = rows
        .iter()
        .zip(refs)
        .zip(values)
        .filter(|((row, refs), _)| {
            seen.insert((
                row.index,
                row.event.topic.as_str(),
                row.event.namespace.as_str(),
                refs.key,
            ))
        })
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }

    let mut copy = conn.copy_in_raw(COPY_SQL).await?;
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    buf.extend_from_slice(HEADER);
    for ((row, refs), value) in fresh {
        if let Err(e) = encode_row(&mut buf, cluster_id, row, refs, value) {
            copy.abort(e.to_string()).await?;
            return Err(e);
        }
        if buf.len() >= CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf.as_slice()).await?;
    copy.finish().await
}

/// Appends one row in COPY's binary format.
fn encode_row(
    buf: &mut Vec<u8>,
    cluster_id: i64,
    row: &EventRow<'_>,
    refs: &RowRefs,
    value: &Value,
) -> Result<(), sqlx::Error> {
    let event = row.event;
    buf.extend_from_slice(&COLUMNS.to_be_bytes());
    bigint(buf, Some(cluster_id));
    bigint(buf, Some(row.index));
    bigint(buf, Some(refs.key));
    bigint(buf, refs.job);
    bigint(buf, refs.node);
    bigint(buf, refs.eval);
    bigint(buf, refs.deployment);
    bigint(buf, Some(row.received_at));
    buf.extend_from_slice(&4i32.to_be_bytes());
    buf.extend_from_slice(&row.position.to_be_bytes());
    text(buf, &event.topic)?;
    text(buf, &event.event_type)?;
    text(buf, &event.namespace)?;
    match value.zstd() {
        Some(_) => null(buf),
        None => text(buf, &event.raw)?,
    }
    bigint(buf, Some(row.time.at));
    text(buf, row.time.source.as_str())?;
    smallint(buf, row.presence());
    match value.zstd() {
        Some(frame) => bytes(buf, frame)?,
        None => null(buf),
    }
    bigint(buf, value.dictionary_id());
    Ok(())
}

/// A `smallint` value, or NULL.
fn smallint(buf: &mut Vec<u8>, value: Option<i16>) {
    match value {
        Some(v) => {
            buf.extend_from_slice(&2i32.to_be_bytes());
            buf.extend_from_slice(&v.to_be_bytes());
        }
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A `bigint` value, or NULL.
fn bigint(buf: &mut Vec<u8>, value: Option<i64>) {
    match value {
        Some(v) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&v.to_be_bytes());
        }
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A `text` or `json` value: its length, then its UTF-8 bytes as they are.
fn text(buf: &mut Vec<u8>, value: &str) -> Result<(), sqlx::Error> {
    bytes(buf, value.as_bytes())
}

/// A `bytea` value (or the bytes of a text): its length, then its bytes.
fn bytes(buf: &mut Vec<u8>, value: &[u8]) -> Result<(), sqlx::Error> {
    let len = i32::try_from(value.len()).map_err(|_| {
        sqlx::Error::Encode(format!("a value of {} bytes is too long to store", value.len()).into())
    })?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(value);
    Ok(())
}

/// A NULL of any type.
fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}
