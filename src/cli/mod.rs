//! The command line: global options, one file per subcommand, and the mapping
//! from outcomes to exit codes (0 success, 2 error).

mod compact;
pub mod help;
mod history;
mod import;
mod ingest;
mod install;
mod migrate;
mod prune;
mod query;
mod query_lists;
mod replay;
mod serve;
mod status;
mod time_arg;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{BatchConfig, DbUrl, Secret, read_secret_file};
use crate::store::compress;

/// Turns HashiCorp Nomad's live event stream into a durable, queryable history.
///
/// `ingest` follows a Nomad agent's /v1/event/stream and archives every event
/// into SQLite (the default) or PostgreSQL; it resumes where it stopped, never
/// stores an event twice, and records gaps it could not see. `import` loads a
/// saved capture; `status` summarizes the archive; `query` reconstructs what
/// happened (timelines, an object's state, the cluster as of any moment);
/// `replay` and `serve` re-emit stored history in Nomad's own wire format;
/// `prune` gives up history before a cut (and `ingest --retain` does so as
/// it goes).
#[derive(Debug, Parser)]
#[command(
    name = "nomad-chronicle",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The archive: sqlite://PATH (created by `ingest` or `import` on first use), sqlite::memory:, or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        global = true,
        display_order = 0,
        env = "NOMAD_CHRONICLE_DB",
        default_value = "sqlite://nomad-chronicle.db",
        hide_env_values = true,
        value_parser = Secret::parse
    )]
    pub db: Secret,

    /// How logs on stderr are written: `human` lines, or `json`, one object
    /// per line for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Read the PostgreSQL password from this file (one line), so it need
    /// not be in the database URL, on the command line or in the environment.
    #[arg(
        long,
        global = true,
        env = "NOMAD_CHRONICLE_DB_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub db_password_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The format of the logs on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Ingest(Box<ingest::IngestArgs>),
    Import(import::ImportArgs),
    Status(status::StatusArgs),
    Query(query::QueryArgs),
    Replay(replay::ReplayArgs),
    Serve(serve::ServeArgs),
    Prune(prune::PruneArgs),
    Compact(compact::CompactArgs),
    Migrate(migrate::MigrateArgs),
    Completions(install::CompletionsArgs),
    Man(install::ManArgs),
}

impl Command {
    /// Whether this is `ingest` or `import`, whose reader and writer run best
    /// on one thread: every frame handed from one to the other (66,000 per
    /// 100,000 events) then costs no thread wake-up, which on a
    /// multi-threaded runtime was a quarter of ingest's CPU time
    /// (docs/performance.md). The database work has threads of its own
    /// (sqlx's SQLite worker; the PostgreSQL server).
    pub fn is_pipeline(&self) -> bool {
        matches!(self, Command::Ingest(_) | Command::Import(_))
    }
}

/// Options shared by the commands that write events.
#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// Commit after this many events (a frame is never split across batches).
    #[arg(long, default_value_t = BatchConfig::DEFAULT_MAX_EVENTS, value_parser = parse_batch_size)]
    pub batch_size: usize,

    /// Commit at the latest this long after the first event of a batch arrived (e.g. 500ms, 1s, 2m).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub batch_interval: std::time::Duration,

    /// Commit before a batch's events would exceed this many bytes; a frame
    /// larger than this is committed on its own. Events waiting for the
    /// writer are held to about twice this, plus the frame being read (a
    /// single larger frame is held whole).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_batch_bytes)]
    pub batch_bytes: usize,

    /// Events of a topic stored plain before a first, small dictionary is
    /// trained for it (none when not below `--train-after`).
    #[arg(long, hide = true, default_value_t = compress::Settings::DEFAULT_FIRST_TRAIN_AFTER)]
    pub first_train_after: u64,

    /// Events of a topic collected before its full dictionary is trained
    /// (also how many recent events its ratio is measured over).
    #[arg(long, hide = true, default_value_t = compress::Settings::DEFAULT_TRAIN_AFTER)]
    pub train_after: u64,

    /// Train a topic's dictionary again when recent events compress to
    /// less than this fraction of what it gave right after training.
    #[arg(long, hide = true, default_value_t = compress::Settings::DEFAULT_RETRAIN_BELOW)]
    pub retrain_below: f64,
}

