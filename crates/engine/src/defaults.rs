//! Docker's defaults for a container made by `bosun run`: PATH, capability
//! names, `--init`. The baseline shared with the CRI server (default
//! capabilities, masked and read-only paths, device rules) lives in
//! `runtime::defaults` and is re-exported here.

pub use runtime::defaults::{DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};

/// Environment every container gets unless the image or user sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Turns a user's `--cap-add`/`--cap-drop` name (`NET_ADMIN`, `cap_net_admin`, `ALL`)
/// into the kernel's spelling (`CAP_NET_ADMIN`).
pub fn normalize_capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Every capability the running kernel knows, for `--privileged` and `--cap-add ALL`.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The host binary `--init` runs as the container's PID 1: Debian's statically
/// linked tini (package `tini`), the init Docker ships as `docker-init`.
pub const INIT_BINARY: &str = "/usr/bin/tini-static";

/// Where `--init` mounts it inside the container, as Docker does.
pub const INIT_PATH: &str = "/sbin/docker-init";
