//! Turns a [`PageQuery`] into a WHERE clause and its bind values, once for
//! both backends: the fragments are plain SQL that SQLite and PostgreSQL
//! read alike, and only the placeholder style differs (`?` or `$n`). Column
//! names come from this file only; every value is bound.
//!
//! Events are read from `event_log`, their IDs from `names` (migration
//! 0007): an ID to look for becomes its integer by a subquery, which the
//! databases evaluate once and use as a key of the lookup indexes.

use super::statement::Binds;
use super::statement::{Bind, Placeholders, Statement};
use super::to_i64;
use crate::archive::{PageQuery, RefColumn};

/// The columns of an event as [`super::records::EventRecord`] maps them;
/// `event_column` is how the backend reads the stored value (JSON text or a
/// zstd frame) as bytes.
pub(super) fn event_columns(event_column: &str) -> String {
    format!(
        "e.raft_index, e.position, e.topic, k.name AS key, e.namespace, e.received_at, \
         COALESCE(e.event_at, e.received_at) AS event_at, \
         COALESCE(e.time_source, 'received') AS time_source, {event_column} AS event, \
         e.dictionary_id, e.block_id"
    )
}

/// Builds `SELECT … FROM events WHERE … ORDER BY … LIMIT …` for `query`.
/// `event_column` is how the backend reads the stored value as bytes.
pub fn select_events(
    cluster_id: i64,
    query: &PageQuery,
    style: Placeholders,
    event_column: &str,
) -> Statement {
    let mut w = Where::new(style);
    w.push("cluster_id = ", Bind::Int(cluster_id));
    // From the start needs no bound, which would also steer the planner to
    // the stream-order index when a time window has an index of its own.
    if query.from_index > 0 {
        w.push("raft_index >= ", Bind::Int(to_i64(query.from_index)));
    }
    if let Some((index, position)) = query.after {
        let (a, b) = (
            w.placeholder(Bind::Int(to_i64(index))),
            w.placeholder(Bind::Int(i64::from(position))),
        );
        let op = if query.newest_first { "<" } else { ">" };
        w.clauses
            .push(format!("(raft_index, position) {op} ({a}, {b})"));
    }
    if let Some(to) = query.to_index {
        w.push("raft_index <= ", Bind::Int(to_i64(to)));
    }
    time_window(&mut w, query.since, query.until);
    if let Some(ns) = &query.namespace {
        let p = w.placeholder(Bind::Text(ns.clone()));
        w.clauses.push(format!("namespace IN ({p}, '')"));
    }
    w.any_of("topic", query.topics.as_deref());
    w.any_of("type", query.types.as_deref());
    let mut with = "";
    if let Some(key) = &query.key {
        let p = w.placeholder(Bind::Text(key.clone()));
        w.clauses.push(format!("key_ref = {}", name_ref(&p)));
        // The key index is led by the topic; without one given, every
        // topic the archive holds is looked up in it.
        if query.topics.is_none() {
            with = ARCHIVED_TOPICS;
            w.clauses
                .push("topic IN (SELECT topic FROM archived_topics)".to_owned());
        }
    }
    for (column, id) in &query.refs {
        let p = w.placeholder(Bind::Text(id.clone()));
        w.clauses.push(column.clause(&p));
    }
    let order = if query.newest_first { "DESC" } else { "ASC" };
    // With an object's ID or key to look for, its lookup index finds the
    // rows, already in index order. SQLite, lacking statistics, would rather
    // walk the stream-order index for the ORDER BY and filter the whole
    // cluster, so it is told which index to use; where none is sure to fit,
    // `+ 0` keeps it off the stream-order index and the few rows are sorted.
    // PostgreSQL's planner has statistics and chooses for itself.
    let (hint, by) = match (style, lookup_index(query)) {
        (Placeholders::Question, Some(index)) => (format!(" INDEXED BY {index}"), "raft_index"),
        (Placeholders::Question, None) if query.key.is_some() || !query.refs.is_empty() => {
            (String::new(), "raft_index + 0")
        }
        _ => (String::new(), "raft_index"),
    };
    let limit = w.placeholder(Bind::Int(i64::from(query.limit)));
    let sql = format!(
        "{with}SELECT {} FROM event_log AS e{hint} JOIN names AS k ON k.id = e.key_ref \
         WHERE {} ORDER BY {by} {order}, position {order} LIMIT {limit}",
        event_columns(event_column),
        w.clauses.join(" AND "),
    );
    Statement {
        sql,
        binds: w.binds.values,
    }
}

