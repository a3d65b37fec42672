//! What the proxy programs, computed from API objects without any I/O: one
//! [`ServicePort`] per (Service, port) with the endpoints that may receive
//! its traffic, following kube-proxy's rules for EndpointSlices (ready
//! endpoints; serving-and-terminating ones only when none is ready).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A transport protocol nftables can match with `meta l4proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// The nft keyword (`tcp`, `udp`, `sctp`).
    pub fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One backend address of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// Runs on this proxy's node (for the `Local` traffic policies).
    pub local: bool,
}

/// One port of one Service, with what the rules need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name/proto/port-name-or-number`: unique, and safe in nft names.
    pub key: String,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub node_port: Option<u16>,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity: Option<u32>,
    pub external_local: bool,
    pub internal_local: bool,
    /// Usable endpoints, sorted and without duplicates.
    pub endpoints: Vec<Endpoint>,
}

/// Endpoint IPs and ports of one Service, gathered from its slices.
#[derive(Debug, Default)]
struct Backends {
    /// (port name, proto) → endpoints: (ready, serving && terminating).
    by_port: BTreeMap<(String, Proto), (BTreeSet<Endpoint>, BTreeSet<Endpoint>)>,
}

fn collect_backends<'a>(
    slices: impl Iterator<Item = &'a EndpointSlice>,
    node: &str,
) -> BTreeMap<(String, String), Backends> {
    let mut out: BTreeMap<(String, String), Backends> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" || slice.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let (Some(ns), Some(svc)) = (
            slice.metadata.namespace.as_deref(),
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL)),
        ) else {
            continue;
        };
        let backends = out.entry((ns.to_string(), svc.clone())).or_default();
        for port in slice.ports.iter().flatten() {
            let (Some(proto), Some(num)) = (
                Proto::parse(port.protocol.as_deref()),
                port.port.and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            let name = port.name.clone().unwrap_or_default();
            let sets = backends.by_port.entry((name, proto)).or_default();
            for ep in &slice.endpoints {
                let cond = ep.conditions.as_ref();
                let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                let local = ep.node_name.as_deref() == Some(node) && !node.is_empty();
                for addr in &ep.addresses {
                    let Ok(ip) = addr.parse::<Ipv4Addr>() else {
                        continue;
                    };
                    let e = Endpoint {
                        ip,
                        port: num,
                        local,
                    };
                    if ready {
                        sets.0.insert(e);
                    } else if serving && terminating {
                        sets.1.insert(e);
                    }
                }
            }
        }
    }
    out
}

/// Computes every programmable service port. Headless and ExternalName
/// Services, and ports whose protocol nft cannot match, yield nothing.
pub fn build<'a>(
    services: impl Iterator<Item = &'a Service>,
    slices: impl Iterator<Item = &'a EndpointSlice>,
    node: &str,
) -> Vec<ServicePort> {
    let backends = collect_backends(slices, node);
    let empty = Backends::default();
    let mut out = Vec::new();
    for svc in services {
        let (Some(ns), Some(name), Some(spec)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
            svc.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue; // headless ("None"), unset or IPv6
        };
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(10800)
        });
        let b = backends
            .get(&(ns.to_string(), name.to_string()))
            .unwrap_or(&empty);
        for p in spec.ports.iter().flatten() {
            let (Some(proto), Ok(port)) =
                (Proto::parse(p.protocol.as_deref()), u16::try_from(p.port))
            else {
                continue;
            };
            let pname = p.name.clone().unwrap_or_default();
            let endpoints = match b.by_port.get(&(pname.clone(), proto)) {
                Some((ready, _)) if !ready.is_empty() => ready.iter().cloned().collect(),
                Some((_, terminating)) => terminating.iter().cloned().collect(),
                None => Vec::new(),
            };
            let label = if pname.is_empty() {
                port.to_string()
            } else {
                pname
            };
            out.push(ServicePort {
                key: format!("{ns}/{name}/{}/{label}", proto.nft()),
                cluster_ip,
                port,
                proto,
                node_port: p
                    .node_port
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n > 0),
                affinity,
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                endpoints,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ready_endpoints_by_port_name_and_terminating_fallback() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.5", "type": "NodePort", "sessionAffinity": "ClientIP",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}}));
        let es = slice(json!({"metadata": {"name": "web-1", "namespace": "ns",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["10.42.0.2"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.42.0.3"], "conditions": {"ready": false}},
                {"addresses": ["10.42.0.4"]}]}));
        let out = build([&s].into_iter(), [&es].into_iter(), "n1");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].key, "ns/web/tcp/http");
        assert_eq!(out[0].node_port, Some(30080));
        assert_eq!(out[0].affinity, Some(10800));
        let ips: Vec<String> = out[0]
            .endpoints
            .iter()
            .map(|e| format!("{}:{}", e.ip, e.port))
            .collect();
        assert_eq!(ips, ["10.42.0.2:8080", "10.42.0.4:8080"]);
        assert!(out[0].endpoints[0].local && !out[0].endpoints[1].local);
        assert_eq!(out[1].key, "ns/web/udp/dns");
        assert_eq!(out[1].endpoints[0].port, 5353);

        let term = slice(json!({"metadata": {"name": "web-1", "namespace": "ns",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.42.0.9"], "conditions": {"ready": false, "serving": true, "terminating": true}}]}));
        let out = build([&s].into_iter(), [&term].into_iter(), "n1");
        assert_eq!(out[0].endpoints.len(), 1);
        assert_eq!(out[0].endpoints[0].ip.to_string(), "10.42.0.9");
    }

    #[test]
    fn headless_and_external_name_get_nothing() {
        let h = svc(json!({"metadata": {"name": "h", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
        let e = svc(json!({"metadata": {"name": "e", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}));
        assert!(build([&h, &e].into_iter(), std::iter::empty(), "").is_empty());
    }
}
