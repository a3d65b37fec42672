//! `bosun stats` (CPU %, memory usage / limit, pids from the container's
//! cgroup, sampled twice a second apart) and `bosun top` (its processes).

use anyhow::{anyhow, Result};
use engine::Engine;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bosun stats --no-stream\n  bosun stats --no-stream web")]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Containers (default: all running).
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  bosun top web")]
pub struct TopArgs {
    pub container: String,
}

fn cgroup_of(id: &str) -> Result<cgroups::Cgroup> {
    let h = cgroups::Hierarchy::detect()?;
    Ok(cgroups::Cgroup::new(&h, Some(&format!("/bosun/{id}")), id)?)
}

pub fn stats(root: &Path, a: StatsArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let recs = if a.containers.is_empty() {
        engine
            .records
            .all()?
            .into_iter()
            .filter(|r| r.is_running())
            .collect()
    } else {
        a.containers
            .iter()
            .map(|n| engine.records.find(n))
            .collect::<Result<Vec<_>, _>>()?
    };
    loop {
        let first: Vec<_> = recs
            .iter()
            .map(|r| cgroup_of(&r.id).and_then(|c| Ok(c.stats()?)).ok())
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        let mut rows = vec![[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
        ]
        .map(String::from)];
        for (r, before) in recs.iter().zip(first) {
            let Ok(now) = cgroup_of(&r.id).and_then(|c| Ok(c.stats()?)) else {
                continue;
            };
            let cpu = before.map_or(0.0, |b| {
                let used = now.cpu.usage_ns.saturating_sub(b.cpu.usage_ns) as f64 / 1000.0;
                used / t0.elapsed().as_micros().max(1) as f64 * 100.0
            });
            let usage = now.memory.working_set();
            let limit = now
                .memory
                .limit
                .filter(|l| *l < (1 << 62))
                .unwrap_or_else(host_memory);
            rows.push([
                r.id.chars().take(12).collect(),
                r.name.clone(),
                format!("{cpu:.2}%"),
                format!("{} / {}", bytes(usage), bytes(limit)),
                format!("{:.2}%", usage as f64 / limit.max(1) as f64 * 100.0),
                now.pids.current.to_string(),
            ]);
        }
        super::ps::print_table(rows);
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Docker's binary units: 1.5MiB, 512KiB, 2GiB.
fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + units[i]
}

pub fn top(root: &Path, a: TopArgs) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let rec = engine.records.find(&a.container)?;
    if !rec.is_running() {
        return Err(anyhow!("Container {} is not running", rec.id));
    }
    let mut pids = engine.runtime().pids(&rec.id)?;
    pids.sort_unstable();
    let mut rows = vec![["UID", "PID", "PPID", "CMD"].map(String::from)];
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("?")
                .to_string()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .trim()
            .to_string();
        rows.push([field("Uid:"), pid.to_string(), field("PPid:"), cmd]);
    }
    super::ps::print_table(rows);
    Ok(ExitCode::SUCCESS)
}
