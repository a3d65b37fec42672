//! Output of `list` and `ps`, and the --log file lines (text or runc's JSON).

use runtime::OciState;
use std::io::Write;
use std::path::Path;

/// Prints containers as runc does (table, quiet ids, or JSON).
pub fn list(states: &[OciState], quiet: bool, format: &str) -> anyhow::Result<()> {
    if quiet {
        for s in states {
            println!("{}", s.id);
        }
    } else if format == "json" {
        println!("{}", serde_json::to_string(states)?);
    } else {
        println!(
            "{:<24} {:<8} {:<10} {:<40} CREATED",
            "ID", "PID", "STATUS", "BUNDLE"
        );
        for s in states {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {}",
                s.id,
                s.pid,
                s.status,
                s.bundle.display(),
                s.created
            );
        }
    }
    Ok(())
}

/// Prints the container's pids: JSON array, or the matching rows of ps(1).
pub fn ps(pids: &[i32], format: &str, ps_args: &[String]) -> anyhow::Result<()> {
    if format == "json" {
        println!("{}", serde_json::to_string(pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps").args(&args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or(1);
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

/// Appends one error line to the --log file.
pub fn log_error(path: &Path, json: bool, msg: &str) {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level=error msg=\"{msg}\"")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
