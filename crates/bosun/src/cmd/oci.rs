//! `bosun oci ...`: a runc-compatible command line over `crates/runtime`,
//! also reached by invoking the binary through a symlink named `bosun-runc`
//! (so podman, conmon and containerd shims can use it as their runtime).
//! Single-threaded by design: no tokio and no threads on this path, since the
//! runtime forks (clone) and re-executes the container init.

mod format;
mod process;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use runtime::{CreateOpts, ExecOpts, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

/// An OCI container runtime with runc's command line.
#[derive(Debug, Parser)]
#[command(name = "bosun-runc", version)]
pub struct Args {
    /// Directory holding container state.
    #[arg(long, global = true, default_value = runtime::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Also append errors to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of --log lines: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Use systemd to manage cgroups (not supported: refused).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility; more logging comes from BOSUN_LOG.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility (rootless mode is detected, not chosen).
    #[arg(long, global = true)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: OciCommand,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (config.json + rootfs).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (rootfs on a ramfs).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for compatibility (no session keyring is created).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3 up) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start the user process of a created container.
    Start { id: String },
    /// Print the OCI state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a container (--force kills a running one first).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create, start, wait and delete; exits with the container's status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting.
        #[arg(short, long)]
        detach: bool,
    },
    /// Run another process in a running container.
    Exec(process::ExecArgs),
    /// List containers.
    List {
        #[arg(short, long)]
        quiet: bool,
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Print the features this runtime supports (JSON).
    Features,
    /// Show the processes of a container.
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
}

/// Runs `bosun oci` / `bosun-runc`; logs the error to --log as well.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let log = args.log.clone();
    let json = args.log_format == "json";
    let result = dispatch(args);
    if let (Err(e), Some(path)) = (&result, &log) {
        format::log_error(path, json, &crate::cmd::one_line(e));
    }
    result
}

fn dispatch(args: Args) -> anyhow::Result<ExitCode> {
    if args.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: bosun manages cgroupfs directly (use the cgroupfs manager)");
    }
    let rt = Runtime::new(&args.root);
    match args.command {
        OciCommand::Create(c) => {
            rt.create(&create_opts(c))?;
        }
        OciCommand::Start { id } => rt.start(&id)?,
        OciCommand::State { id } => println!("{}", serde_json::to_string_pretty(&rt.state(&id)?)?),
        OciCommand::Kill { all, id, signal } => rt.kill(&id, parse_signal(&signal)?, all)?,
        OciCommand::Delete { force, id } => rt.delete(&id, force)?,
        OciCommand::Run { create, detach } => {
            return Ok(code(rt.run(&create_opts(create), detach)?))
        }
        OciCommand::Exec(e) => {
            let opts: ExecOpts = process::exec_opts(&rt, &e)?;
            return Ok(code(rt.exec(&e.id, &opts)?));
        }
        OciCommand::List { quiet, format } => format::list(&rt.list(), quiet, &format)?,
        OciCommand::Features => println!("{}", serde_json::to_string_pretty(&runtime::features())?),
        OciCommand::Ps {
            format,
            id,
            ps_args,
        } => format::ps(&rt.pids(&id)?, &format, &ps_args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn create_opts(c: CreateArgs) -> CreateOpts {
    CreateOpts {
        id: c.id,
        bundle: c.bundle,
        console_socket: c.console_socket,
        pid_file: c.pid_file,
        no_pivot: c.no_pivot,
        preserve_fds: c.preserve_fds,
    }
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c.clamp(0, 255) as u8)
}

/// "KILL", "SIGKILL" or "9".
fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("unknown signal {s}"));
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("unknown signal {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_spelling() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
    }
}
