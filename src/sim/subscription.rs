//! What a subscriber asked for: the query string of `/v1/event/stream`, parsed like Nomad does.

use super::frame::SimEvent;

/// The wildcard Nomad uses for "every topic", "every key" and "every namespace".
const ALL: &str = "*";

/// What a subscriber asked for, parsed from the query string like Nomad does.
///
/// The server filters frames with it, and tests compare it with what the
/// archiver was expected to request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The start index, inclusive; `0` means "the oldest entry in the buffer".
    pub index: u64,
    /// `(Topic, Key)` pairs; `("*", "*")` when no topic was given.
    pub topics: Vec<(String, String)>,
    /// The namespace filter; `default` when absent, `*` for all.
    pub namespace: String,
}

impl Subscription {
    /// Parses a raw query string (without the `?`).
    ///
    /// The error is the plain-text body Nomad answers with its HTTP 400.
    pub fn parse(query: &str) -> Result<Subscription, String> {
        let pairs = query_pairs(query);
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };

        let index_text = first("index").unwrap_or("");
        let index = if index_text.is_empty() {
            0
        } else {
            // Nomad parses a signed int and then uses it as an unsigned raft
            // index, so `-1` means "the newest entry"; mirror that.
            match index_text.parse::<i64>() {
                Ok(i) => i as u64,
                Err(e) => {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow
                        | std::num::IntErrorKind::NegOverflow => "value out of range",
                        _ => "invalid syntax",
                    };
                    return Err(format!(
                        "Unable to parse index: strconv.Atoi: parsing {index_text:?}: {why}"
                    ));
                }
            }
        };

        let mut topics = Vec::new();
        for (_, raw) in pairs.iter().filter(|(k, _)| k == "topic") {
            let mut parts = raw.split(':');
            let topic = parts.next().unwrap_or_default();
            let key = parts.next().unwrap_or(ALL);
            if parts.next().is_some() {
                return Err(format!(
                    "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: {raw}"
                ));
            }
            topics.push((topic.to_string(), key.to_string()));
        }
        if topics.is_empty() {
            topics.push((ALL.to_string(), ALL.to_string()));
        }

        let namespace = match first("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        };

        Ok(Subscription {
            index,
            topics,
            namespace,
        })
    }

    /// Whether `ev` reaches this subscriber: its namespace passes (empty
    /// namespaces pass every filter) and some `(Topic, Key)` pair matches its
    /// topic and its key or one of its filter keys.
    pub fn matches(&self, ev: &SimEvent) -> bool {
        let namespace_ok =
            self.namespace == ALL || ev.namespace.is_empty() || ev.namespace == self.namespace;
        namespace_ok
            && self.topics.iter().any(|(topic, key)| {
                (topic == ALL || *topic == ev.topic)
                    && (key == ALL || *key == ev.key || ev.filter_keys.iter().any(|k| k == key))
            })
    }

    /// Whether every event passes, so frames can be sent without filtering.
    pub(crate) fn is_everything(&self) -> bool {
        self.namespace == ALL && self.topics.iter().any(|(t, k)| t == ALL && k == ALL)
    }
}

/// Splits and decodes a query string the way Go's `url.ParseQuery` does:
/// `+` is a space, `%XX` is a byte, and a pair that fails to decode is skipped.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(k)?, unescape(v)?))
        })
        .collect()
}

/// Decodes one query component; `None` on a malformed escape.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, k)| (t.to_string(), k.to_string()))
            .collect()
    }

    fn event(topic: &str, key: &str, ns: &str, filter_keys: &[&str]) -> SimEvent {
        SimEvent::new(
            topic,
            "T",
            key,
            ns,
            filter_keys.iter().map(|s| s.to_string()).collect(),
            1,
            serde_json::json!({}),
        )
    }

    #[test]
    fn empty_query_means_everything_from_the_oldest_in_default() {
        let sub = Subscription::parse("").unwrap();
        assert_eq!(sub.index, 0);
        assert_eq!(sub.topics, pairs(&[("*", "*")]));
        assert_eq!(sub.namespace, "default");
    }

    #[test]
    fn topics_repeat_and_a_bare_topic_means_every_key() {
        let sub =
            Subscription::parse("index=42&topic=Job&topic=Allocation:web&namespace=*").unwrap();
        assert_eq!(sub.index, 42);
        assert_eq!(sub.topics, pairs(&[("Job", "*"), ("Allocation", "web")]));
        assert_eq!(sub.namespace, "*");
    }

    #[test]
    fn empty_index_is_zero_and_escapes_are_decoded() {
        let sub = Subscription::parse("index=&topic=Job%3Amy+job&namespace=").unwrap();
        assert_eq!(sub.index, 0);
        assert_eq!(sub.topics, pairs(&[("Job", "my job")]));
        assert_eq!(sub.namespace, "default");
    }

    #[test]
    fn a_non_integer_index_is_nomads_400_message() {
        assert_eq!(
            Subscription::parse("index=abc").unwrap_err(),
            "Unable to parse index: strconv.Atoi: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            Subscription::parse("index=99999999999999999999").unwrap_err(),
            "Unable to parse index: strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
    }

    #[test]
    fn a_topic_with_two_colons_is_nomads_400_message() {
        assert_eq!(
            Subscription::parse("topic=Job:a:b").unwrap_err(),
            "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Job:a:b"
        );
    }

    #[test]
    fn topic_matches_by_name_or_wildcard_and_key_or_filter_keys() {
        let alloc = event("Allocation", "a1", "default", &["job-web", "dep-1"]);
        let sub = |q: &str| Subscription::parse(q).unwrap();
        assert!(sub("").matches(&alloc));
        assert!(sub("topic=Allocation").matches(&alloc));
        assert!(sub("topic=Allocation:a1").matches(&alloc));
        assert!(sub("topic=Allocation:job-web").matches(&alloc));
        assert!(sub("topic=Allocation:dep-1").matches(&alloc));
        assert!(sub("topic=*:job-web").matches(&alloc));
        assert!(!sub("topic=Allocation:other").matches(&alloc));
        assert!(!sub("topic=Job").matches(&alloc));
        assert!(sub("topic=Job&topic=Allocation:a1").matches(&alloc));
    }

    #[test]
    fn namespace_filter_passes_empty_namespaces_and_the_wildcard() {
        let prod = event("Job", "web", "prod", &[]);
        let node = event("Node", "n1", "", &[]);
        let sub = |q: &str| Subscription::parse(q).unwrap();
        assert!(!sub("").matches(&prod));
        assert!(sub("namespace=prod").matches(&prod));
        assert!(sub("namespace=*").matches(&prod));
        assert!(sub("").matches(&node));
        assert!(sub("namespace=prod").matches(&node));
    }
}
