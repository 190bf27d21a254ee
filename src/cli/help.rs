//! How the command line describes itself: `--help` with environment hints
//! that show a value only when the variable is set, and `--version` with
//! the archive schema this build writes. `completions` and `man` are
//! generated from the same definition.

use clap::{CommandFactory, FromArgMatches};

use super::Cli;

/// Every archive migration this build applies (SQLite's; PostgreSQL's
/// folder holds the same versions, as a test of the store checks).
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The newest migration's number: the schema version this build writes.
pub fn schema_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// `nomad-chronicle 0.1.0 (archive schema 11)`, less the name.
fn version() -> String {
    format!(
        "{} (archive schema {})",
        env!("CARGO_PKG_VERSION"),
        schema_version()
    )
}

/// The command line as parsed and as `--help`, completions and the man
/// page show it.
pub fn command() -> clap::Command {
    let command = Cli::command().version(version());
    let globals = command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .count();
    let command = command.mut_subcommands(|sub| globals_first(sub, globals));
    env_hints(command)
}

/// Parses the process's arguments; exits as clap does on `--help`,
/// `--version` and errors.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Moves a subcommand's own options `globals` places down, so the global
/// options (`--db` first; copied into every subcommand when the command is
/// built) are listed first in each subcommand's help, not among its own
/// options by name.
fn globals_first(command: clap::Command, globals: usize) -> clap::Command {
    command
        .mut_args(|arg| {
            let order = arg.get_display_order();
            arg.display_order(order + globals)
        })
        .mut_subcommands(|sub| globals_first(sub, globals))
}

/// clap renders an environment fallback as `[env: NAME=VALUE]`, and as
/// `[env: NAME=]` when the variable is unset; this leaves the value out
/// unless the variable is set, so an unset one reads `[env: NAME]`.
fn env_hints(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let unset = arg
                .get_env()
                .is_some_and(|name| std::env::var_os(name).is_none());
            if unset {
                arg.hide_env_values(true)
            } else {
                arg
            }
        })
        .mut_subcommands(env_hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_version_is_the_newest_migrations_number() {
        let newest = std::fs::read_dir("migrations/sqlite")
            .expect("migrations")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.split('_').next()?.parse::<i64>().ok()
            })
            .max();
        assert_eq!(Some(schema_version()), newest);
    }
}
