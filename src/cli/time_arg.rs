//! Times on the command line: reading `--since`, `--until` and `--at` as an
//! operator types them, and the `--utc`/`--local` choice of how answers show
//! times.

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::fmt::temporal::Pieces;
use jiff::tz::TimeZone;

/// The forms a time argument takes, with an example of each; shown in the
/// error for anything else.
const FORMS: &str = "use RFC 3339 with an offset (2026-12-04T17:41:30+01:00, \
    2026-12-04T16:41:30Z), a local date-time (2026-12-04T17:41, 2026-12-04 17:41:30), \
    a local date (2026-12-04, its midnight), a local time of day today (17:41), \
    or a duration ago (2h, 90m, 3d, 1h30m)";

/// Why a time argument could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeArgError {
    /// The value is none of the accepted forms.
    #[error("`{value}` is not a time; {FORMS}")]
    Unrecognized { value: String },
    /// The value has an accepted form but names a time outside the years
    /// -9999 to 9999.
    #[error("`{value}` is out of range (years -9999 to 9999)")]
    OutOfRange { value: String },
}

/// Reads a time argument as Unix milliseconds. `zone` is the zone a time
/// without an offset is read in (the CLI passes the system's, which honours
/// `TZ`); `now` is the instant a duration ago and "today" are counted from.
///
/// Accepted forms:
/// - RFC 3339 with an offset: `2026-12-04T17:41:30+01:00`,
///   `2026-12-04T16:41:30Z`, with fractional seconds, a lowercase `t`/`z`,
///   or a space instead of the `T`;
/// - without an offset, read in `zone`: a date-time `2026-12-04T17:41[:30[.123]]`
///   or `2026-12-04 17:41`, a date `2026-12-04` (its midnight), a time of day
///   `17:41[:30]` (on today's date in `zone`);
/// - a duration ago: `2h`, `90m`, `3d`, `1h30m`.
///
/// A local time that a daylight-saving change makes ambiguous or skips is
/// resolved the usual way: in a fold (the hour repeated when clocks go back)
/// the earlier of the two instants, the one with the offset in force before
/// the change; in a gap (the hour skipped when clocks go forward) the time
/// shifted forward by the gap's length, so 02:30 in a one-hour gap is 03:30.
pub fn parse(value: &str, zone: &TimeZone, now: Timestamp) -> Result<i64, TimeArgError> {
    let value = value.trim();
    let unrecognized = || TimeArgError::Unrecognized {
        value: value.to_owned(),
    };
    let out_of_range = || TimeArgError::OutOfRange {
        value: value.to_owned(),
    };
    let at = if let Ok(pieces) = Pieces::parse(value) {
        from_pieces(&pieces, zone).ok_or_else(unrecognized)?
    } else if let Ok(time) = time_of_day(value) {
        let today = now.to_zoned(zone.clone()).date();
        local(today.to_datetime(time), zone).ok_or_else(out_of_range)?
    } else if let Ok(ago) = humantime::parse_duration(value) {
        let ago = jiff::SignedDuration::try_from(ago).map_err(|_| out_of_range())?;
        now.checked_sub(ago).map_err(|_| out_of_range())?
    } else {
        return Err(unrecognized());
    };
    Ok(at.as_millisecond())
}

/// The instant a parsed date or date-time names: at its offset if it has one,
/// else in `zone`. `None` for a time-zone annotation (`[Europe/Paris]`),
/// which is not one of the accepted forms.
fn from_pieces(pieces: &Pieces<'_>, zone: &TimeZone) -> Option<Timestamp> {
    if pieces.time_zone_annotation().is_some() {
        return None;
    }
    let civil = pieces
        .date()
        .to_datetime(pieces.time().unwrap_or(Time::midnight()));
    match pieces.to_numeric_offset() {
        Some(offset) => offset.to_timestamp(civil).ok(),
        None => local(civil, zone),
    }
}

