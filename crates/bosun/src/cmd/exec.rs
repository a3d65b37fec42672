//! `bosun exec`: runs a process in a running container through the runtime
//! library, with the container's process spec as the template (env, user,
//! cwd, capabilities) and the CLI's own stdio.

use anyhow::{bail, Result};
use engine::Engine;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun exec web cat /www/index.html
  bosun exec -it web /bin/sh
  bosun exec -e DEBUG=1 -w /tmp web env
  bosun exec -u 1000 web id")]
pub struct Args {
    /// Keep STDIN open (the CLI's stdin is passed through).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true)]
    pub command: Vec<String>,
}

pub fn run(root: &Path, a: Args) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let rec = engine.records.find(&a.container)?;
    let rec = engine::ops::refresh(&engine, &rec)?;
    if !rec.is_running() {
        bail!("Container {} is not running", rec.id);
    }
    let rt = engine.runtime();
    let mut process = rt.process_template(&rec.id)?;
    process.set_args(Some(a.command.clone()));
    process.set_terminal(Some(false));
    let mut env = process.env().clone().unwrap_or_default();
    for e in &a.env {
        if let Some((k, v)) = engine::options::parse_env(e)? {
            env.retain(|x| !x.starts_with(&format!("{k}=")));
            env.push(format!("{k}={v}"));
        }
    }
    process.set_env(Some(env));
    if let Some(w) = &a.workdir {
        process.set_cwd(w.into());
    }
    if let Some(u) = &a.user {
        let u = engine::options::parse_user(u)?;
        let mut user = process.user().clone();
        user.set_uid(u.uid);
        user.set_gid(u.gid.unwrap_or(0));
        user.set_additional_gids(None);
        process.set_user(user);
    }
    if a.tty {
        let code = engine::exec_tty::exec_tty(&engine, &rec.id, process)?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)));
    }
    let opts = runtime::ExecOpts {
        process,
        detach: a.detach,
        ..Default::default()
    };
    let code = rt.exec(&rec.id, &opts)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
