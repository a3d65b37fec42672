//! `bosun logs`: prints a container's json-file log (see `engine::logs`),
//! with `--tail`, `--timestamps` and `-f` (follows until the container stops).

use anyhow::Result;
use engine::logs;
use engine::Engine;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun logs web
  bosun logs -f --tail 10 web
  bosun logs --timestamps web")]
pub struct Args {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Container name or id.
    pub container: String,
}

pub fn run(root: &Path, args: Args) -> Result<ExitCode> {
    let engine = Engine::open(root)?;
    let rec = engine.records.find(&args.container)?;
    let path = engine.records.dir_of(&rec.id).join(logs::LOG_FILE);
    let (entries, mut offset) = logs::read_from(&path, 0)?;
    let skip = match args.tail.as_str() {
        "all" | "-1" => 0,
        n => entries
            .len()
            .saturating_sub(n.parse::<usize>().map_err(|_| {
                anyhow::anyhow!("invalid argument {n:?} for \"--tail\" flag: not a number")
            })?),
    };
    emit(&entries[skip..], args.timestamps)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let running = engine
            .records
            .find(&rec.id)
            .map(|r| r.is_running())
            .unwrap_or(false);
        let (more, next) = logs::read_from(&path, offset)?;
        offset = next;
        emit(&more, args.timestamps)?;
        if !running && more.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ExitCode::SUCCESS)
}

fn emit(entries: &[logs::Entry], timestamps: bool) -> Result<()> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for e in entries {
        let text = logs::render(e, timestamps);
        if e.stream == "stderr" {
            err.write_all(text.as_bytes())?;
        } else {
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}
