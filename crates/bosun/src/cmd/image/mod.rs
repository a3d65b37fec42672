//! `bosun image …` (and the top-level `bosun images` / `bosun pull`): the
//! Docker-like front end of the image store in `crates/image`.

mod format;
mod manage;
mod pull;
mod push;
mod show;

use clap::Subcommand;
use image::ImageStore;
use std::path::Path;
use std::process::ExitCode;

pub use manage::RmArgs;
pub use pull::PullArgs;
pub use push::PushArgs;
pub use show::ListArgs;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  bosun image ls\n  bosun image ls -q\n  bosun images --format '{{.Repository}}:{{.Tag}}'"
    )]
    Ls(ListArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push an image to a registry.
    Push(PushArgs),
    /// Import an OCI layout (dir or tar), a `docker save` archive, or with --rootfs a root filesystem.
    Import(manage::ImportArgs),
    /// Load images from an archive (like `docker load -i`): an OCI layout tar or a docker save archive.
    Load(manage::LoadArgs),
    /// Save an image as an OCI image layout (a directory, or a .tar file).
    Save(manage::SaveArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(manage::RmArgs),
    /// Remove unused layers and blobs (with -a, also images no container uses).
    Prune(manage::PruneArgs),
    /// Show low-level information on images, as JSON.
    Inspect(show::InspectArgs),
    /// Give an image another name.
    Tag(manage::TagArgs),
}

/// Runs an image subcommand against the store under `root`.
pub fn run(root: &Path, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    match cmd {
        ImageCommand::Ls(a) => show::list(&store, a),
        ImageCommand::Pull(a) => pull::run(&store, a),
        ImageCommand::Push(a) => push::run(&store, a),
        ImageCommand::Import(a) => manage::import(&store, a),
        ImageCommand::Save(a) => manage::save(&store, a),
        ImageCommand::Load(a) => manage::load(&store, a),
        ImageCommand::Rm(a) => manage::rm(&store, a),
        ImageCommand::Prune(a) => manage::prune(&store, a),
        ImageCommand::Inspect(a) => show::inspect(&store, a),
        ImageCommand::Tag(a) => manage::tag(&store, a),
    }
}

/// Opens the store, naming the root in the error.
pub fn open(root: &Path) -> anyhow::Result<ImageStore> {
    ImageStore::open(root)
        .map_err(|e| anyhow::anyhow!("open image store under {}: {e}", root.display()))
}

/// Sizes as Docker prints them: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(45_600_000), "45.6MB");
        assert_eq!(human_size(123_000_000_000), "123GB");
    }
}
