//! The fast path of reading an event: its header (Topic, Type, Key,
//! Namespace, FilterKeys), its payload's references (JobID, NodeID,
//! EvalID, DeploymentID of an Allocation, Evaluation or Deployment) and the
//! fields that date it or end its object ([`super::stamps`]), taken
//! from the event's JSON text in one forward scan that skips everything else
//! without decoding it.
//!
//! The text was already validated as JSON (the frame was parsed with
//! serde_json, which found each event's extent), so the scan checks no
//! grammar; it reads only where fields begin and end. Whenever the event is
//! not the plain shape Nomad sends — a field of an unexpected type, a
//! duplicated field, escapes in a field name — it gives up and the caller
//! reads the event with serde instead, which decides exactly as before.
//! The scan never panics, whatever the input.

use std::borrow::Cow;

use serde::Deserialize;

use super::stamps::{Raw, Stamps};

/// The parts of an event the archive indexes, borrowed from its text where
/// they hold no escapes.
#[derive(Debug, Default, PartialEq)]
pub struct Fields<'a> {
    pub topic: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    pub key: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    pub filter_keys: Option<Vec<Option<Cow<'a, str>>>>,
    /// What the payload object named after the event's topic
    /// (`Payload.Allocation` of an Allocation event…) says.
    pub object: PayloadObject<'a>,
    /// The payload's `Deleted` (a purged job), as raw text.
    pub deleted: Option<Raw<'a>>,
}

/// IDs a payload object names.
#[derive(Debug, Default, PartialEq)]
pub struct Refs<'a> {
    pub job_id: Option<Cow<'a, str>>,
    pub node_id: Option<Cow<'a, str>>,
    pub eval_id: Option<Cow<'a, str>>,
    pub deployment_id: Option<Cow<'a, str>>,
}

/// The fields of a payload object the archive reads: its references and
/// its stamps (serde reads the same, on the slow path).
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct PayloadObject<'a> {
    #[serde(rename = "JobID", borrow, default)]
    pub job_id: Option<Cow<'a, str>>,
    #[serde(rename = "NodeID", borrow, default)]
    pub node_id: Option<Cow<'a, str>>,
    #[serde(rename = "EvalID", borrow, default)]
    pub eval_id: Option<Cow<'a, str>>,
    #[serde(rename = "DeploymentID", borrow, default)]
    pub deployment_id: Option<Cow<'a, str>>,
    #[serde(rename = "ModifyTime", borrow, default)]
    pub modify_time: Option<Raw<'a>>,
    #[serde(rename = "SubmitTime", borrow, default)]
    pub submit_time: Option<Raw<'a>>,
    #[serde(rename = "JobModifyIndex", borrow, default)]
    pub job_modify_index: Option<Raw<'a>>,
    #[serde(rename = "StatusUpdatedAt", borrow, default)]
    pub status_updated_at: Option<Raw<'a>>,
    #[serde(rename = "Events", borrow, default)]
    pub events: Option<Raw<'a>>,
    #[serde(rename = "ClientStatus", borrow, default)]
    pub client_status: Option<Raw<'a>>,
}

impl<'a> PayloadObject<'a> {
    /// The references and the stamps, apart.
    pub fn split(self) -> (Refs<'a>, Stamps<'a>) {
        let refs = Refs {
            job_id: self.job_id,
            node_id: self.node_id,
            eval_id: self.eval_id,
            deployment_id: self.deployment_id,
        };
        let stamps = Stamps {
            modify_time: self.modify_time,
            submit_time: self.submit_time,
            job_modify_index: self.job_modify_index,
            status_updated_at: self.status_updated_at,
            events: self.events,
            client_status: self.client_status,
        };
        (refs, stamps)
    }
}

/// The payload objects that are read: the topics whose references are
/// indexed, and those snapshots show.
const OBJECT_PAYLOADS: [&str; 5] = ["Allocation", "Evaluation", "Deployment", "Job", "Node"];

