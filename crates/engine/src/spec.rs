//! Builds the OCI runtime spec for a container from the image's config and
//! the user's run options, applying Docker's rules: `--entrypoint` replaces
//! the image's Entrypoint *and* drops its Cmd; a command after the image name
//! replaces Cmd; user env overrides image env; `-w` overrides WorkingDir.
//!
//! The spec is written as the JSON document `config.json` is and then parsed
//! into oci-spec's types, so what the runtime receives is exactly what a
//! bundle on disk would hold.

use crate::defaults::{self, DEFAULT_CAPABILITIES};
use crate::options::{Resources, RunOptions};
use crate::{Error, Result};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The parts of an image config (OCI `config` object) a container starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Share the host's network namespace (`--network host`).
    Host,
    /// A fresh namespace with only `lo` (`--network none`).
    None,
    /// Join a prepared namespace (the bridge network's, made by CNI).
    Join(PathBuf),
}

/// Where and how this container lives, decided by the engine.
#[derive(Debug, Clone)]
pub struct SpecContext {
    pub id: String,
    pub rootfs: PathBuf,
    pub cgroups_path: String,
    pub network: Network,
    /// Extra bind mounts the engine owns (/etc/hosts, /etc/resolv.conf, /etc/hostname).
    pub etc_files: Vec<(PathBuf, String)>,
    /// uid, gid and supplementary gids resolved from `-u` or the image's User.
    pub user: (u32, u32, Vec<u32>),
}

/// The full argv Docker would run, or [`Error::NoCommand`].
pub fn command_line(image: &ImageDefaults, opts: &RunOptions) -> Result<Vec<String>> {
    let argv: Vec<String> = match &opts.entrypoint {
        Some(entrypoint) => entrypoint.iter().chain(&opts.command).cloned().collect(),
        None => {
            let cmd = if opts.command.is_empty() {
                &image.cmd
            } else {
                &opts.command
            };
            image.entrypoint.iter().chain(cmd).cloned().collect()
        }
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(argv)
}

/// Image env, then defaults that are missing, then the user's `-e` (last wins).
pub fn environment(image: &ImageDefaults, opts: &RunOptions, hostname: &str) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    set("PATH", defaults::DEFAULT_PATH);
    for entry in &image.env {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        set(k, v);
    }
    set("HOSTNAME", hostname);
    if opts.tty {
        set("TERM", "xterm");
    }
    for (k, v) in &opts.env {
        set(k, v);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The container's hostname: `--hostname`, else the first 12 characters of its id.
pub fn hostname(opts: &RunOptions, id: &str) -> String {
    opts.hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect())
}

/// The argv the container's process runs: the command, behind the init
/// process when `--init` asked for one (`docker-init -- CMD…`, as Docker does).
pub fn process_args(image: &ImageDefaults, opts: &RunOptions) -> Result<Vec<String>> {
    let argv = command_line(image, opts)?;
    if !opts.init {
        return Ok(argv);
    }
    let mut with_init = vec![defaults::INIT_PATH.to_string(), "--".to_string()];
    with_init.extend(argv);
    Ok(with_init)
}

/// Builds the spec.
pub fn build_spec(image: &ImageDefaults, opts: &RunOptions, ctx: &SpecContext) -> Result<Spec> {
    let host = hostname(opts, &ctx.id);
    let caps = capabilities(opts);
    let (uid, gid, groups) = ctx.user.clone();
    let doc = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": opts.tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": groups},
            "args": process_args(image, opts)?,
            "env": environment(image, opts, &host),
            "cwd": opts.workdir.clone().or_else(|| image.working_dir.clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": !opts.privileged,
        },
        "root": {"path": ctx.rootfs, "readonly": opts.read_only},
        "hostname": host,
        "mounts": mounts(opts, ctx),
        "linux": {
            "namespaces": namespaces(&ctx.network),
            "cgroupsPath": ctx.cgroups_path,
            "resources": resources(&opts.resources),
            "maskedPaths": if opts.privileged { vec![] } else { defaults::MASKED_PATHS.to_vec() },
            "readonlyPaths": if opts.privileged { vec![] } else { defaults::READONLY_PATHS.to_vec() },
        },
    });
    Ok(serde_json::from_value(doc).map_err(|e| oci_spec::OciSpecError::Other(e.to_string()))?)
}

fn capabilities(opts: &RunOptions) -> Vec<String> {
    let adds: Vec<String> = opts
        .cap_add
        .iter()
        .map(|c| defaults::normalize_capability(c))
        .collect();
    let drops: Vec<String> = opts
        .cap_drop
        .iter()
        .map(|c| defaults::normalize_capability(c))
        .collect();
    let base: &[&str] = if opts.privileged || adds.iter().any(|c| c == "ALL") {
        defaults::ALL_CAPABILITIES
    } else if drops.iter().any(|c| c == "ALL") {
        &[]
    } else {
        DEFAULT_CAPABILITIES
    };
    // Docker applies drops to the base set, then adds (so `--cap-drop ALL --cap-add X` keeps X).
    let mut caps: Vec<String> = base
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !drops.contains(c))
        .collect();
    for cap in adds.into_iter().filter(|c| c != "ALL") {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    caps
}

fn namespaces(network: &Network) -> Vec<Value> {
    let mut ns: Vec<Value> = ["pid", "ipc", "uts", "mount"]
        .iter()
        .map(|t| json!({"type": t}))
        .collect();
    match network {
        Network::Host => {}
        Network::None => ns.push(json!({"type": "network"})),
        Network::Join(path) => ns.push(json!({"type": "network", "path": path})),
    }
    ns
}

fn mounts(opts: &RunOptions, ctx: &SpecContext) -> Vec<Value> {
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    for (host, dest) in &ctx.etc_files {
        m.push(bind(host, dest, false));
    }
    if opts.init {
        m.push(bind(
            Path::new(defaults::INIT_BINARY),
            defaults::INIT_PATH,
            true,
        ));
    }
    for v in &opts.volumes {
        m.push(bind(&v.host, &v.container, v.read_only));
    }
    for t in &opts.tmpfs {
        let (dest, extra) = t.split_once(':').unwrap_or((t, ""));
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(
            extra
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        m.push(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }
    m
}

fn bind(host: &Path, dest: &str, read_only: bool) -> Value {
    let mode = if read_only { "ro" } else { "rw" };
    json!({"destination": dest, "type": "bind", "source": host, "options": ["rbind", "rprivate", mode]})
}

fn resources(r: &Resources) -> Value {
    let mut cpu = serde_json::Map::new();
    if let Some(p) = r.cpu_period {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(q) = r.cpu_quota {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(s) = r.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = &r.cpuset_cpus {
        cpu.insert("cpus".into(), json!(c));
    }
    let mut res = json!({"cpu": cpu, "devices": runtime::defaults::device_rules()});
    if let Some(limit) = r.memory {
        res["memory"] = json!({"limit": limit});
    }
    if let Some(limit) = r.pids_limit {
        res["pids"] = json!({"limit": limit});
    }
    res
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
