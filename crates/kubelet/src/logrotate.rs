//! Container log rotation by size, as upstream's ContainerLogManager: every
//! monitor interval each running container's CRI log file is checked; one
//! larger than the maximum size is renamed to `<log>.<YYYYmmdd-HHMMSS>` and
//! the runtime is asked (CRI ReopenContainerLog) to start a fresh file at
//! the old path, so `kubectl logs` keeps reading the current file. At most
//! `max_files` files per container are kept (the current one included);
//! rotated files older than the newest are gzip-compressed (`.gz`).

use crate::cri::Cri;
use crate::error::{cri as cri_error, io, Result};
use k8s_cri::v1;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Upstream's defaults (--container-log-max-size, --container-log-max-files,
/// --container-log-monitor-interval).
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
pub const DEFAULT_MAX_FILES: usize = 5;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// When and how logs are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Rotate a log once it is larger than this many bytes (0: never).
    pub max_size: u64,
    /// Files kept per container, the current one included (at least 2).
    pub max_files: usize,
    /// How often logs are checked.
    pub interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// Checks and rotates logs until the process ends.
pub async fn run(cri: Cri, policy: Policy) {
    if policy.max_size == 0 {
        return;
    }
    let mut tick = tokio::time::interval(policy.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = rotate_all(&cri, &policy).await {
            tracing::warn!(error = %e, "container log rotation");
        }
    }
}

/// One pass over the running containers.
pub async fn rotate_all(cri: &Cri, policy: &Policy) -> Result<()> {
    let req = v1::ListContainersRequest {
        filter: Some(v1::ContainerFilter {
            state: Some(v1::ContainerStateValue {
                state: v1::ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        }),
    };
    let running = cri
        .rt
        .clone()
        .list_containers(req)
        .await
        .map_err(cri_error("ListContainers"))?
        .into_inner()
        .containers;
    for c in running {
        let Ok(status) = cri.container_status(&c.id).await else {
            continue;
        };
        let log = PathBuf::from(&status.log_path);
        if status.log_path.is_empty() || size(&log) <= policy.max_size {
            continue;
        }
        if let Err(e) = rotate(cri, &c.id, &log, policy).await {
            tracing::warn!(container = %c.id, error = %e, "rotate container log");
        }
    }
    Ok(())
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Rotates one container's log: drops the oldest rotated files, compresses
/// the rest, renames the current file and has the runtime reopen it.
async fn rotate(cri: &Cri, id: &str, log: &Path, policy: &Policy) -> Result<()> {
    let rotated = rotated_files(log);
    // Keep max_files - 2 old ones: the file about to be rotated and the new current one make it max_files.
    let keep = policy.max_files.saturating_sub(2);
    let excess = rotated.len().saturating_sub(keep);
    for old in &rotated[..excess] {
        std::fs::remove_file(old).map_err(io("remove rotated log", old))?;
    }
    for old in &rotated[excess..] {
        if old.extension().is_none_or(|e| e != "gz") {
            let old = old.clone();
            let _ = tokio::task::spawn_blocking(move || compress(&old)).await;
        }
    }
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let target = PathBuf::from(format!("{}.{stamp}", log.display()));
    if target.exists() {
        return Ok(()); // rotated within this second already
    }
    std::fs::rename(log, &target).map_err(io("rotate log", log))?;
    let req = v1::ReopenContainerLogRequest {
        container_id: id.into(),
    };
    if let Err(status) = cri.rt.clone().reopen_container_log(req).await {
        // As upstream: put the file back so the runtime keeps writing where we read.
        let _ = std::fs::rename(&target, log);
        return Err(cri_error("ReopenContainerLog")(status));
    }
    tracing::debug!(container = %id, to = %target.display(), "rotated container log");
    Ok(())
}

/// The rotated files of `log` (`<log>.<stamp>[.gz]`), oldest first.
pub fn rotated_files(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| {
                        n.strip_prefix(&prefix)
                            .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_digit()))
                            && !n.ends_with(".tmp")
                    })
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort(); // the stamps sort by time
    found
}

/// Gzips `path` to `<path>.gz` (through a temporary file) and removes it.
fn compress(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.tmp", gz.display()));
    let mut input = std::fs::File::open(path)?;
    let out = std::fs::File::create(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    std::io::copy(&mut input, &mut enc)?;
    enc.finish()?.flush()?;
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(path)
}

/// Parses a duration like upstream's flags: `10s`, `500ms`, `1m`, or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().ok().filter(|n: &f64| *n >= 0.0)?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_are_found_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        for n in [
            "0.log",
            "0.log.20261126-120001",
            "0.log.20261126-120000.gz",
            "0.log.20261126-120002.gz.tmp",
            "1.log",
            "0.logx",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let names: Vec<String> = rotated_files(&log)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["0.log.20261126-120000.gz", "0.log.20261126-120001"]);
    }

    #[test]
    fn compress_replaces_the_file_with_its_gzip() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log.20261126-120000");
        std::fs::write(&p, b"hello log\n").unwrap();
        compress(&p).unwrap();
        assert!(!p.exists());
        let gz = std::fs::File::open(dir.path().join("0.log.20261126-120000.gz")).unwrap();
        let mut s = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello log\n");
    }

    #[test]
    fn durations_parse_like_upstream_flags() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
