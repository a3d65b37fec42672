//! Runs Debian's real CNI plugins against a real network namespace.

use cni::{bridge_network, Cni, NetworkConfigList, RuntimeConf};
use std::process::Command;
use testkit::{require_program, require_root, Cleanup, TestNetns};

fn plugins_installed() -> bool {
    std::path::Path::new("/usr/lib/cni/bridge").is_file()
}

/// A bridge name unique to this process (IFNAMSIZ allows 15 bytes).
fn bridge_name(n: u32) -> String {
    format!("bt{}x{n}", std::process::id() % 1_000_000)
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn bridge_add_gives_an_address_and_del_removes_it() {
    require_root!();
    require_program!("ip");
    if !plugins_installed() {
        eprintln!("skipped: containernetworking-plugins is not installed");
        return;
    }
    let ns = TestNetns::new();
    let scratch = testkit::scratch_dir();
    let bridge = bridge_name(1);
    let mut cleanup = Cleanup::new();
    cleanup.delete_link(bridge.clone());
    let subnet = format!("10.251.{}.0/24", std::process::id() % 250);
    let net = bridge_network(
        "bosun-test-net",
        &bridge,
        &subnet,
        &scratch.path().join("ipam"),
    );
    let cni = Cni::new(scratch.path().join("cache"));
    let rt = RuntimeConf::new("ctr1", ns.path(), "eth0");

    let result = cni.add(&net, &rt).expect("CNI ADD");
    let ip = result.address_of("eth0").expect("an address for eth0");
    assert!(ip.starts_with("10.251."), "{ip}");
    let addrs = ns.exec("ip", &["-o", "addr", "show", "eth0"]);
    assert!(
        String::from_utf8_lossy(&addrs.stdout).contains(&ip),
        "address not inside the netns"
    );
    assert!(link_exists(&bridge), "bridge {bridge} was not created");
    // The host reaches the container through the bridge.
    let ping = Command::new("ping")
        .args(["-c", "1", "-W", "5", &ip])
        .output();
    if let Ok(ping) = ping {
        assert!(ping.status.success(), "host cannot ping {ip}");
    }
    assert!(cni.cached_result(&net, &rt).is_some());
    cni.check(&net, &rt).expect("CNI CHECK");

    cni.del(&net, &rt).expect("CNI DEL");
    let nat = Command::new("iptables").args(["-t", "nat", "-S"]).output();
    if let Ok(nat) = nat {
        let rules = String::from_utf8_lossy(&nat.stdout);
        assert!(
            !rules.contains("ctr1"),
            "masquerade rules for ctr1 left behind:\n{rules}"
        );
    }
    let addrs = ns.exec("ip", &["-o", "addr", "show", "eth0"]);
    assert!(!addrs.status.success(), "eth0 still exists after DEL");
    assert!(cni.cached_result(&net, &rt).is_none());
    // A second DEL is harmless, as the spec requires.
    cni.del(&net, &rt).expect("repeated CNI DEL");
}

#[test]
fn failing_plugin_reports_its_message_and_leaves_nothing() {
    require_root!();
    if !plugins_installed() {
        eprintln!("skipped: containernetworking-plugins is not installed");
        return;
    }
    let ns = TestNetns::new();
    let scratch = testkit::scratch_dir();
    let bridge = bridge_name(2);
    let mut cleanup = Cleanup::new();
    cleanup.delete_link(bridge.clone());
    let net = bridge_network(
        "bosun-test-bad",
        &bridge,
        "not-a-subnet",
        &scratch.path().join("ipam"),
    );
    let cni = Cni::new(scratch.path().join("cache"));
    let rt = RuntimeConf::new("ctr2", ns.path(), "eth0");
    let err = cni.add(&net, &rt).expect_err("a bad subnet must fail");
    let text = err.to_string();
    assert!(text.contains("bridge") && text.contains("ADD"), "{text}");
    assert!(cni.cached_result(&net, &rt).is_none());
    let links = ns.exec("ip", &["-o", "link"]);
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("eth0"),
        "eth0 left behind"
    );
}

#[test]
fn unknown_plugin_is_named_in_the_error() {
    let list = NetworkConfigList::from_json(
        r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nosuch"}]}"#,
    )
    .unwrap();
    let scratch = testkit::scratch_dir();
    let cni = Cni::new(scratch.path());
    let err = cni
        .add(&list, &RuntimeConf::new("c", "/nonexistent", "eth0"))
        .unwrap_err();
    assert!(err.to_string().contains("\"nosuch\" not found"), "{err}");
}

#[test]
fn conflist_without_plugin_type_is_rejected_naming_the_field() {
    let err =
        NetworkConfigList::from_json(r#"{"name":"n","plugins":[{"bridge":"x"}]}"#).unwrap_err();
    assert!(err.to_string().contains("n.plugins[0].type"), "{err}");
    let err = NetworkConfigList::from_json(r#"{"plugins":[{"type":"bridge"}]}"#).unwrap_err();
    assert!(err.to_string().contains("name"), "{err}");
    let err = NetworkConfigList::from_json("{").unwrap_err();
    assert!(err.to_string().contains("document"), "{err}");
}

#[test]
fn bridge_network_round_trips_through_json() {
    let net = bridge_network("n", "br0", "10.0.0.0/24", std::path::Path::new("/tmp/x"));
    let again = NetworkConfigList::from_json(&net.to_json().to_string()).unwrap();
    assert_eq!(net, again);
}

#[test]
fn ip_masq_can_be_turned_off_on_the_bridge_plugin_only() {
    let mut net = bridge_network("n", "br0", "10.0.0.0/24", std::path::Path::new("/tmp/x"));
    assert_eq!(net.plugins[0]["ipMasq"], true);
    net.set_ip_masq(false);
    assert_eq!(net.plugins[0]["ipMasq"], false);
    assert!(net.plugins[1].get("ipMasq").is_none(), "portmap got ipMasq");
}
