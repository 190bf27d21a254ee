//! `nomad-chronicle compact`: compress the events an archive holds as plain
//! JSON, in place.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::DbUrl;
use crate::store::compact::{self, Compacted};
use crate::store::compress::Settings;
use crate::store::{self, Store, backfill};

/// Compress the events an archive holds as plain JSON (archives written
/// before compression, and each topic's first events).
///
/// For each topic of a cluster without a dictionary, one is trained on its
/// newest events; then every plain event of a topic with a dictionary is
/// compressed with it, a few thousand per transaction, each checked to
/// decode back to its exact bytes first. Safe to interrupt and to run again,
/// also while `ingest` writes the archive. Replay, serve and queries read
/// compressed and plain events alike.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Only this cluster (by default every cluster of the archive).
    #[arg(long, value_parser = super::parse_cluster)]
    pub cluster: Option<String>,

    /// SQLite: rewrite the file afterwards (`VACUUM`) so that it shrinks.
    /// Needs free disk space about the file's size and holds off writers
    /// while it runs. Without it the file keeps its size and the space freed
    /// is reused by new events. PostgreSQL: rebuild the archive's indexes
    /// (`REINDEX TABLE CONCURRENTLY`), which events arriving in stream order
    /// leave about a third empty; readers and writers go on meanwhile. It
    /// needs the role that owns the archive's tables (or, from PostgreSQL
    /// 17, one granted MAINTAIN on them) and free disk space
    /// about the size of the largest table's indexes. PostgreSQL always runs
    /// `VACUUM event_log`, which frees the
    /// space for new rows without locking writers out.
    #[arg(long)]
    pub vacuum: bool,

    /// Plain events a topic needs before a dictionary is trained for it.
    #[arg(long, hide = true, default_value_t = Settings::DEFAULT_TRAIN_AFTER)]
    pub train_after: u64,
}

pub async fn run(args: CompactArgs, db: &DbUrl) -> anyhow::Result<ExitCode> {
    let store = store::open(db, store::Access::Write).await?;
    let result = compact_all(store.as_ref(), &args).await;
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Compacts the clusters `args` names, then gives the space back.
async fn compact_all(store: &dyn Store, args: &CompactArgs) -> anyhow::Result<()> {
    let names = match &args.cluster {
        Some(name) => vec![name.clone()],
        None => store.cluster_names().await?,
    };
    let settings = Settings {
        train_after: args.train_after.max(1),
        ..Settings::default()
    };
    for name in names {
        let cluster = store
            .find_cluster(&name)
            .await?
            .with_context(|| format!("no cluster `{name}` in the archive; `status` lists them"))?;
        let bar = backfill::progress(0, &format!("compressing the events of `{name}`"));
        let report = {
            let bar = bar.clone();
            move |done: u64, total: u64| {
                bar.set_length(total);
                bar.set_position(done);
            }
        };
        let done = compact::run(store.compactor(), &cluster, settings, &report).await;
        bar.finish_and_clear();
        let done = done.with_context(|| format!("cannot compact cluster `{name}`"))?;
        log_report(&name, &done);
    }
    store
        .compactor()
        .reclaim(args.vacuum)
        .await
        .context("cannot give the freed space back")?;
    Ok(())
}

fn log_report(cluster: &str, done: &Compacted) {
    tracing::info!(
        cluster,
        dictionaries_trained = done.trained.len(),
        events = done.events,
        json_mb = format!("{:.1}", done.raw_bytes as f64 / 1e6),
        compressed_mb = format!("{:.1}", done.stored_bytes as f64 / 1e6),
        left_plain = done.left_plain,
        "Compacted"
    );
}
