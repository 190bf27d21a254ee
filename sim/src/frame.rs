//! The simulator's events and frames, serialized once in Nomad's wire shape.

use serde::Serialize;

use nomad_chronicle::nomad::Subscription;

/// One event as the simulator streams it.
///
/// The routing fields (`topic`, `key`, `namespace`, `filter_keys`) are kept
/// beside the serialized `json` so subscriptions can be filtered without
/// parsing, and so every subscriber sends the very same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent {
    /// The object kind (`Allocation`, `Job`, `Node`, …).
    pub topic: String,
    /// The kind of raft entry that produced the event (`PlanResult`, …).
    pub event_type: String,
    /// The object's primary ID.
    pub key: String,
    /// The object's namespace; empty for cluster-wide objects such as nodes.
    pub namespace: String,
    /// Secondary keys a `topic=Topic:Key` filter also matches.
    pub filter_keys: Vec<String>,
    /// The raft index of the entry that produced the event.
    pub index: u64,
    /// The whole event as Nomad would put it on the wire, in Nomad's field order.
    pub json: String,
}

/// The event's wire shape; field order is the order Nomad writes.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireEvent<'a> {
    topic: &'a str,
    #[serde(rename = "Type")]
    event_type: &'a str,
    key: &'a str,
    namespace: &'a str,
    #[serde(rename = "FilterKeys")]
    filter_keys: Option<&'a [String]>,
    index: u64,
    payload: &'a serde_json::Value,
}

impl SimEvent {
    /// Whether this event reaches a subscriber with `sub`.
    pub fn reaches(&self, sub: &Subscription) -> bool {
        sub.matches(&self.topic, &self.key, &self.namespace, &self.filter_keys)
    }

    /// Builds an event and serializes it once.
    ///
    /// An empty `filter_keys` is written as `null`, as Nomad does for topics
    /// without secondary keys.
    pub fn new(
        topic: impl Into<String>,
        event_type: impl Into<String>,
        key: impl Into<String>,
        namespace: impl Into<String>,
        filter_keys: Vec<String>,
        index: u64,
        payload: serde_json::Value,
    ) -> SimEvent {
        let topic = topic.into();
        let event_type = event_type.into();
        let key = key.into();
        let namespace = namespace.into();
        let wire = WireEvent {
            topic: &topic,
            event_type: &event_type,
            key: &key,
            namespace: &namespace,
            filter_keys: (!filter_keys.is_empty()).then_some(filter_keys.as_slice()),
            index,
            payload: &payload,
        };
        // Serializing strings, integers and a `Value` cannot fail.
        let json = serde_json::to_string(&wire).unwrap_or_default();
        SimEvent {
            topic,
            event_type,
            key,
            namespace,
            filter_keys,
            index,
            json,
        }
    }
}

/// One raft entry's events: what Nomad sends as one NDJSON line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFrame {
    /// The raft index; strictly increasing along a history.
    pub index: u64,
    /// The events of the entry, in order.
    pub events: Vec<SimEvent>,
}

impl SimFrame {
    /// The frame as one wire line, `{"Index":N,"Events":[…]}`, without the newline.
    pub fn to_line(&self) -> String {
        frame_line(self.index, self.events.iter().map(|e| e.json.as_str()))
    }

    /// The frame as a subscriber with `filter` receives it, or `None` when no
    /// event matches (Nomad never sends an empty frame).
    pub fn filtered(&self, filter: &Subscription) -> Option<SimFrame> {
        let events: Vec<SimEvent> = self
            .events
            .iter()
            .filter(|e| e.reaches(filter))
            .cloned()
            .collect();
        (!events.is_empty()).then_some(SimFrame {
            index: self.index,
            events,
        })
    }
}

/// Builds a frame line from already serialized events.
pub(crate) fn frame_line<'a>(index: u64, events: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::with_capacity(64);
    line.push_str("{\"Index\":");
    line.push_str(&index.to_string());
    line.push_str(",\"Events\":[");
    for (i, json) in events.enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(json);
    }
    line.push_str("]}");
    line
}

#[cfg(test)]
impl SimFrame {
    /// A frame of one `JobRegistered` event for job `web`, for unit tests.
    pub(crate) fn job_registered(index: u64) -> SimFrame {
        let event = SimEvent::new(
            "Job",
            "JobRegistered",
            "web",
            "default",
            vec![],
            index,
            serde_json::json!({"Job": {"ID": "web"}}),
        );
        SimFrame {
            index,
            events: vec![event],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alloc_event(index: u64) -> SimEvent {
        SimEvent::new(
            "Allocation",
            "PlanResult",
            "a1",
            "default",
            vec!["job".into(), String::new()],
            index,
            json!({"Allocation": {"ID": "a1", "JobID": "job"}}),
        )
    }

    #[test]
    fn event_json_is_in_nomads_field_order() {
        let ev = alloc_event(7);
        assert_eq!(
            ev.json,
            r#"{"Topic":"Allocation","Type":"PlanResult","Key":"a1","Namespace":"default","FilterKeys":["job",""],"Index":7,"Payload":{"Allocation":{"ID":"a1","JobID":"job"}}}"#
        );
    }

    #[test]
    fn empty_filter_keys_are_written_as_null() {
        let ev = SimEvent::new("Node", "NodeRegistration", "n1", "", vec![], 3, json!({}));
        assert!(
            ev.json
                .contains(r#""Namespace":"","FilterKeys":null,"Index":3"#)
        );
    }

    #[test]
    fn frame_line_concatenates_the_stored_events() {
        let frame = SimFrame {
            index: 7,
            events: vec![alloc_event(7), alloc_event(7)],
        };
        let line = frame.to_line();
        assert_eq!(
            line,
            format!("{{\"Index\":7,\"Events\":[{0},{0}]}}", alloc_event(7).json)
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["Events"].as_array().map(Vec::len), Some(2));
    }
}
