//! What the lanes take of an object ([`Sighting`]), read two ways: from the
//! details stored beside a window's events ([`LaneRow`], no decoding: an
//! allocation summed up over the window, any other object as one event
//! shows it, or allocations counted together), and
//! from a decoded object of the moment a window starts at. Both read the
//! same payload fields, so an object gives the same sighting either way.

use std::collections::HashMap;

use serde::Deserialize;

use super::lanes::{Sighting, Topic};
use crate::store::LaneRow;

/// What a row of a window stands for.
#[derive(Debug)]
pub enum Seen {
    /// One object, at a time.
    Object(Topic, Sighting, i64),
    /// `count` allocations of the lane `Sighting` names, counted in
    /// `bucket`.
    Counted(Sighting, u32, u32),
}

/// A window's row as the details stored beside its events describe it.
pub fn from_row(row: LaneRow) -> Option<Seen> {
    let topic = Topic::parse(&row.topic)?;
    let draining = row.drain == Some(true) || row.eligibility.as_deref() == Some("ineligible");
    let at = row.event_at;
    let counted = row.bucket.zip(row.count);
    let sighting = Sighting {
        id: row.key,
        namespace: row.namespace,
        job_id: row.job_id.unwrap_or_default(),
        node_id: row.node_id.unwrap_or_default(),
        node_name: row.node_name.unwrap_or_default(),
        task_group: row.task_group.unwrap_or_default(),
        status: row.status.unwrap_or_default(),
        ended: row.ended_at,
        version: row.version,
        draining,
        thinned: row.hidden.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    Some(match counted {
        Some((bucket, count)) => Seen::Counted(
            sighting,
            u32::try_from(bucket).unwrap_or(0),
            u32::try_from(count).unwrap_or(u32::MAX),
        ),
        None => Seen::Object(topic, sighting, at),
    })
}

/// The fields of a payload object the lanes use.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Object {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    #[serde(rename = "JobID")]
    job_id: String,
    namespace: String,
    #[serde(rename = "NodeID")]
    node_id: String,
    node_name: String,
    task_group: String,
    client_status: String,
    version: Option<i64>,
    job_version: Option<i64>,
    status: String,
    scheduling_eligibility: String,
    drain: Option<bool>,
    drain_strategy: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(default)]
    payload: HashMap<String, Object>,
}

/// An archived event's object (`raw`, its JSON) of `topic`; `None` when
/// it is not one the lanes draw or cannot be read.
pub fn from_event(topic: &str, raw: &str) -> Option<(Topic, Sighting)> {
    let topic_kind = Topic::parse(topic)?;
    let mut envelope: Envelope = serde_json::from_str(raw).ok()?;
    let mut o = envelope.payload.remove(topic)?;
    let draining = o.drain == Some(true)
        || o.drain_strategy.as_ref().is_some_and(|d| !d.is_null())
        || o.scheduling_eligibility == "ineligible";
    let take = std::mem::take::<String>;
    let (status, node_name, version) = match topic_kind {
        Topic::Allocation => (take(&mut o.client_status), take(&mut o.node_name), None),
        Topic::Job => (take(&mut o.status), String::new(), o.version),
        Topic::Deployment => (take(&mut o.status), String::new(), o.job_version),
        Topic::Node => (take(&mut o.status), take(&mut o.name), None),
    };
    let sighting = Sighting {
        id: o.id,
        namespace: o.namespace,
        job_id: o.job_id,
        node_id: o.node_id,
        node_name,
        task_group: o.task_group,
        status,
        ended: None,
        version,
        draining,
        thinned: None,
    };
    Some((topic_kind, sighting))
}
