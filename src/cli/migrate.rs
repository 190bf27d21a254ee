//! `nomad-chronicle migrate`: upgrade an archive to this version's schema.

use std::process::ExitCode;

use crate::config::DbUrl;
use crate::store::{self, Access};

/// Upgrade an archive written by an older nomad-chronicle to this version's
/// schema, in place.
///
/// The read commands (`status`, `query`, `replay`, `serve`) never change an
/// archive, so they refuse one at an older schema and name this command.
/// It applies the migrations, dates events archived before Nomad's clock was
/// read and builds the keyframes snapshots start from; `ingest` and
/// `import` do the same when they open an older archive. It never creates
/// an archive, and refuses whatever is not one.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {}

pub async fn run(_args: MigrateArgs, db: &DbUrl) -> anyhow::Result<ExitCode> {
    let store = store::open(db, Access::Write).await?;
    store.close().await;
    tracing::info!(
        database = %db,
        schema_version = store::schema_version(),
        "The archive is at this version's schema"
    );
    Ok(ExitCode::SUCCESS)
}
