//! Which recorded gaps an answer overlaps, so no timeline pretends to be
//! complete where the archive is not.

use crate::archive::Gap;

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
