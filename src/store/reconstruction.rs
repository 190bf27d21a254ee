//! The SQL of reconstructions ([`crate::archive::reconstruction`]), shared by
//! both backends.

/// SQL shared by both backends; only placeholders and the JSON column's
/// reading differ.
pub(crate) mod sql {
    use crate::archive::RefColumn;
    use crate::store::filter::{Bind, Placeholders, SelectSql};

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
