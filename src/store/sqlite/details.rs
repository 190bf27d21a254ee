//! Storing the reporting details of a batch's events on SQLite
//! ([`crate::store::details`]): one statement per table, with the batch's
//! events of its topic bound as one JSON array of
//! `[raft_index, position, key_ref, namespace, job_ref, event]`, read with
//! the expressions of the views of migration 0011.

use sqlx::SqliteConnection;

use crate::store::StoreError;
use crate::store::details::{DetailRow, Detailed, of_topic};
use crate::store::names::RowRefs;
use crate::store::rows::EventRow;

/// An event stored again (a resend) already has its details: `OR IGNORE`.
const ALLOCATIONS: &str = "INSERT OR IGNORE INTO allocation_details \
     SELECT ?1, r.value ->> 0, r.value ->> 1, \
       json_extract(r.value, '$[5].Payload.Allocation.TaskGroup'), \
       json_extract(r.value, '$[5].Payload.Allocation.NodeName'), \
       json_extract(r.value, '$[5].Payload.Allocation.DesiredStatus'), \
       json_extract(r.value, '$[5].Payload.Allocation.ClientStatus'), \
       json_extract(r.value, '$[5].Payload.Allocation.ClientDescription') \
     FROM json_each(?2) AS r";

const JOBS: &str = "INSERT OR IGNORE INTO job_details \
     SELECT ?1, r.value ->> 0, r.value ->> 1, \
       json_extract(r.value, '$[5].Payload.Job.Version'), \
       json_extract(r.value, '$[5].Payload.Job.Status'), \
       json_extract(r.value, '$[5].Payload.Job.Stop'), \
       json_extract(r.value, '$[5].Payload.Job.SubmitTime') \
     FROM json_each(?2) AS r";

const DEPLOYMENTS: &str = "INSERT OR IGNORE INTO deployment_details \
     SELECT ?1, r.value ->> 0, r.value ->> 1, \
       json_extract(r.value, '$[5].Payload.Deployment.JobVersion'), \
       json_extract(r.value, '$[5].Payload.Deployment.Status'), \
       json_extract(r.value, '$[5].Payload.Deployment.StatusDescription') \
     FROM json_each(?2) AS r";

const NODES: &str = "INSERT OR IGNORE INTO node_details \
     SELECT ?1, r.value ->> 0, r.value ->> 1, r.value ->> 2, \
       json_extract(r.value, '$[5].Payload.Node.Name'), \
       json_extract(r.value, '$[5].Payload.Node.Status'), \
       json_extract(r.value, '$[5].Payload.Node.SchedulingEligibility'), \
       json_extract(r.value, '$[5].Payload.Node.Drain') \
     FROM json_each(?2) AS r";

/// Each task event of the allocations' task states; an event already kept
/// takes this sighting only if it comes earlier in the stream (history
/// imported behind what is stored). `WHERE true` tells SQLite's parser the
/// `ON` that follows belongs to the upsert, not to a join.
const TASK_EVENTS: &str = "INSERT INTO task_event_log \
     SELECT r.value ->> 2, ?1, s.key, \
       json_extract(t.value, '$.Time'), json_extract(t.value, '$.Type'), \
       r.value ->> 3, r.value ->> 4, json_extract(t.value, '$.ExitCode'), \
       (json_extract(t.value, '$.Details.oom_killed') IS 'true' \
        OR coalesce(json_extract(t.value, '$.Message'), '') LIKE '%OOM Killed%' \
        OR coalesce(json_extract(t.value, '$.DisplayMessage'), '') LIKE '%OOM Killed%'), \
       json_extract(t.value, '$.DisplayMessage'), r.value ->> 0, r.value ->> 1 \
     FROM json_each(?2) AS r \
     JOIN json_each(r.value, '$[5].Payload.Allocation.TaskStates') AS s ON s.type = 'object' \
     JOIN json_each(s.value, '$.Events') AS t ON t.type = 'object' \
     WHERE json_extract(t.value, '$.Time') IS NOT NULL AND json_extract(t.value, '$.Type') IS NOT NULL \
     ON CONFLICT (alloc_ref, cluster_id, task, time_ns, event_type) DO UPDATE SET \
       namespace = excluded.namespace, job_ref = excluded.job_ref, exit_code = excluded.exit_code, \
       oom_killed = excluded.oom_killed, message = excluded.message, \
       first_seen_index = excluded.first_seen_index, first_seen_position = excluded.first_seen_position \
     WHERE (excluded.first_seen_index, excluded.first_seen_position) \
       < (task_event_log.first_seen_index, task_event_log.first_seen_position)";

/// Stores the details of the events of `rows` (with their `refs`).
pub(super) async fn insert(
    tx: &mut SqliteConnection,
    cluster_id: i64,
    rows: &[EventRow<'_>],
    refs: &[RowRefs],
) -> Result<(), StoreError> {
    for topic in Detailed::ALL {
        let of_topic = of_topic(rows, refs, topic);
        if of_topic.is_empty() {
            continue;
        }
        let list = json_rows(&of_topic);
        let statements: &[&'static str] = match topic {
            Detailed::Allocation => &[ALLOCATIONS, TASK_EVENTS],
            Detailed::Job => &[JOBS],
            Detailed::Deployment => &[DEPLOYMENTS],
            Detailed::Node => &[NODES],
        };
        for &sql in statements {
            sqlx::query(sql)
                .bind(cluster_id)
                .bind(&list)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// `[[raft_index, position, key_ref, namespace, job_ref, event], …]`: the
/// events are JSON already (validated when their frame was read).
fn json_rows(rows: &[DetailRow<'_, '_>]) -> String {
    let bytes: usize = rows.iter().map(|r| r.row.event.raw.len() + 64).sum();
    let mut out = String::with_capacity(bytes + 2);
    out.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let namespace = serde_json::Value::from(r.row.event.namespace.as_str());
        let job = r.refs.job.map_or("null".to_owned(), |j| j.to_string());
        out.push_str(&format!(
            "[{},{},{},{namespace},{job},",
            r.row.index, r.row.position, r.refs.key
        ));
        out.push_str(&r.row.event.raw);
        out.push(']');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_are_one_json_array_with_the_events_verbatim() {
        let event = crate::nomad::wire::parse_stored(
            r#"{"Topic":"Job","Type":"JobRegistered","Key":"web","Namespace":"de\"v","Index":7,"Payload":{"Job":{"ID":"web"}}}"#,
            7,
        )
        .expect("an event");
        let row = EventRow {
            index: 7,
            position: 2,
            received_at: 0,
            time: crate::archive::EventTime {
                at: 0,
                source: crate::archive::TimeSource::Received,
            },
            event: &event,
        };
        let refs = RowRefs {
            key: 3,
            job: Some(3),
            node: None,
            eval: None,
            deployment: None,
        };
        let text = json_rows(&[DetailRow {
            row: &row,
            refs: &refs,
        }]);
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value[0][3], "de\"v");
        assert_eq!(value[0][4], 3);
        assert_eq!(value[0][5]["Payload"]["Job"]["ID"], "web");
        assert!(text.ends_with(&format!("{}]]", event.raw)));
    }
}
