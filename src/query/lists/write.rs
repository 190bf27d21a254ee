//! Writing a list as its rows are read: a table (header at the first row,
//! the gaps after the rows), one JSON document (`Cluster`, the context,
//! `Gaps`, then the list, written row by row), or one JSON record per line
//! (gaps then go to the log). Nothing holds more than one row.

use std::io::Write;

use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::records::Listed;
use super::table;
use crate::archive::Gap;
use crate::query::render::{self, Look, Output};
use crate::query::{QueryError, gaps};
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

/// Writes the rows of `rows` as they arrive; returns how many there were.
pub async fn rows<R, C>(
    frame: &Frame<'_, C>,
    rows: impl Stream<Item = Result<R, StoreError>>,
    out: &mut impl Write,
) -> Result<u64, QueryError>
where
    R: Listed,
    C: Serialize,
{
    let output = |e: std::io::Error| QueryError::Output(e);
    match (frame.output, &frame.note) {
        (Output::Json, _) => write_head(frame, R::PLURAL, out).map_err(output)?,
        (Output::Table, Some(note)) => writeln!(out, "{note}").map_err(output)?,
        _ => {}
    }
    let mut count = 0u64;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        let row = row?;
        write_row(frame, &row, count, out).map_err(output)?;
        count += 1;
    }
    write_tail(frame, count, out).map_err(output)?;
    Ok(count)
}

/// The JSON document up to its list's first row.
fn write_head<C: Serialize>(
    frame: &Frame<'_, C>,
    plural: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let head = Head {
        cluster: frame.cluster,
        context: frame.context,
        gaps: frame.gaps,
    };
    let text = serde_json::to_string(&head)?;
    // The head's closing brace makes way for the list.
    let open = text.strip_suffix('}').unwrap_or(&text);
    write!(out, "{open},\"{plural}\":[")
}

fn write_row<R: Listed, C: Serialize>(
    frame: &Frame<'_, C>,
    row: &R,
    written: u64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match frame.output {
        Output::Table => {
            if written == 0 {
                table::header(out, R::COLUMNS, frame.look.colour)?;
            }
            writeln!(out, "{}", table::line(R::COLUMNS, &row.cells()))
        }
        Output::Json => {
            if written > 0 {
                write!(out, ",")?;
            }
            serde_json::to_writer(&mut *out, row)?;
            Ok(())
        }
        Output::Ndjson => render::json_line(out, row),
    }
}

fn write_tail<C: Serialize>(
    frame: &Frame<'_, C>,
    count: u64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match frame.output {
        Output::Table if count > 0 => render::gap_lines(out, frame.gaps, frame.look),
        Output::Table => Ok(()),
        Output::Json => writeln!(out, "]}}"),
        Output::Ndjson => {
            for gap in frame.gaps {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            Ok(())
        }
    }
}
