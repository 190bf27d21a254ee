//! `query events`: the raw archive, filtered, newest last.

use std::io::Write;

use serde::Serialize;

use super::gaps::{self, Looked};
use super::render::{self, EventRecord, Output};
use super::resolve::resolve;
use super::summary::summarize;
use super::{QueryError, covers};
use crate::archive::RefColumn;
use crate::archive::{ArchivedEvent, Cluster, Gap, PageQuery};
use crate::store::{Store, StoreError};

/// What to select. IDs of allocations, nodes, evaluations and deployments
/// may be prefixes.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    pub topics: Vec<String>,
    pub types: Vec<String>,
    pub key: Option<String>,
    pub refs: Vec<(RefColumn, String)>,
    /// `None` for every namespace.
    pub namespace: Option<String>,
    pub from_index: u64,
    pub to_index: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The newest this many events are shown.
    pub limit: u32,
}

/// What the archive holds for an events query, read before anything is built.
#[derive(Debug, Clone, Default)]
struct Fetched {
    /// The matching events, newest first, at most one more than the query's limit.
    pub events: Vec<ArchivedEvent>,
    /// The cluster's recorded gaps.
    pub gaps: Vec<Gap>,
    /// The stretch of the stream the read looked at.
    pub looked: Looked,
    /// The archive's extent (read only when nothing matches, for the message).
    pub span: Option<(u64, u64)>,
}

/// The events that answer a query, ready to render.
#[derive(Debug, Clone, PartialEq)]
struct Events {
    /// The newest `limit` matching events, oldest first.
    pub events: Vec<ArchivedEvent>,
    /// Recorded gaps their index range overlaps.
    pub gaps: Vec<Gap>,
    /// Whether older events matched too.
    pub truncated: bool,
}

#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    events: Vec<EventRecord<'a>>,
    gaps: &'a [Gap],
    truncated: bool,
}

/// Runs the query and writes the answer; returns how many events matched.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &EventsQuery,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> Result<usize, QueryError> {
    let fetched = fetch(store, cluster, query).await?;
    let events = build(&cluster.name, query, fetched)?;
    render(&events, &cluster.name, output, out, colour).map_err(QueryError::Output)?;
    Ok(events.events.len())
}

/// Resolves the IDs given, reads the newest matching events, and the gaps
/// or the archive's extent that the answer will mention.
async fn fetch(
    store: &dyn Store,
    cluster: &Cluster,
    query: &EventsQuery,
) -> Result<Fetched, QueryError> {
    let mut refs = Vec::new();
    for (column, given) in &query.refs {
        let id = match column {
            RefColumn::Job => given.clone(),
            RefColumn::Alloc => resolve(store, cluster, "Allocation", given).await?,
            RefColumn::Node => resolve(store, cluster, "Node", given).await?,
            RefColumn::Eval => resolve(store, cluster, "Evaluation", given).await?,
            RefColumn::Deployment => resolve(store, cluster, "Deployment", given).await?,
        };
        refs.push((*column, id));
    }
    let mut page = PageQuery {
        from_index: query.from_index,
        to_index: query.to_index,
        since: query.since,
        until: query.until,
        topics: (!query.topics.is_empty()).then(|| query.topics.clone()),
        types: (!query.types.is_empty()).then(|| query.types.clone()),
        key: query.key.clone(),
        namespace: query.namespace.clone(),
        refs,
        newest_first: true,
        limit: query.limit.saturating_add(1),
        ..PageQuery::default()
    };
    let range = (query.from_index, query.to_index);
    let looked = gaps::looked_at(store, cluster, range, (query.since, query.until)).await?;
    let found = within_window(store, cluster, &mut page).await?;
    if found {
        // History before the cut is kept for snapshots only.
        gaps::from_cut(store, cluster, &mut page).await?;
    }
    let events = match found {
        true => store.page(cluster, &page).await?,
        false => Vec::new(),
    };
    let span = match events.is_empty() {
        true => store.span(cluster).await?,
        false => None,
    };
    let gaps = store.gaps(cluster).await?;
    Ok(Fetched {
        events,
        gaps,
        looked,
        span,
    })
}

/// Keeps the newest `limit` events, oldest first, with the gaps among them;
/// no I/O. `cluster` names the cluster in the "not found" message.
fn build(cluster: &str, query: &EventsQuery, fetched: Fetched) -> Result<Events, QueryError> {
    let Fetched {
        mut events,
        gaps,
        looked,
        span,
    } = fetched;
    let truncated = events.len() > query.limit as usize;
    // Newest first: a read past its limit looked back only as far as the
    // first event it left out.
    let looked = match events.get(query.limit as usize) {
        Some(past_limit) => looked.started_at(past_limit.index),
        None => looked,
    };
    let gaps = looked.named(&gaps);
    events.truncate(query.limit as usize);
    events.reverse();
    if events.is_empty() {
        return Err(QueryError::NotFound(format!(
            "no events match in cluster `{cluster}`{} ({}){}",
            query
                .namespace
                .as_ref()
                .map(|ns| format!(", namespace `{ns}`"))
                .unwrap_or_default(),
            covers(span),
            gaps::not_found_note(&gaps)
        )));
    }
    Ok(Events {
        events,
        gaps,
        truncated,
    })
}

