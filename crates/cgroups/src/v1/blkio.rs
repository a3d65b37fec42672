//! v1 blkio: proportional weight (CFQ's `blkio.weight` or BFQ's
//! `blkio.bfq.weight`), per-device weights and throttling limits.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::{fsutil, Error, Result, Version};

/// Writes weights and throttles.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(b) = r.block_io() else { return Ok(()) };
    write_weights(dir, b)?;
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            fsutil::write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// CFQ files when the kernel has them, else BFQ's (modern kernels).
fn weight_files(dir: &Path) -> Option<(&'static str, &'static str)> {
    if fsutil::exists(dir, "blkio.weight") {
        Some(("blkio.weight", "blkio.weight_device"))
    } else if fsutil::exists(dir, "blkio.bfq.weight") {
        Some(("blkio.bfq.weight", "blkio.bfq.weight_device"))
    } else {
        None
    }
}

fn write_weights(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let per_device = b
        .weight_device()
        .iter()
        .flatten()
        .any(|d| d.weight().is_some());
    if b.weight().is_none() && !per_device && b.leaf_weight().is_none() {
        return Ok(());
    }
    let Some((weight, weight_device)) = weight_files(dir) else {
        return Err(Error::Unsupported {
            what: format!(
                "blkio weight (no blkio.weight or blkio.bfq.weight in {})",
                dir.display()
            ),
            version: Version::V1,
        });
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fsutil::write(dir, weight, w)?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        leaf(dir, "blkio.leaf_weight", w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            fsutil::write(
                dir,
                weight_device,
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            leaf(
                dir,
                "blkio.leaf_weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

/// Leaf weights exist only with CFQ; elsewhere they are skipped with a warning.
fn leaf(dir: &Path, file: &str, value: String) -> Result<()> {
    if fsutil::exists(dir, file) {
        fsutil::write(dir, file, value)
    } else {
        tracing::warn!(file, "blkio leaf weights need CFQ; ignored");
        Ok(())
    }
}
