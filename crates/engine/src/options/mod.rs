//! What `bosun run` was asked for, as typed values, and the parsers that turn
//! Docker's flag syntax into them (`-e`, `--env-file`, `-v`, `-p`, `-m`,
//! `--cpus`, `-u`, `--tmpfs`). Errors read like Docker's.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Everything `bosun run` needs besides the image.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub env: Vec<(String, String)>,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<User>,
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name; empty means the image's Cmd.
    pub command: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub resources: Resources,
    pub init: bool,
}

/// cgroup limits from `--cpus`, `--cpu-*`, `-m`, `--pids-limit`, `--cpuset-cpus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// `-v HOST:CONTAINER[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
}

/// `-u UID[:GID]` (numeric; names are resolved against the image's /etc/passwd by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: Option<u32>,
}

/// `-p [IP:]HOST:CONTAINER[/tcp|udp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidFlag {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `-e KEY=VALUE`, or `-e KEY` to copy the variable from the caller's environment
/// (skipped, as Docker does, when the caller has none).
pub fn parse_env(value: &str) -> Result<Option<(String, String)>> {
    match value.split_once('=') {
        Some(("", _)) => Err(invalid("--env", value, "variable name is empty")),
        Some((k, v)) => Ok(Some((k.to_string(), v.to_string()))),
        None if value.is_empty() => Err(invalid("--env", value, "variable name is empty")),
        None => Ok(std::env::var(value).ok().map(|v| (value.to_string(), v))),
    }
}

/// `--env-file FILE`: one `KEY=VALUE` or `KEY` per line; `#` comments and blank lines skipped.
pub fn parse_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::EnvFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut vars = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(pair) = parse_env(line)? {
            vars.push(pair);
        }
    }
    Ok(vars)
}

/// `-v HOST:CONTAINER[:ro|rw]`. The host path must exist (Docker creates it;
/// bosun refuses, so a typo does not silently mount an empty directory).
pub fn parse_volume(value: &str) -> Result<Volume> {
    let parts: Vec<&str> = value.split(':').collect();
    let (host, container, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => {
            return Err(invalid(
                "--volume",
                value,
                "expected HOST:CONTAINER[:ro|rw]",
            ))
        }
    };
    if !host.starts_with('/') {
        return Err(invalid(
            "--volume",
            value,
            "host path must be absolute (named volumes are not supported)",
        ));
    }
    if !container.starts_with('/') {
        return Err(invalid(
            "--volume",
            value,
            "container path must be absolute",
        ));
    }
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        other => return Err(invalid("--volume", value, format!("invalid mode: {other}"))),
    };
    let host = PathBuf::from(host);
    if !host.exists() {
        return Err(Error::MissingBindSource(host));
    }
    Ok(Volume {
        host,
        container: container.to_string(),
        read_only,
    })
}

/// `-p [IP:]HOST:CONTAINER[/tcp|udp]`.
pub fn parse_publish(value: &str) -> Result<Publish> {
    let (spec, protocol) = match value.rsplit_once('/') {
        Some((s, p @ ("tcp" | "udp"))) => (s, p),
        Some((_, p)) => {
            return Err(invalid(
                "--publish",
                value,
                format!("invalid protocol {p:?}"),
            ))
        }
        None => (value, "tcp"),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(ip.to_string()), *h, *c),
        _ => {
            return Err(invalid(
                "--publish",
                value,
                "expected [IP:]HOST:CONTAINER[/PROTO]",
            ))
        }
    };
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| invalid("--publish", value, format!("invalid port {p:?}")))
    };
    Ok(Publish {
        host_ip,
        host_port: port(host)?,
        container_port: port(container)?,
        protocol: protocol.to_string(),
    })
}

/// `-m 64m`, `--memory 1g`, `512k`, plain bytes.
pub fn parse_memory(value: &str) -> Result<i64> {
    let lower = value.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match lower.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => lower.split_at(i),
        None => (lower, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(invalid(
                "--memory",
                value,
                "unit must be one of b, k, m, g, t",
            ))
        }
    };
    let number: f64 = digits
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| invalid("--memory", value, "not a size"))?;
    let bytes = number * (1u64 << shift) as f64;
    if bytes < 6.0 * 1024.0 * 1024.0 {
        return Err(invalid(
            "--memory",
            value,
            "minimum memory limit allowed is 6MB",
        ));
    }
    Ok(bytes as i64)
}

/// `--cpus 0.2` → (period, quota) with Docker's 100 ms period.
pub fn parse_cpus(value: &str) -> Result<(u64, i64)> {
    const PERIOD: u64 = 100_000;
    let cpus: f64 = value
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(|| invalid("--cpus", value, "must be a positive number"))?;
    let quota = (cpus * PERIOD as f64).round() as i64;
    if quota < 1000 {
        return Err(invalid("--cpus", value, "minimum is 0.01"));
    }
    Ok((PERIOD, quota))
}

/// `-u UID[:GID]`.
pub fn parse_user(value: &str) -> Result<User> {
    let num = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| invalid("--user", value, "only numeric UID[:GID] is supported"))
    };
    match value.split_once(':') {
        Some((u, g)) => Ok(User {
            uid: num(u)?,
            gid: Some(num(g)?),
        }),
        None => Ok(User {
            uid: num(value)?,
            gid: None,
        }),
    }
}

#[cfg(test)]
mod tests;
