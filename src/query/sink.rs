//! Writing an answer's list as its items come, in any format: a table that
//! fits ([`super::table`]), one JSON document written piece by piece (its
//! head, the list element by element, its tail), or one JSON line per item.
//! Nothing but a table's bounded look-ahead is held.

use std::io::{self, Write};

use serde::Serialize;

use super::render::{self, Look, Output};
use super::table::{Column, Table};
use super::{QueryError, gaps};
use crate::archive::Gap;

/// Where the answer goes, by format.
enum Mode<'a, W: Write> {
    Table(Table<'a, W>),
    /// The writer, and whether the list has an element already.
    Json(&'a mut W, bool),
    Ndjson(&'a mut W),
}

/// A list being written: started with its head, fed item by item, finished
/// with its tail.
pub struct Sink<'a, W: Write> {
    mode: Mode<'a, W>,
    look: Look,
    /// The list's name in the JSON document (`Events`, `Timeline`).
    list: &'static str,
}

impl<'a, W: Write> Sink<'a, W> {
    /// A sink for `output`; `columns` are the table's, its last wrapped.
    pub fn new(
        output: Output,
        out: &'a mut W,
        look: Look,
        columns: &[Column],
        list: &'static str,
    ) -> Self {
        let mode = match output {
            Output::Table => Mode::Table(Table::wrapping(out, columns, look.fit())),
            Output::Json => Mode::Json(out, false),
            Output::Ndjson => Mode::Ndjson(out),
        };
        Sink { mode, look, list }
    }

    /// How the answer's table is shown.
    pub fn look(&self) -> Look {
        self.look
    }

    /// Writes the JSON document's members before the list (`head`, a struct).
    pub fn start(&mut self, head: &impl Serialize) -> Result<(), QueryError> {
        let written = match &mut self.mode {
            Mode::Json(out, _) => {
                let list = self.list;
                serde_json::to_string(head)
                    .map_err(io::Error::from)
                    .and_then(|head| {
                        let open = head.get(..head.len().saturating_sub(1)).unwrap_or("{");
                        let comma = if open == "{" { "" } else { "," };
                        write!(out, "{open}{comma}\"{list}\":[")
                    })
            }
            Mode::Ndjson(_) | Mode::Table(_) => Ok(()),
        };
        written.map_err(QueryError::Output)
    }

    /// Writes one item: `record` in JSON, or the table row `cells` gives.
    pub fn item(
        &mut self,
        record: &impl Serialize,
        cells: impl FnOnce() -> Vec<String>,
    ) -> Result<(), QueryError> {
        let written = match &mut self.mode {
            Mode::Table(table) => table.row(cells()),
            Mode::Json(out, listed) => {
                let comma = if *listed { "," } else { "" };
                *listed = true;
                write!(out, "{comma}").and_then(|()| {
                    serde_json::to_writer(&mut **out, record).map_err(io::Error::from)
                })
            }
            Mode::Ndjson(out) => render::json_line(*out, record),
        };
        written.map_err(QueryError::Output)
    }

    /// Ends the answer: the JSON document's members after the list (`tail`,
    /// a struct), or under a table the gap lines and `note`; NDJSON logs
    /// the gaps, as its lines hold no room for them.
    pub fn finish(
        self,
        tail: &impl Serialize,
        overlapping: &[Gap],
        note: Option<&str>,
    ) -> Result<(), QueryError> {
        let written = match self.mode {
            Mode::Table(table) => table.finish().and_then(|out| {
                render::gap_lines(out, overlapping, &self.look)?;
                let look = Look {
                    colour: false,
                    ..self.look
                };
                match note {
                    Some(note) => render::note(out, "", note, &look, ""),
                    None => Ok(()),
                }
            }),
            Mode::Json(out, _) => serde_json::to_string(tail)
                .map_err(io::Error::from)
                .and_then(|tail| match tail.get(1..) {
                    Some("}") | None => writeln!(out, "]}}"),
                    Some(rest) => writeln!(out, "],{rest}"),
                }),
            Mode::Ndjson(_) => {
                for gap in overlapping {
                    tracing::warn!("{}", gaps::sentence(gap));
                }
                Ok(())
            }
        };
        written.map_err(QueryError::Output)
    }
}
