//! A deployment's progress per task group, as its payloads carry it
//! (`TaskGroups.*.DesiredTotal`, `PlacedAllocs`, `HealthyAllocs`,
//! `UnhealthyAllocs`), and the timeline line each change of it gives.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One task group's counts in a deployment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct GroupHealth {
    #[serde(rename = "DesiredTotal")]
    pub desired: Option<i64>,
    #[serde(rename = "PlacedAllocs")]
    pub placed: Option<i64>,
    #[serde(rename = "HealthyAllocs")]
    pub healthy: Option<i64>,
    #[serde(rename = "UnhealthyAllocs")]
    pub unhealthy: Option<i64>,
}

/// `TaskGroups` read leniently: another shape than Nomad's reads as no
/// groups, never as an error.
pub fn groups<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, GroupHealth>, D::Error> {
    let value = Value::deserialize(d)?;
    let Value::Object(groups) = value else {
        return Ok(BTreeMap::new());
    };
    Ok(groups
        .into_iter()
        .filter_map(|(name, group)| Some((name, serde_json::from_value(group).ok()?)))
        .collect())
}

/// A line per task group whose counts changed from `previous` (all of
/// them for a deployment's first event): `group api: desired 3, placed 2,
/// healthy 1, unhealthy 0`.
pub fn changes(
    previous: Option<&BTreeMap<String, GroupHealth>>,
    current: &BTreeMap<String, GroupHealth>,
) -> Vec<String> {
    current
        .iter()
        .filter(|(name, health)| previous.and_then(|p| p.get(*name)) != Some(*health))
        .filter(|(_, health)| **health != GroupHealth::default())
        .map(|(name, h)| {
            let n = |v: Option<i64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            format!(
                "group {name}: desired {}, placed {}, healthy {}, unhealthy {}",
                n(h.desired),
                n(h.placed),
                n(h.healthy),
                n(h.unhealthy)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> BTreeMap<String, GroupHealth> {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(rename = "TaskGroups", deserialize_with = "groups")]
            groups: BTreeMap<String, GroupHealth>,
        }
        serde_json::from_str::<Holder>(json).expect("holder").groups
    }

    #[test]
    fn each_group_whose_counts_changed_gets_a_line() {
        let first = read(
            r#"{"TaskGroups":{"api":{"DesiredTotal":3,"PlacedAllocs":1,"HealthyAllocs":0,"UnhealthyAllocs":0},
                "db":{"DesiredTotal":1,"PlacedAllocs":1,"HealthyAllocs":1,"UnhealthyAllocs":0}}}"#,
        );
        assert_eq!(
            changes(None, &first),
            [
                "group api: desired 3, placed 1, healthy 0, unhealthy 0",
                "group db: desired 1, placed 1, healthy 1, unhealthy 0"
            ]
        );
        let later = read(
            r#"{"TaskGroups":{"api":{"DesiredTotal":3,"PlacedAllocs":3,"HealthyAllocs":2,"UnhealthyAllocs":1},
                "db":{"DesiredTotal":1,"PlacedAllocs":1,"HealthyAllocs":1,"UnhealthyAllocs":0}}}"#,
        );
        assert_eq!(
            changes(Some(&first), &later),
            ["group api: desired 3, placed 3, healthy 2, unhealthy 1"]
        );
        assert!(changes(Some(&later), &later).is_empty());
    }

    #[test]
    fn task_groups_of_another_shape_read_as_none() {
        assert!(read(r#"{"TaskGroups":7}"#).is_empty());
        assert!(read(r#"{"TaskGroups":{"api":"x"}}"#).is_empty());
        assert_eq!(
            read(r#"{"TaskGroups":{"api":{"DesiredTotal":"3"}}}"#).len(),
            0
        );
    }
}
