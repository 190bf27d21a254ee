//! Reconstructions in the archive's words: after a gap, what Nomad's list
//! endpoints said the cluster held, stored apart from the events (tables
//! `reconstructions` and `reconstructed_objects`, migration 0005) so that
//! nothing that reads events can take them for events.
//!
//! The life of one: the transaction that records a gap also records one
//! `pending` reconstruction per topic the archive follows
//! ([`ReconcileScope`]); the ingest process reads the list and stores it
//! ([`StoredPart`]) or says why it could not ([`ClosedPart`]). Queries read
//! the newest stored one at or before a point ([`Reconstruction`]) and its
//! objects ([`ReconstructedObject`]).

use serde::Serialize;

use super::{Gap, GapKind};

/// The topics a reconstruction can cover, in the order they are read.
pub const TOPICS: [&str; 5] = ["Job", "Allocation", "Evaluation", "Deployment", "Node"];

/// What to reconstruct after a gap: the topics and the namespace the archive
/// follows, so a reconstruction covers what the stream would have carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileScope {
    /// A subset of [`TOPICS`].
    pub topics: Vec<String>,
    /// `*` for every namespace, as the subscription says.
    pub namespace: String,
}

impl GapKind {
    /// Whether the cluster's state after a gap of this kind is worth reading
    /// from Nomad's lists: a buffer overrun or a server whose history differs
    /// can hide any number of changes. A malformed line hides one frame;
    /// reading every list for each one could turn a flood of bad lines into a
    /// flood of list calls.
    pub fn is_reconciled(self) -> bool {
        matches!(self, GapKind::Buffer | GapKind::ServerBehind)
    }
}

/// Where a reconstruction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    /// Requested with its gap; the list has not been read yet.
    Pending,
    /// The list was read and its objects stored.
    Stored,
    /// Nomad refused the list (the token lacks the capability).
    Refused,
    /// Reading the list failed (network, server error, unreadable answer).
    Failed,
    /// A later gap's reconstruction of the same topic was read instead.
    Superseded,
}

impl PartStatus {
    pub fn parse(value: &str) -> Option<Self> {
        [
            PartStatus::Pending,
            PartStatus::Stored,
            PartStatus::Refused,
            PartStatus::Failed,
            PartStatus::Superseded,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PartStatus::Pending => "pending",
            PartStatus::Stored => "stored",
            PartStatus::Refused => "refused",
            PartStatus::Failed => "failed",
            PartStatus::Superseded => "superseded",
        }
    }
}

/// A reconstruction waiting for its list to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingPart {
    pub id: i64,
    pub topic: String,
    pub namespace: String,
    /// The gap it follows.
    pub gap: Gap,
}

/// One listed object, ready to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectRow {
    /// `''` for nodes.
    pub namespace: String,
    /// The object's ID.
    pub key: String,
    pub job_id: Option<String>,
    pub node_id: Option<String>,
    pub eval_id: Option<String>,
    pub deployment_id: Option<String>,
    pub modify_index: Option<u64>,
    /// What Nomad returned: `AllocationListStub`, `Job`, …
    pub shape: &'static str,
    /// The object's JSON exactly as listed.
    pub raw: String,
}

/// A list that was read, to store in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPart {
    /// The pending reconstruction it completes.
    pub id: i64,
    /// The list's `X-Nomad-Index`.
    pub index: u64,
    /// Unix milliseconds when the list was read.
    pub recorded_at: i64,
    pub objects: Vec<ObjectRow>,
}

/// One reconstruction as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartSummary {
    /// The gap it follows.
    pub gap_from_index: u64,
    pub gap_to_index: u64,
    pub topic: String,
    pub status: PartStatus,
    /// The list's `X-Nomad-Index`, once stored.
    pub index: Option<u64>,
    pub objects: u64,
    /// Why it was refused, failed or superseded.
    pub detail: Option<String>,
}

/// A pending reconstruction that ends without objects.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedPart {
    pub id: i64,
    /// `Refused`, `Failed` or `Superseded`.
    pub status: PartStatus,
    /// Why, in words.
    pub detail: String,
}

/// A stored reconstruction of one topic, as queries use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reconstruction {
    #[serde(skip)]
    pub id: i64,
    /// The list's `X-Nomad-Index`: the objects are as of this index.
    pub index: u64,
    #[serde(skip)]
    pub topic: String,
    /// The namespace listed (`*` for all).
    pub namespace: String,
    /// The list endpoint it was read from.
    pub endpoint: String,
    /// Unix milliseconds when the list was read.
    #[serde(skip)]
    pub recorded_at: i64,
    /// The gap it follows.
    pub gap: Gap,
}