impl BatchArgs {
    /// When the writer trains dictionaries.
    pub fn compression(&self) -> compress::Settings {
        compress::Settings {
            first_train_after: self.first_train_after,
            train_after: self.train_after,
            retrain_below: self.retrain_below,
        }
    }

    pub fn config(&self) -> BatchConfig {
        BatchConfig {
            max_events: self.batch_size,
            max_bytes: self.batch_bytes,
            timeout: self.batch_interval,
        }
    }
}

fn parse_batch_size(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("`{value}` is not a whole number from 1 to 1000000")),
    }
}

/// Parses a size as bytes or with a unit (`16MiB`, `512KiB`, `16MB`).
fn parse_batch_bytes(value: &str) -> Result<usize, String> {
    let bytes = value
        .parse::<bytesize::ByteSize>()
        .ok()
        .and_then(|size| usize::try_from(size.as_u64()).ok());
    match bytes {
        Some(n) if (1..=BatchConfig::MAX_BYTES_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{value}` is not a size from 1 byte to {} GiB; use e.g. 16MiB, 512KiB or 16777216",
            BatchConfig::MAX_BYTES_LIMIT >> 30
        )),
    }
}

/// Parses `--cluster`: the label every listing shows, so never blank.
fn parse_cluster(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("the cluster label is blank; name the cluster, e.g. --cluster prod".to_owned());
    }
    Ok(value.to_owned())
}

/// Parses `1s`, `500ms`, `2m` (humantime syntax).
pub fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(value)
        .map_err(|e| format!("`{value}` is not a duration ({e}); use e.g. 500ms, 1s or 2m"))?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // These two only print what the command line is; no archive, no signals.
    match &cli.command {
        Command::Completions(args) => return install::completions(args),
        Command::Man(args) => return install::man(args),
        _ => {}
    }
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let db = database(&cli)?;
    match cli.command {
        Command::Ingest(args) => ingest::run(*args, &db, shutdown).await,
        Command::Import(args) => import::run(args, &db, shutdown).await,
        Command::Status(args) => status::run(args, &db).await,
        Command::Query(args) => query::run(args, &db).await,
        Command::Replay(args) => replay::run(args, &db, shutdown).await,
        Command::Serve(args) => serve::run(args, &db, shutdown).await,
        Command::Prune(args) => prune::run(args, &db).await,
        Command::Compact(args) => compact::run(args, &db).await,
        Command::Migrate(args) => migrate::run(args, &db).await,
        Command::Completions(args) => install::completions(&args),
        Command::Man(args) => install::man(&args),
    }
}

/// The archive named by `--db`, with the password from `--db-password-file`.
fn database(cli: &Cli) -> anyhow::Result<DbUrl> {
    let db = DbUrl::parse(cli.db.expose())?;
    match &cli.db_password_file {
        Some(path) => Ok(db.with_password(&read_secret_file(path, "password")?)?),
        None => Ok(db),
    }
}

/// SIGINT or SIGTERM asks for a clean stop (flush, commit, exit 0); a second
/// one exits at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut signals = 0;
        loop {
            wait_for_signal().await;
            signals += 1;
            if signals > 1 {
                eprintln!("nomad-chronicle: second signal, exiting without flushing");
                std::process::exit(130);
            }
            tracing::info!("Shutting down: committing what was received");
            shutdown.cancel();
        }
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_batch_budget_is_read_in_bytes_or_with_a_unit() {
        assert_eq!(parse_batch_bytes("16777216"), Ok(16 << 20));
        assert_eq!(parse_batch_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_batch_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_batch_bytes("16MB"), Ok(16_000_000));
        assert_eq!(parse_batch_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_batch_bytes("1025MiB").is_err());
        assert!(parse_batch_bytes("0").is_err());
    }

    #[test]
    fn the_default_batch_budget_is_the_configs() {
        let cli =
            Cli::try_parse_from(["nomad-chronicle", "import", "capture.ndjson"]).expect("parses");
        let Command::Import(args) = cli.command else {
            panic!("not import: {:?}", cli.command);
        };
        assert_eq!(
            args.batch.config().max_bytes,
            BatchConfig::DEFAULT_MAX_BYTES
        );
    }
}
