//! `bosun pull` / `bosun image pull`: pulls with Docker's output. On a
//! terminal each layer has a line that is redrawn in place; otherwise each
//! layer's state changes are printed as plain lines (no byte counters).

use super::human_size;
use image::{Digest, ImageStore, LayerState, Progress, Reference, RegistryOptions};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun pull busybox
  bosun pull 127.0.0.1:5000/team/app:1.0
  bosun pull --insecure registry.lan:5000/app@sha256:…")]
pub struct PullArgs {
    /// Speak plain HTTP to this registry (loopback registries always are).
    #[arg(long)]
    insecure: bool,
    /// Credentials for the registry as USER:PASSWORD (or BOSUN_REGISTRY_AUTH).
    #[arg(long, env = "BOSUN_REGISTRY_AUTH", hide_env_values = true)]
    user: Option<String>,
    /// Print only the image name when done.
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG|@DIGEST]
    reference: String,
}

pub fn run(store: &ImageStore, args: PullArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let opts = registry_options(args.insecure, args.user.as_deref(), store.root())?;
    let before = store
        .get(&reference.to_string())
        .ok()
        .map(|i| i.record.manifest);
    let out = Output::new(args.quiet, false);
    if !args.quiet {
        if reference.tag.as_deref() == Some("latest") && !args.reference.contains(":latest") {
            println!("Using default tag: latest");
        }
        let tag = reference
            .tag
            .clone()
            .unwrap_or_else(|| reference.api_reference());
        println!("{tag}: Pulling from {}", reference.repository);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(store.pull(&reference, &opts, &out))
        .map_err(|e| anyhow::anyhow!("pull {}: {e}", reference.familiar()))?;
    let after = store.get(&reference.to_string())?.record.manifest;
    if args.quiet {
        println!("{reference}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("Digest: {}", report.repo_digest);
    if before.as_ref() == Some(&after) && report.downloaded_blobs == 0 {
        println!("Status: Image is up to date for {}", reference.familiar());
    } else {
        println!(
            "Status: Downloaded newer image for {} ({} blobs, {})",
            reference.familiar(),
            report.downloaded_blobs,
            human_size(report.downloaded_bytes)
        );
    }
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}

/// Where CA certificates for private registries are looked up, like Docker's
/// `/etc/docker/certs.d`: `<dir>/<host:port>/*.crt`.
fn certs_dirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    vec![
        root.join("certs.d"),
        std::path::PathBuf::from("/etc/bosun/certs.d"),
    ]
}

/// Registry options from `--insecure`, `--user USER:PASSWORD` and the certs dirs.
pub(super) fn registry_options(
    insecure: bool,
    user: Option<&str>,
    root: &std::path::Path,
) -> anyhow::Result<RegistryOptions> {
    let credentials = user
        .map(|u| match u.split_once(':') {
            Some((user, pass)) => Ok((user.to_string(), pass.to_string())),
            None => Err(anyhow::anyhow!("--user wants USER:PASSWORD")),
        })
        .transpose()?;
    Ok(RegistryOptions {
        insecure,
        credentials,
        certs_dirs: certs_dirs(root),
    })
}

/// Renders layer progress: redrawn lines on a terminal, plain lines otherwise.
pub(super) struct Output {
    quiet: bool,
    tty: bool,
    push: bool,
    lines: Mutex<Vec<(Digest, String)>>,
}

impl Output {
    pub(super) fn new(quiet: bool, push: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stdout().is_terminal(),
            push,
            lines: Mutex::new(Vec::new()),
        }
    }
}

fn push_text(state: LayerState) -> Option<String> {
    Some(match state {
        LayerState::Exists => "Layer already exists".into(),
        LayerState::Waiting => "Pushing".into(),
        LayerState::Complete => "Pushed".into(),
        _ => return None,
    })
}

fn text(state: LayerState, tty: bool) -> Option<String> {
    Some(match state {
        LayerState::Exists => "Already exists".into(),
        LayerState::Waiting => "Pulling fs layer".into(),
        LayerState::Downloading { done, total } if tty => {
            format!("Downloading  {}/{}", human_size(done), human_size(total))
        }
        LayerState::Downloading { .. } => return None,
        LayerState::Verified => "Download complete".into(),
        LayerState::Extracting if tty => "Extracting".into(),
        LayerState::Extracting => return None,
        LayerState::Complete => "Pull complete".into(),
    })
}

impl Progress for Output {
    fn layer(&self, digest: &Digest, state: LayerState) {
        if self.quiet {
            return;
        }
        let text = if self.push {
            push_text(state)
        } else {
            text(state, self.tty)
        };
        let Some(text) = text else {
            return;
        };
        let mut out = std::io::stdout().lock();
        if !self.tty {
            let _ = writeln!(out, "{}: {text}", digest.short());
            return;
        }
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        let drawn = lines.len();
        match lines.iter_mut().find(|(d, _)| d == digest) {
            Some(line) => line.1 = text,
            None => lines.push((digest.clone(), text)),
        }
        if drawn > 0 {
            let _ = write!(out, "\x1b[{drawn}A");
        }
        for (d, t) in lines.iter() {
            let _ = writeln!(out, "\x1b[2K{}: {t}", d.short());
        }
        let _ = out.flush();
    }
}
