//! `image import`, `save`, `rm`, `prune` and `tag`.

use super::human_size;
use image::{GcReport, ImageStore, Reference};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  bosun image import ./busybox-oci                 # OCI layout directory (names from index.json)
  bosun image import busybox.tar busybox:1.36      # OCI layout or docker save archive
  bosun image import --rootfs ./rootfs -c 'CMD [\"sh\"]' mybox:latest")]
pub struct ImportArgs {
    /// SOURCE is a plain root filesystem (directory or tarball), imported as one layer.
    #[arg(long)]
    rootfs: bool,
    /// Dockerfile instruction to apply with --rootfs (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE).
    #[arg(short, long = "change", requires = "rootfs")]
    changes: Vec<String>,
    /// OCI layout directory or tar, docker save archive, or (with --rootfs) a rootfs dir or tarball.
    source: PathBuf,
    /// Name the image NAME[:TAG] (required with --rootfs).
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bosun image save busybox ./busybox-oci\n  bosun image save busybox busybox.tar\n  bosun image save busybox - | ssh host bosun image load"
)]
pub struct SaveArgs {
    /// Image name or id.
    image: String,
    /// Destination: a directory, a file ending in .tar, or - for a tar on stdout.
    dest: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  bosun image load -i busybox.tar")]
pub struct LoadArgs {
    /// The archive to read (OCI layout tar or docker save archive); stdin when absent or -.
    #[arg(short, long)]
    input: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  bosun image rm busybox:latest")]
pub struct RmArgs {
    /// Remove even if a container uses the image.
    #[arg(short, long)]
    force: bool,
    /// Only untag; keep the layers for `image prune`.
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bosun image prune\n  bosun image prune -a")]
pub struct PruneArgs {
    /// Also remove every image no container uses.
    #[arg(short, long)]
    all: bool,
    /// Accepted for Docker compatibility; bosun never prompts.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  bosun image tag busybox localhost:5000/busybox:1")]
pub struct TagArgs {
    source: String,
    target: String,
}

pub fn import(store: &ImageStore, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.as_deref().map(Reference::parse).transpose()?;
    if args.rootfs {
        let name = name.ok_or_else(|| anyhow::anyhow!("--rootfs needs a NAME[:TAG]"))?;
        let out = store.import_rootfs(&args.source, &name, &args.changes)?;
        println!("{}", out.id);
        return Ok(ExitCode::SUCCESS);
    }
    for img in store.import(&args.source, name.as_ref())? {
        println!("Loaded image: {}", img.name.familiar());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(store: &ImageStore, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let input = args.input.filter(|p| p.as_os_str() != "-");
    let (path, _spool) = match &input {
        Some(p) => (p.clone(), None),
        None => {
            let spool = Spool::new(store, "stdin");
            let mut f = std::fs::File::create(&spool.0)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
            (spool.0.clone(), Some(spool))
        }
    };
    let images = store.import(&path, None).map_err(|e| match input {
        Some(_) => anyhow::Error::from(e),
        None => anyhow::anyhow!("load from stdin: {e}"),
    })?;
    for img in images {
        println!("Loaded image: {}", img.name.familiar());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn save(store: &ImageStore, args: SaveArgs) -> anyhow::Result<ExitCode> {
    if args.dest.as_os_str() != "-" {
        store.save(&args.image, &args.dest)?;
        return Ok(ExitCode::SUCCESS);
    }
    let spool = Spool::new(store, "stdout");
    store.save(&args.image, &spool.0)?;
    let mut f = std::fs::File::open(&spool.0)?;
    std::io::copy(&mut f, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// A temp file under the store's tmp/ (swept by prune if we die), removed on drop.
struct Spool(PathBuf);

impl Spool {
    fn new(store: &ImageStore, what: &str) -> Self {
        let name = format!("{}-{what}.tar", std::process::id());
        Self(store.layout().tmp().join(name))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn rm(store: &ImageStore, args: RmArgs) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in &args.images {
        match store.remove(name, args.force, !args.no_prune) {
            Ok(report) => print_removed(&report),
            Err(e) => {
                eprintln!("bosun: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

fn print_removed(report: &GcReport) {
    for name in &report.untagged {
        let shown = Reference::parse(name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| name.clone());
        println!("Untagged: {shown}");
    }
    for d in report.layers.iter().chain(&report.blobs) {
        println!("Deleted: {d}");
    }
}

pub fn prune(store: &ImageStore, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let _ = args.force;
    let report = store.prune(args.all)?;
    if !report.untagged.is_empty() {
        println!("Deleted Images:");
        print_removed(&GcReport {
            blobs: vec![],
            layers: vec![],
            ..report.clone()
        });
        println!();
    }
    println!(
        "Deleted {} layers and {} blobs\nTotal reclaimed space: {}",
        report.layers.len(),
        report.blobs.len(),
        human_size(report.reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn tag(store: &ImageStore, args: TagArgs) -> anyhow::Result<ExitCode> {
    store.tag(&args.source, &Reference::parse(&args.target)?)?;
    Ok(ExitCode::SUCCESS)
}
