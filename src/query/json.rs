//! The one JSON convention of every answer (`status` and each `query`),
//! documented in docs/json.md: keys in PascalCase as in Nomad's API; every
//! time RFC 3339 with nanoseconds (UTC, or with the offset of `--local`),
//! and beside a time Nomad gave, the same instant as Unix nanoseconds
//! (`Time` and `TimeNs`); gaps as objects of their own.

use serde::{Serialize, Serializer};

use super::render::display_zone;
use crate::archive::{Gap, GapKind};

/// Nanoseconds in a millisecond.
pub const NS_PER_MS: i64 = 1_000_000;

/// RFC 3339 with nanoseconds for Unix nanoseconds:
/// `2026-12-04T16:41:30.123456789Z`, or with the offset of the zone
/// `--local` set. Times outside the years -9999 to 9999 are written as
/// their nanoseconds.
pub fn time_ns(ns: i64) -> String {
    let Ok(at) = jiff::Timestamp::from_nanosecond(i128::from(ns)) else {
        return format!("{ns}ns");
    };
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9f";
    match display_zone() {
        None => format!("{}Z", at.strftime(FORMAT)),
        Some(zone) => at
            .to_zoned(zone.clone())
            .strftime(&format!("{FORMAT}%:z"))
            .to_string(),
    }
}

/// [`time_ns`] for Unix milliseconds (what the archive keeps).
pub fn time_ms(ms: i64) -> String {
    time_ns(ms.saturating_mul(NS_PER_MS))
}

/// Serializes Unix milliseconds as an RFC 3339 time with nanoseconds.
pub fn ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_ms(*ms))
}

/// [`ms`] for a time that may be unknown (`null`).
pub fn ms_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&time_ms(*ms)),
        None => s.serialize_none(),
    }
}

/// Unix milliseconds by Nomad's clock as Unix nanoseconds (`null` unknown).
pub fn ms_as_ns<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_i64(ms.saturating_mul(NS_PER_MS)),
        None => s.serialize_none(),
    }
}

/// A recorded gap as answers write it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GapJson<'a> {
    from_index: u64,
    to_index: u64,
    kind: GapKind,
    reason: &'a str,
    /// When the archive noticed it (its own clock).
    detected_at: String,
}

impl<'a> From<&'a Gap> for GapJson<'a> {
    fn from(g: &'a Gap) -> Self {
        GapJson {
            from_index: g.from_index,
            to_index: g.to_index,
            kind: g.kind,
            reason: &g.reason,
            detected_at: time_ms(g.detected_at),
        }
    }
}

/// Serializes one gap (`#[serde(serialize_with = "json::gap")]`).
pub fn gap<S: Serializer>(g: &Gap, s: S) -> Result<S::Ok, S::Error> {
    GapJson::from(g).serialize(s)
}

/// Serializes a list of gaps.
pub fn gaps<S: Serializer>(gaps: &[Gap], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(gaps.iter().map(GapJson::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_nanoseconds_and_gaps_pascal_case_keys() {
        assert_eq!(
            time_ns(1_796_402_490_123_456_789),
            "2026-12-04T16:41:30.123456789Z"
        );
        assert_eq!(time_ms(1_796_402_490_042), "2026-12-04T16:41:30.042000000Z");
        let value = serde_json::to_value(GapJson::from(&Gap::buffer_overrun(3, 9))).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "FromIndex": 3, "ToIndex": 9, "Kind": "buffer",
                "Reason": "event dropped from buffer",
                "DetectedAt": "1970-01-01T00:00:00.000000000Z"
            })
        );
    }
}
