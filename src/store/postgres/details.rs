//! Storing the reporting details of a batch's events on PostgreSQL
//! ([`crate::store::details`]): one statement per table, with the batch's
//! events of its topic bound as arrays, read with the expressions of the
//! views of migration 0011. Each event is parsed once (`jsonb`), in a
//! materialized step, and its fields read from that.
//!
//! PostgreSQL's text cannot hold a NUL character, and `jsonb` refuses the
//! escape `\u0000` anywhere in a document, so the copy parsed here has it
//! replaced by U+FFFD (the stored event keeps it): a NUL in a field the
//! views show reads as `�`.

use sqlx::PgConnection;

use crate::store::StoreError;
use crate::store::details::{DetailRow, Detailed, of_topic};
use crate::store::names::RowRefs;
use crate::store::rows::EventRow;

/// The batch's events of one topic, each with its payload object parsed.
/// `$2` raft indexes, `$3` positions, `$4` keys' names.id, `$5` namespaces,
/// `$6` jobs' names.id, `$7` the events.
macro_rules! parsed {
    ($object:literal) => {
        concat!(
            "WITH r AS MATERIALIZED (SELECT u.i, u.p, u.k, u.ns, u.j, \
               u.e::jsonb -> 'Payload' -> '",
            $object,
            "' AS o \
             FROM UNNEST($2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::bigint[], $7::text[]) \
               AS u (i, p, k, ns, j, e)) "
        )
    };
}

/// An event stored again (a resend) already has its details: `DO NOTHING`.
const ALLOCATIONS: &str = concat!(
    parsed!("Allocation"),
    "INSERT INTO allocation_details \
     SELECT $1, i, p, o ->> 'TaskGroup', o ->> 'NodeName', o ->> 'DesiredStatus', \
       o ->> 'ClientStatus', o ->> 'ClientDescription' FROM r \
     ON CONFLICT DO NOTHING"
);

const JOBS: &str = concat!(
    parsed!("Job"),
    "INSERT INTO job_details \
     SELECT $1, i, p, (o ->> 'Version')::bigint, o ->> 'Status', (o ->> 'Stop')::boolean, \
       (o ->> 'SubmitTime')::bigint FROM r \
     ON CONFLICT DO NOTHING"
);

const DEPLOYMENTS: &str = concat!(
    parsed!("Deployment"),
    "INSERT INTO deployment_details \
     SELECT $1, i, p, (o ->> 'JobVersion')::bigint, o ->> 'Status', o ->> 'StatusDescription' \
     FROM r ON CONFLICT DO NOTHING"
);

const NODES: &str = concat!(
    parsed!("Node"),
    "INSERT INTO node_details \
     SELECT $1, i, p, k, o ->> 'Name', o ->> 'Status', o ->> 'SchedulingEligibility', \
       (o ->> 'Drain')::boolean FROM r \
     ON CONFLICT DO NOTHING"
);

/// Each task event of the allocations' task states, once per statement
/// (`DISTINCT ON`, the earliest sighting); an event already kept takes
/// this sighting only if it comes earlier in the stream (history imported
/// behind what is stored).
const TASK_EVENTS: &str = concat!(
    parsed!("Allocation"),
    "INSERT INTO task_event_log \
     SELECT DISTINCT ON (r.k, s.key, (t ->> 'Time')::bigint, t ->> 'Type') \
       r.k, $1, s.key, (t ->> 'Time')::bigint, t ->> 'Type', r.ns, r.j, \
       (t ->> 'ExitCode')::bigint, \
       (coalesce(t -> 'Details' ->> 'oom_killed' = 'true', false) \
        OR coalesce(t ->> 'Message', '') LIKE '%OOM Killed%' \
        OR coalesce(t ->> 'DisplayMessage', '') LIKE '%OOM Killed%'), \
       t ->> 'DisplayMessage', r.i, r.p \
     FROM r \
     CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(r.o -> 'TaskStates') = 'object' \
       THEN r.o -> 'TaskStates' END) AS s \
     CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.value -> 'Events') = 'array' \
       THEN s.value -> 'Events' END) AS element (t) \
     WHERE jsonb_typeof(t) = 'object' AND t ->> 'Time' IS NOT NULL AND t ->> 'Type' IS NOT NULL \
     ORDER BY r.k, s.key, (t ->> 'Time')::bigint, t ->> 'Type', r.i, r.p \
     ON CONFLICT (alloc_ref, cluster_id, task, time_ns, event_type) DO UPDATE SET \
       namespace = excluded.namespace, job_ref = excluded.job_ref, exit_code = excluded.exit_code, \
       oom_killed = excluded.oom_killed, message = excluded.message, \
       first_seen_index = excluded.first_seen_index, first_seen_position = excluded.first_seen_position \
     WHERE (excluded.first_seen_index, excluded.first_seen_position) \
       < (task_event_log.first_seen_index, task_event_log.first_seen_position)"
);

/// Stores the details of the events of `rows` (with their `refs`).
pub(super) async fn insert(
    tx: &mut PgConnection,
    cluster_id: i64,
    rows: &[EventRow<'_>],
    refs: &[RowRefs],
) -> Result<(), StoreError> {
    for topic in Detailed::ALL {
        let of_topic = of_topic(rows, refs, topic);
        if of_topic.is_empty() {
            continue;
        }
        let statements: &[&'static str] = match topic {
            Detailed::Allocation => &[ALLOCATIONS, TASK_EVENTS],
            Detailed::Job => &[JOBS],
            Detailed::Deployment => &[DEPLOYMENTS],
            Detailed::Node => &[NODES],
        };
        for &sql in statements {
            bind(sql, cluster_id, &of_topic).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// `sql` with the events' columns bound as arrays.
fn bind(
    sql: &'static str,
    cluster_id: i64,
    rows: &[DetailRow<'_, '_>],
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn column<T>(rows: &[DetailRow<'_, '_>], f: impl Fn(&DetailRow<'_, '_>) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    sqlx::query(sql)
        .bind(cluster_id)
        .bind(column(rows, |r| r.row.index))
        .bind(column(rows, |r| r.row.position))
        .bind(column(rows, |r| r.refs.key))
        .bind(column(rows, |r| r.row.event.namespace.clone()))
        .bind(column(rows, |r| r.refs.job))
        .bind(column(rows, |r| without_nul(&r.row.event.raw)))
}

/// `event` with every `\u0000` escape replaced by `\ufffd`.
fn without_nul(event: &str) -> String {
    if event.contains("\\u0000") {
        event.replace("\\u0000", "\\ufffd")
    } else {
        event.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::without_nul;

    #[test]
    fn a_nul_escape_becomes_the_replacement_character() {
        let event = r#"{"Payload":{"Node":{"Name":"a\u0000b"}}}"#;
        let parsed: serde_json::Value = serde_json::from_str(&without_nul(event)).expect("JSON");
        assert_eq!(parsed["Payload"]["Node"]["Name"], "a\u{fffd}b");
        assert_eq!(without_nul("{}"), "{}");
    }
}
