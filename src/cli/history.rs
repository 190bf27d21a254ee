//! What the commands that read history share: choosing the cluster, and
//! reading `--since`/`--until` times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;

use crate::archive::Cluster;
use crate::store::Store;

/// The cluster named by `--cluster`, or the only one the archive holds.
pub async fn pick_cluster(
    store: &dyn Store,
    name: Option<&str>,
    db: &str,
) -> anyhow::Result<Cluster> {
    if let Some(name) = name {
        if let Some(cluster) = store.find_cluster(name).await? {
            return Ok(cluster);
        }
        let names = store.cluster_names().await?;
        bail!(
            "the archive `{db}` holds no cluster `{name}`{}",
            list_hint(&names)
        );
    }
    let names = store.cluster_names().await?;
    match names.as_slice() {
        [] => bail!("the archive `{db}` is empty: run `nomad-chronicle ingest` or `import` first"),
        [only] => match store.find_cluster(only).await? {
            Some(cluster) => Ok(cluster),
            None => bail!("the cluster `{only}` disappeared from `{db}`"),
        },
        _ => bail!(
            "the archive `{db}` holds several clusters ({}): choose one with --cluster",
            names.join(", ")
        ),
    }
}

fn list_hint(names: &[String]) -> String {
    if names.is_empty() {
        " (it is empty)".to_owned()
    } else {
        format!(" (it holds: {})", names.join(", "))
    }
}

/// Parses an RFC 3339 time (`2026-11-25T14:32:00Z`) or a time relative to
/// now (`2h`, `15m`, `3d` ago) into Unix milliseconds.
pub fn parse_time(value: &str) -> Result<i64, String> {
    let value = value.trim();
    let at = match humantime::parse_rfc3339_weak(value) {
        Ok(at) => at,
        Err(_) => match humantime::parse_duration(value) {
            Ok(ago) => SystemTime::now()
                .checked_sub(ago)
                .ok_or_else(|| format!("`{value}` ago is before 1970"))?,
            Err(_) => {
                return Err(format!(
                    "`{value}` is neither an RFC 3339 time (2026-11-25T14:32:00Z) nor a duration ago (2h, 30m)"
                ));
            }
        },
    };
    let millis = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    Ok(i64::try_from(millis).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_or_relative() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_time("2026-11-25T14:32:00Z"), Ok(1_795_617_120_000));
        let two_hours_ago = parse_time("2h").unwrap_or_default();
        let now = crate::archive::now_millis();
        assert!((now - two_hours_ago - 7_200_000).abs() < 5_000);
        assert!(
            parse_time("yesterday-ish")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
