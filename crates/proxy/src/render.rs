//! The desired contents of the `ip bosun` nftables table: fixed hook chains
//! and named maps ([`base`]), plus one [`Fragment`] per service port (its
//! chains, affinity sets and map/set elements), laid out like kube-proxy's
//! nftables mode but with few chains: `nft` reads every chain of the table
//! before each transaction, so the chain count, not the change, sets the
//! cost of a sync.
//!
//! Packet paths (nat hooks at dstnat/srcnat, filter hooks at -110 so they see
//! the ClusterIP before DNAT):
//! - prerouting/output → `services`: `daddr . proto . dport` in the
//!   `service-ips` vmap → `svc-K`: masquerade mark for traffic from outside
//!   the cluster CIDR, then the balancing rule — `dnat ip to numgen random
//!   mod N map { i : ip . port }` (one rule, no per-endpoint chains), or,
//!   with `sessionAffinity: ClientIP`, affinity-set lookups and a vmap to
//!   per-endpoint `ep-K/IP/PORT` chains that record the client and DNAT.
//! - NodePorts on every local address but 127/8 (`fib daddr type local`) via
//!   the `service-nodeports` vmap → `ext-K` (masquerade; `Local` policy
//!   keeps the client address and only uses local endpoints: `loc-K`,
//!   else `clu-K`).
//! - ports without endpoints sit in `no-endpoint-*` vmaps, checked in the
//!   filter input/forward/output hooks → `reject-chain` (TCP reset, else
//!   ICMP port unreachable).
//! - postrouting → `masquerading`: DNATed packets from an endpoint to itself
//!   (hairpin: `saddr . daddr` in the `hairpin` set) and packets carrying
//!   mark 0x4000 are masqueraded.

use crate::model::{Endpoint, ServicePort};
use std::collections::{BTreeMap, BTreeSet};

/// The table, as nft names it.
pub const TABLE: &str = "ip bosun";
pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NO_EP_SERVICES: &str = "no-endpoint-services";
pub const NO_EP_NODEPORTS: &str = "no-endpoint-nodeports";
/// Set of `endpoint . endpoint` pairs: a DNATed packet whose source and
/// destination form one is a pod reaching itself through a Service.
pub const HAIRPIN: &str = "hairpin";

/// How traffic to ClusterIPs is masqueraded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Pod network: traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    /// Masquerade all ClusterIP traffic (needed when bridged replies would
    /// bypass conntrack, i.e. without br_netfilter).
    pub masquerade_all: bool,
}

/// One element of a named map or set: (map, key, value; "" in a set).
pub type Element = (&'static str, String, String);

/// What one service port puts in the table. Chain and set names carry the
/// port's key, so no two fragments share one; elements may be shared
/// (hairpin pairs of an endpoint in two Services) and are counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Regular chains with their rules.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Named sets with their declaration.
    pub sets: BTreeMap<String, String>,
    pub elements: BTreeSet<Element>,
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
        format!("add set {t} {HAIRPIN} {{ type ipv4_addr . ipv4_addr; }}"),
        format!("add chain {t} mark-for-masquerade"),
        format!("add rule {t} mark-for-masquerade meta mark set meta mark | 0x4000"),
        format!("add chain {t} masquerading"),
        format!("add rule {t} masquerading ct status dnat ip saddr . ip daddr @{HAIRPIN} masquerade fully-random"),
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

/// Computes the fragments of `ports`, by port key.
pub fn render(ports: &[ServicePort], opts: &Options) -> BTreeMap<String, Fragment> {
    ports
        .iter()
        .map(|sp| (sp.key.clone(), fragment(sp, opts)))
        .collect()
}

fn ep_chain(key: &str, ep: &Endpoint) -> String {
    format!("ep-{key}/{}/{}", ep.ip, ep.port)
}

fn aff_set(key: &str, ep: &Endpoint, timeout: u32) -> String {
    format!("aff{timeout}-{key}/{}/{}", ep.ip, ep.port)
}

/// What one service port needs.
pub fn fragment(sp: &ServicePort, opts: &Options) -> Fragment {
    let mut f = Fragment::default();
    let k = &sp.key;
    let proto = sp.proto.nft();
    let vip = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);
    let np = sp.node_port.map(|n| format!("{proto} . {n}"));
    if sp.endpoints.is_empty() {
        let reject = || "goto reject-chain".to_string();
        f.elements.insert((NO_EP_SERVICES, vip, reject()));
        if let Some(np) = np {
            f.elements.insert((NO_EP_NODEPORTS, np, reject()));
        }
        return f;
    }
    for ep in &sp.endpoints {
        f.elements
            .insert((HAIRPIN, format!("{0} . {0}", ep.ip), String::new()));
        if let Some(t) = sp.affinity {
            let set = aff_set(k, ep, t);
            let rules = vec![
                format!("update @{set} {{ ip saddr }}"),
                format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port),
            ];
            f.sets.insert(
                set,
                format!("{{ type ipv4_addr; flags dynamic,timeout; timeout {t}s; }}"),
            );
            f.chains.insert(ep_chain(k, ep), rules);
        }
    }
    let all: Vec<&Endpoint> = sp.endpoints.iter().collect();
    let local: Vec<&Endpoint> = sp.endpoints.iter().filter(|e| e.local).collect();
    let mut svc = Vec::new();
    if opts.masquerade_all {
        svc.push("jump mark-for-masquerade".to_string());
    } else if let Some(cidr) = &opts.cluster_cidr {
        svc.push(format!("ip saddr != {cidr} jump mark-for-masquerade"));
    }
    let internal = if sp.internal_local { &local } else { &all };
    svc.extend(balance(sp, internal));
    f.chains.insert(format!("svc-{k}"), svc);
    f.elements
        .insert((SERVICE_IPS, vip, format!("goto svc-{k}")));
    if let Some(np) = np {
        f.chains.insert(format!("clu-{k}"), balance(sp, &all));
        let ext = if sp.external_local {
            f.chains.insert(format!("loc-{k}"), balance(sp, &local));
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
        f.chains.insert(format!("ext-{k}"), ext);
        f.elements
            .insert((SERVICE_NODEPORTS, np, format!("goto ext-{k}")));
    }
    f
}

/// Rules that pick one endpoint of `eps` at random (an affinity hit
/// first). No endpoints (a `Local` policy with none on this node) drops.
fn balance(sp: &ServicePort, eps: &[&Endpoint]) -> Vec<String> {
    let key = &sp.key;
    let proto = sp.proto.nft();
    let mut rules = Vec::new();
    match (eps, sp.affinity) {
        ([], _) => rules.push("drop".to_string()),
        ([one], None) => rules.push(format!(
            "meta l4proto {proto} dnat to {}:{}",
            one.ip, one.port
        )),
        (_, None) => {
            let arms: Vec<String> = eps
                .iter()
                .enumerate()
                .map(|(i, ep)| format!("{i} : {} . {}", ep.ip, ep.port))
                .collect();
            rules.push(format!(
                "meta l4proto {proto} dnat ip to numgen random mod {} map {{ {} }}",
                eps.len(),
                arms.join(", ")
            ));
        }
        (_, Some(t)) => {
            for ep in eps {
                rules.push(format!(
                    "ip saddr @{} goto {}",
                    aff_set(key, ep, t),
                    ep_chain(key, ep)
                ));
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
        }
    }
    rules
}
