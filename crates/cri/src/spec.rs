//! Builds a container's OCI `config.json` from a CRI ContainerConfig, the
//! image's defaults and its sandbox: joins the sandbox's network, IPC and
//! UTS namespaces by path, gets its own PID and mount namespaces (unless the
//! pod shares the host's PID namespace), Docker's default capabilities,
//! masked /proc paths, the kubelet's mounts, env and resources.

use crate::error::{Error, Result};
use crate::sandbox::SandboxRecord;
use k8s_cri::v1;
use runtime::defaults::{DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};
use serde_json::{json, Value};
use std::path::Path;

/// The process argv: CRI `command` replaces the Entrypoint, `args` the Cmd.
pub fn argv(cfg: &v1::ContainerConfig, img: &image::RuntimeDefaults) -> Result<Vec<String>> {
    let entry = if cfg.command.is_empty() {
        img.entrypoint.clone()
    } else {
        cfg.command.clone()
    };
    let args = if cfg.args.is_empty() && cfg.command.is_empty() {
        img.cmd.clone()
    } else {
        cfg.args.clone()
    };
    let argv: Vec<String> = entry.into_iter().chain(args).collect();
    if argv.is_empty() {
        return Err(Error::Invalid(
            "no command given and the image has none".into(),
        ));
    }
    Ok(argv)
}

/// The whole spec as JSON.
pub fn build(
    cfg: &v1::ContainerConfig,
    img: &image::RuntimeDefaults,
    sandbox: &SandboxRecord,
    rootfs: &Path,
    cgroups_path: &str,
) -> Result<Value> {
    let linux = cfg.linux.clone().unwrap_or_default();
    let sec = linux.security_context.unwrap_or_default();
    let mut env = img.env.clone();
    for kv in &cfg.envs {
        env.retain(|e| e.split('=').next() != Some(kv.key.as_str()));
        env.push(format!("{}={}", kv.key, kv.value));
    }
    // As containerd: a terminal gets TERM unless the pod sets one.
    if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let caps = capabilities(&sec);
    let uid = sec.run_as_user.as_ref().map_or(0, |u| u.value);
    let gid = sec.run_as_group.as_ref().map_or(0, |g| g.value);
    let cwd = Some(cfg.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| img.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": cfg.tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": sec.supplemental_groups},
            "args": argv(cfg, img)?,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": !sec.privileged && sec.no_new_privs,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "root": {"path": rootfs, "readonly": sec.readonly_rootfs},
        "mounts": mounts(cfg),
        "linux": {
            "namespaces": namespaces(sandbox, &sec)?,
            "cgroupsPath": cgroups_path,
            "resources": resources(linux.resources.as_ref()),
            "maskedPaths": if sec.privileged { vec![] } else { MASKED_PATHS.to_vec() },
            "readonlyPaths": if sec.privileged { vec![] } else { READONLY_PATHS.to_vec() },
        },
    });
    if sec.privileged {
        spec["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    } else {
        let mut rules = runtime::defaults::device_rules();
        let mut nodes = Vec::new();
        for dev in &cfg.devices {
            let granted = crate::devices::grant(dev)?;
            nodes.push(granted.node);
            rules.push(granted.rule);
        }
        spec["linux"]["resources"]["devices"] = Value::Array(rules);
        spec["linux"]["devices"] = Value::Array(nodes);
    }
    Ok(spec)
}

fn capabilities(sec: &v1::LinuxContainerSecurityContext) -> Vec<String> {
    let norm = |c: &str| {
        let up = c.to_uppercase();
        if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    if let Some(c) = &sec.capabilities {
        let drop: Vec<String> = c.drop_capabilities.iter().map(|d| norm(d)).collect();
        if drop.iter().any(|d| d == "CAP_ALL") {
            caps.clear();
        }
        caps.retain(|x| !drop.contains(x));
        for add in &c.add_capabilities {
            let add = norm(add);
            if add != "CAP_ALL" && !caps.contains(&add) {
                caps.push(add);
            }
        }
    }
    caps
}

fn namespaces(sandbox: &SandboxRecord, sec: &v1::LinuxContainerSecurityContext) -> Result<Value> {
    let path = |kind: &str| {
        sandbox
            .ns_path(kind)
            .map(|p| p.display().to_string())
            .ok_or_else(|| Error::Failed(format!("sandbox {} is not running", sandbox.id)))
    };
    let mut ns = vec![
        json!({"type": "mount"}),
        json!({"type": "ipc", "path": path("ipc")?}),
        json!({"type": "uts", "path": path("uts")?}),
    ];
    if !sandbox.host_network {
        ns.push(json!({"type": "network", "path": path("net")?}));
    }
    let pid_mode = sec.namespace_options.as_ref().map_or(0, |n| n.pid);
    if pid_mode != v1::NamespaceMode::Node as i32 {
        ns.push(json!({"type": "pid"}));
    }
    Ok(Value::Array(ns))
}

fn mounts(cfg: &v1::ContainerConfig) -> Value {
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for mount in &cfg.mounts {
        let mut opts = vec!["rbind".to_string()];
        opts.push(if mount.readonly { "ro" } else { "rw" }.into());
        opts.push(
            match mount.propagation {
                1 => "rslave",
                2 => "rshared",
                _ => "rprivate",
            }
            .into(),
        );
        m.push(json!({
            "destination": mount.container_path,
            "type": "bind",
            "source": mount.host_path,
            "options": opts,
        }));
    }
    Value::Array(m)
}

pub(crate) fn resources(r: Option<&v1::LinuxContainerResources>) -> Value {
    let Some(r) = r else { return json!({}) };
    let mut res = json!({});
    if r.memory_limit_in_bytes > 0 {
        res["memory"] = json!({"limit": r.memory_limit_in_bytes});
    }
    let mut cpu = json!({});
    if r.cpu_shares > 0 {
        cpu["shares"] = json!(r.cpu_shares);
    }
    if r.cpu_quota > 0 {
        cpu["quota"] = json!(r.cpu_quota);
        cpu["period"] = json!(if r.cpu_period > 0 {
            r.cpu_period
        } else {
            100_000
        });
    }
    if !r.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(r.cpuset_cpus);
    }
    if cpu != json!({}) {
        res["cpu"] = cpu;
    }
    res
}
