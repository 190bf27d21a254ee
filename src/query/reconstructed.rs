//! Reconstructions in answers: `query state` and `query snapshot` combine
//! the latest events at a point with the newest reconstruction of each topic
//! at or before it (see [`crate::ingest::reconcile`]), and label every part
//! that came from one.
//!
//! For each object of a topic with a reconstruction `R` at or before the point:
//! - its latest event is newer than `R`: the event;
//! - `R` lists it: `R`'s object, unless the latest event describes the very
//!   same version of it (the same `ModifyIndex`) — then nothing changed
//!   while the archive could not see, and the event, which is whole, is shown;
//! - `R` does not list it, though `R` covers its namespace: it was gone by
//!   `R` (garbage-collected, purged or deregistered), so a snapshot leaves it
//!   out and `query state` says so;
//! - objects only `R` knows (created while the archive could not see) are
//!   shown from `R`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::QueryError;
use super::resolve::{noun, resolve};
use super::{json, render};
use crate::archive::{ArchivedEvent, Cluster, Gap, ReconstructedObject, Reconstruction};
use crate::archive::{PageQuery, RefColumn};
use crate::store::{Store, StoreError};

/// `Type` of an answer's part that came from a reconstruction: it is no event.
pub const RECONSTRUCTED: &str = "Reconstructed";

/// Where a part of an answer came from, for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Event,
    Reconstruction,
}

/// How a reconstruction is named in JSON answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Label {
    /// The topic it reconstructs.
    #[serde(skip)]
    pub topic: String,
    /// The list's `X-Nomad-Index`.
    pub index: u64,
    /// The list endpoint read.
    pub endpoint: String,
    /// What it returned for this object (`AllocationListStub`, `Job`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    /// When it was read, Unix ms.
    #[serde(serialize_with = "json::ms")]
    pub time: i64,
    /// Whether the reconstruction listed the object; `false`: it was gone by then.
    pub present: bool,
    /// The gap it follows.
    #[serde(serialize_with = "json::gap")]
    pub gap: Gap,
}

impl Label {
    fn new(r: &Reconstruction, shape: Option<String>, present: bool) -> Label {
        Label {
            topic: r.topic.clone(),
            index: r.index,
            endpoint: r.endpoint.clone(),
            shape,
            time: r.recorded_at,
            present,
            gap: r.gap.clone(),
        }
    }
}

/// One object of an answer.
#[derive(Debug)]
pub enum Known {
    /// Its latest event describes it.
    Event(ArchivedEvent),
    /// A reconstruction describes it.
    Reconstructed(ReconstructedObject, Label),
}

/// A reconstruction an answer used, and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Used {
    pub topic: String,
    /// The list's `X-Nomad-Index`.
    pub index: u64,
    /// The list endpoint read.
    pub endpoint: String,
    /// When it was read, Unix ms.
    #[serde(serialize_with = "json::ms")]
    pub time: i64,
    /// The gap it follows.
    #[serde(serialize_with = "json::gap")]
    pub gap: Gap,
    /// Objects shown from it.
    pub shown: usize,
    /// Objects left out as gone by then.
    pub gone: usize,
}

/// Which events an overlay was given: the latest of each object at or
/// before `index` read after `read_after`, and those of the objects present
/// at the keyframe before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub index: u64,
    pub read_after: u64,
}

