//! The event stream's wire format: frames `{"Index":N,"Events":[…]}`, heartbeats
//! `{}`, and the parts of each event the archive indexes.
//!
//! Events are parsed borrowed from the line they arrived in, and each event's raw
//! JSON text is kept exactly as received: the archive stores those bytes, so a
//! replay reproduces the stream without re-serializing anything.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::details::{self, Details};
use super::fields::PayloadObject;
use super::stamps::{self, Presence, Raw};

/// One line of the stream, parsed.
#[derive(Debug)]
pub enum Line {
    /// `{}`: liveness only, sent when a subscription starts and every 30 s.
    Heartbeat,
    /// All matching events of one raft log entry.
    Frame(Frame),
}

/// One raft entry's events, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The raft index shared by every event of the frame.
    pub index: u64,
    /// The events in the order Nomad sent them.
    pub events: Vec<Event>,
}

/// One event: the columns the archive indexes, plus the event's raw JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub topic: String,
    pub event_type: String,
    pub key: String,
    /// Empty for cluster-wide objects (Node, NodePool, ACL…).
    pub namespace: String,
    /// IDs of related objects, taken from the payload where it names them.
    pub job_id: Option<String>,
    pub alloc_id: Option<String>,
    pub node_id: Option<String>,
    pub eval_id: Option<String>,
    pub deployment_id: Option<String>,
    /// The time Nomad gave the event, from its payload (Unix ms); `None`
    /// when the payload carries none ([`stamps`]).
    pub nomad_time: Option<i64>,
    /// What the event says of its object, for the topics snapshots show.
    pub presence: Option<Presence>,
    /// The event exactly as received, for replay (shared, so storing it
    /// copies nothing).
    pub raw: Arc<str>,
    /// What the reporting views show of it; read for events that arrive
    /// (`parse_line`), not for events read back from the archive.
    pub details: Details,
}

/// Why a line is not a usable frame.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a JSON object that is neither a frame nor a heartbeat (no `Index` and `Events`)")]
    NotAFrame,
    #[error("index {0} is beyond what the archive stores exactly (at most 2^60-1)")]
    IndexOutOfRange(u64),
    #[error("event {position} is not a valid event: {source}")]
    BadEvent {
        position: usize,
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct WireFrame<'a> {
    #[serde(rename = "Index")]
    index: Option<u64>,
    #[serde(rename = "Events", borrow)]
    events: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct WireEvent<'a, P> {
    #[serde(rename = "Topic", borrow)]
    topic: Cow<'a, str>,
    #[serde(rename = "Type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(rename = "Key", borrow, default)]
    key: Cow<'a, str>,
    #[serde(rename = "Namespace", borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(rename = "FilterKeys", borrow, default)]
    filter_keys: Option<Vec<Option<Cow<'a, str>>>>,
    /// `WirePayload` to index references in the same pass; `IgnoredAny` for
    /// a payload of unexpected shape.
    #[serde(rename = "Payload", default = "Option::default")]
    payload: Option<P>,
}

/// What an event's payload says of its object: its references to other
/// objects and its stamps. Unknown payload kinds and fields are ignored.
#[derive(Deserialize, Default)]
struct WirePayload<'a> {
    #[serde(rename = "Allocation", borrow, default)]
    allocation: Option<PayloadObject<'a>>,
    #[serde(rename = "Evaluation", borrow, default)]
    evaluation: Option<PayloadObject<'a>>,
    #[serde(rename = "Deployment", borrow, default)]
    deployment: Option<PayloadObject<'a>>,
    #[serde(rename = "Job", borrow, default)]
    job: Option<PayloadObject<'a>>,
    #[serde(rename = "Node", borrow, default)]
    node: Option<PayloadObject<'a>>,
    #[serde(rename = "Deleted", borrow, default)]
    deleted: Option<Raw<'a>>,
}

impl<'a> WirePayload<'a> {
    /// A payload as the fast scan read it: the object named after the topic.
    fn of_topic(topic: &str, object: PayloadObject<'a>, deleted: Option<Raw<'a>>) -> Self {
        let mut payload = WirePayload {
            deleted,
            ..WirePayload::default()
        };
        let slot = match topic {
            "Allocation" => &mut payload.allocation,
            "Evaluation" => &mut payload.evaluation,
            "Deployment" => &mut payload.deployment,
            "Job" => &mut payload.job,
            "Node" => &mut payload.node,
            _ => return payload,
        };
        *slot = Some(object);
        payload
    }