/// Writes the events as a table, one JSON document, or NDJSON records (gaps
/// then go to the log).
fn render(
    answer: &Events,
    cluster: &str,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> std::io::Result<()> {
    let Events {
        events,
        gaps: overlapping,
        truncated,
    } = answer;
    match output {
        Output::Table => {
            let header = [
                "INDEX",
                "TIME",
                "TOPIC",
                "TYPE",
                "NAMESPACE",
                "KEY",
                "SUMMARY",
            ];
            let mut rows = vec![header.map(str::to_owned).to_vec()];
            for e in events {
                rows.push(vec![
                    e.index.to_string(),
                    render::Dated::of(e).cell(),
                    e.topic.clone(),
                    render::event_type(&e.raw),
                    e.namespace.clone(),
                    render::short_id(&e.key).to_owned(),
                    summarize(&e.topic, &e.raw),
                ]);
            }
            render::table(out, &rows, colour)?;
            render::gap_lines(out, overlapping, colour)?;
            if *truncated {
                writeln!(
                    out,
                    "(showing the newest {}; use --limit, --from-index or --since for more)",
                    events.len()
                )?;
            }
            Ok(())
        }
        Output::Json => {
            let document = Document {
                cluster,
                events: events.iter().filter_map(render::record).collect(),
                gaps: overlapping,
                truncated: *truncated,
            };
            render::json_line(out, &document)
        }
        Output::Ndjson => {
            for gap in overlapping {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            events
                .iter()
                .filter_map(render::record)
                .try_for_each(|record| render::json_line(out, &record))
        }
    }
}

/// Narrows `page` to the stretch of the stream dated in its time window,
/// if it has one; `false` when nothing happened then.
pub(crate) async fn within_window(
    store: &dyn Store,
    cluster: &Cluster,
    page: &mut PageQuery,
) -> Result<bool, StoreError> {
    if page.since.is_none() && page.until.is_none() {
        return Ok(true);
    }
    match store.time_span(cluster, page.since, page.until).await? {
        Some((first, last)) => {
            page.within(first, Some(last));
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: "Node".to_owned(),
            key: "node-1".to_owned(),
            namespace: String::new(),
            received_at: 1_700_000_000_000,
            time: 1_700_000_000_000,
            time_source: crate::archive::TimeSource::Nomad,
            raw: r#"{"Topic":"Node","Type":"NodeRegistration"}"#.to_owned(),
        }
    }

    fn gap(from_index: u64, to_index: u64) -> Gap {
        Gap::buffer_overrun(from_index, to_index)
    }

    fn query(limit: u32) -> EventsQuery {
        EventsQuery {
            limit,
            ..EventsQuery::default()
        }
    }

    fn indexes(answer: &Events) -> Vec<u64> {
        answer.events.iter().map(|e| e.index).collect()
    }

    #[test]
    fn matching_events_are_shown_oldest_first_with_every_gap_of_the_stretch_read() {
        let fetched = Fetched {
            events: vec![event(30), event(20), event(10)],
            gaps: vec![gap(1, 5), gap(12, 18), gap(30, 40)],
            ..Fetched::default()
        };
        let answer = build("prod", &query(100), fetched).unwrap();
        assert_eq!(indexes(&answer), vec![10, 20, 30]);
        assert_eq!(answer.gaps, vec![gap(1, 5), gap(12, 18), gap(30, 40)]);
        assert!(!answer.truncated);
    }

    #[test]
    fn an_answer_cut_by_its_limit_names_the_gaps_back_to_the_first_event_left_out() {
        let fetched = Fetched {
            events: vec![event(30), event(20), event(10)],
            gaps: vec![gap(1, 5), gap(12, 18), gap(30, 40)],
            ..Fetched::default()
        };
        let answer = build("prod", &query(2), fetched).unwrap();
        assert_eq!(indexes(&answer), vec![20, 30]);
        assert_eq!(answer.gaps, vec![gap(12, 18), gap(30, 40)]);
    }

    #[test]
    fn no_match_names_the_gaps_it_may_have_been_lost_in() {
        let fetched = Fetched {
            span: Some((1, 50)),
            gaps: vec![gap(10, 20)],
            ..Fetched::default()
        };
        match build("prod", &query(100), fetched) {
            Err(QueryError::NotFound(message)) => assert_eq!(
                message,
                "no events match in cluster `prod` (archive covers index 1–50); archive has no \
                 events between index 10 and 20 (buffer: event dropped from buffer)"
            ),
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[test]
    fn past_the_limit_the_newest_events_are_kept_and_the_answer_is_truncated() {
        let fetched = Fetched {
            events: vec![event(30), event(20), event(10)],
            ..Fetched::default()
        };
        let answer = build("prod", &query(2), fetched).unwrap();
        assert_eq!(indexes(&answer), vec![20, 30]);
        assert!(answer.truncated);
    }

    #[test]
    fn no_match_is_not_found_naming_the_cluster_namespace_and_extent() {
        let fetched = Fetched {
            span: Some((1, 50)),
            ..Fetched::default()
        };
        let asked = EventsQuery {
            namespace: Some("batch".to_owned()),
            ..query(100)
        };
        match build("prod", &asked, fetched) {
            Err(QueryError::NotFound(message)) => assert_eq!(
                message,
                "no events match in cluster `prod`, namespace `batch` (archive covers index 1–50)"
            ),
            other => panic!("expected not found, got {other:?}"),
        }
    }
}
