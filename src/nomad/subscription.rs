//! What a subscriber of `/v1/event/stream` asks for: the start index, the
//! `Topic:Key` filters and the namespace, with Nomad's parsing (and its exact
//! HTTP 400 messages) and Nomad's matching rules. The archiver sends one, the
//! simulator and `serve` parse and apply them, `replay` applies them.

/// The wildcard Nomad uses for "every topic", "every key" and "every namespace".
pub const ALL: &str = "*";

/// A subscription to the event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The start index, inclusive; `0` means "the oldest entry there is".
    pub index: u64,
    /// `(Topic, Key)` pairs; `("*", "*")` for every topic.
    pub topics: Vec<(String, String)>,
    /// The namespace filter: `default` unless given, `*` for all.
    pub namespace: String,
}

impl Subscription {
    /// Every event of every namespace from `index` on.
    pub fn everything(index: u64) -> Self {
        Subscription {
            index,
            topics: vec![(ALL.to_owned(), ALL.to_owned())],
            namespace: ALL.to_owned(),
        }
    }

    /// Parses `TOPIC` or `TOPIC:KEY`; a bare topic means every key.
    pub fn parse_topic(raw: &str) -> Result<(String, String), String> {
        let mut parts = raw.split(':');
        let topic = parts.next().unwrap_or_default();
        let key = parts.next().unwrap_or(ALL);
        if parts.next().is_some() {
            return Err(format!(
                "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: {raw}"
            ));
        }
        Ok((topic.to_owned(), key.to_owned()))
    }

    /// Parses a raw query string (without the `?`) as Nomad does. The error
    /// is the plain-text body of Nomad's HTTP 400.
    pub fn parse(query: &str) -> Result<Subscription, String> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
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

        let mut topics = pairs
            .iter()
            .filter(|(k, _)| k == "topic")
            .map(|(_, raw)| Self::parse_topic(raw))
            .collect::<Result<Vec<_>, _>>()?;
        if topics.is_empty() {
            topics.push((ALL.to_owned(), ALL.to_owned()));
        }

        let namespace = match first("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_owned(),
            _ => "default".to_owned(),
        };

        Ok(Subscription {
            index,
            topics,
            namespace,
        })
    }

    /// The query string that asks Nomad for this subscription. Every topic
    /// is sent as no topic at all, as the Nomad CLI does.
    pub fn query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("index", &self.index.to_string());
        query.append_pair("namespace", &self.namespace);
        if !self.all_topics() {
            for (topic, key) in &self.topics {
                query.append_pair("topic", &format!("{topic}:{key}"));
            }
        }
        query.finish()
    }

    /// Whether an event reaches this subscriber: its namespace passes (an
    /// empty namespace passes every filter) and some `(Topic, Key)` pair
    /// matches its topic and its key or one of its filter keys.
    pub fn matches<S: AsRef<str>>(
        &self,
        topic: &str,
        key: &str,
        namespace: &str,
        filter_keys: &[S],
    ) -> bool {
        let namespace_ok =
            self.namespace == ALL || namespace.is_empty() || namespace == self.namespace;
        namespace_ok
            && self.topics.iter().any(|(t, k)| {
                (t == ALL || t == topic)
                    && (k == ALL || k == key || filter_keys.iter().any(|f| f.as_ref() == k))
            })
    }

    /// Whether every event passes, so frames can go out unfiltered.
    pub fn is_everything(&self) -> bool {
        self.namespace == ALL && self.all_topics()
    }

    fn all_topics(&self) -> bool {
        self.topics.iter().any(|(t, k)| t == ALL && k == ALL)
    }

    /// Whether matching needs an event's filter keys (some topic names a key).
    pub fn uses_keys(&self) -> bool {
        !self.all_topics() && self.topics.iter().any(|(_, k)| k != ALL)
    }

    /// The topic names asked for, or `None` when any topic will do: lets a
    /// store narrow its reads before [`Subscription::matches`] decides.
    pub fn topic_names(&self) -> Option<Vec<&str>> {
        if self.topics.iter().any(|(t, _)| t == ALL) {
            return None;
        }
        let mut names: Vec<&str> = self.topics.iter().map(|(t, _)| t.as_str()).collect();
        names.dedup();
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, k)| (t.to_string(), k.to_string()))
            .collect()
    }

    /// An event as `matches` sees it.
    struct Ev(&'static str, &'static str, &'static str, Vec<&'static str>);

    fn event(
        topic: &'static str,
        key: &'static str,
        ns: &'static str,
        filter_keys: &[&'static str],
    ) -> Ev {
        Ev(topic, key, ns, filter_keys.to_vec())
    }

    impl Subscription {
        fn matches_ev(&self, e: &Ev) -> bool {
            self.matches(e.0, e.1, e.2, &e.3)
        }
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
        assert!(sub("").matches_ev(&alloc));
        assert!(sub("topic=Allocation").matches_ev(&alloc));
        assert!(sub("topic=Allocation:a1").matches_ev(&alloc));
        assert!(sub("topic=Allocation:job-web").matches_ev(&alloc));
        assert!(sub("topic=Allocation:dep-1").matches_ev(&alloc));
        assert!(sub("topic=*:job-web").matches_ev(&alloc));
        assert!(!sub("topic=Allocation:other").matches_ev(&alloc));
        assert!(!sub("topic=Job").matches_ev(&alloc));
        assert!(sub("topic=Job&topic=Allocation:a1").matches_ev(&alloc));
    }

    #[test]
    fn the_query_string_round_trips() {
        let sub =
            Subscription::parse("index=7&topic=Job%3Amy+job&topic=Node&namespace=prod").unwrap();
        assert_eq!(Subscription::parse(&sub.query_string()).unwrap(), sub);
        let all = Subscription::parse("index=3&namespace=*").unwrap();
        assert_eq!(all.query_string(), "index=3&namespace=*");
        assert!(all.is_everything());
        assert_eq!(all.topic_names(), None);
        assert_eq!(sub.topic_names(), Some(vec!["Job", "Node"]));
    }

    #[test]
    fn namespace_filter_passes_empty_namespaces_and_the_wildcard() {
        let prod = event("Job", "web", "prod", &[]);
        let node = event("Node", "n1", "", &[]);
        let sub = |q: &str| Subscription::parse(q).unwrap();
        assert!(!sub("").matches_ev(&prod));
        assert!(sub("namespace=prod").matches_ev(&prod));
        assert!(sub("namespace=*").matches_ev(&prod));
        assert!(sub("").matches_ev(&node));
        assert!(sub("namespace=prod").matches_ev(&node));
    }
}
