//! Writing answers: an aligned table for people (bold headers on a terminal,
//! none when piped or with NO_COLOR), one JSON document, or one JSON object
//! per line for scripts. Each event line carries at least Index, Topic,
//! Type, Key, Namespace and Time.

use std::io::{self, Write};
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use serde::Serialize;
use serde_json::value::RawValue;

use super::table::{self, Fit};
use super::{gaps, json};
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

/// The zone answers show times in: set at most once, by the command line
/// (`--local`) before a query runs, so that tables and JSON agree; unset
/// means UTC. The one process-wide display setting.
static DISPLAY_ZONE: OnceLock<TimeZone> = OnceLock::new();

/// Makes [`time`] and [`time_seconds`] show times in `zone` with its offset
/// instead of UTC. Only the first call counts.
pub fn show_times_in(zone: TimeZone) {
    let _ = DISPLAY_ZONE.set(zone);
}

/// The zone set by [`show_times_in`], if any.
pub(crate) fn display_zone() -> Option<&'static TimeZone> {
    DISPLAY_ZONE.get()
}

/// RFC 3339 with milliseconds for Unix milliseconds: UTC
/// (`2026-12-04T16:41:30.000Z`), or with the offset of the zone set by
/// [`show_times_in`] (`2026-12-04T17:41:30.000+01:00`).
pub fn time(millis: i64) -> String {
    time_in(millis, DISPLAY_ZONE.get(), "%Y-%m-%dT%H:%M:%S%.3f")
}

/// As [`time`], to the second: `2026-12-04T16:41:30Z`.
pub fn time_seconds(millis: i64) -> String {
    time_in(millis, DISPLAY_ZONE.get(), "%Y-%m-%dT%H:%M:%S")
}

/// `millis` written with `format`, then `Z` in UTC (`zone` `None`) or the
/// zone's offset. Times outside the years -9999 to 9999 are written as
/// their milliseconds.
fn time_in(millis: i64, zone: Option<&TimeZone>, format: &str) -> String {
    let Ok(at) = Timestamp::from_millisecond(millis) else {
        return format!("{millis}ms");
    };
    match zone {
        None => format!("{}Z", at.strftime(format)),
        Some(zone) => at
            .to_zoned(zone.clone())
            .strftime(&format!("{format}%:z"))
            .to_string(),
    }
}

/// When something happened, as answers give it: `Time` by Nomad's clock
/// (or, when its frame carried none, the receipt time, `TimeSource`
/// `received`, or in an imported capture the newest Nomad time before it,
/// `preceding`), with `TimeNs` beside it when Nomad gave it this event, and
/// `Received`, when the archive received it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dated {
    /// Unix nanoseconds.
    pub at_ns: i64,
    pub source: TimeSource,
    /// Unix milliseconds.
    pub received: i64,
}

/// [`Dated`] as JSON writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DatedJson {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_ns: Option<i64>,
    time_source: TimeSource,
    received: String,
}

impl Serialize for Dated {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DatedJson {
            time: json::time_ns(self.at_ns),
            time_ns: (self.source == TimeSource::Nomad).then_some(self.at_ns),
            time_source: self.source,
            received: json::time_ms(self.received),
        }
        .serialize(s)
    }
}

impl Dated {
    /// An event's time and receipt.
    pub fn of(event: &ArchivedEvent) -> Self {
        Dated {
            at_ns: event.time.saturating_mul(json::NS_PER_MS),
            source: event.time_source,
            received: event.received_at,
        }
    }

    /// Something known only by when it was read (a reconstruction), Unix ms.
    pub fn read_at(ms: i64) -> Self {
        Dated {
            at_ns: ms.saturating_mul(json::NS_PER_MS),
            source: TimeSource::Received,
            received: ms,
        }
    }

    /// The same receipt, at a time of Nomad's own (a task event's), Unix ns.
    pub fn happened_at(self, ns: i64) -> Self {
        Dated {
            at_ns: ns,
            source: TimeSource::Nomad,
            ..self
        }
    }

    /// The time, to the millisecond, as tables show it.
    pub fn time(&self) -> String {
        time(self.at_ns.div_euclid(json::NS_PER_MS))
    }

