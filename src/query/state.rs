//! `query state`: one object exactly as Nomad last described it at or before
//! a point in history — the stored payload, and the index it came from; or,
//! after a gap, as a reconstruction listed it, labelled as such
//! ([`super::reconstructed`]).

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::gaps::{self, Looked};
use super::reconstructed::{self, Known, Label, Source};
use super::render::{self, Look, Output};
use super::resolve::noun;
use super::{QueryError, covers};
use crate::archive::{Cluster, Gap, PageQuery};
use crate::store::Store;

/// The point in history to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// At or before this raft index.
    Index(u64),
    /// At or before this Unix time in milliseconds, by Nomad's clock.
    Time(i64),
}

/// The object as an answer shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateRecord {
    /// The index of the event, or of the reconstruction, that describes it.
    pub index: u64,
    pub topic: String,
    #[serde(rename = "Type")]
    pub event_type: String,
    pub key: String,
    pub namespace: String,
    #[serde(flatten)]
    pub time: render::Dated,
    /// The object itself: the payload's object, not the whole event.
    pub object: Value,
    pub source: Source,
    /// The reconstruction that describes the object, or that no longer listed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<Label>,
}

/// The JSON document of a state: the record, and the gaps after it up to
/// the point asked for.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WithGaps<'a> {
    #[serde(flatten)]
    record: &'a StateRecord,
    #[serde(serialize_with = "super::json::gaps")]
    gaps: &'a [Gap],
}

/// Which object, and when.
#[derive(Debug, Clone)]
pub struct StateQuery {
    /// As Nomad spells it: `Allocation`, `Job`, …
    pub topic: String,
    /// The ID or a unique prefix of it.
    pub key: String,
    pub at: At,
}

/// What the archive holds for a state query, read before anything is built.
#[derive(Debug, Default)]
struct Fetched {
    /// The object's full key.
    pub key: String,
    /// What describes it at the point asked for, and the reconstruction
    /// that no longer listed it, if one did; `None`: nothing does.
    pub known: Option<(Known, Option<Label>)>,
    /// The cluster's recorded gaps (read only when something describes it).
    pub gaps: Vec<Gap>,
    /// The archive's extent (read when nothing describes it, for the message,
    /// or when the point is a time, to know how far later changes may hide).
    pub span: Option<(u64, u64)>,
}

/// An object's state, ready to render.
#[derive(Debug, Clone, PartialEq)]
struct State {
    /// The object's full key.
    pub key: String,
    pub record: StateRecord,
    /// Recorded gaps after the record and up to the point asked for, which
    /// may hide later changes.
    pub gaps: Vec<Gap>,
}

/// Finds and writes the object's state.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &StateQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> Result<(), QueryError> {
    let fetched = fetch(store, cluster, query).await?;
    let state = build(query, fetched)?;
    render(&state, query, output, out, look).map_err(QueryError::Output)
}

/// The bounds of a page that ends at `at`: an index, or a time (inclusive).
pub(super) fn bounds(at: At) -> (Option<u64>, Option<i64>) {
    match at {
        At::Index(index) => (Some(index), None),
        At::Time(millis) => (None, Some(millis.saturating_add(1))),
    }
}

/// Resolves the key and reads the newest event or reconstruction that
/// describes the object, and the gaps or the archive's extent that the
/// answer will mention.
async fn fetch(
    store: &dyn Store,
    cluster: &Cluster,
    query: &StateQuery,
) -> Result<Fetched, QueryError> {
    let topic = query.topic.as_str();
    let key = reconstructed::resolve_key(store, cluster, topic, &query.key).await?;
    let (to_index, until) = bounds(query.at);
    let page = PageQuery {
        topics: Some(vec![topic.to_owned()]),
        key: Some(key.clone()),
        to_index,
        until,
        newest_first: true,
        limit: 1,
        ..PageQuery::default()
    };
    let event = store.page(cluster, &page).await?.pop();
    let known = reconstructed::state(store, cluster, topic, &key, (to_index, until), event).await?;
    let span = match (&known, query.at) {
        (Some(_), At::Index(_)) => None,
        _ => store.span(cluster).await?,
    };
    let gaps = store.gaps(cluster).await?;
    Ok(Fetched {
        key,
        known,
        gaps,
        span,
    })
}

/// The point asked for, in words.
pub(super) fn point(at: At) -> String {
    match at {
        At::Index(index) => format!("index {index}"),
        At::Time(millis) => render::time(millis),
    }
}