/// Events dated (by Nomad's clock) in `[since, until)`. The callers narrow
/// the raft-index range to the window first ([`super::Store::time_span`],
/// once, not per page), and the events are read in stream order between
/// those bounds. On SQLite, `+` keeps the planner off the index by time:
/// without statistics it would read any window through it and sort the
/// whole window before the page's limit (docs/performance.md).
fn time_window(w: &mut Where, since: Option<i64>, until: Option<i64>) {
    let dated = match w.binds.style {
        Placeholders::Question => "+event_at",
        Placeholders::Numbered => "event_at",
    };
    if let Some(since) = since {
        w.push(&format!("{dated} >= "), Bind::Int(since));
    }
    if let Some(until) = until {
        w.push(&format!("{dated} < "), Bind::Int(until));
    }
}

/// The lookup index (migration 0003) that serves every condition of
/// `query` on one object, when there is one that surely applies.
fn lookup_index(query: &PageQuery) -> Option<&'static str> {
    if let Some((column, _)) = query.refs.first() {
        return Some(column.index());
    }
    match (&query.key, query.topics.as_deref()) {
        (Some(_), Some([_]) | None) => Some("event_log_by_key"),
        _ => None,
    }
}

/// The topics the archive holds, each found with one step down the key
/// index (led by the topic) rather than by reading every event: a "loose
/// index scan", which neither SQLite without statistics nor PostgreSQL does
/// by itself.
const ARCHIVED_TOPICS: &str = "WITH RECURSIVE archived_topics (topic) AS ( \
       SELECT MIN(topic) FROM event_log \
       UNION ALL \
       SELECT (SELECT MIN(topic) FROM event_log WHERE topic > archived_topics.topic) \
       FROM archived_topics WHERE archived_topics.topic IS NOT NULL) ";

impl RefColumn {
    /// The condition "references this object", for a bound `placeholder`
    /// holding its ID. Only Allocation events carry an alloc_id, equal to
    /// their key, so that one is asked of the indexed (key, topic).
    pub fn clause(self, placeholder: &str) -> String {
        let id = name_ref(placeholder);
        match self {
            RefColumn::Job => format!("job_ref = {id}"),
            RefColumn::Alloc => format!("(topic = 'Allocation' AND key_ref = {id})"),
            RefColumn::Node => format!("node_ref = {id}"),
            RefColumn::Eval => format!("eval_ref = {id}"),
            RefColumn::Deployment => format!("deployment_ref = {id}"),
        }
    }

    /// The index that finds the events referencing an object, in index
    /// order.
    pub fn index(self) -> &'static str {
        match self {
            RefColumn::Job => "event_log_by_job",
            RefColumn::Alloc => "event_log_by_key",
            RefColumn::Node => "event_log_by_node",
            RefColumn::Eval => "event_log_by_eval",
            RefColumn::Deployment => "event_log_by_deployment",
        }
    }
}

/// The integer of the ID bound to `placeholder` (NULL, matching nothing,
/// for an ID the archive never stored).
fn name_ref(placeholder: &str) -> String {
    format!("(SELECT id FROM names WHERE name = {placeholder})")
}

struct Where {
    clauses: Vec<String>,
    binds: Binds,
}

impl Where {
    fn new(style: Placeholders) -> Self {
        Where {
            clauses: Vec::new(),
            binds: Binds::new(style),
        }
    }

    fn placeholder(&mut self, value: Bind) -> String {
        self.binds.push(value)
    }

    fn push(&mut self, lhs: &str, value: Bind) {
        let p = self.placeholder(value);
        self.clauses.push(format!("{lhs}{p}"));
    }

