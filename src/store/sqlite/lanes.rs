//! The web timeline's rows on SQLite ([`crate::store::lanes`]), each
//! handed over as one JSON array. sqlx copies every value of a row as it
//! hands the row over from its worker thread (`sqlite3_value_dup`, an
//! allocation and a free each): a week's 15,000 rows of 18 values spent
//! about a quarter of `serve`'s CPU there (docs/performance.md). One text
//! value a row is one copy, and serde reads it back into a [`LaneRow`].

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::{STYLE, SqliteStore};
use crate::archive::Cluster;
use crate::store::statement::Statement;
use crate::store::{LaneRow, LaneWindow, StoreError, lanes};

/// What a column of a [`LaneRow`] holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Text,
    MaybeInt,
    MaybeText,
}

/// The columns of a [`LaneRow`], in the order of its fields and of
/// [`Packed`]'s.
const COLUMNS: [(&str, Kind); 18] = [
    ("raft_index", Kind::Int),
    ("position", Kind::Int),
    ("topic", Kind::Text),
    ("namespace", Kind::Text),
    ("key", Kind::Text),
    ("job_id", Kind::MaybeText),
    ("node_id", Kind::MaybeText),
    ("event_at", Kind::Int),
    ("status", Kind::MaybeText),
    ("ended_at", Kind::MaybeInt),
    ("node_name", Kind::MaybeText),
    ("task_group", Kind::MaybeText),
    ("version", Kind::MaybeInt),
    ("eligibility", Kind::MaybeText),
    ("drain", Kind::MaybeInt),
    ("hidden", Kind::MaybeInt),
    ("bucket", Kind::MaybeInt),
    ("count", Kind::MaybeInt),
];

/// A [`LaneRow`] as its JSON array reads; `drain` is SQLite's 0 or 1.
#[derive(Deserialize)]
struct Packed(
    i64,
    i32,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The window's rows ([`crate::store::Store::lane_rows`]): its
/// statements, each later one started while those before it are read.
pub(super) fn lane_rows<'a>(
    store: &'a SqliteStore,
    cluster: &'a Cluster,
    window: &'a LaneWindow,
) -> BoxStream<'a, Result<LaneRow, StoreError>> {
    let statements = lanes::statements(cluster.id, window, STYLE);
    crate::store::ahead::chain_started(statements.into_iter().map(|statement| {
        super::lists::stream::<(String,)>(store, packed(statement))
            .and_then(|(row,)| async move { unpack(&row) })
            .boxed()
    }))
}

/// `statement`'s rows as one JSON array each, in its order (raft index,
/// position): ordered again outside, as SQLite may drop the order of a
/// subquery whose rows are not ordered further on.
fn packed(statement: Statement) -> Statement {
    let values: Vec<String> = COLUMNS
        .iter()
        .map(|(name, _)| format!("r.{name}"))
        .collect();
    Statement {
        sql: format!(
            "SELECT json_array({}) AS row FROM ({}) AS r ORDER BY r.raft_index, r.position",
            values.join(", "),
            statement.sql
        ),
        binds: statement.binds,
    }
}

/// The [`LaneRow`] a packed row holds; a value of another kind is an error
/// naming its column.
fn unpack(row: &str) -> Result<LaneRow, StoreError> {
    let p: Packed = serde_json::from_str(row).map_err(|e| misread(row, e))?;
    Ok(LaneRow {
        raft_index: p.0,
        position: p.1,
        topic: p.2,
        namespace: p.3,
        key: p.4,
        job_id: p.5,
        node_id: p.6,
        event_at: p.7,
        status: p.8,
        ended_at: p.9,
        node_name: p.10,
        task_group: p.11,
        version: p.12,
        eligibility: p.13,
        drain: p.14.map(|d| d != 0),
        hidden: p.15,
        bucket: p.16,
        count: p.17,
    })
}

/// The error of a packed row that did not read: names the first column
/// whose value is not of its kind.
fn misread(row: &str, e: serde_json::Error) -> StoreError {
    let values: Vec<serde_json::Value> = serde_json::from_str(row).unwrap_or_default();
    let column = COLUMNS
        .iter()
        .enumerate()
        .find(|(i, (_, kind))| !fits(values.get(*i), *kind))
        .map_or("?", |(_, (name, _))| name);
    StoreError::Query(sqlx::Error::ColumnDecode {
        index: format!("\"{column}\""),
        source: Box::new(e),
    })
}

/// Whether `value` is of `kind`.
fn fits(value: Option<&serde_json::Value>, kind: Kind) -> bool {
    use serde_json::Value;
    match (value, kind) {
        (Some(Value::Number(n)), Kind::Int | Kind::MaybeInt) => n.is_i64(),
        (Some(Value::String(_)), Kind::Text | Kind::MaybeText) => true,
        (Some(Value::Null), Kind::MaybeInt | Kind::MaybeText) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{COLUMNS, unpack};

    /// A row as `json_array` writes it, with `value` for the column `at`.
    fn row_with(at: &str, value: &str) -> String {
        let values: Vec<&str> = COLUMNS
            .iter()
            .map(|(name, _)| match *name {
                n if n == at => value,
                "raft_index" | "position" | "event_at" | "drain" => "1",
                "topic" | "namespace" | "key" => "\"Node\"",
                _ => "null",
            })
            .collect();
        format!("[{}]", values.join(","))
    }

    #[test]
    fn a_packed_row_reads_into_its_fields() {
        let row = unpack(&row_with("status", "\"ready\"")).expect("a row");
        assert_eq!(
            (row.raft_index, row.topic.as_str(), row.status.as_deref()),
            (1, "Node", Some("ready"))
        );
        assert_eq!((row.drain, row.version), (Some(true), None));
    }

    #[test]
    fn a_value_of_another_kind_is_an_error_naming_its_column() {
        for (column, value) in [("status", "5"), ("event_at", "\"today\""), ("key", "null")] {
            let message = unpack(&row_with(column, value))
                .expect_err("an error")
                .to_string();
            assert!(
                message.contains(&format!("column \"{column}\"")),
                "{column}: {message}"
            );
        }
    }
}
