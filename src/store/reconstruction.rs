//! The SQL of reconstructions ([`crate::archive::reconstruction`]), shared by
//! both backends.

/// SQL shared by both backends; only placeholders and the JSON column's
/// reading differ.
pub(crate) mod sql {
    use crate::archive::reconstruction::TOPICS;
    use crate::archive::{Batch, ClosedPart, RefColumn, StoredPart};
    use crate::store::statement::{Bind, Binds, Placeholders, Statement};
    use crate::store::to_i64;

    /// Requests a pending reconstruction for a gap just recorded in the same
    /// transaction; a reconstruction of that gap and topic already requested
    /// is left alone. Binds: cluster, topic, namespace, requested_at, then
    /// cluster, from, to, kind of the gap.
    const REQUEST: &str = "INSERT INTO reconstructions \
        (cluster_id, gap_id, topic, namespace, status, requested_at) \
        SELECT {p1}, id, {p2}, {p3}, 'pending', {p4} FROM gaps \
        WHERE cluster_id = {p5} AND from_index = {p6} AND to_index = {p7} AND kind = {p8} \
        ON CONFLICT DO NOTHING";

    /// Pending reconstructions of a cluster with their gaps. Binds: cluster.
    const PENDING: &str = "SELECT r.id, r.topic, r.namespace, \
        g.from_index, g.to_index, g.kind, g.reason, g.detected_at \
        FROM reconstructions r JOIN gaps g ON g.id = r.gap_id \
        WHERE r.cluster_id = {p1} AND r.status = 'pending' ORDER BY g.to_index, g.id, r.id";

    /// Marks a pending reconstruction stored. Binds: index, objects,
    /// recorded_at, id.
    const COMPLETE: &str = "UPDATE reconstructions SET status = 'stored', \
        raft_index = {p1}, objects = {p2}, recorded_at = {p3} \
        WHERE id = {p4} AND status = 'pending'";

    /// Ends a pending reconstruction. Binds: status, detail, recorded_at, id.
    const CLOSE: &str = "UPDATE reconstructions SET status = {p1}, detail = {p2}, \
        recorded_at = {p3} WHERE id = {p4} AND status = 'pending'";