    /// The TIME cell of a table: `~` marks a time not the event's own.
    pub fn cell(&self) -> String {
        if self.source.is_approximate() {
            format!("~{}", self.time())
        } else {
            self.time()
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

/// Writes the gap sentences for a human answer, each fitted to the width.
pub fn gap_lines(out: &mut impl Write, overlapping: &[Gap], look: &Look) -> io::Result<()> {
    for gap in overlapping {
        note(out, "! ", &gaps::sentence(gap), look, "33")?;
    }
    Ok(())
}

/// Writes `text` after `mark` (`! `, `* `), wrapped to the width under
/// itself, in the ANSI colour `ansi` when colour is on.
pub fn note(
    out: &mut impl Write,
    mark: &str,
    text: &str,
    look: &Look,
    ansi: &str,
) -> io::Result<()> {
    let indent = mark.chars().count();
    let lines = match look.width {
        Some(width) => table::wrap(text, width.saturating_sub(indent).max(1)),
        None => vec![text.to_owned()],
    };
    for (i, line) in lines.iter().enumerate() {
        let lead = if i == 0 {
            mark.to_owned()
        } else {
            " ".repeat(indent)
        };
        match look.colour {
            true => writeln!(out, "\x1b[{ansi}m{lead}{line}\x1b[0m")?,
            false => writeln!(out, "{lead}{line}")?,
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
    match (uuid_like, key.get(..8)) {
        (true, Some(short)) => short,
        _ => key,
    }
}

/// How a human answer is shown: colour, the width its tables fit in
/// (`None`: values whole), and whether IDs are shown whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    pub colour: bool,
    pub width: Option<usize>,
    pub verbose: bool,
}

impl Look {
    /// How tables are laid out.
    pub fn fit(&self) -> Fit {
        Fit {
            width: self.width,
            colour: self.colour,
            indent: 0,
        }
    }

    /// An object ID as tables show it: its first 8 characters if it is a
    /// UUID, whole with `--verbose`.
    pub fn id<'a>(&self, key: &'a str) -> &'a str {
        match self.verbose {
            true => key,
            false => short_id(key),
        }
    }
}

/// The width tables fit in: `width` if given, none with `wide`, else the
/// terminal's when stdout is one (`COLUMNS` if its size cannot be read),
/// and none when it is piped.
pub fn table_width(width: Option<usize>, wide: bool) -> Option<usize> {
    use std::io::IsTerminal;
    if wide {
        return None;
    }
    if width.is_some() || !io::stdout().is_terminal() {
        return width;
    }
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .filter(|w| *w > 0)
}

#[cfg(test)]
mod tests {
    use jiff::tz::Offset;

    use super::*;

    /// 2026-12-04T16:41:30.042Z, in milliseconds.
    const AT: i64 = 1_796_402_490_042;

    #[test]
    fn times_are_utc_with_milliseconds_by_default() {
        assert_eq!(
            time_in(AT, None, "%Y-%m-%dT%H:%M:%S%.3f"),
            "2026-12-04T16:41:30.042Z"
        );
        assert_eq!(
            time_in(0, None, "%Y-%m-%dT%H:%M:%S"),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn local_times_carry_their_offset() {
        let plus_one = TimeZone::fixed(Offset::constant(1));
        assert_eq!(
            time_in(AT, Some(&plus_one), "%Y-%m-%dT%H:%M:%S%.3f"),
            "2026-12-04T17:41:30.042+01:00"
        );
        let cet = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a POSIX zone");
        let summer = AT - 150 * 86_400_000;
        assert_eq!(
            time_in(summer, Some(&cet), "%Y-%m-%dT%H:%M:%S"),
            "2026-07-07T18:41:30+02:00"
        );
        assert_eq!(
            time_in(AT, Some(&TimeZone::UTC), "%Y-%m-%dT%H:%M:%S"),
            "2026-12-04T16:41:30+00:00"
        );
    }

    #[test]
    fn a_time_beyond_year_9999_is_written_as_milliseconds() {
        assert_eq!(time_in(i64::MAX, None, "%Y"), format!("{}ms", i64::MAX));
    }
}
