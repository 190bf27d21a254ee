//! The `nomad-chronicle` command: parse, set up logging, run, map to an exit code.

use std::process::ExitCode;

use nomad_chronicle::cli::{self, LogFormat};

/// mimalloc rather than the system's malloc: ingest allocates and frees for
/// every event, and it made HTTP -> SQLite ingest 12 % faster
/// (docs/performance.md, "A faster allocator"). The crate's `override`
/// feature makes it the C library's `malloc` too, which SQLite allocates
/// with ("SQLite's allocations by mimalloc too").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::help::parse();
    let format = cli.log_format;
    init_tracing(format);
    let mut builder = if cli.command.is_pipeline() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report(format, &format!("cannot start the async runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(format, &one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error that ends the run: `error: …` on stderr, or with JSON logs a
/// log line like the others, so a log shipper reads it too.
fn report(format: LogFormat, line: &str) {
    match format {
        LogFormat::Human => eprintln!("error: {line}"),
        LogFormat::Json => tracing::error!(error = line, "Stopped with an error"),
    }
}

/// The error and its causes on one line, skipping a cause whose text the
/// line already holds (sqlx and reqwest repeat their source in their message).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Logs go to stderr, as human lines coloured only on a terminal without
/// NO_COLOR, or as JSON objects; `RUST_LOG` overrides the default
/// `info,sqlx=warn`.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // sqlx reports PostgreSQL's NOTICEs (e.g. "relation already exists,
    // skipping" on every start) at INFO; they are not the user's concern.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Human => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            logs.with_ansi(colour).init();
        }
        // Fields at the top level, beside `timestamp`, `level` and `message`.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    /// What mimalloc has committed at most so far, in bytes.
    fn committed_peak() -> u64 {
        let stats = mimalloc::MiMalloc::stats_json().expect("mimalloc's statistics");
        let stats: serde_json::Value =
            serde_json::from_slice(stats.to_bytes()).expect("mimalloc's statistics are JSON");
        stats["committed"]["peak"]
            .as_u64()
            .expect("a committed peak")
    }

    /// SQLite allocates its pages with the C library's `malloc`, which
    /// mimalloc's `override` feature makes mimalloc's too: 32 MB of an
    /// in-memory database's pages are committed by mimalloc.
    #[tokio::test]
    async fn sqlites_pages_are_allocated_by_mimalloc() {
        let before = committed_peak();
        let mut db = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("an in-memory database");
        sqlx::query(
            "CREATE TABLE t AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
             WHERE i < 8192) SELECT randomblob(4096) AS b FROM n",
        )
        .execute(&mut db)
        .await
        .expect("32 MB of pages");
        let grown = committed_peak().saturating_sub(before);
        assert!(
            grown >= 32 << 20,
            "mimalloc committed only {grown} more bytes"
        );
    }
}
