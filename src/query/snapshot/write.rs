//! Writing a snapshot as its objects come, Node first, then Job, then
//! Allocation: one table per section that fits the width
//! ([`crate::query::table`]), JSON written piece by piece as one
//! document, NDJSON one object per line.

use std::io::{self, Write};

use futures_util::StreamExt;
use serde::Serialize;

use super::{Described, Header, Objects, TOPICS};
use crate::archive::Gap;
use crate::query::payload::SnapshotFields;
use crate::query::reconstructed::{self, Source, Used};
use crate::query::render::{self, Look, Output};
use crate::query::table::{Column, Table};
use crate::query::{QueryError, gaps, json};

/// Writes `header` and every object of `objects` to `out`.
pub(super) async fn write<W: Write>(
    header: &Header<'_>,
    mut objects: Objects<'_>,
    output: Output,
    out: &mut W,
    look: &Look,
) -> Result<(), QueryError> {
    let mut writer = Writer::new(output, *look, out);
    writer.start(header).map_err(QueryError::Output)?;
    while let Some(described) = objects.next().await {
        writer.object(&described?).map_err(QueryError::Output)?;
    }
    writer.finish(header).map_err(QueryError::Output)
}

/// Where the rows go: straight out, or into the current section's table.
enum Into<'a, W: Write> {
    Out(&'a mut W),
    Table(Table<'a, W>),
}

/// Where a writer is in the snapshot.
struct Writer<'a, W: Write> {
    output: Output,
    look: Look,
    /// The writer, or the open section's table holding it; `None` only
    /// while one becomes the other.
    into: Option<Into<'a, W>>,
    /// The section being written: an index in [`TOPICS`], or none yet.
    section: Option<usize>,
    /// JSON: whether the current section has an object already.
    listed: bool,
}

impl<'a, W: Write> Writer<'a, W> {
    fn new(output: Output, look: Look, out: &'a mut W) -> Self {
        Writer {
            output,
            look,
            into: Some(Into::Out(out)),
            section: None,
            listed: false,
        }
    }

    /// The writer itself, closing the open table first.
    fn out(&mut self) -> io::Result<&mut W> {
        if matches!(self.into, Some(Into::Table(_))) {
            if let Some(Into::Table(table)) = self.into.take() {
                self.into = Some(Into::Out(table.finish()?));
            }
        }
        match &mut self.into {
            Some(Into::Out(out)) => Ok(&mut **out),
            _ => Err(io::Error::other("the snapshot's writer was lost")),
        }
    }

    fn start(&mut self, h: &Header<'_>) -> io::Result<()> {
        let (output, look) = (self.output, self.look);
        let out = self.out()?;
        match output {
            Output::Table => {
                let line = format!("as of {}{}", h.point, left_out_note(h));
                let look = Look {
                    colour: false,
                    ..look
                };
                render::note(out, "", &line, &look, "")
            }
            Output::Json => {
                // The document's first members, its closing brace held back.
                let head = serde_json::to_string(&Head {
                    cluster: h.cluster,
                    at: h.at_time,
                    at_index: h.at_index,
                    terminal_allocations_left_out: h.left_out,
                })?;
                let open = head.len().saturating_sub(1);
                write!(out, "{}", head.get(..open).unwrap_or_default())
            }
            Output::Ndjson => {
                for gap in &h.gaps {
                    tracing::warn!("{}", gaps::sentence(gap));
                }
                for u in &h.used {
                    tracing::warn!("{}", reconstructed::sentence(u));
                }
                if h.left_out.is_some_and(|n| n > 0) {
                    tracing::info!("{}", left_out_note(h).trim_start());
                }
                Ok(())
            }
        }
    }

    fn object(&mut self, d: &Described) -> io::Result<()> {
        let section = TOPICS.iter().position(|t| *t == d.topic).unwrap_or(2);
        self.advance(section)?;
        if self.output == Output::Table && matches!(self.into, Some(Into::Out(_))) {
            self.open_table(section)?;
        }
        match (self.output, &mut self.into) {
            (Output::Table, Some(Into::Table(table))) => table.row(cells(section, d, &self.look)),
            (Output::Json, _) => {
                let comma = if self.listed { "," } else { "" };
                self.listed = true;
                let out = self.out()?;
                write!(out, "{comma}")?;
                serde_json::to_writer(&mut *out, d).map_err(io::Error::from)
            }
            (Output::Ndjson, _) => render::json_line(self.out()?, d),
            (Output::Table, _) => Ok(()),
        }
    }

    /// Closes sections up to `section` and opens it; nothing when it is
    /// open already.
    fn advance(&mut self, section: usize) -> io::Result<()> {
        while self.section.is_none_or(|s| s < section) {
            self.close()?;
            let next = self.section.map_or(0, |s| s + 1);
            self.section = Some(next);
            match self.output {
                Output::Table => {}
                Output::Json => {
                    write!(self.out()?, ",\"{}\":[", JSON_NAMES[next])?;
                    self.listed = false;
                }
                Output::Ndjson => {}
            }
        }
        Ok(())
    }

