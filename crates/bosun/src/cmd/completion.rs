//! `bosun completion bash|zsh|fish`: shell completion scripts from the clap tree.

use anyhow::Result;
use clap::CommandFactory;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun completion bash > /etc/bash_completion.d/bosun
  bosun completion zsh > \"${fpath[1]}/_bosun\"
  bosun completion fish > ~/.config/fish/completions/bosun.fish")]
pub struct Args {
    /// The shell to generate for.
    pub shell: clap_complete::Shell,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "bosun", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
