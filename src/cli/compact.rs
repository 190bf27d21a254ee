//! `nomad-chronicle compact`: compress the events an archive holds as plain
//! JSON, in place, and pack older events into blocks.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::archive::{Cluster, now_millis};
use crate::config::DbUrl;
use crate::store::block;
use crate::store::compact::{self, Compacted};
use crate::store::compress::Settings;
use crate::store::pack::{self, PackSettings};
use crate::store::{self, Store, backfill};

/// Compress the events an archive holds as plain JSON (archives written
/// before compression, and each topic's first events), and with
/// --pack-older-than pack older events into blocks.
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
    /// while it runs. Without it, the pages emptied whole (packing empties
    /// the pages of the rows it packs) go back to the file system, on an
    /// archive created with incremental auto-vacuum (since 0017), and the
    /// space freed inside pages is reused by new events. PostgreSQL: rebuild the archive's indexes
    /// (`REINDEX TABLE CONCURRENTLY`), which events arriving in stream order
    /// leave about a third empty; readers and writers go on meanwhile. It
    /// needs the role that owns the archive's tables (or, from PostgreSQL
    /// 17, one granted MAINTAIN on them) and free disk space
    /// about the size of the largest table's indexes. PostgreSQL always runs
    /// `VACUUM event_log`, which frees the
    /// space for new rows without locking writers out.
    #[arg(long)]
    pub vacuum: bool,

    /// Also pack the events older than this (by Nomad's clock; e.g. 30d,
    /// or 0s for every event) into blocks: the events of a stretch of the stream compressed
    /// together, about a quarter of their size compressed one by one. A read
    /// of one packed event decodes its whole block (1 MB of JSON), so keep
    /// the history you query most outside them. Replay, serve and queries
    /// read packed events as any other; the `events` view shows their JSON
    /// as NULL. On SQLite the packed rows move to the end of the table, and
    /// the pages they leave go back to the file system.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub pack_older_than: Option<Duration>,

    /// JSON bytes that close a block (tests make small blocks).
    #[arg(long, hide = true, default_value_t = block::TARGET_BYTES)]
    pub block_bytes: usize,

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

/// Parses `--pack-older-than`: a duration, zero allowed.
fn parse_age(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("`{value}` is not a duration ({e}); use e.g. 30d, 12h or 0s"))
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
        if let Some(age) = args.pack_older_than {
            let settings = PackSettings::older_than(age, now_millis(), args.block_bytes, false);
            pack_cluster(store, &cluster, settings).await?;
        }
    }
    store
        .compactor()
        .reclaim(args.vacuum)
        .await
        .context("cannot give the freed space back")?;
    Ok(())
}

/// Packs the cluster's older events into blocks.
async fn pack_cluster(
    store: &dyn Store,
    cluster: &Cluster,
    settings: PackSettings,
) -> anyhow::Result<()> {
    let name = &cluster.name;
    let bar = backfill::progress(
        0,
        &format!("packing the older events of `{name}` into blocks"),
    );
    let report = {
        let bar = bar.clone();
        move |done: u64| bar.set_position(done)
    };
    let done = pack::run(store.packer(), cluster, settings, &report).await;
    bar.finish_and_clear();
    let done = done.with_context(|| format!("cannot pack the events of cluster `{name}`"))?;
    done.log(name);
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
