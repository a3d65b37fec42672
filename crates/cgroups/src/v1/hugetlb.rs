//! v1 hugetlb: `hugetlb.<size>.limit_in_bytes` per page size.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, Error, Result};

/// True when the spec limits any huge page size.
pub(crate) fn wanted(r: &LinuxResources) -> bool {
    r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
}

/// Writes each page size's limit.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    write_limits(dir, r, "limit_in_bytes")
}

/// Shared with v2, whose file is `hugetlb.<size>.max`.
pub(crate) fn write_limits(dir: &Path, r: &LinuxResources, suffix: &str) -> Result<()> {
    for l in r.hugepage_limits().iter().flatten() {
        let size = l.page_size();
        let valid = size.len() > 2
            && size[..size.len() - 2].chars().all(|c| c.is_ascii_digit())
            && ["KB", "MB", "GB"].contains(&&size[size.len() - 2..]);
        let file = format!("hugetlb.{size}.{suffix}");
        if !valid || !fsutil::exists(dir, &file) {
            return Err(Error::InvalidResource {
                field: "hugepageLimits[].pageSize",
                value: size.clone(),
                reason: "this host has no such huge page size",
            });
        }
        fsutil::write(dir, &file, l.limit())?;
    }
    Ok(())
}
