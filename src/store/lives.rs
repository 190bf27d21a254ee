//! Each allocation's events summed up in one row, `allocation_lives`
//! (migration 0022): its first event, its last client status, when it
//! reached a terminal one, the span of its indexes and times. The writer
//! sums a batch's allocations up ([`of_batch`]) and merges them into their
//! rows in the batch's transaction ([`on_conflict`]); the web
//! timeline reads from it the allocations whose every event lies in a
//! window ([`super::lanes`]) instead of grouping the window's events.
//!
//! Every column is a MIN or a MAX over the allocation's events, so a batch
//! is merged into the row whatever order history arrives in (an import
//! behind what is stored, a resent batch). A row is `inexact` once it may
//! say more than the stored events do: one of them has no Nomad time, or
//! some were pruned ([`before_prune`]). Such an allocation is summed from
//! its events, as every allocation was before. Written once for both
//! backends.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::names::RowRefs;
use super::params::Params;
use super::rows::EventRow;
use super::statement::{Placeholders, Statement};
use super::to_i64;
use crate::nomad::details::{AllocationDetails, Details};

/// The client statuses Nomad reports, numbered from 1 so that the last of
/// an allocation's events is found with its index by one `MAX` (`index *
/// 8 + number`); another status is 0.
const STATUSES: [&str; 6] = [
    "pending", "running", "complete", "failed", "lost", "unknown",
];

/// The numbers of the statuses an allocation ends in (complete, failed,
/// lost) among [`STATUSES`].
const TERMINAL_NUMBERS: std::ops::RangeInclusive<i64> = 3..=5;

/// The client statuses an allocation ends in, as an SQL list:
/// `('complete', 'failed', 'lost')`.
pub fn terminal() -> String {
    let names: Vec<String> = STATUSES
        .iter()
        .zip(1..)
        .filter(|(_, n)| TERMINAL_NUMBERS.contains(n))
        .map(|(s, _)| format!("'{s}'"))
        .collect();
    format!("({})", names.join(", "))
}

/// Each status with its number, written by `when`, one after the other.
fn whens(when: impl Fn(&str, i64) -> String) -> String {
    let whens: Vec<String> = STATUSES.iter().zip(1..).map(|(s, n)| when(s, n)).collect();
    whens.join(" ")
}

/// `CASE d.client_status WHEN 'pending' THEN 1 … ELSE 0 END`.
pub fn status_number(column: &str) -> String {
    let whens = whens(|status, n| format!("WHEN '{status}' THEN {n}"));
    format!("CASE {column} {whens} ELSE 0 END")
}

/// `CASE column % 8 WHEN 1 THEN 'pending' … END`: the status a
/// [`status_number`] stands for.
pub fn status_name(column: &str) -> String {
    let whens = whens(|status, n| format!("WHEN {n} THEN '{status}'"));
    format!("CASE {column} % 8 {whens} END")
}

/// Whether the [`status_number`] in `column` (`index * 8 + number`) is a
/// terminal status: `column % 8 IN (3, 4, 5)`.
pub fn is_terminal(column: &str) -> String {
    let numbers: Vec<String> = TERMINAL_NUMBERS.map(|n| n.to_string()).collect();
    format!("{column} % 8 IN ({})", numbers.join(", "))
}

/// The columns of `allocation_lives`, in the order [`Life`] binds them.
pub const COLUMNS: &str = "cluster_id, key_ref, namespace, job_ref, node_ref, node_name, \
     task_group, first_index, first_position, first_at, last_index, last_status, live_index, \
     first_terminal, terminal_at, min_at, max_at, inexact";

/// One allocation's events of a batch summed up, as its row has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Life {
    pub key_ref: i64,
    pub namespace: String,
    pub job_ref: Option<i64>,
    pub node_ref: Option<i64>,
    pub node_name: Option<String>,
    pub task_group: Option<String>,
    pub first_index: i64,
    pub first_position: i32,
    pub first_at: i64,
    pub last_index: i64,
    pub last_status: i64,
    pub live_index: Option<i64>,
    pub first_terminal: Option<i64>,
    pub terminal_at: Option<i64>,
    pub min_at: i64,
    pub max_at: i64,
}

/// The number [`status_number`] gives `status`.
fn number(status: Option<&str>) -> i64 {
    status
        .and_then(|s| STATUSES.iter().position(|known| *known == s))
        .map_or(0, |n| n as i64 + 1)
}

/// The smaller of two values, `None` being neither (unlike `Option`'s
/// own order, where it is the smallest).
fn min_some<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Life {
    /// The life of one event of an allocation.
    fn of(row: &EventRow<'_>, refs: &RowRefs, details: &AllocationDetails) -> Self {
        let status = number(details.client_status.as_deref());
        let terminal = TERMINAL_NUMBERS.contains(&status);
        let at = row.time.at;
        Life {
            key_ref: refs.key,
            namespace: row.event.namespace.clone(),
            job_ref: refs.job,
            node_ref: refs.node,
            node_name: details.node_name.clone(),
            task_group: details.task_group.clone(),
            first_index: row.index,
            first_position: row.position,
            first_at: at,
            last_index: row.index,
            last_status: row.index * 8 + status,
            live_index: (!terminal).then_some(row.index),
            first_terminal: terminal.then_some(row.index),
            terminal_at: terminal.then_some(at),
            min_at: at,
            max_at: at,
        }
    }

    /// Takes in a later or earlier event of the same allocation.
    fn merge(&mut self, other: Life) {
        if (other.first_index, other.first_position) < (self.first_index, self.first_position) {
            self.first_index = other.first_index;
            self.first_position = other.first_position;
            self.first_at = other.first_at;
        }
        self.job_ref = min_some(self.job_ref, other.job_ref);
        self.node_ref = min_some(self.node_ref, other.node_ref);
        self.node_name = min_some(self.node_name.take(), other.node_name);
        self.task_group = min_some(self.task_group.take(), other.task_group);
        self.last_index = self.last_index.max(other.last_index);
        self.last_status = self.last_status.max(other.last_status);
        // `None` orders before any value, so the larger is the larger value.
        self.live_index = self.live_index.max(other.live_index);
        self.first_terminal = min_some(self.first_terminal, other.first_terminal);
        self.terminal_at = min_some(self.terminal_at, other.terminal_at);
        self.min_at = self.min_at.min(other.min_at);
        self.max_at = self.max_at.max(other.max_at);
    }
}

