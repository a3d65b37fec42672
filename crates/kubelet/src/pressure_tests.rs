//! Threshold logic of the pressure conditions with fake readings.

use super::*;

const GI: u64 = 1 << 30;

fn fs(available: u64, capacity: u64) -> Option<FsReading> {
    Some(FsReading {
        available,
        capacity,
        inodes_free: 900,
        inodes: 1000,
    })
}

/// A roomy node: 8 GiB free memory, half-empty disks, few tasks.
fn roomy() -> Readings {
    Readings {
        memory_available: Some(8 * GI),
        memory_capacity: 16 * GI,
        nodefs: fs(50 * GI, 100 * GI),
        imagefs: fs(50 * GI, 100 * GI),
        pid_max: Some(32768),
        pids: Some(500),
    }
}

#[test]
fn a_roomy_node_has_no_pressure_and_says_so_as_upstream() {
    let p = Pressure::of(&roomy(), &Thresholds::default());
    assert_eq!(p, Pressure::default());
    assert_eq!(
        p.conditions(),
        [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available"
            ),
            (
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure"
            ),
            (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available"
            ),
        ]
    );
}

#[test]
fn memory_below_100mi_is_memory_pressure() {
    let t = Thresholds::default();
    let mut r = roomy();
    r.memory_available = Some(100 << 20);
    assert!(!Pressure::of(&r, &t).memory, "exactly 100Mi is not below");
    r.memory_available = Some((100 << 20) - 1);
    let p = Pressure::of(&r, &t);
    assert!(p.memory && !p.disk && !p.pid);
    assert_eq!(
        p.conditions()[0],
        (
            "MemoryPressure",
            "True",
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available"
        )
    );
}

#[test]
fn nodefs_below_10_percent_or_imagefs_below_15_percent_is_disk_pressure() {
    let t = Thresholds::default();
    let mut r = roomy();
    r.nodefs = fs(11 * GI, 100 * GI);
    assert!(!Pressure::of(&r, &t).disk);
    r.nodefs = fs(9 * GI, 100 * GI);
    assert!(Pressure::of(&r, &t).disk);
    let mut r = roomy();
    r.imagefs = fs(16 * GI, 100 * GI);
    assert!(!Pressure::of(&r, &t).disk);
    r.imagefs = fs(14 * GI, 100 * GI);
    let p = Pressure::of(&r, &t);
    assert!(p.disk && !p.memory);
    assert_eq!(
        p.conditions()[1],
        (
            "DiskPressure",
            "True",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure"
        )
    );
}

#[test]
fn running_out_of_inodes_is_disk_pressure() {
    let mut r = roomy();
    r.nodefs = Some(FsReading {
        available: 50 * GI,
        capacity: 100 * GI,
        inodes_free: 40,
        inodes: 1000,
    });
    assert!(Pressure::of(&r, &Thresholds::default()).disk);
}

#[test]
fn few_free_pids_is_pid_pressure() {
    let t = Thresholds::default();
    let mut r = roomy();
    r.pids = Some(32768 - 3277);
    assert!(!Pressure::of(&r, &t).pid);
    r.pids = Some(32768 - 100);
    let p = Pressure::of(&r, &t);
    assert!(p.pid);
    assert_eq!(
        p.conditions()[2],
        (
            "PIDPressure",
            "True",
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available"
        )
    );
}

#[test]
fn missing_readings_are_never_pressure() {
    let r = Readings::default();
    assert_eq!(
        Pressure::of(&r, &Thresholds::default()),
        Pressure::default()
    );
}

#[test]
fn eviction_hard_parses_upstream_syntax_and_leaves_the_rest_off() {
    let t =
        Thresholds::parse("memory.available<1Gi, nodefs.available<5%,pid.available<1000").unwrap();
    assert_eq!(t.memory_available, Some(Threshold::Amount(GI)));
    assert_eq!(t.nodefs_available, Some(Threshold::Percent(5.0)));
    assert_eq!(t.pid_available, Some(Threshold::Amount(1000)));
    assert_eq!(t.imagefs_available, None);
    let mut r = roomy();
    r.imagefs = fs(GI, 100 * GI);
    assert!(!Pressure::of(&r, &t).disk, "imagefs is off");
    for bad in [
        "memory.available",
        "memory.available<lots",
        "disk.free<1%",
        "nodefs.available<150%",
    ] {
        assert!(Thresholds::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn this_host_can_be_read() {
    let r = Readings::read(Path::new("/"), Some(Path::new("/")));
    assert!(r.memory_capacity > 0);
    assert!(r.memory_available.is_some_and(|a| a <= r.memory_capacity));
    assert!(r
        .nodefs
        .is_some_and(|f| f.capacity > 0 && f.available <= f.capacity));
    assert!(r.pid_max.is_some() && r.pids.is_some_and(|n| n > 0));
}
