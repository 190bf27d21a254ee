//! A window's job versions and deployment statuses, found and thinned by
//! the database ([`statement`]) rather than read one event a row: of a
//! job's Job events only those whose version differs from the one before
//! in the window, of a deployment's events only those whose status
//! differs, and of those changes, on each lane and bucket of the page's
//! time axis ([`Fit::bucket_ms`]), only the last (by time, then stream
//! order) with the number of the others it stands for. An object's first
//! event of the window is a change when nothing of the object was archived
//! by the moment the window starts at ([`Fit::after_index`]); otherwise it
//! is returned as it is, for the caller, who holds that moment, to judge.

use super::{Bounds, Fit, LaneWindow, Others, bucket};
use crate::store::statement::{Placeholders, Statement};
use crate::store::to_i64;

/// The window's markers (lanes per job), in stream order, as
/// [`super::LaneRow`]s: `hidden` is `NULL` on a first event left for the
/// caller to judge, and on a change found here the number of earlier
/// changes within its bucket that it stands for.
pub fn statement(
    cluster_id: i64,
    window: &LaneWindow,
    fit: &Fit,
    style: Placeholders,
) -> Statement {
    let mut b = Bounds::new(cluster_id, window, style);
    let bucket = bucket(&mut b, fit, "u.event_at");
    let after = b.p.int(to_i64(fit.after_index));
    // The condition of the index the events are read by (migration 0023),
    // which SQLite takes only when a query states it.
    let marked = Others::Markers.topics();
    let c = b.c.clone();
    let (by_markers, by_key) = (b.p.markers(), b.p.by_key());
    let within = &b.within;
    let order = "ORDER BY e.raft_index, e.position";
    let jobs = format!(
        "SELECT e.raft_index, e.position, e.topic, e.namespace, e.key_ref, e.job_ref, \
           e.key_ref AS lane_ref, e.event_at, CAST(NULL AS TEXT) AS status, \
           d.version AS version, \
           ROW_NUMBER() OVER (PARTITION BY e.namespace, e.key_ref {order}) AS nth, \
           CASE WHEN LAG(d.version) OVER (PARTITION BY e.namespace, e.key_ref {order}) \
             = d.version THEN 0 ELSE 1 END AS changed \
         FROM event_log AS e{by_markers} \
         JOIN job_details AS d ON d.cluster_id = e.cluster_id \
           AND d.raft_index = e.raft_index AND d.position = e.position \
         WHERE {within} AND e.topic = 'Job' AND {marked} AND d.version IS NOT NULL"
    );
    let status = "COALESCE(d.status, '')";
    let deployments = format!(
        "SELECT e.raft_index, e.position, e.topic, e.namespace, e.key_ref, e.job_ref, \
           e.job_ref AS lane_ref, e.event_at, {status} AS status, \
           d.job_version AS version, \
           ROW_NUMBER() OVER (PARTITION BY e.key_ref {order}) AS nth, \
           CASE WHEN LAG({status}) OVER (PARTITION BY e.key_ref {order}) \
             = {status} THEN 0 ELSE 1 END AS changed \
         FROM event_log AS e{by_markers} \
         LEFT JOIN deployment_details AS d ON d.cluster_id = e.cluster_id \
           AND d.raft_index = e.raft_index AND d.position = e.position \
         WHERE {within} AND e.topic = 'Deployment' AND {marked}"
    );
    // An object's first event stands alone (`single`) when the object may
    // be in the starting moment; the changes are ranked within their lane
    // and bucket, the last first.
    let seen = format!(
        "EXISTS (SELECT 1 FROM event_log AS x{by_key} WHERE x.topic = u.topic \
           AND x.key_ref = u.key_ref AND x.cluster_id = {c} AND x.raft_index <= {after})"
    );
    let group = "PARTITION BY c.topic, c.namespace, c.lane_ref, c.single, c.bucket";
    let ranked = format!(
        "SELECT c.*, \
           ROW_NUMBER() OVER ({group} ORDER BY c.event_at DESC, c.raft_index DESC, \
             c.position DESC) AS rank, \
           COUNT(*) OVER ({group}) AS changes \
         FROM (SELECT u.*, CASE WHEN u.nth <> 1 THEN 0 WHEN {seen} THEN 1 ELSE 0 END \
                 AS single, \
                 {bucket} AS bucket \
               FROM ({jobs} UNION ALL {deployments}) AS u \
               WHERE u.nth = 1 OR u.changed = 1) AS c"
    );
    b.p.statement(format!(
        "SELECT m.raft_index, m.position, m.topic, m.namespace, k.name AS key, \
           j.name AS job_id, CAST(NULL AS TEXT) AS node_id, m.event_at, m.status, \
           CAST(NULL AS BIGINT) AS ended_at, CAST(NULL AS TEXT) AS node_name, \
           CAST(NULL AS TEXT) AS task_group, m.version, CAST(NULL AS TEXT) AS eligibility, \
           CAST(NULL AS BOOLEAN) AS drain, \
           CASE WHEN m.single = 1 THEN CAST(NULL AS BIGINT) ELSE m.changes - 1 END AS hidden, \
           CAST(NULL AS BIGINT) AS bucket, CAST(NULL AS BIGINT) AS count \
         FROM ({ranked}) AS m \
         JOIN names AS k ON k.id = m.key_ref \
         LEFT JOIN names AS j ON j.id = m.job_ref \
         WHERE m.single = 1 OR m.rank = 1 \
         ORDER BY m.raft_index, m.position"
    ))
}