/// The batch's allocations, each summed up over its events in the batch
/// (`refs`: the rows' names, in order), in order of key.
pub fn of_batch(rows: &[EventRow<'_>], refs: &[RowRefs]) -> Vec<Life> {
    let mut lives: BTreeMap<(i64, &str), Life> = BTreeMap::new();
    for (row, refs) in rows.iter().zip(refs) {
        let Details::Allocation(details) = &row.event.details else {
            continue;
        };
        let life = Life::of(row, refs, details);
        match lives.entry((refs.key, row.event.namespace.as_str())) {
            Entry::Occupied(mut known) => known.get_mut().merge(life),
            Entry::Vacant(new) => {
                new.insert(life);
            }
        }
    }
    lives.into_values().collect()
}

/// The smaller of two values, a NULL being neither (SQLite's two-argument
/// `MIN` is NULL if either is; PostgreSQL's `LEAST` is not on SQLite).
fn least(a: &str, b: &str) -> String {
    format!("CASE WHEN {a} IS NULL OR {b} < {a} THEN {b} ELSE {a} END")
}

/// The larger of two values, a NULL being neither.
fn greatest(a: &str, b: &str) -> String {
    format!("CASE WHEN {a} IS NULL OR {b} > {a} THEN {b} ELSE {a} END")
}

/// What an inserted row does to the allocation's row already stored:
/// merges into it, column by column.
pub fn on_conflict() -> String {
    let (t, x) = ("allocation_lives", "excluded");
    let earlier = format!(
        "({x}.first_index < {t}.first_index OR ({x}.first_index = {t}.first_index \
           AND {x}.first_position < {t}.first_position))"
    );
    let mut set: Vec<String> = ["first_position", "first_at", "first_index"]
        .iter()
        .map(|c| format!("{c} = CASE WHEN {earlier} THEN {x}.{c} ELSE {t}.{c} END"))
        .collect();
    set.extend(
        ["job_ref", "node_ref", "node_name", "task_group"]
            .iter()
            .chain(&["first_terminal", "terminal_at", "min_at"])
            .map(|c| format!("{c} = {}", least(&format!("{t}.{c}"), &format!("{x}.{c}")))),
    );
    set.extend(
        [
            "last_index",
            "last_status",
            "live_index",
            "max_at",
            "inexact",
        ]
        .iter()
        .map(|c| {
            format!(
                "{c} = {}",
                greatest(&format!("{t}.{c}"), &format!("{x}.{c}"))
            )
        }),
    );
    format!(
        "ON CONFLICT (cluster_id, key_ref, namespace) DO UPDATE SET {}",
        set.join(", ")
    )
}

/// Marks inexact the rows of the allocations with events in `[from,
/// below)`, which a prune is about to delete: from then on they are
/// summed from the events that are left. Run before the events go.
pub fn before_prune(cluster_id: i64, (from, below): (u64, u64), style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, lo, hi) = (p.int(cluster_id), p.int(to_i64(from)), p.int(to_i64(below)));
    p.statement(format!(
        "UPDATE allocation_lives SET inexact = 1 WHERE cluster_id = {c} AND inexact = 0 \
           AND key_ref IN (SELECT key_ref FROM event_log WHERE cluster_id = {c} \
             AND topic = 'Allocation' AND raft_index >= {lo} AND raft_index < {hi})"
    ))
}

/// Deletes the rows of the allocations none of whose events are left
/// before `below`; run once a prune deleted its events.
pub fn after_prune(cluster_id: i64, below: u64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, hi) = (p.int(cluster_id), p.int(to_i64(below)));
    let by_key = p.by_key();
    p.statement(format!(
        "DELETE FROM allocation_lives WHERE cluster_id = {c} AND last_index < {hi} \
           AND inexact = 1 AND NOT EXISTS (SELECT 1 FROM event_log AS e{by_key} \
             WHERE e.topic = 'Allocation' AND e.key_ref = allocation_lives.key_ref \
               AND e.cluster_id = {c} AND e.namespace = allocation_lives.namespace)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_statuses_are_the_ones_their_numbers_name() {
        assert_eq!(terminal(), "('complete', 'failed', 'lost')");
        for status in ["complete", "failed", "lost"] {
            assert!(TERMINAL_NUMBERS.contains(&number(Some(status))), "{status}");
        }
        for status in [Some("pending"), Some("running"), Some("unknown"), None] {
            assert!(!TERMINAL_NUMBERS.contains(&number(status)), "{status:?}");
        }
    }
}