    fn any_of(&mut self, column: &str, values: Option<&[String]>) {
        let Some(values) = values else { return };
        if values.is_empty() {
            self.clauses.push("1 = 0".to_owned());
            return;
        }
        let list: Vec<String> = values
            .iter()
            .map(|v| self.placeholder(Bind::Text(v.clone())))
            .collect();
        self.clauses
            .push(format!("{column} IN ({})", list.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_bound_clauses_in_either_style() {
        let query = PageQuery {
            from_index: 5,
            to_index: Some(9),
            topics: Some(vec!["Job".into(), "Node".into()]),
            namespace: Some("prod".into()),
            refs: vec![(RefColumn::Job, "web".into())],
            limit: 10,
            ..PageQuery::default()
        };
        let pg = select_events(7, &query, Placeholders::Numbered, "event::text");
        assert_eq!(
            pg.sql,
            "SELECT e.raft_index, e.position, e.topic, k.name AS key, e.namespace, e.received_at, \
             COALESCE(e.event_at, e.received_at) AS event_at, \
             COALESCE(e.time_source, 'received') AS time_source, \
             event::text AS event, e.dictionary_id, e.block_id FROM event_log AS e JOIN names AS k ON k.id = e.key_ref \
             WHERE cluster_id = $1 AND raft_index >= $2 AND raft_index <= $3 AND namespace IN ($4, '') \
             AND topic IN ($5, $6) AND job_ref = (SELECT id FROM names WHERE name = $7) \
             ORDER BY raft_index ASC, position ASC LIMIT $8"
        );
        assert_eq!(pg.binds.len(), 8);
        assert_eq!(pg.binds[6], Bind::Text("web".into()));
        let lite = select_events(7, &query, Placeholders::Question, "event");
        assert!(
            lite.sql.contains(
                "FROM event_log AS e INDEXED BY event_log_by_job JOIN names AS k ON k.id = e.key_ref \
                 WHERE cluster_id = ? AND raft_index >= ?"
            ),
            "{}",
            lite.sql
        );
        assert_eq!(lite.sql.matches('?').count(), 8);
    }

    #[test]
    fn a_time_window_is_a_condition_on_the_rows_kept_off_the_time_index_on_sqlite() {
        let query = PageQuery {
            since: Some(100),
            until: Some(200),
            limit: 10,
            ..PageQuery::default()
        };
        let pg = select_events(7, &query, Placeholders::Numbered, "event::text");
        assert!(
            pg.sql
                .contains("WHERE cluster_id = $1 AND event_at >= $2 AND event_at < $3 ORDER BY"),
            "{}",
            pg.sql
        );
        assert_eq!(
            pg.binds,
            [Bind::Int(7), Bind::Int(100), Bind::Int(200), Bind::Int(10)]
        );
        let lite = select_events(7, &query, Placeholders::Question, "event");
        assert!(
            lite.sql
                .contains("WHERE cluster_id = ? AND +event_at >= ? AND +event_at < ? ORDER BY"),
            "{}",
            lite.sql
        );
    }

    #[test]
    fn a_key_without_a_topic_is_looked_up_under_every_archived_topic() {
        let query = PageQuery {
            key: Some("web".into()),
            limit: 10,
            ..PageQuery::default()
        };
        for style in [Placeholders::Question, Placeholders::Numbered] {
            let sql = select_events(1, &query, style, "event").sql;
            assert!(sql.starts_with("WITH RECURSIVE archived_topics"), "{sql}");
            assert!(
                sql.contains("AND topic IN (SELECT topic FROM archived_topics)"),
                "{sql}"
            );
        }
        let lite = select_events(1, &query, Placeholders::Question, "event").sql;
        assert!(lite.contains("INDEXED BY event_log_by_key"), "{lite}");
        let with_topic = PageQuery {
            topics: Some(vec!["Job".into()]),
            ..query
        };
        let sql = select_events(1, &with_topic, Placeholders::Question, "event").sql;
        assert!(!sql.contains("archived_topics"), "{sql}");
    }

    #[test]
    fn newest_first_pages_backwards() {
        let query = PageQuery {
            after: Some((50, 2)),
            newest_first: true,
            limit: 1,
            ..PageQuery::default()
        };
        let sql = select_events(1, &query, Placeholders::Question, "event").sql;
        assert!(sql.contains("(raft_index, position) < (?, ?)"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY raft_index DESC, position DESC LIMIT ?"),
            "{sql}"
        );
    }
}