impl Reconstruction {
    /// Whether this reconstruction speaks for objects of `namespace`: an
    /// object of a namespace it did not list is neither confirmed nor gone.
    pub fn covers(&self, namespace: &str) -> bool {
        self.namespace == "*" || self.namespace == namespace || namespace.is_empty()
    }
}

/// One object of a stored reconstruction.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconstructedObject {
    pub namespace: String,
    pub key: String,
    pub modify_index: Option<u64>,
    pub shape: String,
    /// The object's JSON exactly as listed.
    pub raw: String,
}

/// The list endpoint that reconstructs `topic`.
pub fn endpoint(topic: &str) -> &'static str {
    match topic {
        "Job" => "/v1/jobs",
        "Allocation" => "/v1/allocations",
        "Evaluation" => "/v1/evaluations",
        "Deployment" => "/v1/deployments",
        _ => "/v1/nodes",
    }
}

/// SQL shared by both backends; only placeholders and the JSON column's
/// reading differ.
pub(crate) mod sql {
    use super::super::filter::{Bind, Placeholders, RefColumn, SelectSql};

    /// Requests a pending reconstruction for a gap just recorded in the same
    /// transaction; a reconstruction of that gap and topic already requested
    /// is left alone. Binds: cluster, topic, namespace, requested_at, then
    /// cluster, from, to, kind of the gap.
    pub const REQUEST: &str = "INSERT INTO reconstructions \
        (cluster_id, gap_id, topic, namespace, status, requested_at) \
        SELECT {p1}, id, {p2}, {p3}, 'pending', {p4} FROM gaps \
        WHERE cluster_id = {p5} AND from_index = {p6} AND to_index = {p7} AND kind = {p8} \
        ON CONFLICT DO NOTHING";

    /// Pending reconstructions of a cluster with their gaps. Binds: cluster.
    pub const PENDING: &str = "SELECT r.id, r.topic, r.namespace, \
        g.from_index, g.to_index, g.kind, g.reason, g.detected_at \
        FROM reconstructions r JOIN gaps g ON g.id = r.gap_id \
        WHERE r.cluster_id = {p1} AND r.status = 'pending' ORDER BY g.to_index, g.id, r.id";

    /// Marks a pending reconstruction stored. Binds: index, objects,
    /// recorded_at, id.
    pub const COMPLETE: &str = "UPDATE reconstructions SET status = 'stored', \
        raft_index = {p1}, objects = {p2}, recorded_at = {p3} \
        WHERE id = {p4} AND status = 'pending'";

    /// Ends a pending reconstruction. Binds: status, detail, recorded_at, id.
    pub const CLOSE: &str = "UPDATE reconstructions SET status = {p1}, detail = {p2}, \
        recorded_at = {p3} WHERE id = {p4} AND status = 'pending'";

    /// The newest stored reconstruction of a topic at or before a point.
    pub fn at(
        cluster_id: i64,
        topic: &str,
        to_index: Option<i64>,
        until: Option<i64>,
        style: Placeholders,
    ) -> SelectSql {
        let mut q = Query::new(style);
        let mut clauses = vec![
            format!("r.cluster_id = {}", q.bind(Bind::Int(cluster_id))),
            format!("r.topic = {}", q.bind(Bind::Text(topic.to_owned()))),
            "r.status = 'stored'".to_owned(),
        ];
        if let Some(to) = to_index {
            clauses.push(format!("r.raft_index <= {}", q.bind(Bind::Int(to))));
        }
        if let Some(until) = until {
            clauses.push(format!("r.recorded_at < {}", q.bind(Bind::Int(until))));
        }
        SelectSql {
            sql: format!(
                "SELECT r.id, r.raft_index, r.topic, r.namespace, r.recorded_at, \
                 g.from_index, g.to_index, g.kind, g.reason, g.detected_at \
                 FROM reconstructions r JOIN gaps g ON g.id = r.gap_id \
                 WHERE {} ORDER BY r.raft_index DESC, r.id DESC LIMIT 1",
                clauses.join(" AND ")
            ),
            binds: q.binds,
        }
    }

