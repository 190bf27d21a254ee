//! Storing a batch's reporting details on PostgreSQL
//! ([`crate::store::details`]): one statement per table, the batch's rows
//! bound as typed arrays.

use std::borrow::Cow;

use sqlx::PgConnection;
use sqlx::postgres::PgArguments;

use crate::store::StoreError;
use crate::store::detail_texts::DetailTexts;
use crate::store::details::{BatchDetails, BatchTaskEvents, DetailRow};
use crate::store::lives::{self, Life};

type Query = sqlx::query::Query<'static, sqlx::Postgres, PgArguments>;

/// An event stored again (a resend) already has its details: `DO NOTHING`.
const ALLOCATIONS: &str = "INSERT INTO allocation_details (cluster_id, raft_index, position, \
       task_group_ref, node_name_ref, desired_status, client_status, client_description_ref, \
       client_description) \
     SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[], \
       $7::text[], $8::bigint[], $9::text[]) AS r \
     ON CONFLICT DO NOTHING";
const JOBS: &str = "INSERT INTO job_details \
     SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::text[], \
       $6::boolean[], $7::bigint[]) AS r \
     ON CONFLICT DO NOTHING";
const DEPLOYMENTS: &str = "INSERT INTO deployment_details \
     SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::text[], \
       $6::text[]) AS r \
     ON CONFLICT DO NOTHING";
const EVALUATIONS: &str = "INSERT INTO evaluation_details \
     SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::text[], $5::text[], \
       $6::text[]) AS r \
     ON CONFLICT DO NOTHING";
const NODES: &str = "INSERT INTO node_details \
     SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::text[], \
       $7::text[], $8::boolean[]) AS r \
     ON CONFLICT DO NOTHING";

/// A task event already kept takes this sighting only if it comes earlier
/// in the stream (history imported behind what is stored). `DISTINCT ON`
/// keeps one row per task event (an upsert may not touch a row twice).
const TASK_EVENTS: &str = "INSERT INTO task_event_log (alloc_ref, cluster_id, task_ref, time_ns, \
       type_ref, namespace, job_ref, exit_code, oom_killed, message_ref, message, \
       first_seen_index, first_seen_position) \
     SELECT DISTINCT ON (r.alloc_ref, r.task_ref, r.time_ns, r.type_ref) \
       r.alloc_ref, $1, r.task_ref, r.time_ns, r.type_ref, r.namespace, r.job_ref, r.exit_code, \
       r.oom_killed, r.message_ref, r.message, r.first_seen_index, r.first_seen_position \
     FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], \
       $7::bigint[], $8::bigint[], $9::boolean[], $10::bigint[], $11::text[], $12::bigint[], \
       $13::int[]) \
       AS r (alloc_ref, task_ref, time_ns, type_ref, namespace, job_ref, exit_code, oom_killed, \
             message_ref, message, first_seen_index, first_seen_position) \
     ORDER BY r.alloc_ref, r.task_ref, r.time_ns, r.type_ref, r.first_seen_index, \
       r.first_seen_position \
     ON CONFLICT (alloc_ref, cluster_id, task_ref, time_ns, type_ref) DO UPDATE SET \
       namespace = excluded.namespace, job_ref = excluded.job_ref, exit_code = excluded.exit_code, \
       oom_killed = excluded.oom_killed, message_ref = excluded.message_ref, \
       message = excluded.message, \
       first_seen_index = excluded.first_seen_index, first_seen_position = excluded.first_seen_position \
     WHERE (excluded.first_seen_index, excluded.first_seen_position) \
       < (task_event_log.first_seen_index, task_event_log.first_seen_position)";

/// Stores a batch's details and its new task events, whose `texts` are
/// resolved.
pub(super) async fn insert(
    tx: &mut PgConnection,
    cluster_id: i64,
    (details, task_events): (&BatchDetails<'_>, &BatchTaskEvents<'_>),
    texts: &DetailTexts<'_>,
    lives: &[Life],
) -> Result<(), StoreError> {
    let mut statements: Vec<Query> = Vec::new();
    if !lives.is_empty() {
        statements.push(lives_statement(cluster_id, lives));
    }
    let a = &details.allocations;
    if !a.is_empty() {
        statements.push(
            places(ALLOCATIONS, cluster_id, a)
                .bind(column(&texts.allocations, |t| t.task_group))
                .bind(column(&texts.allocations, |t| t.node_name))
                .bind(column(a, |r| text(&r.details.desired_status)))
                .bind(column(a, |r| text(&r.details.client_status)))
                .bind(column(&texts.allocations, |t| t.client_description))
                .bind(column(&texts.allocations, |t| {
                    t.long_description.map(without_nul)
                })),
        );
    }
    let j = &details.jobs;
    if !j.is_empty() {
        statements.push(
            places(JOBS, cluster_id, j)
                .bind(column(j, |r| r.details.version))
                .bind(column(j, |r| text(&r.details.status)))
                .bind(column(j, |r| r.details.stop))
                .bind(column(j, |r| r.details.submit_time_ns)),
        );
    }
    let d = &details.deployments;
    if !d.is_empty() {
        statements.push(
            places(DEPLOYMENTS, cluster_id, d)
                .bind(column(d, |r| r.details.job_version))
                .bind(column(d, |r| text(&r.details.status)))
                .bind(column(d, |r| text(&r.details.status_description))),
        );
    }
    let n = &details.nodes;
    if !n.is_empty() {
        statements.push(
            places(NODES, cluster_id, n)
                .bind(column(n, |r| r.refs.key))
                .bind(column(n, |r| text(&r.details.name)))
                .bind(column(n, |r| text(&r.details.status)))
                .bind(column(n, |r| text(&r.details.eligibility)))
                .bind(column(n, |r| r.details.drain)),
        );
    }
    let v = &details.evaluations;
    if !v.is_empty() {
        statements.push(
            places(EVALUATIONS, cluster_id, v)
                .bind(column(v, |r| text(&r.details.status)))
                .bind(column(v, |r| text(&r.details.triggered_by)))
                .bind(column(v, |r| text(&r.details.status_description))),
        );
    }
    if !task_events.rows.is_empty() {
        statements.push(task_event_statement(cluster_id, task_events, texts));
    }
    for statement in statements {
        statement.execute(&mut *tx).await?;
    }
    Ok(())
}

