//! `query state`: one object exactly as Nomad last described it at or before
//! a point in history — the stored payload, and the index it came from; or,
//! after a gap, as a reconstruction listed it, labelled as such
//! ([`super::reconstructed`]).

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::reconstructed::{self, Known, Label, Source};
use super::render::{self, Output};
use super::resolve::noun;
use super::{QueryError, covers, gaps};
use crate::archive::{Cluster, PageQuery};
use crate::store::Store;

/// The point in history to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// At or before this raft index.
    Index(u64),
    /// Received at or before this Unix time in milliseconds.
    Time(i64),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StateRecord<'a> {
    index: u64,
    topic: &'a str,
    #[serde(rename = "Type")]
    event_type: String,
    key: String,
    namespace: String,
    time: String,
    object: Value,
    source: Source,
    /// The reconstruction that describes the object, or that no longer listed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reconstruction: Option<Label>,
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

/// Finds and writes the object's state.
pub async fn run(
    store: &dyn Store,
    cluster: &Cluster,
    query: &StateQuery,
    output: Output,
    out: &mut impl Write,
    colour: bool,
) -> Result<(), QueryError> {
    let (topic, at) = (query.topic.as_str(), query.at);
    let key = reconstructed::resolve_key(store, cluster, topic, &query.key).await?;
    let (to_index, until) = match at {
        At::Index(index) => (Some(index), None),
        At::Time(millis) => (None, Some(millis.saturating_add(1))),
    };
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
    let Some((known, gone)) = known else {
        let span = store.span(cluster).await?;
        let point = match at {
            At::Index(index) => format!("index {index}"),
            At::Time(millis) => render::time(millis),
        };
        return Err(QueryError::NotFound(format!(
            "no events for {} `{key}` at or before {point} ({})",
            noun(topic),
            covers(span)
        )));
    };
    let record = match known {
        Known::Event(event) => {
            let parsed: Value = serde_json::from_str(&event.raw).unwrap_or(Value::Null);
            let object = match &parsed["Payload"][topic] {
                Value::Null => parsed["Payload"].clone(),
                found => found.clone(),
            };
            StateRecord {
                index: event.index,
                topic,
                event_type: render::event_type(&event.raw),
                key: event.key,
                namespace: event.namespace,
                time: render::time(event.received_at),
                object,
                source: Source::Event,
                reconstruction: gone,
            }
        }
        Known::Reconstructed(object, label) => StateRecord {
            index: label.index,
            topic,
            event_type: reconstructed::RECONSTRUCTED.to_owned(),
            object: reconstructed::object(&object),
            key: object.key,
            namespace: object.namespace,
            time: label.time.clone(),
            source: Source::Reconstruction,
            reconstruction: Some(label),
        },
    };
    // Gaps after the event and up to the point asked for may hide later changes.
    let upto = match at {
        At::Index(index) => index,
        At::Time(_) => store
            .span(cluster)
            .await?
            .map_or(record.index, |(_, last)| last),
    };
    let overlapping = gaps::overlapping(&store.gaps(cluster).await?, record.index, upto);
    let written = match output {
        Output::Table => {
            let source = match record.source {
                Source::Event => format!(
                    "from index {} ({}), received {}",
                    record.index, record.event_type, record.time
                ),
                Source::Reconstruction => format!(
                    "reconstructed at index {}, read {}",
                    record.index, record.time
                ),
            };
            let header = format!(
                "{topic} {key} as of {}: {source}",
                match at {
                    At::Index(index) => format!("index {index}"),
                    At::Time(millis) => render::time(millis),
                },
            );
            let body = serde_json::to_string_pretty(&record.object).unwrap_or_default();
            let header = if colour {
                format!("\x1b[1m{header}\x1b[0m")
            } else {
                header
            };
            let label = record
                .reconstruction
                .as_ref()
                .map(|l| format!("* {}\n", reconstructed::state_line(topic, l)))
                .unwrap_or_default();
            write!(out, "{header}\n{label}{body}\n")
                .and_then(|()| render::gap_lines(out, &overlapping, colour))
        }
        Output::Json | Output::Ndjson => {
            for gap in &overlapping {
                tracing::warn!("{}", gaps::sentence(gap));
            }
            if let Some(label) = &record.reconstruction {
                tracing::warn!("{}", reconstructed::state_line(topic, label));
            }
            render::json_line(out, &record)
        }
    };
    written.map_err(QueryError::Output)
}
