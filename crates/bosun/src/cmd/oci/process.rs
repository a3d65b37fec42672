//! `exec` arguments: a process from `--process FILE`, or the container's own
//! process spec with the command, tty, cwd, env, user and capabilities
//! given on the command line.

use anyhow::{bail, Context};
use oci_spec::runtime::{Capability, Process};
use runtime::{ExecOpts, Runtime};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// A JSON process spec (as in config.json's "process").
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Allocate a pseudo-terminal (needs --console-socket).
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE, repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_X), repeatable.
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Builds the runtime's exec options from the command line.
pub fn exec_opts(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<ExecOpts> {
    let process = match &a.process {
        Some(path) => from_file(path)?,
        None => from_flags(rt, a)?,
    };
    Ok(ExecOpts {
        process,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
    })
}

fn from_file(path: &PathBuf) -> anyhow::Result<Process> {
    let raw = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_slice(&raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow::anyhow!(
            "invalid process file {}: {}: {}",
            path.display(),
            e.path(),
            e.inner()
        )
    })
}

fn from_flags(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<Process> {
    if a.command.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let mut p = rt.process_template(&a.id)?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &a.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let u = p.user_mut();
        u.set_uid(
            uid.parse()
                .with_context(|| format!("bad uid in --user {user}"))?,
        );
        u.set_gid(
            gid.parse()
                .with_context(|| format!("bad gid in --user {user}"))?,
        );
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    add_caps(&mut p, &a.cap)?;
    Ok(p)
}

fn add_caps(p: &mut Process, names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut caps = p.capabilities().clone().unwrap_or_default();
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .with_context(|| format!("unknown capability {name}"))?;
        let add = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        let (b, e, pm) = (
            add(caps.bounding()),
            add(caps.effective()),
            add(caps.permitted()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(pm);
    }
    p.set_capabilities(Some(caps));
    Ok(())
}
