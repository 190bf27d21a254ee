//! What the commands that read history share: choosing the cluster.

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
