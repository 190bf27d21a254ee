//! One line that says what an event changed, for the human timeline: the
//! fields an operator looks at first, per topic. Missing fields are left
//! out (Allocation and Evaluation omit empty ones).

use serde_json::Value;

/// A short description of `raw`, an event's JSON.
pub fn summarize(topic: &str, raw: &str) -> String {
    let Ok(event) = serde_json::from_str::<Value>(raw) else {
        return String::new();
    };
    let object = &event["Payload"][topic];
    let field = |name: &str| object[name].as_str().filter(|s| !s.is_empty());
    let mut parts: Vec<String> = Vec::new();
    let mut push = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            parts.push(if label.is_empty() {
                value
            } else {
                format!("{label}={value}")
            });
        }
    };
    match topic {
        "Allocation" => {
            push("client", field("ClientStatus").map(str::to_owned));
            push("desired", field("DesiredStatus").map(str::to_owned));
            push("job", field("JobID").map(str::to_owned));
            push("group", field("TaskGroup").map(str::to_owned));
            push(
                "node",
                field("NodeName").or(field("NodeID")).map(str::to_owned),
            );
            push("", field("ClientDescription").map(|d| format!("({d})")));
        }
        "Evaluation" => {
            push("status", field("Status").map(str::to_owned));
            push("triggered_by", field("TriggeredBy").map(str::to_owned));
            push("job", field("JobID").map(str::to_owned));
            if object["FailedTGAllocs"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
            {
                push("", Some("failed placements".to_owned()));
            }
        }
        "Job" => {
            push("version", object["Version"].as_u64().map(|v| v.to_string()));
            push("status", field("Status").map(str::to_owned));
            push("type", field("Type").map(str::to_owned));
            if object["Stop"].as_bool() == Some(true) {
                push("", Some("stopped".to_owned()));
            }
        }
        "Deployment" => {
            push("status", field("Status").map(str::to_owned));
            push("job", field("JobID").map(str::to_owned));
            push(
                "version",
                object["JobVersion"].as_u64().map(|v| v.to_string()),
            );
            push("", field("StatusDescription").map(|d| format!("({d})")));
        }
        "Node" => {
            push("", field("Name").map(str::to_owned));
            push("status", field("Status").map(str::to_owned));
            push(
                "eligibility",
                field("SchedulingEligibility").map(str::to_owned),
            );
            if object["Drain"].as_bool() == Some(true) {
                push("", Some("draining".to_owned()));
            }
        }
        _ => {}
    }
    parts.join(" ")
}

/// A Node event's node name, if its payload gives one.
pub fn node_name(raw: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "Payload")]
        payload: Option<Payload>,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "Node")]
        node: Option<Named>,
    }
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(rename = "Name")]
        name: Option<String>,
    }
    let event: Event = serde_json::from_str(raw).ok()?;
    event.payload?.node?.name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_and_node_lines_name_what_changed() {
        let alloc = r#"{"Topic":"Allocation","Payload":{"Allocation":{"ClientStatus":"failed","DesiredStatus":"run","JobID":"web","TaskGroup":"api","NodeName":"n-1","ClientDescription":"Failed tasks"}}}"#;
        assert_eq!(
            summarize("Allocation", alloc),
            "client=failed desired=run job=web group=api node=n-1 (Failed tasks)"
        );
        let node = r#"{"Payload":{"Node":{"Name":"n-1","Status":"down","SchedulingEligibility":"ineligible","Drain":true}}}"#;
        assert_eq!(
            summarize("Node", node),
            "n-1 status=down eligibility=ineligible draining"
        );
        assert_eq!(summarize("Unknown", node), "");
        assert_eq!(summarize("Node", "not json"), "");
    }
}
