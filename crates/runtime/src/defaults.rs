//! The baseline every unprivileged container gets from bosun, whichever
//! front end made its spec (`bosun run` in the engine, the CRI server):
//! Docker's default capability set, the /proc and /sys paths masked or made
//! read-only, and the default device-cgroup rules. One copy, so both paths
//! stay the same.

use serde_json::{json, Value};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths hidden from containers (bind of /dev/null or an empty ro tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only inside containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Device-cgroup rules (`linux.resources.devices`) of an unprivileged
/// container: deny all, then mknod of any node and the standard pseudo
/// devices, as Docker's and containerd's defaults.
pub fn device_rules() -> Vec<Value> {
    let allow = |t: &str, major: i64, minor: Option<i64>| json!({"allow": true, "type": t, "major": major, "minor": minor, "access": "rwm"});
    vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
        allow("c", 1, Some(3)),    // null
        allow("c", 1, Some(5)),    // zero
        allow("c", 1, Some(7)),    // full
        allow("c", 1, Some(8)),    // random
        allow("c", 1, Some(9)),    // urandom
        allow("c", 5, Some(0)),    // tty
        allow("c", 5, Some(1)),    // console
        allow("c", 5, Some(2)),    // ptmx
        allow("c", 136, None),     // pts/*
        allow("c", 10, Some(200)), // net/tun
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules_deny_first_and_parse_as_oci() {
        let rules = device_rules();
        assert_eq!(rules[0]["allow"], false);
        let parsed: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_value(Value::Array(rules)).expect("valid OCI device rules");
        assert_eq!(parsed.len(), 13);
        assert_eq!(parsed[11].major(), Some(136));
        assert_eq!(parsed[11].minor(), None);
    }
}