/// The objects of `topics` at a point: the latest events, combined with each
/// topic's newest reconstruction at or before it. An object the
/// reconstruction lists but the events given leave out, though events after
/// the reconstruction describe it, was gone by the point (terminal or
/// removed), and is left out too.
pub async fn combine(
    store: &dyn Store,
    cluster: &Cluster,
    topics: &[String],
    window: Window,
    refs: &[(RefColumn, String)],
    latest: Vec<ArchivedEvent>,
) -> Result<(Vec<Known>, Vec<Used>), StoreError> {
    let mut by_topic: HashMap<String, Vec<ArchivedEvent>> = HashMap::new();
    for event in latest {
        by_topic.entry(event.topic.clone()).or_default().push(event);
    }
    let (mut known, mut used) = (Vec::new(), Vec::new());
    for topic in topics {
        let events = by_topic.remove(topic).unwrap_or_default();
        let Some(r) = store
            .reconstructions()
            .at(cluster, topic, Some(window.index), None)
            .await?
        else {
            known.extend(events.into_iter().map(Known::Event));
            continue;
        };
        let objects = store.reconstructions().objects(&r, None, refs).await?;
        let objects = unchanged_since(store, cluster, &r, window, &events, objects).await?;
        let (items, shown, gone) = overlay(&r, events, objects);
        if shown + gone > 0 {
            used.push(Used {
                topic: topic.clone(),
                index: r.index,
                endpoint: r.endpoint.clone(),
                time: r.recorded_at,
                gap: r.gap.clone(),
                shown,
                gone,
            });
        }
        known.extend(items);
    }
    Ok((known, used))
}

/// The objects `r` lists, less those the `events` given leave out though an
/// event after `r` and at or before the point describes them: events older
/// than the window's start can only be missing for objects not present
/// then. Looked up one by one, as many as the list holds at most.
async fn unchanged_since(
    store: &dyn Store,
    cluster: &Cluster,
    r: &Reconstruction,
    window: Window,
    events: &[ArchivedEvent],
    objects: Vec<ReconstructedObject>,
) -> Result<Vec<ReconstructedObject>, StoreError> {
    if r.index >= window.read_after {
        return Ok(objects);
    }
    let given: HashSet<(&str, &str)> = events
        .iter()
        .map(|e| (e.namespace.as_str(), e.key.as_str()))
        .collect();
    let mut kept = Vec::with_capacity(objects.len());
    for object in objects {
        if !given.contains(&(object.namespace.as_str(), object.key.as_str())) {
            let page = PageQuery {
                topics: Some(vec![r.topic.clone()]),
                key: Some(object.key.clone()),
                namespace: Some(object.namespace.clone()),
                from_index: r.index + 1,
                to_index: Some(window.index),
                limit: 1,
                ..PageQuery::default()
            };
            if !store.page(cluster, &page).await?.is_empty() {
                continue;
            }
        }
        kept.push(object);
    }
    Ok(kept)
}