/// Scans one event; `None` means "not the plain shape, read it with serde".
pub fn scan(text: &str) -> Option<Fields<'_>> {
    let mut c = Cursor { text, at: 0 };
    let (mut topic, mut event_type, mut key) = (None, None, None);
    let (mut namespace, mut filter_keys) = (None, None);
    // The references of each payload object serde would read (it rejects
    // the payload if any of them is malformed); the topic's are indexed.
    let mut payload: [Option<PayloadObject<'_>>; 5] = Default::default();
    let mut deleted = None;
    let mut seen_payload = false;
    c.expect(b'{')?;
    if c.peek()? == b'}' {
        return None;
    }
    loop {
        let name = c.plain_string()?;
        c.expect(b':')?;
        match name {
            "Topic" => set_once(&mut topic, c.string()?)?,
            "Type" => set_once(&mut event_type, c.string()?)?,
            "Key" => set_once(&mut key, c.string()?)?,
            "Namespace" => set_once(&mut namespace, c.nullable_string()?)?,
            "FilterKeys" => set_once(&mut filter_keys, c.filter_keys()?)?,
            "Payload" => {
                if std::mem::replace(&mut seen_payload, true) {
                    return None;
                }
                c.payload(&mut payload, &mut deleted)?;
            }
            _ => c.skip_value()?,
        }
        match c.next_byte()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    let topic = topic?;
    let object = OBJECT_PAYLOADS
        .iter()
        .position(|p| *p == topic)
        .and_then(|i| payload[i].take())
        .unwrap_or_default();
    Some(Fields {
        topic,
        event_type: event_type?,
        key: key.unwrap_or_default(),
        namespace: namespace.flatten(),
        filter_keys: filter_keys.flatten(),
        object,
        deleted,
    })
}

/// Sets a field met for the first time; a second time gives up (serde
/// rejects duplicate fields).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// The first `"` or `\\` in `bytes`, eight bytes at a time (SWAR: a byte
/// equal to the one searched for becomes zero, and the lowest zero byte of
/// a word is found exactly).
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let hits = zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| at + p)
}