/// Picks the object out of what describes it; no I/O.
fn build(query: &StateQuery, fetched: Fetched) -> Result<State, QueryError> {
    let topic = query.topic.as_str();
    let Fetched {
        key,
        known,
        gaps,
        span,
    } = fetched;
    let Some((known, gone)) = known else {
        // Everything up to the point was looked at.
        let looked = match query.at {
            At::Index(index) => Looked::ALL.stopped_at(index.saturating_add(1)),
            At::Time(_) => Looked::ALL,
        };
        return Err(QueryError::NotFound(format!(
            "no events for {} `{key}` at or before {} ({}){}",
            noun(topic),
            point(query.at),
            covers(span),
            gaps::not_found_note(&looked.named(&gaps))
        )));
    };
    let record = record(topic, known, gone);
    // Gaps after the event and up to the point asked for may hide later changes.
    let upto = match query.at {
        At::Index(index) => index,
        At::Time(_) => span.map_or(record.index, |(_, last)| last),
    };
    let gaps = gaps::overlapping(&gaps, record.index, upto);
    Ok(State { key, record, gaps })
}

/// The record of an object as its event or a reconstruction describes it.
fn record(topic: &str, known: Known, gone: Option<Label>) -> StateRecord {
    match known {
        Known::Event(event) => {
            let parsed: Value = serde_json::from_str(&event.raw).unwrap_or(Value::Null);
            let object = match &parsed["Payload"][topic] {
                Value::Null => parsed["Payload"].clone(),
                found => found.clone(),
            };
            StateRecord {
                index: event.index,
                topic: topic.to_owned(),
                event_type: render::event_type(&event.raw),
                time: render::Dated::of(&event),
                key: event.key,
                namespace: event.namespace,
                object,
                source: Source::Event,
                reconstruction: gone,
            }
        }
        Known::Reconstructed(object, label) => StateRecord {
            index: label.index,
            topic: topic.to_owned(),
            event_type: reconstructed::RECONSTRUCTED.to_owned(),
            object: reconstructed::object(&object),
            key: object.key,
            namespace: object.namespace,
            time: render::Dated::read_at(label.time),
            source: Source::Reconstruction,
            reconstruction: Some(label),
        },
    }
}