    /// The object named after `topic`.
    fn take(&mut self, topic: &str) -> Option<PayloadObject<'a>> {
        match topic {
            "Allocation" => self.allocation.take(),
            "Evaluation" => self.evaluation.take(),
            "Deployment" => self.deployment.take(),
            "Job" => self.job.take(),
            "Node" => self.node.take(),
            _ => None,
        }
    }
}

/// The largest raft index a frame may have, 2^60-1: the archive's databases
/// store indexes as signed 64-bit integers, and an allocation's lives row
/// keeps its last client status as `index * 8 + status` in one of them
/// (`store::lives`). A frame beyond it is refused as malformed rather than
/// stored under another index. (Nomad's index grows by one per raft
/// entry: 2^60 is millions of years of a busy cluster.)
pub const MAX_INDEX: u64 = (i64::MAX / 8) as u64;

/// Parses one NDJSON line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Line, LineError> {
    if is_heartbeat(line) {
        return Ok(Line::Heartbeat);
    }
    let wire: WireFrame = serde_json::from_slice(line)?;
    match (wire.index, wire.events) {
        (Some(index), Some(_)) if index > MAX_INDEX => Err(LineError::IndexOutOfRange(index)),
        (Some(index), Some(events)) => {
            let events = events
                .into_iter()
                .enumerate()
                .map(|(position, raw)| {
                    let mut event = parse_event(raw, index, position)
                        .map_err(|source| LineError::BadEvent { position, source })?;
                    event.details = details::read(&event.topic, raw.get());
                    Ok::<_, LineError>(event)
                })
                .collect::<Result<_, _>>()?;
            Ok(Line::Frame(Frame { index, events }))
        }
        _ => Err(LineError::NotAFrame),
    }
}

/// Reads an event as the archive stored it (its raw JSON text) in a frame
/// of index `index`, exactly as when it arrived.
pub fn parse_stored(text: &str, index: u64) -> Result<Event, serde_json::Error> {
    let raw: &RawValue = serde_json::from_str(text)?;
    parse_event(raw, index, 0)
}

#[derive(Deserialize)]
struct WireFilterKeys<'a> {
    #[serde(rename = "FilterKeys", borrow, default)]
    filter_keys: Option<Vec<Option<Cow<'a, str>>>>,
}

/// An event's FilterKeys (empty when absent, null, or not parseable), for
/// matching `topic=Topic:Key` subscriptions against stored events.
pub fn filter_keys(raw: &str) -> Vec<String> {
    serde_json::from_str::<WireFilterKeys>(raw)
        .ok()
        .and_then(|w| w.filter_keys)
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(Cow::into_owned)
        .collect()
}

/// True for `{}`, allowing white space inside and around it.
fn is_heartbeat(line: &[u8]) -> bool {
    let mut significant = line.iter().filter(|b| !b.is_ascii_whitespace());
    significant.next() == Some(&b'{')
        && significant.next() == Some(&b'}')
        && significant.next().is_none()
}

fn parse_event(raw: &RawValue, index: u64, position: usize) -> Result<Event, serde_json::Error> {
    let text = raw.get();
    // The plain shape Nomad sends is scanned for what is indexed; anything
    // else is read with serde.
    let wire = match super::fields::scan(text) {
        Some(f) => WireEvent {
            payload: Some(WirePayload::of_topic(&f.topic, f.object, f.deleted)),
            topic: f.topic,
            event_type: f.event_type,
            key: f.key,
            namespace: f.namespace,
            filter_keys: f.filter_keys,
        },
        None => parse_with_serde(text)?,
    };
    Ok(event_of(wire, text, index, position))
}

/// Reads an event with serde: one pass for the header and the references;
/// a payload of unexpected shape still archives the event, read again
/// skipping the payload.
fn parse_with_serde(text: &str) -> Result<WireEvent<'_, WirePayload<'_>>, serde_json::Error> {
    Ok(match serde_json::from_str(text) {
        Ok(wire) => wire,
        Err(_) => {
            let bare: WireEvent<serde::de::IgnoredAny> = serde_json::from_str(text)?;
            WireEvent {
                topic: bare.topic,
                event_type: bare.event_type,
                key: bare.key,
                namespace: bare.namespace,
                filter_keys: bare.filter_keys,
                payload: None,
            }
        }
    })
}

