//! `bosun ps`: containers as Docker lists them, plus the human time phrases
//! ("Up 5 minutes", "Exited (0) 3 seconds ago") other commands share.

use anyhow::Result;
use engine::records::{ContainerRecord, Status};
use engine::Engine;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun ps
  bosun ps -a
  bosun rm -f $(bosun ps -aq)")]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn run(root: &Path, args: Args) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let mut rows = Vec::new();
    for rec in engine.records.all()? {
        let rec = engine::ops::refresh(&engine, &rec)?;
        if args.all || rec.is_running() {
            rows.push(rec);
        }
    }
    if args.quiet {
        for r in rows {
            println!("{}", short_id(&r.id, args.no_trunc));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 7]> = rows.iter().map(|r| row(r, args.no_trunc)).collect();
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from);
    print_table(std::iter::once(header).chain(table).collect());
    Ok(ExitCode::SUCCESS)
}

fn row(r: &ContainerRecord, no_trunc: bool) -> [String; 7] {
    let mut cmd = r.command.join(" ");
    if !no_trunc && cmd.chars().count() > 20 {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    [
        short_id(&r.id, no_trunc),
        r.image.clone(),
        format!("\"{cmd}\""),
        format!("{} ago", human_since(&r.created)),
        status_text(r),
        if r.is_running() {
            r.ports.join(", ")
        } else {
            String::new()
        },
        r.name.clone(),
    ]
}

pub fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    }
}

/// Docker's STATUS column.
pub fn status_text(r: &ContainerRecord) -> String {
    match &r.status {
        Status::Created => "Created".into(),
        Status::Running { started_at, .. } => format!("Up {}", human_since(started_at)),
        Status::Exited {
            code, finished_at, ..
        } => format!("Exited ({code}) {} ago", human_since(finished_at)),
    }
}

/// "5 seconds", "About a minute", "3 hours" since an RFC 3339 time.
pub fn human_since(time: &str) -> String {
    let secs = chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0)
        })
        .unwrap_or(0);
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// Left-aligned columns separated by three spaces, as Docker prints them.
pub fn print_table<const N: usize>(rows: Vec<[String; N]>) {
    let mut widths = [0usize; N];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}
