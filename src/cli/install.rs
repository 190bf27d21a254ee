//! `nomad-chronicle completions SHELL` and `nomad-chronicle man`: what
//! packaging the command needs, generated from its own definition.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap_complete::Shell;

use super::help;

/// Print a completion script for a shell.
///
/// bash: `nomad-chronicle completions bash > /etc/bash_completion.d/nomad-chronicle`;
/// zsh: into a directory on `$fpath` as `_nomad-chronicle`;
/// fish: `~/.config/fish/completions/nomad-chronicle.fish`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print the manual page (roff), e.g. `nomad-chronicle man > nomad-chronicle.1`,
/// or a subcommand's, e.g. `nomad-chronicle man ingest > nomad-chronicle-ingest.1`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print; the command's own page without one.
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Option<String>,
}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    let mut command = help::command();
    clap_complete::generate(args.shell, &mut command, "nomad-chronicle", &mut script);
    print(&script)
}

pub fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let mut command = help::command();
    if let Some(name) = &args.subcommand {
        let names: Vec<String> = command
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        let Some(sub) = command.find_subcommand(name).cloned() else {
            anyhow::bail!(
                "there is no subcommand `{name}`; use one of: {}",
                names.join(", ")
            );
        };
        // Named as man pages of subcommands are: `nomad-chronicle-ingest`.
        command = sub.name(format!("nomad-chronicle-{name}"));
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .context("cannot render the manual page")?;
    print(&page)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}
