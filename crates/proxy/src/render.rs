//! The desired contents of the `ip bosun` nftables table, computed from the
//! service ports: fixed hook chains and verdict maps, plus per-service-port
//! chains (`svc-`, `ext-`, `clu-`, `loc-`, `ep-`), affinity sets and map
//! elements, laid out like kube-proxy's nftables mode.
//!
//! Packet paths (nat hooks at dstnat/srcnat, filter hooks at -110 so they see
//! the ClusterIP before DNAT):
//! - prerouting/output → `services`: `daddr . proto . dport` in the
//!   `service-ips` vmap → `svc-K` (masquerade mark for traffic from outside
//!   the cluster CIDR) → `clu-K` or `loc-K` (ClientIP affinity sets, then
//!   `numgen random mod N`) → `ep-K/IP/PORT` (hairpin mark, DNAT).
//! - NodePorts on every local address but 127/8 (`fib daddr type local`) via
//!   the `service-nodeports` vmap → `ext-K` (masquerade; `Local` policy
//!   keeps the client address and only uses local endpoints).
//! - ports without endpoints sit in `no-endpoint-*` vmaps, checked in the
//!   filter input/forward/output hooks → `reject-chain` (TCP reset, else
//!   ICMP port unreachable).
//! - postrouting → `masquerading`: packets carrying mark 0x4000 are
//!   masqueraded.

use crate::model::{Endpoint, ServicePort};
use std::collections::BTreeMap;

/// The table, as nft names it.
pub const TABLE: &str = "ip bosun";
pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NO_EP_SERVICES: &str = "no-endpoint-services";
pub const NO_EP_NODEPORTS: &str = "no-endpoint-nodeports";

/// How traffic to ClusterIPs is masqueraded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Pod network: traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    /// Masquerade all ClusterIP traffic (needed when bridged replies would
    /// bypass conntrack, i.e. without br_netfilter).
    pub masquerade_all: bool,
}

/// Everything in the table that changes with Services: regular chains with
/// their rules, named sets with their declaration, and map elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub chains: BTreeMap<String, Vec<String>>,
    pub sets: BTreeMap<String, String>,
    pub maps: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// The fixed part: maps, hook chains and helper chains, as nft commands.
