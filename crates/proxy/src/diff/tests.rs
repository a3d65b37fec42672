//! Transactions for typical changes, as text (the kernel test in `nft.rs`
//! checks that the kernel accepts them).

use super::*;
use crate::model::{Endpoint, Proto, ServicePort};
use crate::render::{render, Options};

pub(crate) fn port(key: &str, vip: &str, eps: &[(&str, bool)]) -> ServicePort {
    ServicePort {
        key: key.into(),
        cluster_ip: vip.parse().unwrap(),
        port: 80,
        proto: Proto::Tcp,
        node_port: None,
        affinity: None,
        external_local: false,
        internal_local: false,
        endpoints: eps
            .iter()
            .map(|(ip, local)| Endpoint {
                ip: ip.parse().unwrap(),
                port: 8080,
                local: *local,
            })
            .collect(),
    }
}

fn web(eps: &[(&str, bool)]) -> ServicePort {
    let mut p = port("ns/web/tcp/http", "10.43.0.5", eps);
    p.node_port = Some(30080);
    p
}

fn change(sp: &ServicePort) -> Changes {
    render(std::slice::from_ref(sp), &Options::default())
        .into_iter()
        .map(|(k, f)| (k, Some(f)))
        .collect()
}

#[test]
fn full_replaces_the_table_and_balances_at_random() {
    let rs = Ruleset::new(render(
        &[web(&[("10.42.0.2", true), ("10.42.0.3", false)])],
        &Options::default(),
    ));
    let text = rs.full();
    assert!(text.starts_with("add table ip bosun\ndelete table ip bosun\n"));
    assert!(text.contains("add rule ip bosun svc-ns/web/tcp/http meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.42.0.2 . 8080, 1 : 10.42.0.3 . 8080 }"), "{text}");
    assert!(
        !text.contains("ep-"),
        "no per-endpoint chains without affinity: {text}"
    );
    assert!(text.contains(
        "add element ip bosun service-ips { 10.43.0.5 . tcp . 80 : goto svc-ns/web/tcp/http }"
    ));
    assert!(text.contains(
        "add element ip bosun service-nodeports { tcp . 30080 : goto ext-ns/web/tcp/http }"
    ));
    assert!(text
        .contains("add element ip bosun hairpin { 10.42.0.2 . 10.42.0.2, 10.42.0.3 . 10.42.0.3 }"));
}

#[test]
fn incremental_touches_only_what_changed() {
    let other = port("ns/db/tcp/5432", "10.43.0.6", &[("10.42.0.9", false)]);
    let mut rs = Ruleset::new(render(
        &[web(&[("10.42.0.2", true), ("10.42.0.3", false)]), other],
        &Options::default(),
    ));
    let same = rs.effective(change(&web(&[("10.42.0.2", true), ("10.42.0.3", false)])));
    assert!(same.is_empty());
    assert_eq!(rs.incremental(&same), None);

    let c = rs.effective(change(&web(&[("10.42.0.2", true)])));
    let t = rs.incremental(&c).unwrap();
    assert!(t.contains("flush chain ip bosun svc-ns/web/tcp/http\nadd rule ip bosun svc-ns/web/tcp/http meta l4proto tcp dnat to 10.42.0.2:8080"), "{t}");
    assert!(
        t.contains("delete element ip bosun hairpin { 10.42.0.3 . 10.42.0.3 }"),
        "{t}"
    );
    assert!(!t.contains("service-ips") && !t.contains("db"), "{t}");
    rs.commit(c);

    // No endpoints left: the service moves to the reject maps.
    let c = rs.effective(change(&web(&[])));
    let t = rs.incremental(&c).unwrap();
    assert!(t.contains("delete element ip bosun service-ips { 10.43.0.5 . tcp . 80 }"));
    assert!(t.contains(
        "add element ip bosun no-endpoint-services { 10.43.0.5 . tcp . 80 : goto reject-chain }"
    ));
    assert!(t.contains("delete chain ip bosun svc-ns/web/tcp/http"));
    rs.commit(c);
    assert_eq!(rs.ports_of("ns/web").count(), 1);

    // Gone: its elements go, the other Service's stay.
    let mut gone = Changes::new();
    gone.insert("ns/web/tcp/http".into(), None);
    let t = rs.incremental(&rs.effective(gone.clone())).unwrap();
    assert!(t.contains("delete element ip bosun no-endpoint-nodeports { tcp . 30080 }"));
    rs.commit(gone);
    assert_eq!(rs.ports_of("ns/web").count(), 0);
    assert_eq!(rs.ports_of("ns/db").count(), 1);
}

#[test]
fn shared_hairpin_elements_are_counted() {
    let a = port("ns/a/tcp/80", "10.43.0.7", &[("10.42.0.2", false)]);
    let b = port("ns/b/tcp/80", "10.43.0.8", &[("10.42.0.2", false)]);
    let mut rs = Ruleset::new(render(&[a, b], &Options::default()));
    let mut gone = Changes::new();
    gone.insert("ns/a/tcp/80".into(), None);
    let t = rs.incremental(&gone).unwrap();
    assert!(!t.contains("hairpin"), "still used by ns/b: {t}");
    rs.commit(gone.clone());
    let mut gone = Changes::new();
    gone.insert("ns/b/tcp/80".into(), None);
    let t = rs.incremental(&gone).unwrap();
    assert!(t.contains("delete element ip bosun hairpin { 10.42.0.2 . 10.42.0.2 }"));
}

#[test]
fn affinity_and_local_policies() {
    let mut p = web(&[("10.42.0.2", true), ("10.42.0.3", false)]);
    p.affinity = Some(60);
    p.external_local = true;
    let opts = Options {
        cluster_cidr: Some("10.42.0.0/16".into()),
        masquerade_all: false,
    };
    let f = crate::render::fragment(&p, &opts);
    let set = "aff60-ns/web/tcp/http/10.42.0.2/8080";
    assert!(f.sets[set].contains("timeout 60s"));
    assert_eq!(
        f.chains["loc-ns/web/tcp/http"],
        [
            format!("ip saddr @{set} goto ep-ns/web/tcp/http/10.42.0.2/8080"),
            "goto ep-ns/web/tcp/http/10.42.0.2/8080".to_string(),
        ]
    );
    assert_eq!(
        f.chains["ep-ns/web/tcp/http/10.42.0.2/8080"],
        [
            format!("update @{set} {{ ip saddr }}"),
            "meta l4proto tcp dnat to 10.42.0.2:8080".to_string()
        ]
    );
    let svc = &f.chains["svc-ns/web/tcp/http"];
    assert_eq!(svc[0], "ip saddr != 10.42.0.0/16 jump mark-for-masquerade");
    assert!(svc.last().unwrap().starts_with("numgen random mod 2 vmap"));
    assert!(f.chains["ext-ns/web/tcp/http"].contains(&"goto loc-ns/web/tcp/http".to_string()));
}
