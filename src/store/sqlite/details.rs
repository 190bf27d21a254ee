//! Storing a batch's reporting details on SQLite ([`crate::store::details`]):
//! multi-row INSERTs of typed values, as the events are inserted.

use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection};

use crate::store::StoreError;
use crate::store::detail_texts::DetailTexts;
use crate::store::details::{BatchDetails, BatchTaskEvents};
use crate::store::lives::{self, Life};

type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// Rows per statement at most. Each statement is a round trip to sqlx's
/// SQLite thread (see the events' insert in `lease`): with 64 rows, the
/// details of a batch took over a hundred of them and ingest 40 % longer.
const MAX_ROWS: usize = 512;

/// An event stored again (a resend) already has its details: `OR IGNORE`.
const ALLOCATIONS: &str = "INSERT OR IGNORE INTO allocation_details (cluster_id, raft_index, \
     position, task_group_ref, node_name_ref, desired_status, client_status, \
     client_description_ref, client_description)";
const JOBS: &str = "INSERT OR IGNORE INTO job_details (cluster_id, raft_index, position, \
     version, status, stop, submit_time_ns)";
const DEPLOYMENTS: &str = "INSERT OR IGNORE INTO deployment_details (cluster_id, raft_index, \
     position, job_version, status, status_description)";
const EVALUATIONS: &str = "INSERT OR IGNORE INTO evaluation_details (cluster_id, raft_index, \
     position, status, triggered_by, status_description)";
const NODES: &str = "INSERT OR IGNORE INTO node_details (cluster_id, raft_index, position, \
     key_ref, node_name, status, eligibility, drain)";

/// A task event already kept takes this sighting only if it comes earlier
/// in the stream (history imported behind what is stored).
const TASK_EVENTS: &str = "INSERT INTO task_event_log (cluster_id, alloc_ref, task_ref, time_ns, \
     type_ref, namespace, job_ref, exit_code, oom_killed, message_ref, message, first_seen_index, \
     first_seen_position)";
const TASK_EVENTS_CONFLICT: &str = "ON CONFLICT (alloc_ref, cluster_id, task_ref, time_ns, type_ref) \
     DO UPDATE SET namespace = excluded.namespace, job_ref = excluded.job_ref, \
       exit_code = excluded.exit_code, oom_killed = excluded.oom_killed, \
       message_ref = excluded.message_ref, message = excluded.message, \
       first_seen_index = excluded.first_seen_index, \
       first_seen_position = excluded.first_seen_position \
     WHERE (excluded.first_seen_index, excluded.first_seen_position) \
       < (task_event_log.first_seen_index, task_event_log.first_seen_position)";

/// Stores a batch's details and its new task events, whose `texts` are
/// resolved.
pub(super) async fn insert(
    tx: &mut SqliteConnection,
    cluster_id: i64,
    (details, task_events): (&BatchDetails<'_>, &BatchTaskEvents<'_>),
    texts: &DetailTexts<'_>,
    lives: &[Life],
) -> Result<(), StoreError> {
    insert_lives(tx, cluster_id, lives).await?;
    let allocations: Vec<_> = details.allocations.iter().zip(&texts.allocations).collect();
    insert_values(tx, ALLOCATIONS, 9, "", &allocations, |q, (r, t)| {
        let d = r.details;
        q.bind(cluster_id)
            .bind(r.place.0)
            .bind(r.place.1)
            .bind(t.task_group)
            .bind(t.node_name)
            .bind(d.desired_status.clone())
            .bind(d.client_status.clone())
            .bind(t.client_description)
            .bind(t.long_description.map(str::to_owned))
    })
    .await?;
    insert_values(tx, JOBS, 7, "", &details.jobs, |q, r| {
        let d = r.details;
        q.bind(cluster_id)
            .bind(r.place.0)
            .bind(r.place.1)
            .bind(d.version)
            .bind(d.status.clone())
            .bind(d.stop)
            .bind(d.submit_time_ns)
    })
    .await?;
    insert_values(tx, DEPLOYMENTS, 6, "", &details.deployments, |q, r| {
        let d = r.details;
        q.bind(cluster_id)
            .bind(r.place.0)
            .bind(r.place.1)
            .bind(d.job_version)
            .bind(d.status.clone())
            .bind(d.status_description.clone())
    })
    .await?;
    insert_values(tx, NODES, 8, "", &details.nodes, |q, r| {
        let d = r.details;
        q.bind(cluster_id)
            .bind(r.place.0)
            .bind(r.place.1)
            .bind(r.refs.key)
            .bind(d.name.clone())
            .bind(d.status.clone())
            .bind(d.eligibility.clone())
            .bind(d.drain)
    })
    .await?;
    insert_values(tx, EVALUATIONS, 6, "", &details.evaluations, |q, r| {
        let d = r.details;
        q.bind(cluster_id)
            .bind(r.place.0)
            .bind(r.place.1)
            .bind(d.status.clone())
            .bind(d.triggered_by.clone())
            .bind(d.status_description.clone())
    })
    .await?;
    insert_task_events(tx, cluster_id, task_events, texts).await
}