pub fn base() -> Vec<String> {
    let t = TABLE;
    let svc_key = "ipv4_addr . inet_proto . inet_service : verdict";
    let np_key = "inet_proto . inet_service : verdict";
    let no_ep = "ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services";
    let no_np = "ct state new fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports";
    let hook = |name: &str, kind: &str, hook: &str, prio: &str| {
        format!(
            "add chain {t} {name} {{ type {kind} hook {hook} priority {prio}; policy accept; }}"
        )
    };
    vec![
        format!("add map {t} {SERVICE_IPS} {{ type {svc_key}; }}"),
        format!("add map {t} {SERVICE_NODEPORTS} {{ type {np_key}; }}"),
        format!("add map {t} {NO_EP_SERVICES} {{ type {svc_key}; }}"),
        format!("add map {t} {NO_EP_NODEPORTS} {{ type {np_key}; }}"),
        format!("add chain {t} mark-for-masquerade"),
        format!("add rule {t} mark-for-masquerade meta mark set meta mark | 0x4000"),
        format!("add chain {t} masquerading"),
        format!("add rule {t} masquerading meta mark & 0x4000 == 0 return"),
        format!("add rule {t} masquerading meta mark set meta mark ^ 0x4000"),
        format!("add rule {t} masquerading masquerade fully-random"),
        format!("add chain {t} reject-chain"),
        format!("add rule {t} reject-chain meta l4proto tcp reject with tcp reset"),
        format!("add rule {t} reject-chain reject"),
        format!("add chain {t} services"),
        format!("add rule {t} services ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
        format!("add rule {t} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"),
        hook("nat-prerouting", "nat", "prerouting", "dstnat"),
        format!("add rule {t} nat-prerouting jump services"),
        hook("nat-output", "nat", "output", "-100"),
        format!("add rule {t} nat-output jump services"),
        hook("nat-postrouting", "nat", "postrouting", "srcnat"),
        format!("add rule {t} nat-postrouting jump masquerading"),
        hook("filter-input", "filter", "input", "-110"),
        format!("add rule {t} filter-input {no_np}"),
        hook("filter-forward", "filter", "forward", "-110"),
        format!("add rule {t} filter-forward {no_ep}"),
        hook("filter-output", "filter", "output", "-110"),
        format!("add rule {t} filter-output {no_ep}"),
    ]
}

/// Computes the variable part of the table.
pub fn render(ports: &[ServicePort], opts: &Options) -> Ruleset {
    let mut rs = Ruleset::default();
    for name in [
        SERVICE_IPS,
        SERVICE_NODEPORTS,
        NO_EP_SERVICES,
        NO_EP_NODEPORTS,
    ] {
        rs.maps.insert(name, BTreeMap::new());
    }
    for sp in ports {
        add_port(&mut rs, sp, opts);
    }
    rs
}

fn element(rs: &mut Ruleset, map: &'static str, key: String, verdict: String) {
    rs.maps.entry(map).or_default().insert(key, verdict);
}

fn ep_chain(key: &str, ep: &Endpoint) -> String {
    format!("ep-{key}/{}/{}", ep.ip, ep.port)
}

fn aff_set(key: &str, ep: &Endpoint, timeout: u32) -> String {
    format!("aff{timeout}-{key}/{}/{}", ep.ip, ep.port)
}

fn add_port(rs: &mut Ruleset, sp: &ServicePort, opts: &Options) {
    let k = &sp.key;
    let proto = sp.proto.nft();
    let vip = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);
    let np = sp.node_port.map(|n| format!("{proto} . {n}"));
    if sp.endpoints.is_empty() {
        element(rs, NO_EP_SERVICES, vip, "goto reject-chain".into());
        if let Some(np) = np {
            element(rs, NO_EP_NODEPORTS, np, "goto reject-chain".into());
        }
        return;
    }
    for ep in &sp.endpoints {
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", ep.ip)];
        if let Some(t) = sp.affinity {
            let set = aff_set(k, ep, t);
            rs.sets.insert(
                set.clone(),
                format!("{{ type ipv4_addr; flags dynamic,timeout; timeout {t}s; }}"),
            );
            rules.push(format!("update @{set} {{ ip saddr }}"));
        }
        rules.push(format!(
            "meta l4proto {proto} dnat to {}:{}",
            ep.ip, ep.port
        ));
        rs.chains.insert(ep_chain(k, ep), rules);
    }
    let all: Vec<&Endpoint> = sp.endpoints.iter().collect();
    let local: Vec<&Endpoint> = sp.endpoints.iter().filter(|e| e.local).collect();
    if !sp.internal_local || sp.node_port.is_some() {
        rs.chains
            .insert(format!("clu-{k}"), balance(k, &all, sp.affinity));
    }
    if sp.internal_local || (sp.node_port.is_some() && sp.external_local) {
        rs.chains
            .insert(format!("loc-{k}"), balance(k, &local, sp.affinity));
    }
    let mut svc = Vec::new();
    if opts.masquerade_all {
        svc.push("jump mark-for-masquerade".to_string());
    } else if let Some(cidr) = &opts.cluster_cidr {
        svc.push(format!("ip saddr != {cidr} jump mark-for-masquerade"));
    }
    let target = if sp.internal_local { "loc" } else { "clu" };
    svc.push(format!("goto {target}-{k}"));
    rs.chains.insert(format!("svc-{k}"), svc);
    element(rs, SERVICE_IPS, vip, format!("goto svc-{k}"));
    if let Some(np) = np {
        let ext = if sp.external_local {
            let mut r = vec![
                "fib saddr type local jump mark-for-masquerade".to_string(),
                format!("fib saddr type local goto clu-{k}"),
            ];
            if let Some(cidr) = &opts.cluster_cidr {
                r.push(format!("ip saddr {cidr} goto clu-{k}"));
            }
            r.push(format!("goto loc-{k}"));
            r
        } else {
            vec![
                "jump mark-for-masquerade".to_string(),
                format!("goto clu-{k}"),
            ]
        };
        rs.chains.insert(format!("ext-{k}"), ext);
        element(rs, SERVICE_NODEPORTS, np, format!("goto ext-{k}"));
    }
}

/// Rules that pick one endpoint: an affinity hit first, else at random.
/// No endpoints (a `Local` policy with none on this node) drops.
fn balance(key: &str, eps: &[&Endpoint], affinity: Option<u32>) -> Vec<String> {
    if eps.is_empty() {
        return vec!["drop".to_string()];
    }
    let mut rules = Vec::new();
    if let Some(t) = affinity {
        for ep in eps {
            rules.push(format!(
                "ip saddr @{} goto {}",
                aff_set(key, ep, t),
                ep_chain(key, ep)
            ));
        }
    }
    if let [one] = eps {
        rules.push(format!("goto {}", ep_chain(key, one)));
    } else {
        let arms: Vec<String> = eps
            .iter()
            .enumerate()
            .map(|(i, ep)| format!("{i} : goto {}", ep_chain(key, ep)))
            .collect();
        rules.push(format!(
            "numgen random mod {} vmap {{ {} }}",
            eps.len(),
            arms.join(", ")
        ));
    }
    rules
}