/// A civil date-time in `zone`, ambiguity resolved as [`parse`] says.
fn local(civil: DateTime, zone: &TimeZone) -> Option<Timestamp> {
    zone.to_ambiguous_timestamp(civil).compatible().ok()
}

/// A bare time of day: `17:41` or `17:41:30` (fractions allowed), and no
/// offset, which a time of day without a date cannot be read with.
fn time_of_day(value: &str) -> Result<Time, ()> {
    let looks_right = value.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && value.contains(':')
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b'.' || b == b',');
    if !looks_right {
        return Err(());
    }
    value.parse::<Time>().map_err(|_| ())
}

/// For clap: reads a time argument in the system's zone (`TZ`, else the
/// machine's) at the current instant.
pub fn parse_time(value: &str) -> Result<i64, TimeArgError> {
    parse(value, &TimeZone::system(), Timestamp::now())
}

/// Whether answers show times in UTC or in the local zone; global to the
/// commands that print times.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct TimeDisplay {
    /// Show times in UTC, e.g. 2026-12-04T16:41:30.000Z (the default).
    #[arg(long, global = true, conflicts_with = "local")]
    pub utc: bool,
    /// Show times in the local zone (`TZ`, else the system's) with their
    /// offset, e.g. 2026-12-04T17:41:30.000+01:00, in tables and in query
    /// JSON (which is otherwise UTC too).
    #[arg(long, global = true)]
    pub local: bool,
}

