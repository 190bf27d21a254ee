//! Turns a [`PageQuery`] into a WHERE clause and its bind values, once for
//! both backends: the fragments are plain SQL that SQLite and PostgreSQL
//! read alike, and only the placeholder style differs (`?` or `$n`). Column
//! names come from this file only; every value is bound.

use super::{PageQuery, to_i64};

/// How a backend writes placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `?`
    Question,
    /// `$1`, `$2`, …
    Numbered,
}

/// A value to bind, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

/// SQL selecting a page of events, and what to bind to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectSql {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// Builds `SELECT … FROM events WHERE … ORDER BY … LIMIT …` for `query`.
/// `event_column` is how the backend reads the event as text.
pub fn select_events(
    cluster_id: i64,
    query: &PageQuery,
    style: Placeholders,
    event_column: &str,
) -> SelectSql {
    let mut w = Where::new(style);
    w.push("cluster_id = ", Bind::Int(cluster_id));
    w.push("raft_index >= ", Bind::Int(to_i64(query.from_index)));
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
    if let Some(since) = query.since {
        w.push("received_at >= ", Bind::Int(since));
    }
    if let Some(until) = query.until {
        w.push("received_at < ", Bind::Int(until));
    }
    if let Some(ns) = &query.namespace {
        let p = w.placeholder(Bind::Text(ns.clone()));
        w.clauses.push(format!("namespace IN ({p}, '')"));
    }
    w.any_of("topic", query.topics.as_deref());
    w.any_of("type", query.types.as_deref());
    if let Some(key) = &query.key {
        w.push("key = ", Bind::Text(key.clone()));
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
    let (from, by) = match (style, lookup_index(query)) {
        (Placeholders::Question, Some(index)) => {
            (format!("events INDEXED BY {index}"), "raft_index")
        }
        (Placeholders::Question, None) if query.key.is_some() || !query.refs.is_empty() => {
            ("events".to_owned(), "raft_index + 0")
        }
        _ => ("events".to_owned(), "raft_index"),
    };
    let limit = w.placeholder(Bind::Int(i64::from(query.limit)));
    let sql = format!(
        "SELECT raft_index, position, topic, key, namespace, received_at, {event_column} FROM {from} \
         WHERE {} ORDER BY {by} {order}, position {order} LIMIT {limit}",
        w.clauses.join(" AND "),
    );
    SelectSql {
        sql,
        binds: w.binds,
    }
}

/// The lookup index (migration 0003) that serves every condition of
/// `query` on one object, when there is one that surely applies.
fn lookup_index(query: &PageQuery) -> Option<&'static str> {
    if let Some((column, _)) = query.refs.first() {
        return Some(column.index());
    }
    match (&query.key, query.topics.as_deref()) {
        (Some(_), Some([_])) => Some("events_by_key"),
        _ => None,
    }
}

/// Builds the query for the latest event of every object of `topics` at or
/// before a point, optionally only objects referencing `refs`: the state of
/// the cluster as of that point.
pub fn select_latest(
    cluster_id: i64,
    topics: &[String],
    to_index: Option<u64>,
    until: Option<i64>,
    refs: &[(RefColumn, String)],
    style: Placeholders,
    event_column: &str,
) -> SelectSql {
    let mut w = Where::new(style);
    w.push("cluster_id = ", Bind::Int(cluster_id));
    w.any_of("topic", Some(topics));
    if let Some(to) = to_index {
        w.push("raft_index <= ", Bind::Int(to_i64(to)));
    }
    if let Some(until) = until {
        w.push("received_at < ", Bind::Int(until));
    }
    if !refs.is_empty() {
        // An object belongs when it references any of them (a job's own
        // events carry job_id too, a node's node_id).
        let any: Vec<String> = refs
            .iter()
            .map(|(column, id)| {
                let p = w.placeholder(Bind::Text(id.clone()));
                column.clause(&p)
            })
            .collect();
        w.clauses.push(format!("({})", any.join(" OR ")));
    }
    let inner = w.clauses.join(" AND ");
    let outer = w.placeholder(Bind::Int(cluster_id));
    let sql = format!(
        "SELECT e.raft_index, e.position, e.topic, e.key, e.namespace, e.received_at, {event_column} \
         FROM events e JOIN (SELECT topic, namespace, key, MAX(raft_index) AS last FROM events \
         WHERE {inner} GROUP BY topic, namespace, key) l \
         ON e.topic = l.topic AND e.namespace = l.namespace AND e.key = l.key AND e.raft_index = l.last \
         WHERE e.cluster_id = {outer} ORDER BY e.topic, e.namespace, e.key"
    );
    SelectSql {
        sql,
        binds: w.binds,
    }
}

/// A column that references another object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefColumn {
    Job,
    Alloc,
    Node,
    Eval,
    Deployment,
}

impl RefColumn {
    /// The condition "references this object", for a bound `placeholder`.
    /// Only Allocation events carry an alloc_id, equal to their key, so that
    /// one is asked of the indexed (topic, key).
    pub fn clause(self, placeholder: &str) -> String {
        match self {
            RefColumn::Job => format!("job_id = {placeholder}"),
            RefColumn::Alloc => format!("(topic = 'Allocation' AND key = {placeholder})"),
            RefColumn::Node => format!("node_id = {placeholder}"),
            RefColumn::Eval => format!("eval_id = {placeholder}"),
            RefColumn::Deployment => format!("deployment_id = {placeholder}"),
        }
    }

    /// The index that finds the events referencing an object, in index
    /// order.
    pub fn index(self) -> &'static str {
        match self {
            RefColumn::Job => "events_by_job",
            RefColumn::Alloc => "events_by_key",
            RefColumn::Node => "events_by_node",
            RefColumn::Eval => "events_by_eval",
            RefColumn::Deployment => "events_by_deployment",
        }
    }
}

struct Where {
    style: Placeholders,
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn new(style: Placeholders) -> Self {
        Where {
            style,
            clauses: Vec::new(),
            binds: Vec::new(),
        }
    }

    fn placeholder(&mut self, value: Bind) -> String {
        self.binds.push(value);
        match self.style {
            Placeholders::Question => "?".to_owned(),
            Placeholders::Numbered => format!("${}", self.binds.len()),
        }
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
            "SELECT raft_index, position, topic, key, namespace, received_at, event::text FROM events \
             WHERE cluster_id = $1 AND raft_index >= $2 AND raft_index <= $3 AND namespace IN ($4, '') \
             AND topic IN ($5, $6) AND job_id = $7 ORDER BY raft_index ASC, position ASC LIMIT $8"
        );
        assert_eq!(pg.binds.len(), 8);
        assert_eq!(pg.binds[6], Bind::Text("web".into()));
        let lite = select_events(7, &query, Placeholders::Question, "event");
        assert!(
            lite.sql.contains(
                "FROM events INDEXED BY events_by_job WHERE cluster_id = ? AND raft_index >= ?"
            ),
            "{}",
            lite.sql
        );
        assert_eq!(lite.sql.matches('?').count(), 8);
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
