//! The list questions asked after an incident — which allocations failed,
//! which deployments failed, which evaluations were blocked within a window
//! — answered from indexed columns only: the details tables by status
//! (migration 0019), the events' time and reference columns, and `names`.
//! Written once for both backends; each streams the rows ([`Lists`]).
//!
//! One row per object: the objects with an event of a status asked for in
//! the window, each as its latest event in the window describes it.

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use super::keyframe::Params;
use super::statement::{Bind, Placeholders, Statement};
use super::{Moment, StoreError, to_i64};
use crate::archive::{Cluster, RefColumn};

/// Which objects of a kind a list selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Statuses matched (an allocation's client status, a deployment's or
    /// an evaluation's status); empty: any.
    pub statuses: Vec<String>,
    /// The stretch of the stream read, inclusive (from the time window).
    pub from_index: u64,
    pub to_index: Option<u64>,
    /// Nomad's time window, `[since, until)` in Unix ms.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only objects referencing these (full IDs).
    pub refs: Vec<(RefColumn, String)>,
    pub namespace: Option<String>,
}

/// Where an object's latest event in the window is, and when it happened.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Seen {
    pub raft_index: i64,
    /// Unix ms by Nomad's clock (or receipt, `time_source` `received`).
    pub event_at: i64,
    pub time_source: String,
}

/// An allocation as its latest event in the window describes it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AllocationRow {
    pub id: String,
    pub namespace: String,
    pub job_id: Option<String>,
    pub task_group: Option<String>,
    pub node_id: Option<String>,
    pub node_name: Option<String>,
    pub desired_status: Option<String>,
    pub client_status: Option<String>,
    pub client_description: Option<String>,
    #[sqlx(flatten)]
    pub seen: Seen,
}

/// A deployment as its latest event in the window describes it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeploymentRow {
    pub id: String,
    pub namespace: String,
    pub job_id: Option<String>,
    pub job_version: Option<i64>,
    pub status: Option<String>,
    pub status_description: Option<String>,
    #[sqlx(flatten)]
    pub seen: Seen,
}

/// An evaluation as its latest event in the window describes it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EvaluationRow {
    pub id: String,
    pub namespace: String,
    pub job_id: Option<String>,
    pub status: Option<String>,
    pub triggered_by: Option<String>,
    pub status_description: Option<String>,
    #[sqlx(flatten)]
    pub seen: Seen,
}

/// A job present at a moment, with its allocations there counted by
/// client status.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub namespace: String,
    pub version: Option<i64>,
    pub status: Option<String>,
    pub stop: Option<bool>,
    pub pending: i64,
    pub running: i64,
    pub complete: i64,
    pub failed: i64,
    pub lost: i64,
    #[sqlx(flatten)]
    pub seen: Seen,
}

/// The lists, on either backend: each streams its rows as they are read
/// (nothing else should use a SQLite in-memory archive meanwhile).
#[async_trait]
pub trait Lists: Send + Sync {
    /// Allocations, oldest latest event first.
    fn allocations<'a>(
        &'a self,
        cluster: &'a Cluster,
        filter: &'a ListFilter,
    ) -> BoxStream<'a, Result<AllocationRow, StoreError>>;

    /// Deployments, oldest latest event first.
    fn deployments<'a>(
        &'a self,
        cluster: &'a Cluster,
        filter: &'a ListFilter,
    ) -> BoxStream<'a, Result<DeploymentRow, StoreError>>;

    /// Evaluations, oldest latest event first.
    fn evaluations<'a>(
        &'a self,
        cluster: &'a Cluster,
        filter: &'a ListFilter,
    ) -> BoxStream<'a, Result<EvaluationRow, StoreError>>;

    /// The jobs present at `moment` (a stopped job too; not a purged one),
    /// by namespace and ID, each with its allocations a snapshot at the
    /// moment shows counted by client status.
    fn jobs<'a>(
        &'a self,
        cluster: &'a Cluster,
        moment: &'a Moment,
        namespace: Option<&'a str>,
    ) -> BoxStream<'a, Result<JobRow, StoreError>>;
}