fn event_of(
    wire: WireEvent<'_, WirePayload<'_>>,
    text: &str,
    index: u64,
    position: usize,
) -> Event {
    let mut payload = wire.payload.unwrap_or_default();
    let (refs, stamps) = payload.take(&wire.topic).unwrap_or_default().split();
    let mut event = Event {
        key: wire.key.into_owned(),
        namespace: wire.namespace.map(Cow::into_owned).unwrap_or_default(),
        raw: Arc::from(text),
        ..Event::default()
    };
    set_own_id(&mut event, &wire.topic);
    if matches!(
        wire.topic.as_ref(),
        "Allocation" | "Evaluation" | "Deployment"
    ) {
        event.job_id = event.job_id.or_else(|| nonempty(refs.job_id));
        event.node_id = event.node_id.or_else(|| nonempty(refs.node_id));
        event.eval_id = event.eval_id.or_else(|| nonempty(refs.eval_id));
        event.deployment_id = event.deployment_id.or_else(|| nonempty(refs.deployment_id));
    }
    event.nomad_time = stamps::event_time(&wire.topic, index, &stamps);
    event.presence = stamps::presence(&wire.topic, &wire.event_type, &stamps, payload.deleted);
    // Events whose Key is empty (HostVolumeDeleted) name their object in
    // FilterKeys[0]; an event with neither is told apart by its position, so
    // two of them in one frame are not taken for the same event.
    if event.key.is_empty() {
        let filter_key = wire
            .filter_keys
            .and_then(|keys| keys.into_iter().flatten().find(|k| !k.is_empty()));
        event.key = match filter_key {
            Some(first) => first.into_owned(),
            None => format!("#{position}"),
        };
    }
    event.topic = wire.topic.into_owned();
    event.event_type = wire.event_type.into_owned();
    event
}

/// The reference column an event's own key fills: a Job event's job_id is
/// its key, and so on.
fn set_own_id(event: &mut Event, topic: &str) {
    let own = nonempty(Some(Cow::Borrowed(event.key.as_str())));
    match topic {
        "Job" => event.job_id = own,
        "Node" => event.node_id = own,
        "Allocation" => event.alloc_id = own,
        "Evaluation" => event.eval_id = own,
        "Deployment" => event.deployment_id = own,
        _ => {}
    }
}

