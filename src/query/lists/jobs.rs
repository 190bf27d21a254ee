//! `query jobs`: every job present at a moment (default: the newest stored
//! one), with its version, status and its allocations counted by client
//! status, from the moment's keyframe and the events after it (the
//! snapshot's machinery, [`crate::store::moment`]).

use std::io::Write;

use futures_util::StreamExt;
use serde::Serialize;

use super::records::{self, JobRecord};
use super::write::{self, Frame};
use crate::archive::Cluster;
use crate::query::render::{self, Look, Output};
use crate::query::state::{At, point};
use crate::query::{QueryError, covers, gaps};
use crate::store::{Moment, MomentQuery, Point, Store};

/// Terminal allocations counted: those whose last change is at most this
/// long (ms) before the moment, as a snapshot lists them by default.
pub const TERMINAL_WITHIN: i64 = 3_600_000;

/// A jobs question.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsQuery {
    /// The moment; `None`: now (the newest stored).
    pub at: Option<At>,
    pub namespace: Option<String>,
}

/// Where the answer stands, beside its rows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AtMoment {
    index: u64,
    time: Option<String>,
    time_ns: Option<i64>,
    /// Whether the moment is the newest stored (no point was given).
    now: bool,
    /// Terminal allocations are counted when they ended at most this long
    /// before the moment.
    terminal_within_ns: i64,
}

/// Answers into `out`, row by row.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &JobsQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> Result<(), QueryError> {
    let Some(moment) = moment(store, cluster, query.at).await? else {
        let asked = query.at.map_or_else(|| "now".to_owned(), point);
        return Err(QueryError::NotFound(format!(
            "no jobs at or before {asked} ({}){}",
            covers(store.span(cluster).await?),
            gaps::whole_stream_note(store, cluster).await?
        )));
    };
    let all = store.gaps(cluster).await?;
    let cut = store.pruned(cluster).await?;
    let named = super::up_to(moment.index).named(&all);
    let gaps = gaps::for_snapshot(named, &moment, cut.as_ref());
    let context = AtMoment {
        index: moment.index,
        time: moment.time.map(records::nanos),
        time_ns: moment.time.map(|t| t.saturating_mul(1_000_000)),
        now: query.at.is_none(),
        terminal_within_ns: TERMINAL_WITHIN.saturating_mul(1_000_000),
    };
    let frame = Frame {
        cluster: &cluster.name,
        context: &context,
        gaps: &gaps,
        output,
        look,
        note: Some(note(&moment, query.at.is_none())),
    };
    let rows = store
        .lists()
        .jobs(cluster, &moment, query.namespace.as_deref())
        .map(|r| r.map(JobRecord::from));
    match write::rows(&frame, rows, out).await? {
        0 => Err(QueryError::NotFound(format!(
            "no jobs at index {} in cluster `{}`{}",
            moment.index,
            cluster.name,
            gaps::not_found_note(&gaps)
        ))),
        _ => Ok(()),
    }
}

/// The moment asked for, or the newest stored one.
async fn moment(
    store: &dyn Store,
    cluster: &Cluster,
    at: Option<At>,
) -> Result<Option<Moment>, QueryError> {
    let point = match at {
        Some(At::Index(index)) => Point::Index(index),
        Some(At::Time(time)) => Point::Time(time),
        None => match store.span(cluster).await? {
            Some((_, last)) => Point::Index(last),
            None => return Ok(None),
        },
    };
    let query = MomentQuery {
        point,
        terminal_within: Some(TERMINAL_WITHIN),
        refs: Vec::new(),
    };
    Ok(store.moment(cluster, &query).await?)
}

/// The table's first line: where the answer stands.
fn note(moment: &Moment, now: bool) -> String {
    let mut at = Vec::new();
    at.extend(moment.time.map(render::time_seconds));
    if now {
        at.push("the newest stored".to_owned());
    }
    let at = match at.is_empty() {
        true => String::new(),
        false => format!(" ({})", at.join(", ")),
    };
    format!(
        "Jobs at index {}{at}; DONE, FAIL, LOST: ended within 1h",
        moment.index
    )
}
