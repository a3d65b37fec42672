//! The node-level masquerade against the real kernel: a container on a
//! bridge network without the plugin's `ipMasq` reaches an "outside" network
//! namespace that has no route back to the pod subnet only while the one
//! nftables rule is installed; applying is idempotent and removing leaves
//! no table.

use cni::{bridge_network, Cni, Masquerade, RuntimeConf};
use std::process::Command;
use testkit::{require_program, require_root, Cleanup, TestNetns};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

fn table_listed(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// An echo answered within a few tries of 2 s (the first packets of a new
/// path can be lost while neighbours resolve).
fn reaches(ns: &TestNetns, addr: &str) -> bool {
    (0..3).any(|_| {
        ns.exec("busybox", &["ping", "-c", "1", "-W", "2", addr])
            .status
            .success()
    })
}

#[test]
fn pod_reaches_outside_only_through_the_node_masquerade() {
    require_root!();
    require_program!("ip");
    require_program!("nft");
    require_program!("busybox");
    if !std::path::Path::new("/usr/lib/cni/bridge").is_file() {
        eprintln!("skipped: containernetworking-plugins is not installed");
        return;
    }
    let n = std::process::id() % 250;
    let bridge = format!("bmq{}", std::process::id() % 1_000_000);
    let veth = format!("vmq{}", std::process::id() % 1_000_000);
    let subnet = format!("10.252.{n}.0/24");
    let mut cleanup = Cleanup::new();
    cleanup.delete_link(bridge.clone());
    cleanup.delete_link(veth.clone());
    let masq = Masquerade::new(&bridge, &subnet).expect("masquerade");
    let guard = masq.clone();
    cleanup.defer("masquerade table", move || {
        let _ = guard.remove();
    });

    // The container: bridge + host-local, no per-container ipMasq.
    let pod = TestNetns::new();
    let scratch = testkit::scratch_dir();
    let mut net = bridge_network(
        "bosun-test-masq",
        &bridge,
        &subnet,
        &scratch.path().join("ipam"),
    );
    net.set_ip_masq(false);
    net.plugins.retain(|p| p["type"] != "portmap");
    let cni = Cni::new(scratch.path().join("cache"));
    let rt = RuntimeConf::new("ctrmasq", pod.path(), "eth0");
    cni.add(&net, &rt).expect("CNI ADD");

    // The outside: a /30 on a veth, with no route to the pod subnet.
    let out = TestNetns::new();
    ip(&[
        "link",
        "add",
        &veth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        out.name(),
    ]);
    let (host_addr, out_addr) = (format!("10.253.{n}.1/30"), format!("10.253.{n}.2"));
    ip(&["addr", "add", &host_addr, "dev", &veth]);
    ip(&["link", "set", &veth, "up"]);
    for args in [
        vec!["addr", "add", &format!("{out_addr}/30"), "dev", "eth0"],
        vec!["link", "set", "eth0", "up"],
    ] {
        assert!(
            out.exec("ip", &args).status.success(),
            "ip {args:?} in outside"
        );
    }

    assert!(
        !reaches(&pod, &out_addr),
        "outside answered the pod without masquerade (a route back exists?)"
    );
    masq.apply().expect("apply masquerade");
    masq.apply().expect("apply masquerade again (idempotent)");
    assert!(table_listed(masq.table()));
    if !reaches(&pod, &out_addr) {
        let routes = pod.exec("ip", &["route"]);
        let table = Command::new("nft")
            .args(["list", "table", "ip", masq.table()])
            .output()
            .expect("run nft");
        panic!(
            "pod cannot reach outside through the masquerade\nroutes: {}\n{}",
            String::from_utf8_lossy(&routes.stdout),
            String::from_utf8_lossy(&table.stdout)
        );
    }
    // The host still reaches the pod directly (no NAT on that path).
    let addr = cni
        .cached_result(&net, &rt)
        .and_then(|r| r.address_of("eth0"))
        .expect("pod address");
    let ping = Command::new("busybox")
        .args(["ping", "-c", "1", "-W", "3", &addr])
        .status();
    assert!(
        ping.is_ok_and(|s| s.success()),
        "host cannot ping pod {addr}"
    );

    masq.remove().expect("remove masquerade");
    assert!(!table_listed(masq.table()), "table left after remove");
    masq.remove().expect("removing a missing table is fine");
    cni.del(&net, &rt).expect("CNI DEL");
}
