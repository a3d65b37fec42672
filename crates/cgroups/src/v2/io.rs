//! v2 io: weight (`io.bfq.weight` when BFQ is the scheduler, else
//! `io.weight` with runc's conversion from blkio's range) and `io.max`
//! throttling per device.

use std::path::Path;

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use crate::{fsutil, Result};

/// runc's mapping of blkio weight [10, 1000] onto io.weight [1, 10000].
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

/// Writes weights and throttles.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(b) = r.block_io() else { return Ok(()) };
    let bfq = fsutil::exists(dir, "io.bfq.weight");
    let (file, convert): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", blkio_to_io_weight)
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fsutil::write(dir, file, format!("default {}", convert(w)))?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            fsutil::write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), convert(w)),
            )?;
        }
    }
    if b.leaf_weight().is_some() {
        tracing::warn!("blkio leafWeight has no cgroup v2 equivalent; ignored");
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            let line = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            fsutil::write(dir, "io.max", line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_weights_map_onto_io_weights() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }
}
