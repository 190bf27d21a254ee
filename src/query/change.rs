//! One change a timeline tells, both ways: as fields for scripts (which part
//! of the object, which field, from what to what, with which message) and
//! as the sentence a person reads.

/// One change, with its own time when it has one (a task event's `Time`):
/// otherwise it happened when its event did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    /// The sentence: `client pending → running (Tasks are running)`.
    pub text: String,
    /// Unix ns.
    pub at: Option<i64>,
    /// The part of the object that changed: `Allocation`, `Task web`,
    /// `Group api`, `Node`, `Evaluation`, `Deployment`, `Job`.
    pub object: String,
    /// The field that changed, as Nomad names it (`ClientStatus`); `None`
    /// for a change of the whole object (a purge, a deregistration).
    pub field: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// What the change says in words of its own: a status description, a
    /// task event's message, a node event's, a job version's diff.
    pub message: Option<String>,
}

impl Line {
    /// A change of `object` told by `text`.
    pub fn new(object: impl Into<String>, text: impl Into<String>) -> Self {
        Line {
            object: object.into(),
            text: text.into(),
            ..Line::default()
        }
    }

    /// The field that changed, and its values before and after.
    pub fn field(mut self, field: &str, from: Option<&str>, to: Option<&str>) -> Self {
        self.field = Some(field.to_owned());
        self.from = from.map(str::to_owned);
        self.to = to.map(str::to_owned);
        self
    }

    /// The change's own message, if any.
    pub fn message(mut self, message: Option<&str>) -> Self {
        self.message = message.map(str::to_owned);
        self
    }

    /// The change's own time, Unix ns.
    pub fn at(mut self, ns: Option<i64>) -> Self {
        self.at = ns;
        self
    }
}

/// `label a → b (reason)` when `field` moved from `prev` to `cur`; the
/// reason is the field's description, if the object gives one.
pub fn moved(
    object: &str,
    field: &str,
    label: &str,
    prev: &Option<String>,
    cur: &Option<String>,
    reason: &Option<String>,
) -> Option<Line> {
    if prev == cur {
        return None;
    }
    let text = format!(
        "{label} {} → {}",
        prev.as_deref().unwrap_or("none"),
        cur.as_deref().unwrap_or("none")
    );
    Some(
        Line::new(object, with_reason(text, reason))
            .field(field, prev.as_deref(), cur.as_deref())
            .message(reason.as_deref()),
    )
}

/// `line (reason)`, or `line` without one.
pub fn with_reason(line: String, reason: &Option<String>) -> String {
    match reason {
        Some(reason) => format!("{line} ({reason})"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_field_is_told_as_a_sentence_and_as_fields() {
        let line = moved(
            "Allocation",
            "ClientStatus",
            "client",
            &Some("pending".into()),
            &Some("failed".into()),
            &Some("Failed tasks".into()),
        )
        .expect("moved");
        assert_eq!(line.text, "client pending → failed (Failed tasks)");
        assert_eq!(
            (
                line.field.as_deref(),
                line.from.as_deref(),
                line.to.as_deref()
            ),
            (Some("ClientStatus"), Some("pending"), Some("failed"))
        );
        assert_eq!(line.message.as_deref(), Some("Failed tasks"));
        assert!(moved("Node", "Status", "status", &None, &None, &None).is_none());
    }
}
