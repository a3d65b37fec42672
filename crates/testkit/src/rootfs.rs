//! A busybox root filesystem built from Debian's busybox-static: the one
//! binary plus a link for every applet it has, and the few files a container
//! expects (`/etc/passwd`, `/etc/group`, mount points).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Fills `root` with a busybox rootfs. `root` must exist.
pub fn busybox_rootfs(root: &Path) -> io::Result<()> {
    for dir in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "www", "var",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    for applet in applets()? {
        let link = root.join("bin").join(&applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", &link)?;
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// The applets the host's busybox-static was built with.
fn applets() -> io::Result<Vec<String>> {
    let out = Command::new(BUSYBOX).arg("--list").output()?;
    if !out.status.success() {
        return Err(io::Error::other("busybox --list failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}
