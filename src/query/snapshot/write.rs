//! Writing a snapshot as its objects come, Node first, then Job, then
//! Allocation: tables keep only the rendered cells of one section at a
//! time (to align its columns), JSON is written piece by piece as one
//! document, NDJSON one object per line.

use std::io::{self, Write};

use futures_util::StreamExt;
use serde::Serialize;

use super::{Described, Header, Objects, TOPICS};
use crate::archive::Gap;
use crate::query::payload::SnapshotFields;
use crate::query::reconstructed::{self, Source, Used};
use crate::query::render::{self, Output, short_id};
use crate::query::{QueryError, gaps};

/// Writes `header` and every object of `objects` to `out`.
pub(super) async fn write(
    header: &Header<'_>,
    mut objects: Objects<'_>,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> Result<(), QueryError> {
    let mut writer = Writer::new(output, colour);
    writer.start(header, out).map_err(QueryError::Output)?;
    while let Some(described) = objects.next().await {
        writer
            .object(&described?, out)
            .map_err(QueryError::Output)?;
    }
    writer.finish(header, out).map_err(QueryError::Output)
}

/// Where a writer is in the snapshot.
struct Writer {
    output: Output,
    colour: bool,
    /// The section being written: an index in [`TOPICS`], or none yet.
    section: Option<usize>,
    /// Tables: the rows of the current section, header first.
    rows: Vec<Vec<String>>,
    /// JSON: whether the current section has an object already.
    listed: bool,
}

impl Writer {
    fn new(output: Output, colour: bool) -> Self {
        Writer {
            output,
            colour,
            section: None,
            rows: Vec::new(),
            listed: false,
        }
    }

    fn start(&mut self, h: &Header<'_>, out: &mut impl Write) -> io::Result<()> {
        match self.output {
            Output::Table => {
                writeln!(out, "as of {}{}", h.point, left_out_note(h))
            }
            Output::Json => {
                // The document's first members, its closing brace held back.
                let head = serde_json::to_string(&Head {
                    cluster: h.cluster,
                    at: &h.point,
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

    fn object(&mut self, d: &Described, out: &mut impl Write) -> io::Result<()> {
        let section = TOPICS.iter().position(|t| *t == d.topic).unwrap_or(2);
        self.advance(section, out)?;
        match self.output {
            Output::Table => {
                self.rows.push(cells(section, d));
                Ok(())
            }
            Output::Json => {
                if self.listed {
                    write!(out, ",")?;
                }
                self.listed = true;
                serde_json::to_writer(&mut *out, d).map_err(io::Error::from)
            }
            Output::Ndjson => render::json_line(out, d),
        }
    }

    /// Closes sections up to `section` and opens it; nothing when it is
    /// open already.
    fn advance(&mut self, section: usize, out: &mut impl Write) -> io::Result<()> {
        while self.section.is_none_or(|s| s < section) {
            self.close(out)?;
            let next = self.section.map_or(0, |s| s + 1);
            self.section = Some(next);
            match self.output {
                Output::Table => {
                    self.rows = vec![HEADERS[next].iter().map(|h| (*h).to_owned()).collect()]
                }
                Output::Json => {
                    write!(out, ",\"{}\":[", JSON_NAMES[next])?;
                    self.listed = false;
                }
                Output::Ndjson => {}
            }
        }
        Ok(())
    }

    /// Ends the current section: a table of its rows, or the JSON list.
    fn close(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some(section) = self.section else {
            return Ok(());
        };
        match self.output {
            Output::Table if self.rows.len() > 1 => {
                writeln!(out, "\n{}", TITLES[section])?;
                render::table(out, &self.rows, self.colour)?;
                self.rows.clear();
                Ok(())
            }
            Output::Json => write!(out, "]"),
            _ => Ok(()),
        }
    }

    fn finish(&mut self, h: &Header<'_>, out: &mut impl Write) -> io::Result<()> {
        self.advance(TOPICS.len() - 1, out)?;
        self.close(out)?;
        match self.output {
            Output::Table => {
                render::gap_lines(out, &h.gaps, self.colour)?;
                reconstructed::lines(out, &h.used, self.colour)
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
struct Head<'a> {
    cluster: &'a str,
    at: &'a str,
    terminal_allocations_left_out: Option<u64>,
}

/// The JSON document's members after the objects.
#[derive(Serialize)]
struct Tail<'a> {
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

/// Each section's title, column names, and name in JSON.
const TITLES: [&str; 3] = ["NODES", "JOBS", "ALLOCATIONS"];
const JSON_NAMES: [&str; 3] = ["nodes", "jobs", "allocations"];
const HEADERS: [&[&str]; 3] = [
    &["ID", "NAME", "STATUS", "ELIGIBILITY", "DRAIN", "INDEX"],
    &["ID", "NAMESPACE", "VERSION", "STATUS", "STOP", "INDEX"],
    &["ID", "JOB", "GROUP", "NODE", "DESIRED", "CLIENT", "INDEX"],
];

/// A table row of section `section` for an object, read from its raw JSON.
fn cells(section: usize, d: &Described) -> Vec<String> {
    let f: SnapshotFields = serde_json::from_str(d.object.get()).unwrap_or_default();
    let text = |value: Option<String>| value.unwrap_or_default();
    let index = match d.source {
        Source::Event => d.index.to_string(),
        Source::Reconstruction => format!("{} (reconstructed)", d.index),
    };
    match section {
        0 => vec![
            short_id(&d.key).to_owned(),
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
            short_id(&d.key).to_owned(),
            text(f.job_id),
            text(f.task_group),
            text(f.node_name),
            text(f.desired_status),
            text(f.client_status),
            index,
        ],
    }
}
