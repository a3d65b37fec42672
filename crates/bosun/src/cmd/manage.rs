//! The container life-cycle commands that take names and print them back,
//! as Docker's do: `stop`, `kill`, `rm`, `wait`, `rename`, `start`, `restart`.

use anyhow::{anyhow, Result};
use engine::{ops, Engine};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bosun stop web\n  bosun stop -t 1 web db")]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bosun kill web\n  bosun kill -s HUP web")]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bosun rm web\n  bosun rm -f web\n  bosun rm $(bosun ps -aq)")]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  bosun wait web")]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  bosun rename web frontend")]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bosun start web\n  bosun restart -t 1 web")]
pub struct StartArgs {
    /// Seconds to wait for stop before killing (restart only).
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Runs `each` for every named container, printing the name on success and
/// a one-line error otherwise (exit status 1 if any failed), as Docker does.
fn for_each(
    root: &Path,
    names: &[String],
    each: impl Fn(&Engine, &str) -> Result<()>,
) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let mut failed = false;
    for name in names {
        match each(&engine, name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {}", super::one_line(&e));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn stop(root: &Path, a: StopArgs) -> Result<ExitCode> {
    for_each(root, &a.containers, |e, n| {
        Ok(ops::stop(
            e,
            &e.records.find(n)?,
            Duration::from_secs(a.time),
        )?)
    })
}

pub fn kill(root: &Path, a: KillArgs) -> Result<ExitCode> {
    let sig = parse_signal(&a.signal)?;
    for_each(root, &a.containers, |e, n| {
        Ok(ops::kill(e, &e.records.find(n)?, sig)?)
    })
}

pub fn rm(root: &Path, a: RmArgs) -> Result<ExitCode> {
    for_each(root, &a.containers, |e, n| {
        Ok(ops::rm(e, &e.records.find(n)?, a.force)?)
    })
}

pub fn rename(root: &Path, a: RenameArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    if !engine::names::valid_name(&a.new_name) {
        return Err(anyhow!(
            "Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            a.new_name
        ));
    }
    let rec = engine.records.find(&a.container)?;
    engine.records.update(&rec.id, |r| {
        r.name = a.new_name.clone();
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn wait(root: &Path, a: WaitArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    for name in &a.containers {
        let rec = engine.records.find(name)?;
        let code = ops::wait_exit(&engine, &rec.id, None)?;
        println!("{}", code.unwrap_or(0));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn start(root: &Path, a: StartArgs) -> Result<ExitCode> {
    for_each(root, &a.containers, |e, n| {
        let rec = e.records.find(n)?;
        if rec.is_running() {
            return Ok(());
        }
        drop(ops::start(e, &rec)?);
        Ok(())
    })
}

pub fn restart(root: &Path, a: StartArgs) -> Result<ExitCode> {
    for_each(root, &a.containers, |e, n| {
        let rec = e.records.find(n)?;
        ops::stop(e, &rec, Duration::from_secs(a.time))?;
        let rec = e.records.find(&rec.id)?;
        let sock = ops::start(e, &rec)?;
        drop(sock);
        Ok(())
    })
}

/// `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| anyhow!("invalid signal: {s}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| anyhow!("invalid signal: {s}"))
}
