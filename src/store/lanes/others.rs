//! A window's events besides its allocations, one row each in stream
//! order: on lanes per job its Job and Deployment events, thinned by the
//! database to the changes the page draws when the window has a fit
//! ([`super::markers`]), else every one; on lanes per node its Node events,
//! read through their details.

use super::markers;
use super::{Bounds, LaneWindow, NOT_COUNTED, Others, usable_fit};
use crate::store::statement::{Placeholders, Statement};

/// The details table of each topic read one event a row without a fit,
/// and the alias it is joined as.
const DETAILS: [(&str, &str, &str); 2] = [
    ("Job", "job_details", "b"),
    ("Deployment", "deployment_details", "p"),
];

/// The window's Job and Deployment events, or its Node events
/// ([`Others`]), one row each, in stream order (the order of the index
/// they are read by); with a fit, the Job and Deployment events are
/// thinned by the database to the changes the page draws
/// ([`markers`]).
pub fn statement(cluster_id: i64, window: &LaneWindow, style: Placeholders) -> Statement {
    match (window.others, usable_fit(window)) {
        (Others::Markers, Some(fit)) => markers::statement(cluster_id, window, &fit, style),
        (Others::Markers, None) => every_other(cluster_id, window, style),
        (Others::Nodes, _) => nodes(cluster_id, window, style),
    }
}

/// The window's Node events, one row each in stream order, read by their
/// details (`node_details`, whose key is their place in the stream): the
/// stream's other events, about 99 of 100, are not read. A Node event
/// whose payload holds no node has no details and is not drawn, as the
/// way read from every event does not draw it; but in an archive from
/// before migration 0015, which gave every Node event stored then details,
/// it has details with every value empty and is drawn as a node of no
/// status, as before.
fn nodes(cluster_id: i64, window: &LaneWindow, style: Placeholders) -> Statement {
    let b = Bounds::new(cluster_id, window, style, None);
    let (c, lo, hi, since, until) = (&b.c, &b.lo, &b.hi, &b.since, &b.until);
    let (join, stream_order, plus) = (b.p.join_rows(), b.p.stream_order(), b.p.hidden());
    // SQLite would carry the bounds on `o.raft_index` over to
    // `e.raft_index` through the join, and look each event up by that
    // range rather than by its place.
    b.p.statement(format!(
        "SELECT e.raft_index, e.position, e.topic, e.namespace, k.name AS key, \
           j.name AS job_id, n.name AS node_id, \
           COALESCE(e.event_at, e.received_at) AS event_at, o.status, \
           CAST(NULL AS BIGINT) AS ended_at, o.node_name, CAST(NULL AS TEXT) AS task_group, \
           CAST(NULL AS BIGINT) AS version, o.eligibility, o.drain, {NOT_COUNTED} \
         FROM node_details AS o \
         {join} event_log AS e{stream_order} ON e.cluster_id = o.cluster_id \
           AND e.raft_index = {plus}o.raft_index AND e.position = {plus}o.position \
         JOIN names AS k ON k.id = e.key_ref \
         LEFT JOIN names AS j ON j.id = e.job_ref \
         LEFT JOIN names AS n ON n.id = e.node_ref \
         WHERE o.cluster_id = {c} AND o.raft_index >= {lo} AND o.raft_index <= {hi} \
           AND e.event_at >= {since} AND e.event_at < {until} AND e.topic = 'Node' \
         ORDER BY o.raft_index, o.position"
    ))
}

/// The window's Job and Deployment events, one row each, in stream order
/// (the order of the index they are read by).
fn every_other(cluster_id: i64, window: &LaneWindow, style: Placeholders) -> Statement {
    let b = Bounds::new(cluster_id, window, style, None);
    let joins: Vec<String> = DETAILS
        .iter()
        .map(|(topic, table, d)| {
            format!(
                "LEFT JOIN {table} AS {d} ON e.topic = '{topic}' AND {d}.cluster_id = e.cluster_id \
                   AND {d}.raft_index = e.raft_index AND {d}.position = e.position"
            )
        })
        .collect();
    let stream_order = b.p.stream_order();
    b.p.statement(format!(
        "SELECT e.raft_index, e.position, e.topic, e.namespace, k.name AS key, \
           j.name AS job_id, n.name AS node_id, \
           COALESCE(e.event_at, e.received_at) AS event_at, \
           p.status, CAST(NULL AS BIGINT) AS ended_at, \
           CAST(NULL AS TEXT) AS node_name, CAST(NULL AS TEXT) AS task_group, \
           COALESCE(b.version, p.job_version) AS version, CAST(NULL AS TEXT) AS eligibility, \
           CAST(NULL AS BOOLEAN) AS drain, {NOT_COUNTED} \
         FROM event_log AS e{stream_order} {} \
         JOIN names AS k ON k.id = e.key_ref \
         LEFT JOIN names AS j ON j.id = e.job_ref \
         LEFT JOIN names AS n ON n.id = e.node_ref \
         WHERE {} AND e.topic IN ('Job', 'Deployment') \
         ORDER BY e.raft_index, e.position",
        joins.join(" "),
        b.within,
    ))
}