fn nonempty(value: Option<Cow<'_, str>>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(line: &str) -> Frame {
        match parse_line(line.as_bytes()) {
            Ok(Line::Frame(f)) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn an_index_beyond_the_archives_range_is_refused_not_altered() {
        let line = |index: u64| {
            format!(
                r#"{{"Index":{index},"Events":[{{"Topic":"Job","Type":"JobRegistered","Key":"web","Index":{index}}}]}}"#
            )
        };
        assert_eq!(frame(&line(MAX_INDEX)).index, MAX_INDEX);
        for index in [MAX_INDEX + 1, u64::MAX] {
            assert!(matches!(
                parse_line(line(index).as_bytes()),
                Err(LineError::IndexOutOfRange(i)) if i == index
            ));
        }
    }

    #[test]
    fn the_fast_scan_reads_generated_history_exactly_as_serde_does() {
        let mut generator = nomad_sim::Generator::new(7);
        let mut events = 0;
        for frame in generator.frames(20_000) {
            for (position, e) in frame.events.iter().enumerate() {
                assert!(
                    super::super::fields::scan(&e.json).is_some(),
                    "slow path for {}",
                    e.json
                );
                let raw: &RawValue = serde_json::from_str(&e.json).expect("valid JSON");
                let slow = parse_with_serde(&e.json).expect("an event");
                assert_eq!(
                    parse_event(raw, frame.index, position).expect("an event"),
                    event_of(slow, &e.json, frame.index, position)
                );
                events += 1;
            }
        }
        assert!(events >= 20_000);
    }

    #[test]
    fn odd_payloads_are_read_as_before() {
        for ev in [
            // The topic's payload object is malformed: no references at all.
            r#"{"Topic":"Allocation","Type":"x","Key":"a","Payload":{"Allocation":{"JobID":5,"NodeID":"n"}}}"#,
            // Another payload object is malformed: serde rejects the payload.
            r#"{"Topic":"Allocation","Type":"x","Key":"a","Payload":{"Allocation":{"NodeID":"n"},"Evaluation":{"JobID":[]}}}"#,
            r#"{"Topic":"Evaluation","Type":"x","Key":"e","Payload":{"Evaluation":{"JobID":"j","DeploymentID":"d"}}}"#,
            r#"{"Topic":"Allocation","Type":"x","Key":"a","Payload":null}"#,
            r#"{"Topic":"Allocation","Type":"x","Key":"","FilterKeys":[null,"","k"],"Payload":{}}"#,
        ] {
            let raw: &RawValue = serde_json::from_str(ev).expect("valid JSON");
            let slow = parse_with_serde(ev).expect("an event");
            assert_eq!(
                parse_event(raw, 9, 3).expect("an event"),
                event_of(slow, ev, 9, 3),
                "{ev}"
            );
        }
    }

    #[test]
    fn heartbeat_is_recognised() {
        assert!(matches!(parse_line(b"{}"), Ok(Line::Heartbeat)));
        assert!(matches!(parse_line(b" { } "), Ok(Line::Heartbeat)));
    }

    #[test]
    fn allocation_event_indexes_its_references_and_keeps_raw_bytes() {
        let ev = r#"{"Topic":"Allocation","Type":"PlanResult","Key":"a1","Namespace":"prod","FilterKeys":["web",""],"Index":7,"Payload":{"Allocation":{"ID":"a1","JobID":"web","NodeID":"n1","EvalID":"e1","DeploymentID":"","TaskStates":{"t":{"State":"running"}}}}}"#;
        let f = frame(&format!(r#"{{"Index":7,"Events":[{ev}]}}"#));
        assert_eq!(f.index, 7);
        let e = &f.events[0];
        assert_eq!(
            (
                e.topic.as_str(),
                e.event_type.as_str(),
                e.key.as_str(),
                e.namespace.as_str()
            ),
            ("Allocation", "PlanResult", "a1", "prod")
        );
        assert_eq!(e.alloc_id.as_deref(), Some("a1"));
        assert_eq!(e.job_id.as_deref(), Some("web"));
        assert_eq!(e.node_id.as_deref(), Some("n1"));
        assert_eq!(e.eval_id.as_deref(), Some("e1"));
        assert_eq!(
            e.deployment_id, None,
            "an empty DeploymentID is no reference"
        );
        assert_eq!(&*e.raw, ev);
    }

    #[test]
    fn node_event_without_namespace_and_unknown_topic_are_kept() {
        let f = frame(
            r#"{"Index":9,"Events":[{"Topic":"Node","Type":"NodeRegistration","Key":"n1","Namespace":"","FilterKeys":null,"Index":9,"Payload":{"Node":{"ID":"n1"}}},{"Topic":"HostVolume","Type":"HostVolumeDeleted","Key":"","FilterKeys":["vol-1"],"Index":9,"Payload":{"HostVolume":7}}]}"#,
        );
        assert_eq!(f.events[0].node_id.as_deref(), Some("n1"));
        assert_eq!(f.events[0].namespace, "");
        assert_eq!(f.events[1].topic, "HostVolume");
        assert_eq!(
            f.events[1].key, "vol-1",
            "empty Key falls back to FilterKeys[0]"
        );
    }

    #[test]
    fn events_without_any_key_are_told_apart_by_position() {
        let f = frame(
            r#"{"Index":9,"Events":[{"Topic":"X","Type":"Y","Key":"","Index":9,"Payload":{}},{"Topic":"X","Type":"Y","Key":"","FilterKeys":[""],"Index":9,"Payload":{}}]}"#,
        );
        assert_eq!(
            (f.events[0].key.as_str(), f.events[1].key.as_str()),
            ("#0", "#1")
        );
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let f = frame(
            r#"{"Index":1,"Events":[{"Topic":"Job","Type":"JobRegistered","Key":"we\"b","Namespace":"default","Index":1,"Payload":{"Job":{}}}]}"#,
        );
        assert_eq!(f.events[0].key, "we\"b");
        assert_eq!(f.events[0].job_id.as_deref(), Some("we\"b"));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(
            parse_line(b"{\"Index\":1,"),
            Err(LineError::Json(_))
        ));
        assert!(matches!(parse_line(b"[1,2]"), Err(LineError::Json(_))));
        assert!(matches!(
            parse_line(b"{\"Index\":3}"),
            Err(LineError::NotAFrame)
        ));
        assert!(matches!(
            parse_line(b"{\"Other\":3}"),
            Err(LineError::NotAFrame)
        ));
        assert!(matches!(
            parse_line(b"{\"Index\":3,\"Events\":[{\"Type\":\"x\"}]}"),
            Err(LineError::BadEvent { position: 0, .. })
        ));
        assert!(matches!(
            parse_line(b"event dropped from buffer"),
            Err(LineError::Json(_))
        ));
    }
}
