//! The rows of the list answers as scripts and people see them: a JSON
//! record with Nomad's key style (PascalCase), times as RFC 3339 with
//! nanoseconds and as Unix ns, and the cells of a table row.

use serde::Serialize;

use crate::archive::TimeSource;
use crate::query::render;
use crate::query::render::Look;
use crate::query::table::Column;
use crate::store::lists::{AllocationRow, DeploymentRow, EvaluationRow, JobRow, Seen};

/// A row of a list: its JSON record and its table cells.
pub trait Listed: Serialize {
    /// The table's columns.
    const COLUMNS: &'static [Column];
    /// The key of the list in the JSON document (`Allocations`, …).
    const PLURAL: &'static str;
    /// The cells of its table row, one per column, IDs as `look` shows them.
    fn cells(&self, look: &Look) -> Vec<String>;
}

/// When the object's latest event in the list happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct When {
    /// The raft index of that event.
    pub index: u64,
    pub time: String,
    pub time_ns: i64,
    pub time_source: TimeSource,
}

impl When {
    pub fn of(seen: &Seen) -> Self {
        When {
            index: crate::store::to_u64(seen.raft_index),
            time: nanos(seen.event_at),
            time_ns: seen.event_at.saturating_mul(1_000_000),
            time_source: TimeSource::parse(Some(&seen.time_source)),
        }
    }

    /// The TIME cell: to the second, `~` marking a time not the event's own.
    fn cell(&self, millis: i64) -> String {
        let time = render::time_seconds(millis);
        if self.time_source.is_approximate() {
            format!("~{time}")
        } else {
            time
        }
    }
}

/// RFC 3339 in UTC with nanoseconds.
pub fn nanos(millis: i64) -> String {
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(at) => format!("{}Z", at.strftime("%Y-%m-%dT%H:%M:%S%.9f")),
        Err(_) => format!("{millis}ms"),
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// An allocation in `query allocs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocationRecord {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: Option<String>,
    pub task_group: Option<String>,
    #[serde(rename = "NodeID")]
    pub node_id: Option<String>,
    pub node_name: Option<String>,
    pub desired_status: Option<String>,
    pub client_status: Option<String>,
    pub client_description: Option<String>,
    #[serde(flatten)]
    pub when: When,
    #[serde(skip)]
    millis: i64,
}

impl From<AllocationRow> for AllocationRecord {
    fn from(r: AllocationRow) -> Self {
        AllocationRecord {
            when: When::of(&r.seen),
            millis: r.seen.event_at,
            id: r.id,
            namespace: r.namespace,
            job_id: r.job_id,
            task_group: r.task_group,
            node_id: r.node_id,
            node_name: r.node_name,
            desired_status: r.desired_status,
            client_status: r.client_status,
            client_description: r.client_description,
        }
    }
}

impl Listed for AllocationRecord {
    const COLUMNS: &'static [Column] = &[
        Column::fixed("ID", 90),
        Column::shrinks("NAMESPACE", 20, 9).or_hidden(),
        Column::shrinks("JOB", 70, 12),
        Column::shrinks("GROUP", 30, 8).or_hidden(),
        Column::shrinks("NODE", 60, 11),
        Column::fixed("DESIRED", 40),
        Column::fixed("STATUS", 80),
        Column::fixed("TIME", 50),
    ];
    const PLURAL: &'static str = "Allocations";

    fn cells(&self, look: &Look) -> Vec<String> {
        let node = self.node_name.clone().or_else(|| self.node_id.clone());
        vec![
            look.id(&self.id).to_owned(),
            self.namespace.clone(),
            text(&self.job_id),
            text(&self.task_group),
            text(&node),
            text(&self.desired_status),
            text(&self.client_status),
            self.when.cell(self.millis),
        ]
    }
}

/// A deployment in `query deployments`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentRecord {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: Option<String>,
    pub job_version: Option<i64>,
    pub status: Option<String>,
    pub status_description: Option<String>,
    #[serde(flatten)]
    pub when: When,
    #[serde(skip)]
    millis: i64,
}

impl From<DeploymentRow> for DeploymentRecord {
    fn from(r: DeploymentRow) -> Self {
        DeploymentRecord {
            when: When::of(&r.seen),
            millis: r.seen.event_at,
            id: r.id,
            namespace: r.namespace,
            job_id: r.job_id,
            job_version: r.job_version,
            status: r.status,
            status_description: r.status_description,
        }
    }
}