/// Writes the state as a titled, pretty-printed object, or as one JSON line
/// (gaps and reconstruction labels then go to the log).
fn render(
    state: &State,
    query: &StateQuery,
    output: Output,
    out: &mut impl Write,
    look: &Look,
) -> std::io::Result<()> {
    let (topic, record) = (query.topic.as_str(), &state.record);
    match output {
        Output::Table => {
            let source = match record.source {
                Source::Event => format!(
                    "from index {} ({}) of {}",
                    record.index,
                    record.event_type,
                    record.time.cell()
                ),
                Source::Reconstruction => format!(
                    "reconstructed at index {}, read {}",
                    record.index,
                    record.time.time()
                ),
            };
            let header = format!("{topic} {} as of {}: {source}", state.key, point(query.at));
            let body = serde_json::to_string_pretty(&record.object).unwrap_or_default();
            let header = if look.colour {
                format!("\x1b[1m{header}\x1b[0m")
            } else {
                header
            };
            writeln!(out, "{header}")?;
            if let Some(l) = &record.reconstruction {
                render::note(out, "* ", &reconstructed::state_line(topic, l), look, "36")?;
            }
            writeln!(out, "{body}")?;
            render::gap_lines(out, &state.gaps, look)
        }
        Output::Json => {
            if let Some(label) = &record.reconstruction {
                tracing::warn!("{}", reconstructed::state_line(topic, label));
            }
            let document = WithGaps {
                record,
                gaps: &state.gaps,
            };
            render::json_line(out, &document)
        }
        Output::Ndjson => {
            for gap in &state.gaps {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            if let Some(label) = &record.reconstruction {
                tracing::warn!("{}", reconstructed::state_line(topic, label));
            }
            render::json_line(out, record)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::archive::{ArchivedEvent, ReconstructedObject};

    fn query(at: At) -> StateQuery {
        StateQuery {
            topic: "Allocation".to_owned(),
            key: "0b7e".to_owned(),
            at,
        }
    }

    fn gap(from_index: u64, to_index: u64) -> Gap {
        Gap::buffer_overrun(from_index, to_index)
    }

    fn event(index: u64) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: "Allocation".to_owned(),
            key: "0b7e0e1c".to_owned(),
            namespace: "default".to_owned(),
            received_at: 1_700_000_000_000,
            time: 1_700_000_000_000,
            time_source: crate::archive::TimeSource::Nomad,
            raw: r#"{"Topic":"Allocation","Type":"AllocationUpdated","Key":"0b7e0e1c","Payload":{"Allocation":{"ID":"0b7e0e1c","ClientStatus":"running"}}}"#.to_owned(),
        }
    }

    fn label(present: bool) -> Label {
        Label {
            topic: "Allocation".to_owned(),
            index: 40,
            endpoint: "/v1/allocations".to_owned(),
            shape: Some("AllocationListStub".to_owned()),
            time: 1_700_000_001_000,
            present,
            gap: gap(20, 30),
        }
    }

    #[test]
    fn an_event_shows_its_payloads_object_and_the_gaps_up_to_the_index_asked_for() {
        let fetched = Fetched {
            key: "0b7e0e1c".to_owned(),
            known: Some((Known::Event(event(10)), None)),
            gaps: vec![gap(2, 10), gap(20, 30), gap(60, 70)],
            span: None,
        };
        let state = build(&query(At::Index(50)), fetched).unwrap();
        assert_eq!(
            state.record,
            StateRecord {
                index: 10,
                topic: "Allocation".to_owned(),
                event_type: "AllocationUpdated".to_owned(),
                key: "0b7e0e1c".to_owned(),
                namespace: "default".to_owned(),
                time: render::Dated {
                    at_ns: 1_700_000_000_000_000_000,
                    source: crate::archive::TimeSource::Nomad,
                    received: 1_700_000_000_000,
                },
                object: json!({"ID": "0b7e0e1c", "ClientStatus": "running"}),
                source: Source::Event,
                reconstruction: None,
            }
        );
        assert_eq!(state.gaps, vec![gap(20, 30)]);
    }

    #[test]
    fn at_a_time_the_gaps_up_to_the_archives_last_index_are_named() {
        let fetched = Fetched {
            key: "0b7e0e1c".to_owned(),
            known: Some((Known::Event(event(10)), None)),
            gaps: vec![gap(20, 30), gap(60, 70)],
            span: Some((1, 65)),
        };
        let state = build(&query(At::Time(1_700_000_000_000)), fetched).unwrap();
        assert_eq!(state.gaps, vec![gap(20, 30), gap(60, 70)]);
    }

    #[test]
    fn a_reconstructed_object_is_labelled_with_its_list() {
        let object = ReconstructedObject {
            namespace: "default".to_owned(),
            key: "0b7e0e1c".to_owned(),
            modify_index: Some(38),
            shape: "AllocationListStub".to_owned(),
            raw: r#"{"ID":"0b7e0e1c","ClientStatus":"complete"}"#.to_owned(),
        };
        let fetched = Fetched {
            key: "0b7e0e1c".to_owned(),
            known: Some((Known::Reconstructed(object, label(true)), None)),
            gaps: Vec::new(),
            span: None,
        };
        let record = build(&query(At::Index(50)), fetched).unwrap().record;
        assert_eq!(
            (record.index, record.event_type.as_str(), record.source),
            (40, "Reconstructed", Source::Reconstruction)
        );
        assert_eq!(record.time.time(), "2023-11-14T22:13:21.000Z");
        assert_eq!(
            record.object,
            json!({"ID": "0b7e0e1c", "ClientStatus": "complete"})
        );
        assert_eq!(record.reconstruction, Some(label(true)));
    }

    #[test]
    fn an_event_a_later_list_no_longer_held_carries_that_lists_label() {
        let fetched = Fetched {
            key: "0b7e0e1c".to_owned(),
            known: Some((Known::Event(event(10)), Some(label(false)))),
            ..Fetched::default()
        };
        let record = build(&query(At::Index(50)), fetched).unwrap().record;
        assert_eq!(record.source, Source::Event);
        assert_eq!(record.reconstruction, Some(label(false)));
    }

    #[test]
    fn nothing_describing_the_object_is_not_found_at_the_point_asked_for() {
        let not_found = |at, span| {
            let fetched = Fetched {
                key: "0b7e0e1c".to_owned(),
                span,
                ..Fetched::default()
            };
            match build(&query(at), fetched) {
                Err(QueryError::NotFound(message)) => message,
                other => panic!("expected not found, got {other:?}"),
            }
        };
        assert_eq!(
            not_found(At::Index(99), Some((1, 50))),
            "no events for allocation `0b7e0e1c` at or before index 99 (archive covers index 1–50)"
        );
        assert_eq!(
            not_found(At::Time(1_700_000_000_000), None),
            "no events for allocation `0b7e0e1c` at or before 2023-11-14T22:13:20.000Z \
             (the archive holds no events for this cluster)"
        );
    }
}
