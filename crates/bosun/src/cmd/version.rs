//! `bosun version`: what this binary is and which Kubernetes API it serves.

use std::process::ExitCode;

/// The Kubernetes release whose API bosun serves (k8s-openapi's `v1_33`).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print as JSON instead of text.
    #[arg(short, long, value_parser = ["json"])]
    output: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    let commit = env!("BOSUN_GIT_COMMIT");
    if args.output.is_some() {
        println!(
            "{{\"version\":\"{version}\",\"gitCommit\":\"{commit}\",\"kubernetesVersion\":\"{KUBERNETES_VERSION}\"}}"
        );
    } else {
        println!("bosun version {version}");
        println!("git commit:   {commit}");
        println!("kubernetes:   {KUBERNETES_VERSION}");
    }
    Ok(ExitCode::SUCCESS)
}
