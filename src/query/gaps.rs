//! Which recorded gaps an answer overlaps, so no timeline pretends to be
//! complete where the archive is not.

use crate::archive::{Cluster, Gap};
use crate::store::{Store, StoreError};

/// What an answer of events names around them: the cluster's gaps when
/// events were `found` (to pick those they overlap), else the archive's
/// extent for the "not found" message. Each is read only when needed.
pub async fn around(
    store: &dyn Store,
    cluster: &Cluster,
    found: bool,
) -> Result<(Vec<Gap>, Option<(u64, u64)>), StoreError> {
    if found {
        Ok((store.gaps(cluster).await?, None))
    } else {
        Ok((Vec::new(), store.span(cluster).await?))
    }
}

/// Gaps that intersect the index range `first..=last` of an answer.
pub fn overlapping(gaps: &[Gap], first: u64, last: u64) -> Vec<Gap> {
    gaps.iter()
        .filter(|g| g.from_index < last && g.to_index > first)
        .cloned()
        .collect()
}

/// The sentence every human answer carries for a gap.
pub fn sentence(gap: &Gap) -> String {
    format!(
        "archive has no events between index {} and {} ({}: {})",
        gap.from_index,
        gap.to_index,
        gap.kind.as_str(),
        gap.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(from_index: u64, to_index: u64) -> Gap {
        Gap::buffer_overrun(from_index, to_index)
    }

    #[test]
    fn only_gaps_inside_the_answer_are_reported() {
        let gaps = [gap(10, 20), gap(50, 60), gap(100, 200)];
        let hit: Vec<_> = overlapping(&gaps, 15, 55)
            .iter()
            .map(|g| g.from_index)
            .collect();
        assert_eq!(hit, vec![10, 50]);
        assert!(
            overlapping(&gaps, 20, 50).is_empty(),
            "a gap ending where the answer starts hides nothing"
        );
        assert_eq!(
            sentence(&gaps[0]),
            "archive has no events between index 10 and 20 (buffer: event dropped from buffer)"
        );
    }
}
