//! How a window's allocations are shared among the statements that read
//! them from their lives rows ([`super::allocations`]), so that the
//! database works on them at once.

use super::LaneWindow;
use crate::store::keyframe::Params;
use crate::store::to_i64;

/// The statements a window's allocations are read from their lives rows
/// in, each of those whose first event lies in its share of the window's
/// stretch of the stream ([`part_bounds`]). Testing which are thin and
/// grouping the counted ones is most of a wide window's work; in two
/// statements, the database spends two cores on it. Events an ingester
/// appends never change an allocation's first event, so each allocation
/// is read, drawn or counted by one statement, as one read of the archive
/// has it, however its lives row changes meanwhile (an import of older
/// captures that moves its first event into the other part while a
/// window is read could have it read twice or not at all, until the next
/// request). A lane's count in a bucket may come in a row from each
/// statement; the page adds them up.
pub(super) const PARTS: i64 = 2;

/// The lives rows (alias `l`) of the allocations whose first event is in
/// the `part`th of [`PARTS`] stretches of the window's stream
/// ([`part_bounds`]). The later ones' lives rows end there too, which
/// bounds their read of the index by last event.
pub(super) fn share(p: &mut Params, window: &LaneWindow, part: i64) -> String {
    let (from, until) = part_bounds(window, part);
    let mut conditions = Vec::new();
    if let Some(from) = from {
        let from = p.int(from);
        conditions.push(format!(
            "l.first_index >= {from} AND l.last_index >= {from}"
        ));
    }
    if let Some(until) = until {
        conditions.push(format!("l.first_index < {}", p.int(until)));
    }
    if conditions.is_empty() {
        conditions.push("1 = 1".to_owned());
    }
    conditions.join(" AND ")
}

/// The first indexes of the allocations `part` reads, `[from, until)`
/// (`None`: open): the window's stretch of the stream cut into [`PARTS`]
/// equal parts, the first also holding the allocations that started
/// before it, the last those after it.
fn part_bounds(window: &LaneWindow, part: i64) -> (Option<i64>, Option<i64>) {
    let lo = to_i64(window.from_index);
    let length = to_i64(window.to_index)
        .saturating_sub(lo)
        .saturating_add(1)
        .max(0);
    let start = |part: i64| lo.saturating_add(length / PARTS * part);
    let from = (part > 0).then(|| start(part));
    let until = (part + 1 < PARTS).then(|| start(part + 1));
    (from, until)
}

#[cfg(test)]
mod tests {
    use super::{PARTS, part_bounds};
    use crate::store::lanes::{LaneWindow, Others};
    use crate::store::to_i64;

    /// Every first index, inside a window's stretch of the stream or
    /// outside it, is read by exactly one of the [`PARTS`] statements.
    #[test]
    fn each_allocation_is_read_by_one_part() {
        for (from_index, to_index) in [(10, 1_000), (10, 10), (10, 11), (7, 5), (0, u64::MAX)] {
            let window = LaneWindow {
                from_index,
                to_index,
                since: 0,
                until: 1,
                by_lives: true,
                others: Others::Markers,
                fit: None,
            };
            let near = |i: u64| [i.saturating_sub(1), i, i.saturating_add(1)];
            let probes = [
                0,
                i64::MAX as u64,
                (from_index / 2).saturating_add(to_index / 2),
            ]
            .into_iter()
            .chain(near(from_index))
            .chain(near(to_index));
            for first in probes {
                let first = to_i64(first);
                let readers = (0..PARTS)
                    .filter(|part| {
                        let (from, until) = part_bounds(&window, *part);
                        from.is_none_or(|f| first >= f) && until.is_none_or(|u| first < u)
                    })
                    .count();
                assert_eq!(readers, 1, "{first} in {from_index}..={to_index}");
            }
        }
    }
}