impl Listed for DeploymentRecord {
    const COLUMNS: &'static [Column] = &[
        Column::fixed("ID", 90),
        Column::shrinks("NAMESPACE", 20, 9).or_hidden(),
        Column::shrinks("JOB", 70, 12),
        Column::fixed("VER", 40),
        Column::fixed("STATUS", 80),
        Column::fixed("TIME", 60),
        Column::shrinks("DESCRIPTION", 0, 12),
    ];
    const PLURAL: &'static str = "Deployments";

    fn cells(&self, look: &Look) -> Vec<String> {
        vec![
            look.id(&self.id).to_owned(),
            self.namespace.clone(),
            text(&self.job_id),
            self.job_version.map(|v| v.to_string()).unwrap_or_default(),
            text(&self.status),
            self.when.cell(self.millis),
            text(&self.status_description),
        ]
    }
}

/// An evaluation in `query evals`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvaluationRecord {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: Option<String>,
    pub status: Option<String>,
    pub triggered_by: Option<String>,
    pub status_description: Option<String>,
    #[serde(flatten)]
    pub when: When,
    #[serde(skip)]
    millis: i64,
}

impl From<EvaluationRow> for EvaluationRecord {
    fn from(r: EvaluationRow) -> Self {
        EvaluationRecord {
            when: When::of(&r.seen),
            millis: r.seen.event_at,
            id: r.id,
            namespace: r.namespace,
            job_id: r.job_id,
            status: r.status,
            triggered_by: r.triggered_by,
            status_description: r.status_description,
        }
    }
}

impl Listed for EvaluationRecord {
    const COLUMNS: &'static [Column] = &[
        Column::fixed("ID", 90),
        Column::shrinks("NAMESPACE", 20, 9).or_hidden(),
        Column::shrinks("JOB", 70, 12),
        Column::fixed("STATUS", 80),
        Column::shrinks("TRIGGERED BY", 75, 10),
        Column::fixed("TIME", 60),
        Column::shrinks("DESCRIPTION", 0, 12),
    ];
    const PLURAL: &'static str = "Evaluations";

    fn cells(&self, look: &Look) -> Vec<String> {
        vec![
            look.id(&self.id).to_owned(),
            self.namespace.clone(),
            text(&self.job_id),
            text(&self.status),
            text(&self.triggered_by),
            self.when.cell(self.millis),
            text(&self.status_description),
        ]
    }
}

/// Allocations of a job counted by client status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Counts {
    pub pending: i64,
    pub running: i64,
    pub complete: i64,
    pub failed: i64,
    pub lost: i64,
}

/// A job in `query jobs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobRecord {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    pub version: Option<i64>,
    pub status: Option<String>,
    pub stop: bool,
    /// Its allocations at the moment, by client status.
    pub allocations: Counts,
    /// When the job last changed.
    #[serde(flatten)]
    pub when: When,
    #[serde(skip)]
    millis: i64,
}

impl From<JobRow> for JobRecord {
    fn from(r: JobRow) -> Self {
        JobRecord {
            when: When::of(&r.seen),
            millis: r.seen.event_at,
            id: r.id,
            namespace: r.namespace,
            version: r.version,
            status: r.status,
            stop: r.stop.unwrap_or(false),
            allocations: Counts {
                pending: r.pending,
                running: r.running,
                complete: r.complete,
                failed: r.failed,
                lost: r.lost,
            },
        }
    }
}

impl Listed for JobRecord {
    const COLUMNS: &'static [Column] = &[
        Column::shrinks("NAMESPACE", 30, 9).or_hidden(),
        Column::shrinks("JOB", 90, 12),
        Column::fixed("VER", 50),
        Column::fixed("STATUS", 80),
        Column::fixed("PEND", 70),
        Column::fixed("RUN", 70),
        Column::fixed("DONE", 70),
        Column::fixed("FAIL", 70),
        Column::fixed("LOST", 70),
        Column::fixed("CHANGED", 40),
    ];
    const PLURAL: &'static str = "Jobs";

    fn cells(&self, _look: &Look) -> Vec<String> {
        let status = match self.stop {
            true => "stopped".to_owned(),
            false => text(&self.status),
        };
        let c = &self.allocations;
        vec![
            self.namespace.clone(),
            self.id.clone(),
            self.version.map(|v| v.to_string()).unwrap_or_default(),
            status,
            c.pending.to_string(),
            c.running.to_string(),
            c.complete.to_string(),
            c.failed.to_string(),
            c.lost.to_string(),
            self.when.cell(self.millis),
        ]
    }
}
