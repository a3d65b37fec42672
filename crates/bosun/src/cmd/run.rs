//! `bosun run`: Docker's flags turned into [`engine::options::RunOptions`],
//! then create + start through the engine; in the foreground the CLI stays
//! attached and exits with the container's status.

use anyhow::{bail, Result};
use engine::network::Mode;
use engine::options::{self, Resources, RunOptions};
use engine::{launch, remove, CreateRequest, Engine};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun run -it busybox /bin/sh
  bosun run --rm busybox echo hello
  bosun run -d --name web -p 8080:80 -v /srv/www:/www:ro busybox httpd -f -p 80 -h /www
  bosun run -it --cpu-period=100000 --cpu-quota=20000 busybox /bin/sh
  bosun run --rm --network none -m 64m --pids-limit 32 busybox true")]
pub struct Args {
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy ours).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Bind mount a host path: HOST:CONTAINER[:ro|rw].
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS].
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// UID[:GID] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Overwrite the image's ENTRYPOINT.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Number of CPUs (quota over a 100 ms period).
    #[arg(long)]
    pub cpus: Option<String>,
    /// CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds.
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory limit (64m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Limit on the number of processes.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges (all capabilities, no masked paths).
    #[arg(long)]
    pub privileged: bool,
    /// Network: bridge (default), host or none.
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a port: [IP:]HOST:CONTAINER[/tcp|udp] (bridge network).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Run an init inside the container (not supported: the image needs one).
    #[arg(long)]
    pub init: bool,
    /// The image, then the command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND [ARG...]]"
    )]
    pub image_and_command: Vec<String>,
}

pub fn run(root: &Path, args: Args) -> Result<ExitCode> {
    match run_inner(root, args) {
        Ok(code) => Ok(code),
        Err(e) => {
            // Docker's convention: 125 when the engine itself failed.
            eprintln!("bosun: {}", super::one_line(&e));
            Ok(ExitCode::from(125))
        }
    }
}

fn run_inner(root: &Path, args: Args) -> Result<ExitCode> {
    let req = request(&args)?;
    let engine = Engine::open(root)?;
    let record = engine.create(&req)?;
    let sock = match launch::start(&engine, &record.id) {
        Ok(s) => s,
        Err(e) => {
            if let Ok(r) = engine.records.find(&record.id) {
                remove::purge(&engine, &r);
            }
            return Err(e.into());
        }
    };
    if args.detach {
        println!("{}", record.id);
        return Ok(ExitCode::SUCCESS);
    }
    let code = launch::attach(sock, args.interactive, args.tty)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// Parses every flag into the engine's request (errors read like Docker's).
pub fn request(a: &Args) -> Result<CreateRequest> {
    let image = a.image_and_command[0].clone();
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(options::parse_env_file(f)?);
    }
    for e in &a.env {
        env.extend(options::parse_env(e)?);
    }
    if a.init && !std::path::Path::new(engine::defaults::INIT_BINARY).is_file() {
        bail!(
            "--init needs {} (Debian package tini): not found",
            engine::defaults::INIT_BINARY
        );
    }
    let opts = RunOptions {
        name: a.name.clone(),
        hostname: a.hostname.clone(),
        env,
        volumes: a
            .volume
            .iter()
            .map(|v| options::parse_volume(v))
            .collect::<Result<_, _>>()?,
        tmpfs: a.tmpfs.clone(),
        workdir: a.workdir.clone(),
        user: a.user.as_deref().map(options::parse_user).transpose()?,
        entrypoint: a.entrypoint.as_ref().map(|e| vec![e.clone()]),
        command: a.image_and_command[1..].to_vec(),
        tty: a.tty,
        interactive: a.interactive,
        read_only: a.read_only,
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        resources: resources(a)?,
        init: a.init,
    };
    let network = Mode::parse(&a.network)?;
    let ports: Vec<_> = a
        .publish
        .iter()
        .map(|p| options::parse_publish(p))
        .collect::<Result<_, _>>()?;
    if !ports.is_empty() && network != Mode::Bridge {
        bail!("published ports are discarded when using host or none network mode; use --network bridge");
    }
    Ok(CreateRequest {
        image,
        opts,
        network,
        ports,
        auto_remove: a.rm,
    })
}

fn resources(a: &Args) -> Result<Resources> {
    let mut r = Resources {
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        memory: a.memory.as_deref().map(options::parse_memory).transpose()?,
        pids_limit: a.pids_limit,
    };
    if let Some(cpus) = &a.cpus {
        if a.cpu_period.is_some() || a.cpu_quota.is_some() {
            bail!("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
        }
        let (period, quota) = options::parse_cpus(cpus)?;
        r.cpu_period = Some(period);
        r.cpu_quota = Some(quota);
    }
    Ok(r)
}