/// One topic's events overlaid with its reconstruction; also how many
/// objects came from it and how many it showed gone.
fn overlay(
    r: &Reconstruction,
    events: Vec<ArchivedEvent>,
    objects: Vec<ReconstructedObject>,
) -> (Vec<Known>, usize, usize) {
    let mut listed: HashMap<(String, String), ReconstructedObject> = objects
        .into_iter()
        .map(|o| ((o.namespace.clone(), o.key.clone()), o))
        .collect();
    let (mut items, mut gone) = (Vec::new(), 0);
    let mut keyed = Vec::new();
    for event in events {
        let id = (event.namespace.clone(), event.key.clone());
        if event.index > r.index {
            keyed.push((id, Known::Event(event)));
            continue;
        }
        match listed.remove(&id) {
            Some(object) if same_version(&event, &object) => {
                keyed.push((id, Known::Event(event)));
            }
            Some(object) => {
                let label = Label::new(r, Some(object.shape.clone()), true);
                keyed.push((id, Known::Reconstructed(object, label)));
            }
            None if r.covers(&event.namespace) => gone += 1,
            None => keyed.push((id, Known::Event(event))),
        }
    }
    for (id, object) in listed {
        let label = Label::new(r, Some(object.shape.clone()), true);
        keyed.push((id, Known::Reconstructed(object, label)));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let shown = keyed
        .iter()
        .filter(|(_, k)| matches!(k, Known::Reconstructed(..)))
        .count();
    items.extend(keyed.into_iter().map(|(_, k)| k));
    (items, shown, gone)
}

/// Whether an event describes the very version of an object a
/// reconstruction listed.
fn same_version(event: &ArchivedEvent, object: &ReconstructedObject) -> bool {
    #[derive(serde::Deserialize)]
    struct Modified {
        #[serde(rename = "Payload", default)]
        payload: HashMap<String, Option<Indexed>>,
    }
    #[derive(serde::Deserialize)]
    struct Indexed {
        #[serde(rename = "ModifyIndex", default)]
        modify_index: Option<u64>,
    }
    let in_event = serde_json::from_str::<Modified>(&event.raw)
        .ok()
        .and_then(|m| {
            m.payload
                .get(&event.topic)
                .and_then(|o| o.as_ref()?.modify_index)
        });
    in_event.is_some() && in_event == object.modify_index
}

/// One object for `query state`: its latest event at the point (if any)
/// combined with the topic's newest reconstruction at or before the point.
/// `None` when neither knows it.
pub async fn state(
    store: &dyn Store,
    cluster: &Cluster,
    topic: &str,
    key: &str,
    at: (Option<u64>, Option<i64>),
    event: Option<ArchivedEvent>,
) -> Result<Option<(Known, Option<Label>)>, StoreError> {
    let Some(r) = store
        .reconstructions()
        .at(cluster, topic, at.0, at.1)
        .await?
    else {
        return Ok(event.map(|e| (Known::Event(e), None)));
    };
    if event.as_ref().is_some_and(|e| e.index > r.index) {
        return Ok(event.map(|e| (Known::Event(e), None)));
    }
    let listed = store.reconstructions().objects(&r, Some(key), &[]).await?;
    let namespace = event.as_ref().map(|e| e.namespace.clone());
    let object = listed
        .into_iter()
        .find(|o| namespace.as_ref().is_none_or(|ns| *ns == o.namespace));
    Ok(match (event, object) {
        (Some(e), Some(o)) if same_version(&e, &o) => Some((Known::Event(e), None)),
        (_, Some(o)) => {
            let label = Label::new(&r, Some(o.shape.clone()), true);
            Some((Known::Reconstructed(o, label), None))
        }
        (Some(e), None) if r.covers(&e.namespace) => {
            Some((Known::Event(e), Some(Label::new(&r, None, false))))
        }
        (Some(e), None) => Some((Known::Event(e), None)),
        (None, None) => None,
    })
}

/// [`resolve`], and when the events do not know the ID, the keys of stored
/// reconstructions (objects created while the archive could not see).
pub async fn resolve_key(
    store: &dyn Store,
    cluster: &Cluster,
    topic: &str,
    given: &str,
) -> Result<String, QueryError> {
    match resolve(store, cluster, topic, given).await {
        Err(QueryError::NotFound(message)) => {
            let keys = store
                .reconstructions()
                .keys_with_prefix(cluster, topic, given, 2)
                .await?;
            match keys.as_slice() {
                [one] if one == given || given.chars().count() >= super::resolve::MIN_PREFIX => {
                    Ok(one.clone())
                }
                _ => Err(QueryError::NotFound(message)),
            }
        }
        other => other,
    }
}

/// An object's JSON as a reconstruction listed it.
pub fn object(o: &ReconstructedObject) -> Value {
    serde_json::from_str(&o.raw).unwrap_or(Value::Null)
}

/// The sentence a human answer carries for a reconstruction it used.
pub fn sentence(used: &Used) -> String {
    let r = used;
    let mut text = format!(
        "{} marked (reconstructed) are from Nomad's {} at index {} (read {}) after the gap {}–{}, not from events",
        nouns(&used.topic),
        r.endpoint,
        r.index,
        render::time(r.time),
        r.gap.from_index,
        r.gap.to_index
    );
    if used.gone > 0 {
        text.push_str(&format!(
            "; {} {} it did not list {} left out as gone by then",
            used.gone,
            if used.gone == 1 {
                noun(&used.topic)
            } else {
                nouns(&used.topic)
            },
            if used.gone == 1 { "is" } else { "are" }
        ));
    }
    text
}

/// The line a state answer carries when its object came from a
/// reconstruction, or was gone by one.
pub fn state_line(topic: &str, label: &Label) -> String {
    let gap = format!("the gap {}–{}", label.gap.from_index, label.gap.to_index);
    if label.present {
        format!(
            "reconstructed, not from events: Nomad's {} at index {} (read {}) after {gap}{}",
            label.endpoint,
            label.index,
            render::time(label.time),
            label
                .shape
                .as_deref()
                .filter(|s| s.ends_with("Stub"))
                .map(|s| format!("; a list stub ({s}), not the whole object"))
                .unwrap_or_default()
        )
    } else {
        format!(
            "gone by index {}: Nomad's {} (read {}) after {gap} did not list this {}",
            label.index,
            label.endpoint,
            render::time(label.time),
            noun(topic)
        )
    }
}

/// Writes the reconstruction sentences for a human answer.
pub fn lines(out: &mut impl Write, used: &[Used], look: &render::Look) -> io::Result<()> {
    for u in used {
        render::note(out, "* ", &sentence(u), look, "36")?;
    }
    Ok(())
}

fn nouns(topic: &str) -> String {
    format!("{}s", noun(topic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::GapKind;

    fn reconstruction() -> Reconstruction {
        Reconstruction {
            id: 1,
            index: 100,
            topic: "Allocation".into(),
            namespace: "*".into(),
            endpoint: "/v1/allocations".into(),
            recorded_at: 0,
            gap: Gap {
                from_index: 50,
                to_index: 90,
                kind: GapKind::Buffer,
                reason: "r".into(),
                detected_at: 0,
            },
        }
    }

    fn event(key: &str, index: u64, modify: u64) -> ArchivedEvent {
        ArchivedEvent {
            index,
            position: 0,
            topic: "Allocation".into(),
            key: key.into(),
            namespace: "default".into(),
            received_at: 0,
            time: 0,
            time_source: crate::archive::TimeSource::Nomad,
            raw: format!(
                r#"{{"Topic":"Allocation","Payload":{{"Allocation":{{"ID":"{key}","ModifyIndex":{modify}}}}}}}"#
            ),
        }
    }

    fn listed(key: &str, modify: u64) -> ReconstructedObject {
        ReconstructedObject {
            namespace: "default".into(),
            key: key.into(),
            modify_index: Some(modify),
            shape: "AllocationListStub".into(),
            raw: format!(r#"{{"ID":"{key}","ModifyIndex":{modify}}}"#),
        }
    }

    fn summary(items: &[Known]) -> Vec<String> {
        items
            .iter()
            .map(|k| match k {
                Known::Event(e) => format!("{} event {}", e.key, e.index),
                Known::Reconstructed(o, l) => format!("{} reconstructed {}", o.key, l.index),
            })
            .collect()
    }

    #[test]
    fn the_newest_source_wins_and_what_the_lists_lost_is_gone() {
        let events = vec![
            event("changed", 40, 40),
            event("gc", 45, 45),
            event("later", 120, 120),
            event("same", 30, 30),
        ];
        let objects = vec![listed("changed", 70), listed("new", 80), listed("same", 30)];
        let (items, shown, gone) = overlay(&reconstruction(), events, objects);
        assert_eq!(
            summary(&items),
            vec![
                "changed reconstructed 100",
                "later event 120",
                "new reconstructed 100",
                "same event 30",
            ]
        );
        assert_eq!((shown, gone), (2, 1));
    }

    #[test]
    fn namespaces_the_reconstruction_did_not_list_are_left_alone() {
        let mut r = reconstruction();
        r.namespace = "prod".into();
        let (items, _, gone) = overlay(&r, vec![event("elsewhere", 40, 40)], vec![]);
        assert_eq!(summary(&items), vec!["elsewhere event 40"]);
        assert_eq!(gone, 0);
    }
}