    /// The objects of a reconstruction of `topic`, narrowed to a key or to
    /// objects referencing any of `refs`. `object_column` is how the backend
    /// reads the JSON as text.
    pub fn objects(
        reconstruction_id: i64,
        topic: &str,
        key: Option<&str>,
        refs: &[(RefColumn, String)],
        style: Placeholders,
        object_column: &str,
    ) -> SelectSql {
        let mut q = Query::new(style);
        let mut clauses = vec![format!(
            "reconstruction_id = {}",
            q.bind(Bind::Int(reconstruction_id))
        )];
        if let Some(key) = key {
            clauses.push(format!("key = {}", q.bind(Bind::Text(key.to_owned()))));
        }
        if !refs.is_empty() {
            let any: Vec<String> = refs
                .iter()
                .map(|(column, id)| {
                    let p = q.bind(Bind::Text(id.clone()));
                    match column {
                        RefColumn::Job => format!("job_id = {p}"),
                        RefColumn::Node => format!("node_id = {p}"),
                        RefColumn::Eval => format!("eval_id = {p}"),
                        RefColumn::Deployment => format!("deployment_id = {p}"),
                        RefColumn::Alloc if topic == "Allocation" => format!("key = {p}"),
                        RefColumn::Alloc => format!("{p} IS NULL"),
                    }
                })
                .collect();
            clauses.push(format!("({})", any.join(" OR ")));
        }
        SelectSql {
            sql: format!(
                "SELECT namespace, key, modify_index, shape, {object_column} \
                 FROM reconstructed_objects WHERE {} ORDER BY namespace, key",
                clauses.join(" AND ")
            ),
            binds: q.binds,
        }
    }

    /// Every reconstruction of the cluster named, by gap. Binds: cluster name.
    pub const SUMMARY: &str = "SELECT g.from_index, g.to_index, r.topic, r.status, \
        r.raft_index, r.objects, r.detail \
        FROM reconstructions r JOIN gaps g ON g.id = r.gap_id JOIN clusters c ON c.id = r.cluster_id \
        WHERE c.name = {p1} ORDER BY g.to_index, g.id, r.id";

    /// Keys of a topic in stored reconstructions of a cluster with a prefix.
    /// Binds: cluster, topic, prefix length, prefix, limit.
    pub const KEYS_WITH_PREFIX: &str = "SELECT DISTINCT o.key FROM reconstructed_objects o \
        JOIN reconstructions r ON r.id = o.reconstruction_id \
        WHERE r.cluster_id = {p1} AND r.topic = {p2} AND substr(o.key, 1, CAST({p3} AS INTEGER)) = {p4} \
        ORDER BY o.key LIMIT {p5}";

    /// Writes `template`'s `{pN}` markers in a backend's placeholder style.
    pub fn placeholders(template: &str, style: Placeholders) -> String {
        let mut out = template.to_owned();
        for n in (1..=9).rev() {
            let marker = format!("{{p{n}}}");
            let with = match style {
                Placeholders::Question => "?".to_owned(),
                Placeholders::Numbered => format!("${n}"),
            };
            out = out.replace(&marker, &with);
        }
        out
    }

    struct Query {
        style: Placeholders,
        binds: Vec<Bind>,
    }

    impl Query {
        fn new(style: Placeholders) -> Self {
            Query {
                style,
                binds: Vec::new(),
            }
        }

        fn bind(&mut self, value: Bind) -> String {
            self.binds.push(value);
            match self.style {
                Placeholders::Question => "?".to_owned(),
                Placeholders::Numbered => format!("${}", self.binds.len()),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn templates_take_either_placeholder_style() {
            assert_eq!(
                placeholders(COMPLETE, Placeholders::Numbered),
                "UPDATE reconstructions SET status = 'stored', raft_index = $1, objects = $2, \
                 recorded_at = $3 WHERE id = $4 AND status = 'pending'"
            );
            assert_eq!(
                placeholders(REQUEST, Placeholders::Question)
                    .matches('?')
                    .count(),
                8
            );
        }

        #[test]
        fn objects_are_narrowed_by_key_or_references() {
            let refs = [
                (RefColumn::Job, "web".to_owned()),
                (RefColumn::Node, "n1".to_owned()),
            ];
            let q = objects(
                7,
                "Allocation",
                None,
                &refs,
                Placeholders::Numbered,
                "object::text",
            );
            assert_eq!(
                q.sql,
                "SELECT namespace, key, modify_index, shape, object::text FROM reconstructed_objects \
                 WHERE reconstruction_id = $1 AND (job_id = $2 OR node_id = $3) ORDER BY namespace, key"
            );
            assert_eq!(q.binds.len(), 3);
            let one = objects(7, "Job", Some("web"), &[], Placeholders::Question, "object");
            assert!(
                one.sql.contains("WHERE reconstruction_id = ? AND key = ?"),
                "{}",
                one.sql
            );
        }
    }
}
