//! Writing a list as its rows are read, through the answers' [`Sink`]: a
//! table that fits (the gaps after its rows), one JSON document (`Cluster`,
//! the context, `Gaps`, then the list, written row by row), or one JSON
//! record per line (gaps then go to the log). Nothing holds more than a
//! table's bounded look-ahead.

use std::io::Write;

use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::records::Listed;
use crate::archive::Gap;
use crate::query::QueryError;
use crate::query::render::{Look, Output};
use crate::query::sink::Sink;
use crate::store::StoreError;

/// What a list answer says besides its rows.
pub struct Frame<'a, C: Serialize> {
    pub cluster: &'a str,
    /// What was asked and where it was looked for (window, moment).
    pub context: &'a C,
    /// The recorded gaps of the stretch read.
    pub gaps: &'a [Gap],
    pub output: Output,
    pub look: &'a Look,
    /// A line a table starts with (where an answer at a moment stands).
    pub note: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Head<'a, C: Serialize> {
    cluster: &'a str,
    #[serde(flatten)]
    context: &'a C,
    #[serde(serialize_with = "crate::query::json::gaps")]
    gaps: &'a [Gap],
}

/// The members of the JSON document after its list: none.
#[derive(Serialize)]
struct Tail {}

/// Writes the rows of `rows` as they arrive; returns how many there were.
/// A table without rows writes nothing (the caller says nothing matched).
pub async fn rows<R, C>(
    frame: &Frame<'_, C>,
    rows: impl Stream<Item = Result<R, StoreError>>,
    out: &mut impl Write,
) -> Result<u64, QueryError>
where
    R: Listed,
    C: Serialize,
{
    let mut rows = std::pin::pin!(rows);
    let first = match rows.next().await.transpose()? {
        Some(first) => Some(first),
        None if frame.output == Output::Table => return Ok(0),
        None => None,
    };
    if let (Output::Table, Some(note)) = (frame.output, &frame.note) {
        writeln!(out, "{note}").map_err(QueryError::Output)?;
    }
    let mut sink = Sink::new(frame.output, out, *frame.look, R::COLUMNS, R::PLURAL);
    sink.start(&Head {
        cluster: frame.cluster,
        context: frame.context,
        gaps: frame.gaps,
    })?;
    let mut count = 0u64;
    let mut next = first;
    while let Some(row) = next {
        sink.item(&row, || row.cells(frame.look))?;
        count += 1;
        next = rows.next().await.transpose()?;
    }
    sink.finish(&Tail {}, frame.gaps, None)?;
    Ok(count)
}
