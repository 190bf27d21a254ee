//! Writing answers: an aligned table for people (bold headers on a terminal,
//! none when piped or with NO_COLOR), one JSON document, or one JSON object
//! per line for scripts. Each event line carries at least Index, Topic,
//! Type, Key, Namespace and Time.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::value::RawValue;

use super::gaps;
use crate::archive::{ArchivedEvent, Gap, TimeSource};

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Ndjson,
}

/// Whether to use ANSI colour: a terminal, and no NO_COLOR.
pub fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// RFC 3339 (UTC, milliseconds) for Unix milliseconds.
pub fn time(millis: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or_default());
    humantime::format_rfc3339_millis(t).to_string()
}

/// When something happened, as answers give it: `Time` by Nomad's clock
/// (or the receipt time when its frame carried none: `TimeSource`
/// `received`), and `Received`, when the archive received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dated {
    pub time: String,
    pub time_source: TimeSource,
    pub received: String,
}

impl Dated {
    /// An event's time and receipt.
    pub fn of(event: &ArchivedEvent) -> Self {
        Dated {
            time: time(event.time),
            time_source: event.time_source,
            received: time(event.received_at),
        }
    }

    /// Something known only by when it was read (a reconstruction).
    pub fn read_at(when: &str) -> Self {
        Dated {
            time: when.to_owned(),
            time_source: TimeSource::Received,
            received: when.to_owned(),
        }
    }

    /// The TIME cell of a table: `~` marks a receipt time.
    pub fn cell(&self) -> String {
        match self.time_source {
            TimeSource::Nomad => self.time.clone(),
            TimeSource::Received => format!("~{}", self.time),
        }
    }
}

/// An archived event as scripts see it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventRecord<'a> {
    pub index: u64,
    pub topic: &'a str,
    #[serde(rename = "Type")]
    pub event_type: String,
    pub key: &'a str,
    pub namespace: &'a str,
    #[serde(flatten)]
    pub time: Dated,
    /// The whole event as archived.
    pub event: Box<RawValue>,
}

/// The event's type, read from its JSON (the archive keeps it as received).
pub fn event_type(raw: &str) -> String {
    #[derive(serde::Deserialize)]
    struct TypeOnly {
        #[serde(rename = "Type", default)]
        event_type: String,
    }
    serde_json::from_str::<TypeOnly>(raw)
        .map(|t| t.event_type)
        .unwrap_or_default()
}

/// Writes rows as an aligned table; the first row is the header.
pub fn table(out: &mut impl Write, rows: &[Vec<String>], colour: bool) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(value);
            } else {
                let pad = widths[c] - value.chars().count();
                line.push_str(value);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let line = line.trim_end();
        if i == 0 && colour {
            writeln!(out, "\x1b[1m{line}\x1b[0m")?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Writes the gap sentences for a human answer.
pub fn gap_lines(out: &mut impl Write, overlapping: &[Gap], colour: bool) -> io::Result<()> {
    for gap in overlapping {
        if colour {
            writeln!(out, "\x1b[33m! {}\x1b[0m", gaps::sentence(gap))?;
        } else {
            writeln!(out, "! {}", gaps::sentence(gap))?;
        }
    }
    Ok(())
}

/// The record of an event for JSON output; `None` if its stored JSON is not
/// valid (which ingest never stores).
pub fn record(event: &ArchivedEvent) -> Option<EventRecord<'_>> {
    Some(EventRecord {
        index: event.index,
        topic: &event.topic,
        event_type: event_type(&event.raw),
        key: &event.key,
        namespace: &event.namespace,
        time: Dated::of(event),
        event: RawValue::from_string(event.raw.clone()).ok()?,
    })
}

/// Writes one JSON value on its own line.
pub fn json_line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

/// A short form of UUID-like IDs for tables, as the Nomad CLI prints them.
pub fn short_id(key: &str) -> &str {
    let uuid_like = key.len() == 36 && key.chars().filter(|c| *c == '-').count() == 4;
    if uuid_like { &key[..8] } else { key }
}