/// A kind of object listed by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Allocation,
    Deployment,
    Evaluation,
}

impl Kind {
    fn topic(self) -> &'static str {
        match self {
            Kind::Allocation => "Allocation",
            Kind::Deployment => "Deployment",
            Kind::Evaluation => "Evaluation",
        }
    }

    /// Its details table and the column holding its status there.
    fn details(self) -> (&'static str, &'static str) {
        match self {
            Kind::Allocation => ("allocation_details", "client_status"),
            Kind::Deployment => ("deployment_details", "status"),
            Kind::Evaluation => ("evaluation_details", "status"),
        }
    }

    /// The columns its row reads from the details (`d`) and names.
    fn columns(self) -> &'static str {
        match self {
            Kind::Allocation => {
                "tg.name AS task_group, n.name AS node_id, nn.name AS node_name, \
                 d.desired_status, d.client_status, \
                 COALESCE(cd.name, d.client_description) AS client_description"
            }
            Kind::Deployment => "d.job_version, d.status, d.status_description",
            Kind::Evaluation => "d.status, d.triggered_by, d.status_description",
        }
    }

    /// The texts its [`Kind::columns`] read from `names` (migration 0025).
    fn text_joins(self) -> &'static str {
        match self {
            Kind::Allocation => {
                " LEFT JOIN names AS tg ON tg.id = d.task_group_ref \
                 LEFT JOIN names AS nn ON nn.id = d.node_name_ref \
                 LEFT JOIN names AS cd ON cd.id = d.client_description_ref"
            }
            Kind::Deployment | Kind::Evaluation => "",
        }
    }
}

/// The objects of `kind` matching `filter`, each by its latest event in
/// the window, oldest first.
pub fn list(cluster_id: i64, kind: Kind, filter: &ListFilter, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    let (lo, hi) = (
        p.int(to_i64(filter.from_index)),
        p.int(filter.to_index.map_or(i64::MAX, to_i64)),
    );
    let (since, until) = (
        p.int(filter.since.unwrap_or(i64::MIN)),
        p.int(filter.until.unwrap_or(i64::MAX)),
    );
    let topic = p.push(Bind::Text(kind.topic().to_owned()));
    let (table, status) = kind.details();
    let mut matched = String::new();
    if !filter.statuses.is_empty() {
        let any: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| p.push(Bind::Text(s.clone())))
            .collect();
        matched.push_str(&format!(" AND m.{status} IN ({})", any.join(", ")));
    }
    for (column, id) in &filter.refs {
        let id = p.push(Bind::Text(id.clone()));
        matched.push_str(&format!(" AND e.{}", column.clause(&id)));
    }
    if let Some(namespace) = &filter.namespace {
        let ns = p.push(Bind::Text(namespace.clone()));
        matched.push_str(&format!(" AND e.namespace = {ns}"));
    }
    let (by_key, join) = (p.by_key(), p.join_rows());
    let within = |at: &str| format!("{at} >= {since} AND {at} < {until}");
    // SQLite, without statistics, would rather range over the index by
    // time (or carry the window's raft indexes over to the events) than
    // look each matched row's event up: `+` hides those from its planner.
    let (plain, unindexed) = match style {
        Placeholders::Question => ("+", " + 0"),
        Placeholders::Numbered => ("", ""),
    };
    let (columns, texts) = (kind.columns(), kind.text_joins());
    p.statement(format!(
        "SELECT k.name AS id, e.namespace, j.name AS job_id, {columns}, \
           e.raft_index, e.event_at, e.time_source \
         FROM (SELECT o.key_ref, \
                 (SELECT MAX(x.raft_index) FROM event_log AS x{by_key} \
                  WHERE x.topic = {topic} AND x.key_ref = o.key_ref AND x.cluster_id = {c} \
                    AND x.raft_index >= {lo} AND x.raft_index <= {hi} AND {}) AS last \
               FROM (SELECT DISTINCT e.key_ref FROM {table} AS m \
                     {join} event_log AS e ON e.cluster_id = {c} \
                       AND e.raft_index = m.raft_index{unindexed} AND e.position = m.position \
                     WHERE m.cluster_id = {c} AND m.raft_index >= {lo} AND m.raft_index <= {hi} \
                       AND {}{matched}) AS o) AS l \
         {join} event_log AS e ON e.cluster_id = {c} AND e.raft_index = l.last \
           AND e.topic = {topic} AND e.key_ref = l.key_ref \
         JOIN {table} AS d ON d.cluster_id = e.cluster_id AND d.raft_index = e.raft_index \
           AND d.position = e.position \
         JOIN names AS k ON k.id = e.key_ref \
         LEFT JOIN names AS j ON j.id = e.job_ref \
         LEFT JOIN names AS n ON n.id = e.node_ref{texts} \
         ORDER BY e.raft_index, e.position",
        within("x.event_at"),
        within(&format!("{plain}e.event_at")),
    ))
}

