//! `bosun image push` (and `bosun push`): uploads an image to a registry.

use super::pull::{registry_options, Output};
use image::{ImageStore, Reference};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun image push 127.0.0.1:5000/busybox:latest
  bosun image push busybox 127.0.0.1:5000/tools/busybox:1")]
pub struct PushArgs {
    /// Speak plain HTTP to this registry (loopback registries always are).
    #[arg(long)]
    insecure: bool,
    /// Credentials for the registry as USER:PASSWORD (or BOSUN_REGISTRY_AUTH).
    #[arg(long, env = "BOSUN_REGISTRY_AUTH", hide_env_values = true)]
    user: Option<String>,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    /// The image to push; also the destination unless DEST is given.
    image: String,
    /// Destination NAME[:TAG] (registry/repository:tag).
    dest: Option<String>,
}

pub fn run(store: &ImageStore, args: PushArgs) -> anyhow::Result<ExitCode> {
    let dest = Reference::parse(args.dest.as_deref().unwrap_or(&args.image))?;
    let opts = registry_options(args.insecure, args.user.as_deref(), store.root())?;
    if !args.quiet {
        println!("The push refers to repository [{}]", dest.name());
    }
    let out = Output::new(args.quiet, true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(store.push(&args.image, &dest, &opts, &out))
        .map_err(|e| anyhow::anyhow!("push {}: {e}", dest.familiar()))?;
    if !args.quiet {
        println!(
            "{}: digest: {} size: {}",
            dest.api_reference(),
            report.digest,
            report.size
        );
    }
    Ok(ExitCode::SUCCESS)
}
