//! [`Lanes`] as `/api/v1/timeline` answers them, in the JSON convention of
//! every answer (docs/json.md): PascalCase keys, each time RFC 3339 with
//! nanoseconds with its Unix nanoseconds beside it (`From`, `FromNs`).

use serde::Serialize;

use super::{Band, Bar, Density, Lane, Lanes, Marker};
use crate::query::json::{NS_PER_MS, time_ms};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document<'a> {
    cluster: &'a str,
    by: &'static str,
    from: String,
    from_ns: i64,
    to: String,
    to_ns: i64,
    width: u32,
    lanes: Vec<LaneJson<'a>>,
    bars: Vec<BarJson<'a>>,
    markers: Vec<MarkerJson<'a>>,
    bands: Vec<BandJson<'a>>,
    buckets: u32,
    bucket_start: String,
    bucket_start_ns: i64,
    bucket_ms: i64,
    counted: u64,
    density: Vec<DensityJson<'a>>,
    truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LaneJson<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    label: &'a str,
    group: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BarJson<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    lane: &'a str,
    #[serde(rename = "JobID")]
    job_id: &'a str,
    namespace: &'a str,
    task_group: &'a str,
    #[serde(rename = "NodeID")]
    node_id: &'a str,
    node_name: &'a str,
    client_status: &'a str,
    start: String,
    start_ns: i64,
    end: Option<String>,
    end_ns: Option<i64>,
    before: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MarkerJson<'a> {
    lane: &'a str,
    kind: &'static str,
    label: &'a str,
    time: String,
    time_ns: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BandJson<'a> {
    lane: Option<&'a str>,
    kind: &'static str,
    label: &'a str,
    from: String,
    from_ns: i64,
    to: Option<String>,
    to_ns: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DensityJson<'a> {
    lane: &'a str,
    counts: &'a [u32],
}

fn ns(ms: i64) -> i64 {
    ms.saturating_mul(NS_PER_MS)
}

fn lane(l: &Lane) -> LaneJson<'_> {
    LaneJson {
        id: &l.id,
        label: &l.label,
        group: &l.group,
    }
}

fn bar(b: &Bar) -> BarJson<'_> {
    BarJson {
        id: &b.alloc,
        lane: &b.lane,
        job_id: &b.job,
        namespace: &b.namespace,
        task_group: &b.task_group,
        node_id: &b.node,
        node_name: &b.node_name,
        client_status: &b.status,
        start: time_ms(b.start),
        start_ns: ns(b.start),
        end: b.end.map(time_ms),
        end_ns: b.end.map(ns),
        before: b.before,
    }
}

fn marker(m: &Marker) -> MarkerJson<'_> {
    MarkerJson {
        lane: &m.lane,
        kind: m.kind.as_str(),
        label: &m.label,
        time: time_ms(m.at),
        time_ns: ns(m.at),
    }
}

fn band(b: &Band) -> BandJson<'_> {
    BandJson {
        lane: b.lane.as_deref(),
        kind: b.kind.as_str(),
        label: &b.label,
        from: time_ms(b.from),
        from_ns: ns(b.from),
        to: b.to.map(time_ms),
        to_ns: b.to.map(ns),
    }
}

fn density(d: &Density) -> DensityJson<'_> {
    DensityJson {
        lane: &d.lane,
        counts: &d.counts,
    }
}

/// The answer's JSON.
pub fn to_vec(lanes: &Lanes) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Document {
        cluster: &lanes.cluster,
        by: lanes.by.as_str(),
        from: time_ms(lanes.from),
        from_ns: ns(lanes.from),
        to: time_ms(lanes.to),
        to_ns: ns(lanes.to),
        width: lanes.width,
        lanes: lanes.lanes.iter().map(lane).collect(),
        bars: lanes.bars.iter().map(bar).collect(),
        markers: lanes.markers.iter().map(marker).collect(),
        bands: lanes.bands.iter().map(band).collect(),
        buckets: lanes.grid.buckets,
        bucket_start: time_ms(lanes.grid.origin),
        bucket_start_ns: ns(lanes.grid.origin),
        bucket_ms: lanes.grid.bucket_ms,
        counted: lanes.counted,
        density: lanes.density.iter().map(density).collect(),
        truncated: lanes.truncated,
    })
}