/// A position in validated JSON text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not white space, without consuming it.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes().get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next_byte()? == wanted).then_some(())
    }

    /// The extent of the string starting here (quotes included), and
    /// whether it holds escapes.
    fn string_extent(&mut self) -> Option<(usize, usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at;
        let mut at = start + 1;
        let mut escaped = false;
        loop {
            let rest = self.bytes().get(at..)?;
            let found = quote_or_backslash(rest)?;
            at += found;
            if self.bytes().get(at) == Some(&b'"') {
                self.at = at + 1;
                return Some((start, at + 1, escaped));
            }
            // A backslash and the character it escapes.
            escaped = true;
            at += 2;
        }
    }

    /// A string value, decoded.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let (start, end, escaped) = self.string_extent()?;
        let quoted = self.text.get(start..end)?;
        if escaped {
            serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
        } else {
            quoted.get(1..quoted.len() - 1).map(Cow::Borrowed)
        }
    }

    /// A string without escapes (field names; one with escapes gives up).
    fn plain_string(&mut self) -> Option<&'a str> {
        let (start, end, escaped) = self.string_extent()?;
        if escaped {
            return None;
        }
        self.text.get(start + 1..end - 1)
    }

    /// A string or `null`.
    fn nullable_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.string().map(Some)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// FilterKeys: `null`, or an array of strings and nulls.
    fn filter_keys(&mut self) -> Option<Option<Vec<Option<Cow<'a, str>>>>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.expect(b'[')?;
        let mut keys = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Some(keys));
        }
        loop {
            keys.push(self.nullable_string()?);
            match self.next_byte()? {
                b',' => {}
                b']' => return Some(Some(keys)),
                _ => return None,
            }
        }
    }

    /// Payload: `null`, or an object whose members named in
    /// [`OBJECT_PAYLOADS`] are read, and whose `Deleted` is kept.
    fn payload(
        &mut self,
        found: &mut [Option<PayloadObject<'a>>; 5],
        deleted: &mut Option<Raw<'a>>,
    ) -> Option<()> {
        match self.peek()? {
            b'n' => return self.literal("null"),
            b'{' => self.at += 1,
            _ => return None,
        }
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let name = self.plain_string()?;
            self.expect(b':')?;
            match OBJECT_PAYLOADS.iter().position(|p| *p == name) {
                Some(i) => set_once(&mut found[i], self.object()?)?,
                None if name == "Deleted" => set_once(deleted, self.raw()?)?,
                None => self.skip_value()?,
            }
            match self.next_byte()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// One value's JSON text, uninterpreted.
    fn raw(&mut self) -> Option<Raw<'a>> {
        self.peek()?;
        let start = self.at;
        self.skip_value()?;
        self.text.get(start..self.at).map(Raw)
    }

    /// The fields read of one payload object (`{…}` or `null`).
    fn object(&mut self) -> Option<PayloadObject<'a>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(PayloadObject::default());
        }
        let mut o = PayloadObject::default();
        let mut ids_seen = [false; 4];
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                let name = self.plain_string()?;
                self.expect(b':')?;
                self.object_field(name, &mut o, &mut ids_seen)?;
                match self.next_byte()? {
                    b',' => {}
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        Some(o)
    }

    /// One field of a payload object: read into `o` when it is one of
    /// those read, skipped otherwise; a field seen twice gives up (an ID's
    /// `null` counts as seen: `ids_seen`).
    fn object_field(
        &mut self,
        name: &str,
        o: &mut PayloadObject<'a>,
        ids_seen: &mut [bool; 4],
    ) -> Option<()> {
        let mut id = |c: &mut Self, i: usize, slot: &mut Option<Cow<'a, str>>| {
            if std::mem::replace(&mut ids_seen[i], true) {
                return None;
            }
            *slot = c.nullable_string()?;
            Some(())
        };
        match name {
            "JobID" => id(self, 0, &mut o.job_id),
            "NodeID" => id(self, 1, &mut o.node_id),
            "EvalID" => id(self, 2, &mut o.eval_id),
            "DeploymentID" => id(self, 3, &mut o.deployment_id),
            "ModifyTime" => set_once(&mut o.modify_time, self.raw()?),
            "SubmitTime" => set_once(&mut o.submit_time, self.raw()?),
            "JobModifyIndex" => set_once(&mut o.job_modify_index, self.raw()?),
            "StatusUpdatedAt" => set_once(&mut o.status_updated_at, self.raw()?),
            "Events" => set_once(&mut o.events, self.raw()?),
            "ClientStatus" => set_once(&mut o.client_status, self.raw()?),
            _ => self.skip_value(),
        }
    }

    /// Moves past one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string_extent().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.bytes().get(self.at)? {
                        b'"' => {
                            self.string_extent()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                // A number or a literal: up to the next delimiter.
                let rest = self.bytes().get(self.at..)?;
                let len = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len());
                self.at += len;
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_and_the_references_of_the_topics_payload() {
        let text = r#"{"Topic":"Allocation","Type":"PlanResult","Key":"a1","Namespace":"prod","FilterKeys":["web",null],"Index":7,"Payload":{"Allocation":{"ID":"a1","JobID":"web","TaskStates":{"t":{"Events":[{"JobID":"not this one"}]}},"NodeID":"n1","EvalID":"e\"1","DeploymentID":null}}}"#;
        let f = scan(text).expect("plain shape");
        assert_eq!(f.topic, "Allocation");
        assert_eq!(f.event_type, "PlanResult");
        assert_eq!(f.key, "a1");
        assert_eq!(f.namespace.as_deref(), Some("prod"));
        assert_eq!(f.filter_keys, Some(vec![Some(Cow::Borrowed("web")), None]));
        assert_eq!(f.object.job_id.as_deref(), Some("web"));
        assert_eq!(f.object.node_id.as_deref(), Some("n1"));
        assert_eq!(f.object.eval_id.as_deref(), Some("e\"1"));
        assert_eq!(f.object.deployment_id, None);
    }

    #[test]
    fn unusual_shapes_are_left_to_serde() {
        for text in [
            r#"{"Topic":"Job","Topic":"Job","Type":"x"}"#,
            r#"{"Topic":1,"Type":"x"}"#,
            r#"{"Topic":"Job","Type":"x","Key":null}"#,
            r#"{"Topic":"Allocation","Type":"x","Payload":{"Allocation":{"JobID":5}}}"#,
            r#"{"Topic":"Allocation","Type":"x","Payload":7}"#,
            r#"{"\u0054opic":"Job","Type":"x"}"#,
            r#"{"Type":"x"}"#,
            "",
            "{",
            r#"{"Topic":"Job","Type":"x","Payload":{"Job":{"a":[1,{"b":"}"}]"#,
        ] {
            assert_eq!(scan(text), None, "{text}");
        }
    }

    #[test]
    fn missing_optional_fields_take_their_defaults() {
        let f = scan(r#" { "Topic" : "Node" , "Type" : "NodeDrain" , "Payload" : null } "#)
            .expect("plain shape");
        assert_eq!(f.key, "");
        assert_eq!(f.namespace, None);
        assert_eq!(f.filter_keys, None);
        assert_eq!(f.object, PayloadObject::default());
        assert_eq!(f.deleted, None);
    }
}