/// Merges a batch's allocations into their lives rows.
async fn insert_lives(
    tx: &mut SqliteConnection,
    cluster_id: i64,
    lives: &[Life],
) -> Result<(), StoreError> {
    let head = format!("INSERT INTO allocation_lives ({})", lives::COLUMNS);
    insert_values(tx, &head, 18, &lives::on_conflict(), lives, |q, l| {
        q.bind(cluster_id)
            .bind(l.key_ref)
            .bind(l.namespace.clone())
            .bind(l.job_ref)
            .bind(l.node_ref)
            .bind(l.node_name.clone())
            .bind(l.task_group.clone())
            .bind(l.first_index)
            .bind(l.first_position)
            .bind(l.first_at)
            .bind(l.last_index)
            .bind(l.last_status)
            .bind(l.live_index)
            .bind(l.first_terminal)
            .bind(l.terminal_at)
            .bind(l.min_at)
            .bind(l.max_at)
            .bind(0_i64)
    })
    .await
}

/// Stores a batch's new task events.
async fn insert_task_events(
    tx: &mut SqliteConnection,
    cluster_id: i64,
    task_events: &BatchTaskEvents<'_>,
    texts: &DetailTexts<'_>,
) -> Result<(), StoreError> {
    let rows: Vec<_> = task_events.rows.iter().zip(&texts.task_events).collect();
    insert_values(
        tx,
        TASK_EVENTS,
        13,
        TASK_EVENTS_CONFLICT,
        &rows,
        |q, (r, t)| {
            let e = r.event;
            q.bind(cluster_id)
                .bind(r.alloc_ref)
                .bind(t.task)
                .bind(e.time_ns)
                .bind(t.event_type)
                .bind(r.namespace.to_owned())
                .bind(r.job_ref)
                .bind(e.exit_code)
                .bind(e.oom_killed[0])
                .bind(t.message)
                .bind(t.long_message.map(str::to_owned))
                .bind(r.place.0)
                .bind(r.place.1)
        },
    )
    .await
}

/// Inserts `items` with `head VALUES (…), (…) tail`, `columns` parameters
/// a row, in statements of a power of two rows (so a few prepared
/// statements serve every batch).
async fn insert_values<T>(
    tx: &mut SqliteConnection,
    head: &str,
    columns: usize,
    tail: &str,
    items: &[T],
    bind: impl Fn(Query, &T) -> Query,
) -> Result<(), StoreError> {
    let mut rest = items;
    while !rest.is_empty() {
        let rows = 1 << MAX_ROWS.min(rest.len()).ilog2();
        let (chunk, tail_items) = rest.split_at(rows);
        rest = tail_items;
        let row = format!("({})", vec!["?"; columns].join(","));
        let sql = format!("{head} VALUES {} {tail}", vec![row; rows].join(","));
        let mut query: Query = sqlx::query(AssertSqlSafe(sql));
        for item in chunk {
            query = bind(query, item);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}