impl TimeDisplay {
    /// Makes every time the answer shows follow this choice.
    pub fn apply(self) {
        if self.local {
            crate::query::render::show_times_in(TimeZone::system());
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::Offset;

    use super::*;

    /// 2026-12-04T16:41:30Z, in milliseconds.
    const AT: i64 = 1_796_402_490_000;

    fn plus_one() -> TimeZone {
        TimeZone::fixed(Offset::constant(1))
    }

    fn now() -> Timestamp {
        "2026-12-04T20:00:00Z".parse().expect("a timestamp")
    }

    fn read(value: &str, zone: &TimeZone) -> Result<i64, TimeArgError> {
        parse(value, zone, now())
    }

    fn cet() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a POSIX zone")
    }

    #[test]
    fn rfc3339_is_read_at_its_own_offset_whatever_the_zone() {
        for zone in [TimeZone::UTC, plus_one(), cet()] {
            for value in [
                "2026-12-04T17:41:30+01:00",
                "2026-12-04T16:41:30Z",
                "2026-12-04T11:41:30-05:00",
                "2026-12-04t16:41:30z",
                "2026-12-04 16:41:30Z",
                "2026-12-04T16:41:30+00:00",
                "  2026-12-04T16:41:30Z ",
            ] {
                assert_eq!(read(value, &zone), Ok(AT), "{value}");
            }
        }
    }

    #[test]
    fn fractional_seconds_are_kept_to_the_millisecond() {
        assert_eq!(read("2026-12-04T16:41:30.123Z", &plus_one()), Ok(AT + 123));
        assert_eq!(
            read("2026-12-04T17:41:30.5+01:00", &TimeZone::UTC),
            Ok(AT + 500)
        );
        assert_eq!(
            read("2026-12-04T16:41:30.123456789Z", &TimeZone::UTC),
            Ok(AT + 123)
        );
        assert_eq!(read("1970-01-01T00:00:01Z", &TimeZone::UTC), Ok(1000));
    }

    #[test]
    fn a_date_time_without_offset_is_read_in_the_zone() {
        for value in [
            "2026-12-04T17:41:30",
            "2026-12-04 17:41:30",
            "2026-12-04t17:41:30",
        ] {
            assert_eq!(read(value, &plus_one()), Ok(AT), "{value}");
            assert_eq!(read(value, &TimeZone::UTC), Ok(AT + 3_600_000), "{value}");
        }
        assert_eq!(read("2026-12-04T17:41", &plus_one()), Ok(AT - 30_000));
        assert_eq!(read("2026-12-04 17:41", &plus_one()), Ok(AT - 30_000));
        assert_eq!(read("2026-12-04T17:41:30.123", &plus_one()), Ok(AT + 123));
    }

    #[test]
    fn a_bare_date_is_its_midnight_in_the_zone() {
        let midnight_utc = 1_796_342_400_000;
        assert_eq!(read("2026-12-04", &TimeZone::UTC), Ok(midnight_utc));
        assert_eq!(
            read("2026-12-04", &plus_one()),
            Ok(midnight_utc - 3_600_000)
        );
    }

    #[test]
    fn a_bare_time_of_day_is_today_in_the_zone() {
        assert_eq!(read("17:41:30", &plus_one()), Ok(AT));
        assert_eq!(read("17:41", &plus_one()), Ok(AT - 30_000));
        assert_eq!(read("16:41:30", &TimeZone::UTC), Ok(AT));
        // 20:00Z is already the 5th at +05:00: "today" is the zone's date.
        let plus_five = TimeZone::fixed(Offset::constant(5));
        assert_eq!(read("21:41:30", &plus_five), Ok(AT + 86_400_000));
    }

    #[test]
    fn a_duration_is_that_long_before_now() {
        let now = now().as_millisecond();
        assert_eq!(read("2h", &plus_one()), Ok(now - 7_200_000));
        assert_eq!(read("90m", &plus_one()), Ok(now - 5_400_000));
        assert_eq!(read("3d", &plus_one()), Ok(now - 3 * 86_400_000));
        assert_eq!(read("1h30m", &plus_one()), Ok(now - 5_400_000));
    }

    #[test]
    fn a_local_time_in_a_dst_fold_is_the_earlier_instant() {
        // 2026-10-25 02:30 happens twice in CET: first at +02:00, then at +01:00.
        let earlier = read("2026-10-25T00:30:00Z", &TimeZone::UTC);
        assert_eq!(read("2026-10-25T02:30", &cet()), earlier);
        assert_eq!(
            read("2026-10-25T02:30+01:00", &cet()),
            Ok(earlier.unwrap_or(0) + 3_600_000)
        );
    }

    #[test]
    fn a_local_time_in_a_dst_gap_is_shifted_forward() {
        // 2026-03-29 02:30 does not exist in CET: clocks go from 02:00 to 03:00.
        let shifted = read("2026-03-29T03:30+02:00", &TimeZone::UTC);
        assert_eq!(read("2026-03-29T02:30", &cet()), shifted);
        assert_eq!(read("2026-03-29T01:30Z", &cet()), shifted);
    }

    #[test]
    fn a_summer_date_is_read_at_the_summer_offset() {
        assert_eq!(
            read("2026-07-01 12:00", &cet()),
            read("2026-07-01T10:00:00Z", &TimeZone::UTC)
        );
    }

    #[test]
    fn anything_else_names_the_value_and_the_accepted_forms() {
        for value in [
            "yesterday-ish",
            "",
            "2026-12-04T17:41:30[Europe/Paris]",
            "2026-13-04",
            "2026-12-04T25:00",
            "17:41+01:00",
            "17",
            "1h30",
            "now",
        ] {
            let error = read(value, &plus_one()).expect_err(value).to_string();
            assert!(
                error.starts_with(&format!("`{value}` is not a time; use RFC 3339")),
                "{error}"
            );
            for example in [
                "2026-12-04T17:41:30+01:00",
                "2026-12-04 17:41",
                "17:41",
                "1h30m",
            ] {
                assert!(error.contains(example), "{error} lacks {example}");
            }
        }
    }

    #[test]
    fn a_duration_reaching_before_year_minus_9999_is_out_of_range() {
        let error = read("5000000d", &TimeZone::UTC).expect_err("out of range");
        assert_eq!(
            error.to_string(),
            "`5000000d` is out of range (years -9999 to 9999)"
        );
    }
}
