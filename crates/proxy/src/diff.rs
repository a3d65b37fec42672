//! Turns rulesets into nft transactions: a full one that replaces the whole
//! table atomically (start-up, recovery), and an incremental one that only
//! touches the chains, sets and map elements that changed, so one Service's
//! change costs the same with 10 or 10 000 Services programmed.
//!
//! Order inside a transaction matters: objects are declared before anything
//! refers to them, and removed only after every reference is gone.

use crate::render::{base, Ruleset, TABLE};
use std::collections::BTreeMap;

/// Map elements are added in batches of this many per command.
const BATCH: usize = 500;

/// A transaction that (re)creates the table with exactly `rs` in it, over
/// whatever was there (stale rules of a crashed run included).
pub fn full(rs: &Ruleset) -> String {
    let mut out = vec![
        format!("add table {TABLE}"),
        format!("delete table {TABLE}"),
        format!("add table {TABLE}"),
    ];
    out.extend(base());
    declare(&mut out, rs, &Ruleset::default());
    for (name, rules) in &rs.chains {
        fill(&mut out, name, rules, false);
    }
    for (map, elems) in &rs.maps {
        add_elements(&mut out, map, elems.iter());
    }
    join(out)
}

/// A transaction that turns `old` into `new`; `None` when they are equal.
pub fn incremental(old: &Ruleset, new: &Ruleset) -> Option<String> {
    if old == new {
        return None;
    }
    let mut out = Vec::new();
    declare(&mut out, new, old);
    for (name, rules) in &new.chains {
        match old.chains.get(name) {
            Some(prev) if prev == rules => {}
            Some(_) => fill(&mut out, name, rules, true),
            None => fill(&mut out, name, rules, false),
        }
    }
    let empty = BTreeMap::new();
    for (map, elems) in &new.maps {
        let prev = old.maps.get(map).unwrap_or(&empty);
        let stale: Vec<&String> = prev
            .iter()
            .filter(|(k, v)| elems.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        for chunk in stale.chunks(BATCH) {
            let keys: Vec<&str> = chunk.iter().map(|k| k.as_str()).collect();
            out.push(format!(
                "delete element {TABLE} {map} {{ {} }}",
                keys.join(", ")
            ));
        }
        add_elements(
            &mut out,
            map,
            elems.iter().filter(|(k, v)| prev.get(*k) != Some(*v)),
        );
    }
    for name in old.chains.keys().filter(|n| !new.chains.contains_key(*n)) {
        // A chain may only go once nothing jumps to it: flush first, so
        // chains removed together may refer to each other.
        out.push(format!("flush chain {TABLE} {name}"));
    }
    for name in old.chains.keys().filter(|n| !new.chains.contains_key(*n)) {
        out.push(format!("delete chain {TABLE} {name}"));
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        out.push(format!("delete set {TABLE} {name}"));
    }
    Some(join(out))
}

/// Declares sets and chains of `new` that `old` lacks.
fn declare(out: &mut Vec<String>, new: &Ruleset, old: &Ruleset) {
    for (name, decl) in &new.sets {
        if !old.sets.contains_key(name) {
            out.push(format!("add set {TABLE} {name} {decl}"));
        }
    }
    for name in new.chains.keys() {
        if !old.chains.contains_key(name) {
            out.push(format!("add chain {TABLE} {name}"));
        }
    }
}

fn fill(out: &mut Vec<String>, chain: &str, rules: &[String], flush: bool) {
    if flush {
        out.push(format!("flush chain {TABLE} {chain}"));
    }
    for r in rules {
        out.push(format!("add rule {TABLE} {chain} {r}"));
    }
}

fn add_elements<'a>(
    out: &mut Vec<String>,
    map: &str,
    elems: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let elems: Vec<String> = elems.map(|(k, v)| format!("{k} : {v}")).collect();
    for chunk in elems.chunks(BATCH) {
        out.push(format!(
            "add element {TABLE} {map} {{ {} }}",
            chunk.join(", ")
        ));
    }
}

