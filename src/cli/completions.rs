//! `eks-reaper completions SHELL` and `eks-reaper man`: the shell completion script and the
//! man page, both generated from the clap definition, so they never drift from the flags.

use std::process::ExitCode;

use clap::{Args, CommandFactory};

use super::Cli;

/// `eks-reaper completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for the shell on stdout.
pub fn completions(args: &CompletionsArgs) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "eks-reaper",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

/// Prints the man page (roff) on stdout: `eks-reaper man > eks-reaper.1`.
pub fn man() -> ExitCode {
    let page = clap_mangen::Man::new(Cli::command());
    match page.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eks-reaper: man page: {e}");
            ExitCode::from(1)
        }
    }
}