    /// The newest stored reconstruction of a topic at or before a point.
    pub fn at(
        cluster_id: i64,
        topic: &str,
        to_index: Option<i64>,
        until: Option<i64>,
        style: Placeholders,
    ) -> Statement {
        let mut q = Binds::new(style);
        let mut clauses = vec![
            format!("r.cluster_id = {}", q.push(Bind::Int(cluster_id))),
            format!("r.topic = {}", q.push(Bind::Text(topic.to_owned()))),
            "r.status = 'stored'".to_owned(),
        ];
        if let Some(to) = to_index {
            clauses.push(format!("r.raft_index <= {}", q.push(Bind::Int(to))));
        }
        if let Some(until) = until {
            clauses.push(format!("r.recorded_at < {}", q.push(Bind::Int(until))));
        }
        Statement {
            sql: format!(
                "SELECT r.id, r.raft_index, r.topic, r.namespace, r.recorded_at, \
                 g.from_index, g.to_index, g.kind, g.reason, g.detected_at \
                 FROM reconstructions r JOIN gaps g ON g.id = r.gap_id \
                 WHERE {} ORDER BY r.raft_index DESC, r.id DESC LIMIT 1",
                clauses.join(" AND ")
            ),
            binds: q.values,
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
    ) -> Statement {
        let mut q = Binds::new(style);
        let mut clauses = vec![format!(
            "reconstruction_id = {}",
            q.push(Bind::Int(reconstruction_id))
        )];
        if let Some(key) = key {
            clauses.push(format!("key = {}", q.push(Bind::Text(key.to_owned()))));
        }
        if !refs.is_empty() {
            let any: Vec<String> = refs
                .iter()
                .map(|(column, id)| {
                    let p = q.push(Bind::Text(id.clone()));
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
        Statement {
            sql: format!(
                "SELECT namespace, key, modify_index, shape, {object_column} AS object \
                 FROM reconstructed_objects WHERE {} ORDER BY namespace, key",
                clauses.join(" AND ")
            ),
            binds: q.values,
        }
    }

    /// Every reconstruction of the cluster named, by gap. Binds: cluster name.
    const SUMMARY: &str = "SELECT g.from_index, g.to_index, r.topic, r.status, \
        r.raft_index, r.objects, r.detail \
        FROM reconstructions r JOIN gaps g ON g.id = r.gap_id JOIN clusters c ON c.id = r.cluster_id \
        WHERE c.name = {p1} ORDER BY g.to_index, g.id, r.id";

    /// Keys of a topic in stored reconstructions of a cluster with a prefix.
    /// Binds: cluster, topic, prefix length, prefix, limit.
    const KEYS_WITH_PREFIX: &str = "SELECT DISTINCT o.key FROM reconstructed_objects o \
        JOIN reconstructions r ON r.id = o.reconstruction_id \
        WHERE r.cluster_id = {p1} AND r.topic = {p2} AND substr(o.key, 1, CAST({p3} AS INTEGER)) = {p4} \
        ORDER BY o.key LIMIT {p5}";

    /// The requests for reconstructions a batch's gaps call for, to run in
    /// its transaction after the gaps are stored.
    pub fn requests(
        cluster_id: i64,
        batch: &Batch,
        requested_at: i64,
        style: Placeholders,
    ) -> Vec<Statement> {
        let Some(scope) = &batch.reconcile else {
            return Vec::new();
        };
        let topics = || scope.topics.iter().filter(|t| TOPICS.contains(&t.as_str()));
        let gaps = batch.gaps.iter().filter(|g| g.kind.is_reconciled());
        gaps.flat_map(|gap| {
            topics().map(move |topic| {
                let binds = vec![
                    Bind::Int(cluster_id),
                    topic.as_str().into(),
                    scope.namespace.as_str().into(),
                    Bind::Int(requested_at),
                    Bind::Int(cluster_id),
                    Bind::Int(to_i64(gap.from_index)),
                    Bind::Int(to_i64(gap.to_index)),
                    gap.kind.as_str().into(),
                ];
                Statement::new(REQUEST, style, binds)
            })
        })
        .collect()
    }

    /// Pending reconstructions of a cluster ([`PENDING`]).
    pub fn pending(cluster_id: i64, style: Placeholders) -> Statement {
        Statement::new(PENDING, style, vec![Bind::Int(cluster_id)])
    }

    /// Marks `part` stored unless it is no longer pending ([`COMPLETE`]).
    pub fn complete(part: &StoredPart, style: Placeholders) -> Statement {
        let objects = i64::try_from(part.objects.len()).unwrap_or(i64::MAX);
        let binds = vec![
            Bind::Int(to_i64(part.index)),
            Bind::Int(objects),
            Bind::Int(part.recorded_at),
            Bind::Int(part.id),
        ];
        Statement::new(COMPLETE, style, binds)
    }

    /// Ends `part` unless it is no longer pending ([`CLOSE`]).
    pub fn close(part: &ClosedPart, recorded_at: i64, style: Placeholders) -> Statement {
        let binds = vec![
            part.status.as_str().into(),
            part.detail.as_str().into(),
            Bind::Int(recorded_at),
            Bind::Int(part.id),
        ];
        Statement::new(CLOSE, style, binds)
    }

    /// Every reconstruction of the cluster labelled `cluster` ([`SUMMARY`]).
    pub fn summary(cluster: &str, style: Placeholders) -> Statement {
        Statement::new(SUMMARY, style, vec![cluster.into()])
    }

    /// Keys of `topic` starting with `prefix` ([`KEYS_WITH_PREFIX`]).
    pub fn keys_with_prefix(
        cluster_id: i64,
        topic: &str,
        prefix: &str,
        limit: u32,
        style: Placeholders,
    ) -> Statement {
        let binds = vec![
            Bind::Int(cluster_id),
            topic.into(),
            Bind::Int(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX)),
            prefix.into(),
            Bind::Int(i64::from(limit)),
        ];
        Statement::new(KEYS_WITH_PREFIX, style, binds)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn templates_take_either_placeholder_style() {
            assert_eq!(
                Placeholders::Numbered.fill(COMPLETE),
                "UPDATE reconstructions SET status = 'stored', raft_index = $1, objects = $2, \
                 recorded_at = $3 WHERE id = $4 AND status = 'pending'"
            );
            assert_eq!(Placeholders::Question.fill(REQUEST).matches('?').count(), 8);
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
                "SELECT namespace, key, modify_index, shape, object::text AS object FROM reconstructed_objects \
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