/// `sql` with the cluster and the rows' raft indexes and positions bound.
fn places<T>(sql: &'static str, cluster_id: i64, rows: &[DetailRow<'_, T>]) -> Query {
    sqlx::query(sql)
        .bind(cluster_id)
        .bind(column(rows, |r| r.place.0))
        .bind(column(rows, |r| r.place.1))
}

/// Merges a batch's allocations into their lives rows (one row each: an
/// upsert may not touch a row twice).
fn lives_statement(cluster_id: i64, l: &[Life]) -> Query {
    let sql = format!(
        "INSERT INTO allocation_lives ({}) \
         SELECT $1, r.*, 0 FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], \
           $6::text[], $7::text[], $8::bigint[], $9::int[], $10::bigint[], $11::bigint[], \
           $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], \
           $17::bigint[]) AS r {}",
        lives::COLUMNS,
        lives::on_conflict()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cluster_id)
        .bind(column(l, |r| r.key_ref))
        .bind(column(l, |r| without_nul(&r.namespace)))
        .bind(column(l, |r| r.job_ref))
        .bind(column(l, |r| r.node_ref))
        .bind(column(l, |r| text(&r.node_name)))
        .bind(column(l, |r| text(&r.task_group)))
        .bind(column(l, |r| r.first_index))
        .bind(column(l, |r| r.first_position))
        .bind(column(l, |r| r.first_at))
        .bind(column(l, |r| r.last_index))
        .bind(column(l, |r| r.last_status))
        .bind(column(l, |r| r.live_index))
        .bind(column(l, |r| r.first_terminal))
        .bind(column(l, |r| r.terminal_at))
        .bind(column(l, |r| r.min_at))
        .bind(column(l, |r| r.max_at))
}

fn task_event_statement(
    cluster_id: i64,
    batch: &BatchTaskEvents<'_>,
    texts: &DetailTexts,
) -> Query {
    let (rows, texts) = (&batch.rows, &texts.task_events);
    sqlx::query(TASK_EVENTS)
        .bind(cluster_id)
        .bind(column(rows, |r| r.alloc_ref))
        .bind(column(texts, |t| t.task))
        .bind(column(rows, |r| r.event.time_ns))
        .bind(column(texts, |t| t.event_type))
        .bind(column(rows, |r| without_nul(r.namespace)))
        .bind(column(rows, |r| r.job_ref))
        .bind(column(rows, |r| r.event.exit_code))
        .bind(column(rows, |r| r.event.oom_killed[1]))
        .bind(column(texts, |t| t.message))
        .bind(column(texts, |t| t.long_message.map(without_nul)))
        .bind(column(rows, |r| r.place.0))
        .bind(column(rows, |r| r.place.1))
}

fn column<R, T>(rows: &[R], f: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(f).collect()
}

/// A text column's value as PostgreSQL can store it ([`without_nul`]).
pub(super) fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(without_nul)
}

/// PostgreSQL's text cannot hold a NUL character: in every text the
/// details take from a payload it is stored as U+FFFD (a NUL left in would
/// fail the batch on every retry); the stored event keeps it.
fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

/// `texts` as PostgreSQL stores them ([`storable`]), each once: owned, so
/// that they outlive the batch's rows.
pub(super) fn storable_texts(mut texts: Vec<&str>) -> Vec<String> {
    // Each text once before it is copied: a batch repeats most of them.
    texts.sort_unstable();
    texts.dedup();
    let mut texts: Vec<String> = texts.into_iter().map(without_nul).collect();
    // Two texts that differ only where one has a NUL are stored as one.
    texts.sort_unstable();
    texts.dedup();
    texts
}

/// [`without_nul`], copying only a text that has a NUL.
pub(super) fn storable(text: &str) -> Cow<'_, str> {
    match text.contains('\0') {
        true => Cow::Owned(without_nul(text)),
        false => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::without_nul;

    #[test]
    fn a_nul_becomes_the_replacement_character() {
        assert_eq!(without_nul("a\0b"), "a\u{fffd}b");
        assert_eq!(without_nul("ab"), "ab");
    }
}