fn join(mut lines: Vec<String>) -> String {
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Proto, ServicePort};
    use crate::render::{render, Options};

    fn port(eps: &[(&str, bool)]) -> ServicePort {
        ServicePort {
            key: "ns/web/tcp/http".into(),
            cluster_ip: "10.43.0.5".parse().unwrap(),
            port: 80,
            proto: Proto::Tcp,
            node_port: Some(30080),
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

    #[test]
    fn full_replaces_the_table_and_balances_at_random() {
        let rs = render(
            &[port(&[("10.42.0.2", true), ("10.42.0.3", false)])],
            &Options::default(),
        );
        let text = full(&rs);
        assert!(text.starts_with("add table ip bosun\ndelete table ip bosun\n"));
        assert!(text.contains("numgen random mod 2 vmap { 0 : goto ep-ns/web/tcp/http/10.42.0.2/8080, 1 : goto ep-ns/web/tcp/http/10.42.0.3/8080 }"));
        assert!(text.contains("add rule ip bosun ep-ns/web/tcp/http/10.42.0.3/8080 meta l4proto tcp dnat to 10.42.0.3:8080"));
        assert!(text.contains(
            "add element ip bosun service-ips { 10.43.0.5 . tcp . 80 : goto svc-ns/web/tcp/http }"
        ));
        assert!(text.contains(
            "add element ip bosun service-nodeports { tcp . 30080 : goto ext-ns/web/tcp/http }"
        ));
    }

    #[test]
    fn incremental_touches_only_what_changed() {
        let opts = Options::default();
        let a = render(&[port(&[("10.42.0.2", true), ("10.42.0.3", false)])], &opts);
        let b = render(&[port(&[("10.42.0.2", true)])], &opts);
        assert_eq!(incremental(&a, &a), None);
        let t = incremental(&a, &b).unwrap();
        assert!(t.contains("flush chain ip bosun clu-ns/web/tcp/http\nadd rule ip bosun clu-ns/web/tcp/http goto ep-ns/web/tcp/http/10.42.0.2/8080"));
        assert!(t.ends_with("delete chain ip bosun ep-ns/web/tcp/http/10.42.0.3/8080\n"));
        assert!(!t.contains("service-ips"), "{t}");
        // No endpoints left: the service moves to the reject maps.
        let c = render(&[port(&[])], &opts);
        let t = incremental(&b, &c).unwrap();
        assert!(t.contains("delete element ip bosun service-ips { 10.43.0.5 . tcp . 80 }"));
        assert!(t.contains("add element ip bosun no-endpoint-services { 10.43.0.5 . tcp . 80 : goto reject-chain }"));
        assert!(t.contains("delete chain ip bosun svc-ns/web/tcp/http"));
    }

    #[test]
    fn affinity_and_local_policies() {
        let mut p = port(&[("10.42.0.2", true), ("10.42.0.3", false)]);
        p.affinity = Some(60);
        p.external_local = true;
        let rs = render(
            &[p],
            &Options {
                cluster_cidr: Some("10.42.0.0/16".into()),
                masquerade_all: false,
            },
        );
        let set = "aff60-ns/web/tcp/http/10.42.0.2/8080";
        assert!(rs.sets[set].contains("timeout 60s"));
        assert_eq!(
            rs.chains["loc-ns/web/tcp/http"],
            [
                format!("ip saddr @{set} goto ep-ns/web/tcp/http/10.42.0.2/8080"),
                "goto ep-ns/web/tcp/http/10.42.0.2/8080".to_string(),
            ]
        );
        assert_eq!(
            rs.chains["svc-ns/web/tcp/http"][0],
            "ip saddr != 10.42.0.0/16 jump mark-for-masquerade"
        );
        assert!(rs.chains["ext-ns/web/tcp/http"].contains(&"goto loc-ns/web/tcp/http".to_string()));
    }
}