    /// Opens section `section`'s table, under its title, at its first row.
    fn open_table(&mut self, section: usize) -> io::Result<()> {
        let fit = self.look.fit();
        if let Some(Into::Out(out)) = self.into.take() {
            writeln!(out, "\n{}", TITLES[section])?;
            self.into = Some(Into::Table(Table::plain(out, COLUMNS[section], fit)));
        }
        Ok(())
    }

    /// Ends the current section: its table, or the JSON list.
    fn close(&mut self) -> io::Result<()> {
        if self.section.is_none() {
            return Ok(());
        }
        let output = self.output;
        let out = self.out()?;
        match output {
            Output::Json => write!(out, "]"),
            _ => Ok(()),
        }
    }

    fn finish(&mut self, h: &Header<'_>) -> io::Result<()> {
        self.advance(TOPICS.len() - 1)?;
        self.close()?;
        let (output, look) = (self.output, self.look);
        let out = self.out()?;
        match output {
            Output::Table => {
                render::gap_lines(out, &h.gaps, &look)?;
                reconstructed::lines(out, &h.used, &look)
            }
            Output::Json => {
                // The document's last members, after its opening brace.
                let tail = serde_json::to_string(&Tail {
                    gaps: &h.gaps,
                    reconstructions: &h.used,
                })?;
                writeln!(out, ",{}", tail.get(1..).unwrap_or_default())
            }
            Output::Ndjson => Ok(()),
        }
    }
}

/// The JSON document's members before the objects.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Head<'a> {
    cluster: &'a str,
    /// The time asked for, if the point was a time.
    #[serde(serialize_with = "json::ms_opt")]
    at: Option<i64>,
    /// The index of the moment shown: the newest at or before the point.
    at_index: u64,
    terminal_allocations_left_out: Option<u64>,
}

/// The JSON document's members after the objects.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tail<'a> {
    #[serde(serialize_with = "json::gaps")]
    gaps: &'a [Gap],
    reconstructions: &'a [Used],
}

/// The sentence after `as of …` saying how many terminal allocations were
/// left out and how to see them; empty when none were.
fn left_out_note(h: &Header<'_>) -> String {
    let Some(n) = h.left_out.filter(|n| *n > 0) else {
        return String::new();
    };
    let window = h
        .terminal_within
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| humantime::format_duration(std::time::Duration::from_millis(ms)).to_string())
        .unwrap_or_default();
    let noun = if n == 1 { "allocation" } else { "allocations" };
    format!(
        " ({n} terminal {noun} last changed more than {window} before left out: \
         --terminal-within DURATION widens the window, --all shows every one)"
    )
}

/// Each section's title, columns, and name in JSON.
const TITLES: [&str; 3] = ["NODES", "JOBS", "ALLOCATIONS"];
const JSON_NAMES: [&str; 3] = ["Nodes", "Jobs", "Allocations"];
const COLUMNS: [&[Column]; 3] = [
    &[
        Column::shrinks("ID", 60, 8),
        Column::shrinks("NAME", 90, 12),
        Column::fixed("STATUS", 80),
        Column::shrinks("ELIGIBILITY", 50, 8),
        Column::fixed("DRAIN", 40),
        Column::shrinks("INDEX", 30, 6),
    ],
    &[
        Column::shrinks("ID", 90, 12),
        Column::shrinks("NAMESPACE", 40, 9),
        Column::fixed("VERSION", 60),
        Column::fixed("STATUS", 80),
        Column::fixed("STOP", 50),
        Column::shrinks("INDEX", 30, 6),
    ],
    &[
        Column::shrinks("ID", 90, 8),
        Column::shrinks("NAMESPACE", 40, 9),
        Column::shrinks("JOB", 85, 12),
        Column::shrinks("GROUP", 60, 8),
        Column::shrinks("NODE", 70, 10),
        Column::fixed("DESIRED", 75),
        Column::fixed("CLIENT", 80),
        Column::shrinks("INDEX", 30, 6),
    ],
];

/// A table row of section `section` for an object, read from its raw JSON.
fn cells(section: usize, d: &Described, look: &Look) -> Vec<String> {
    let f: SnapshotFields = serde_json::from_str(d.object.get()).unwrap_or_default();
    let text = |value: Option<String>| value.unwrap_or_default();
    let index = match d.source {
        Source::Event => d.index.to_string(),
        Source::Reconstruction => format!("{} (reconstructed)", d.index),
    };
    match section {
        0 => vec![
            look.id(&d.key).to_owned(),
            text(f.name),
            text(f.status),
            text(f.scheduling_eligibility),
            text(f.drain),
            index,
        ],
        1 => vec![
            d.key.clone(),
            d.namespace.clone(),
            text(f.version),
            text(f.status),
            text(f.stop),
            index,
        ],
        _ => vec![
            look.id(&d.key).to_owned(),
            d.namespace.clone(),
            text(f.job_id),
            text(f.task_group),
            text(f.node_name),
            text(f.desired_status),
            text(f.client_status),
            index,
        ],
    }
}