/// The jobs present at `moment` with their allocations counted by client
/// status: every object at the moment ([`super::moment::latest_at`]), as a
/// snapshot shows them (present, or terminal within its window).
pub fn jobs(
    cluster_id: i64,
    moment: &Moment,
    namespace: Option<&str>,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let c = p.int(cluster_id);
    let latest = super::moment::latest_at(&mut p, &c, moment);
    let since = p.int(moment.terminal_since.unwrap_or(i64::MIN));
    let only = match namespace {
        Some(ns) => format!(" AND o.namespace = {}", p.push(Bind::Text(ns.to_owned()))),
        None => String::new(),
    };
    let join = p.join_rows();
    let count = |status: &str| {
        format!("SUM(CASE WHEN d.client_status = '{status}' THEN 1 ELSE 0 END) AS {status}")
    };
    let counts: Vec<String> = ["pending", "running", "complete", "failed", "lost"]
        .iter()
        .map(|s| count(s))
        .collect();
    let totals: Vec<String> = ["pending", "running", "complete", "failed", "lost"]
        .iter()
        .map(|s| format!("COALESCE(a.{s}, 0) AS {s}"))
        .collect();
    p.statement(format!(
        "WITH o AS (SELECT e.cluster_id, e.raft_index, e.position, e.topic, e.namespace, \
                      e.key_ref, e.job_ref, e.presence, e.event_at, e.time_source \
                    FROM ({latest}) AS l \
                    {join} event_log AS e ON e.cluster_id = {c} AND e.raft_index = l.o_last \
                      AND e.topic = l.o_topic AND e.namespace = l.o_namespace AND e.key_ref = l.o_key \
                    WHERE e.presence = 0 OR (e.presence = 1 AND e.event_at >= {since})) \
         SELECT k.name AS id, o.namespace, x.version, x.status, x.stop, {}, \
           o.raft_index, o.event_at, o.time_source \
         FROM o JOIN names AS k ON k.id = o.key_ref \
         LEFT JOIN job_details AS x ON x.cluster_id = o.cluster_id \
           AND x.raft_index = o.raft_index AND x.position = o.position \
         LEFT JOIN (SELECT a.namespace, a.job_ref, {} FROM o AS a \
                    JOIN allocation_details AS d ON d.cluster_id = a.cluster_id \
                      AND d.raft_index = a.raft_index AND d.position = a.position \
                    WHERE a.topic = 'Allocation' GROUP BY a.namespace, a.job_ref) AS a \
           ON a.namespace = o.namespace AND a.job_ref = o.key_ref \
         WHERE o.topic = 'Job' AND o.presence = 0{only} \
         ORDER BY o.namespace, k.name",
        totals.join(", "),
        counts.join(", ")
    ))
}
