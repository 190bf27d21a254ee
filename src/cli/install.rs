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

/// Print the manual page (roff), e.g. `nomad-chronicle man > nomad-chronicle.1`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    let mut command = help::command();
    clap_complete::generate(args.shell, &mut command, "nomad-chronicle", &mut script);
    print(&script)
}

pub fn man() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(help::command())
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
