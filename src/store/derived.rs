//! What the writer derives from a batch's events beside their details, in
//! the batch's transaction, the same on both backends: the minutes the
//! events are dated in ([`super::minutes`]) and the timeline's marker
//! changes ([`super::marker_changes`]). A new table derived this way is
//! one line here, not one in each backend's writer.

use super::rows::EventRow;
use super::statement::{Placeholders, Statement};
use super::{marker_changes, minutes};

/// The statements that keep the derived tables right for a batch of
/// `rows`, of which `inserted` were new; run after its events and their
/// details are stored.
pub fn after_batch(
    cluster_id: i64,
    rows: &[EventRow],
    inserted: u64,
    style: Placeholders,
) -> Vec<Statement> {
    let mut statements = minutes::of_batch(cluster_id, rows, inserted, style);
    statements.extend(marker_changes::of_batch(cluster_id, rows, style));
    statements
}
