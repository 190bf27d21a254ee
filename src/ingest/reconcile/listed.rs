//! Lists as Nomad answers them: a JSON array of objects, each kept as its
//! exact text beside the IDs the archive indexes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::archive::reconstruction::ObjectRow;

/// The fields of a listed object the archive indexes.
#[derive(Deserialize)]
struct Listed<'a> {
    #[serde(rename = "ID", borrow, default)]
    id: Cow<'a, str>,
    #[serde(rename = "Namespace", borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(rename = "ModifyIndex", default)]
    modify_index: Option<u64>,
    #[serde(rename = "JobID", borrow, default)]
    job_id: Option<Cow<'a, str>>,
    #[serde(rename = "NodeID", borrow, default)]
    node_id: Option<Cow<'a, str>>,
    #[serde(rename = "EvalID", borrow, default)]
    eval_id: Option<Cow<'a, str>>,
    #[serde(rename = "DeploymentID", borrow, default)]
    deployment_id: Option<Cow<'a, str>>,
}

/// Parses a list answer: a JSON array of objects of `topic`, each kept as
/// its exact text.
pub fn parse_list(topic: &str, namespace: &str, body: &[u8]) -> Result<Vec<ObjectRow>, String> {
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    items
        .into_iter()
        .map(|raw| parse_object(topic, namespace, raw.get().as_bytes()))
        .collect()
}

/// Parses one object of `topic` listed for `namespace`.
pub(super) fn parse_object(topic: &str, namespace: &str, raw: &[u8]) -> Result<ObjectRow, String> {
    let text = std::str::from_utf8(raw).map_err(|e| e.to_string())?;
    let listed: Listed = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if listed.id.is_empty() {
        return Err("an object without an `ID`".to_owned());
    }
    let nonempty = |v: Option<Cow<str>>| v.filter(|s| !s.is_empty()).map(Cow::into_owned);
    let key = listed.id.into_owned();
    let own = Some(key.clone());
    let namespace = match (topic, nonempty(listed.namespace)) {
        ("Node", _) => String::new(),
        (_, Some(ns)) => ns,
        (_, None) if namespace != "*" => namespace.to_owned(),
        (_, None) => "default".to_owned(),
    };
    let mut row = ObjectRow {
        namespace,
        modify_index: listed.modify_index,
        job_id: nonempty(listed.job_id),
        node_id: nonempty(listed.node_id),
        eval_id: nonempty(listed.eval_id),
        deployment_id: nonempty(listed.deployment_id),
        raw: text.to_owned(),
        ..ObjectRow::default()
    };
    row.shape = match topic {
        "Job" => {
            row.job_id = own;
            "JobListStub"
        }
        "Allocation" => "AllocationListStub",
        "Evaluation" => {
            row.eval_id = own;
            "Evaluation"
        }
        "Deployment" => {
            row.deployment_id = own;
            "Deployment"
        }
        _ => {
            row.node_id = own;
            "NodeListStub"
        }
    };
    row.key = key;
    Ok(row)
}

/// A job ID as one path segment (IDs of dispatched and periodic jobs hold `/`).
pub(super) fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_objects_keep_their_text_and_index_their_references() {
        let body = br#"[{"ID":"a1","Namespace":"prod","JobID":"web","NodeID":"n1","EvalID":"e1","ModifyIndex":42,"ClientStatus":"running"},
                        {"ID":"a2","JobID":"web","DeploymentID":""}]"#;
        let rows = parse_list("Allocation", "*", body).expect("a list");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].raw,
            r#"{"ID":"a1","Namespace":"prod","JobID":"web","NodeID":"n1","EvalID":"e1","ModifyIndex":42,"ClientStatus":"running"}"#
        );
        assert_eq!(
            (
                rows[0].namespace.as_str(),
                rows[0].node_id.as_deref(),
                rows[0].modify_index
            ),
            ("prod", Some("n1"), Some(42))
        );
        assert_eq!(rows[1].namespace, "default", "a stub without a namespace");
        assert_eq!(rows[1].deployment_id, None, "empty IDs are no reference");
        assert_eq!(rows[0].shape, "AllocationListStub");
        let nodes = parse_list("Node", "*", br#"[{"ID":"n1","Name":"w1"}]"#).expect("nodes");
        assert_eq!(
            (nodes[0].namespace.as_str(), nodes[0].node_id.as_deref()),
            ("", Some("n1"))
        );
        assert!(
            parse_list("Job", "*", br#"{"ID":"x"}"#).is_err(),
            "not a list"
        );
        assert!(
            parse_list("Job", "*", br#"[{"Name":"x"}]"#).is_err(),
            "no ID"
        );
    }

    #[test]
    fn job_ids_become_one_path_segment() {
        assert_eq!(path_segment("web"), "web");
        assert_eq!(
            path_segment("batch/periodic-1700000000"),
            "batch%2Fperiodic-1700000000"
        );
        assert_eq!(path_segment("a b"), "a%20b");
    }
}
