//! The cluster zone as data: a snapshot of Services and their ready
//! endpoints, and the pure lookup of one question against it (the names
//! the Kubernetes DNS specification defines, under one cluster domain).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A named port: (name, lowercase protocol, port).
pub type NamedPort = (String, String, u16);

/// One ready endpoint of a headless Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ep {
    pub ip: Ipv4Addr,
    /// `hostname` from the slice, else the dashed IP.
    pub host: String,
}

/// What DNS knows about one Service.
#[derive(Debug, Clone, Default)]
pub struct Svc {
    pub cluster_ip: Option<Ipv4Addr>,
    pub external_name: Option<String>,
    pub ports: Vec<NamedPort>,
    pub endpoints: BTreeSet<Ep>,
    /// Named ports of the endpoints (headless SRV targets use these).
    pub endpoint_ports: BTreeSet<NamedPort>,
}

/// What a question resolves to, before it is put into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Addresses of the name.
    A(Vec<Ipv4Addr>),
    /// An alias (ExternalName).
    Cname(String),
    /// SRV records: (port, target name), with A records of the targets.
    Srv(Vec<(u16, String)>, Vec<(String, Ipv4Addr)>),
    /// The name exists, with no records of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// The question's type, as far as the zone cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qtype {
    A,
    Aaaa,
    Srv,
    Cname,
    Other,
}

/// Services by (namespace, name).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub services: HashMap<(String, String), Svc>,
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

impl Snapshot {
    /// Builds the zone from the caches' contents.
    pub fn build<'a>(
        services: impl Iterator<Item = &'a Service>,
        slices: impl Iterator<Item = &'a EndpointSlice>,
    ) -> Snapshot {
        let mut snap = Snapshot::default();
        for s in services {
            let (Some(ns), Some(name), Some(spec)) = (
                s.metadata.namespace.clone(),
                s.metadata.name.clone(),
                s.spec.as_ref(),
            ) else {
                continue;
            };
            let svc = Svc {
                cluster_ip: spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()),
                external_name: (spec.type_.as_deref() == Some("ExternalName"))
                    .then(|| spec.external_name.clone())
                    .flatten(),
                ports: spec
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| {
                        let name = p.name.clone().filter(|n| !n.is_empty())?;
                        let proto = p.protocol.as_deref().unwrap_or("TCP").to_lowercase();
                        Some((name, proto, u16::try_from(p.port).ok()?))
                    })
                    .collect(),
                ..Svc::default()
            };
            snap.services.insert((ns, name), svc);
        }
        for slice in slices {
            snap.add_slice(slice);
        }
        snap
    }

    fn add_slice(&mut self, slice: &EndpointSlice) {
        let (Some(ns), Some(name)) = (
            slice.metadata.namespace.clone(),
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL).cloned()),
        ) else {
            return;
        };
        let Some(svc) = self.services.get_mut(&(ns, name)) else {
            return;
        };
        for p in slice.ports.iter().flatten() {
            if let (Some(n), Some(port)) = (
                p.name.clone().filter(|n| !n.is_empty()),
                p.port.and_then(|p| u16::try_from(p).ok()),
            ) {
                let proto = p.protocol.as_deref().unwrap_or("TCP").to_lowercase();
                svc.endpoint_ports.insert((n, proto, port));
            }
        }
        for ep in &slice.endpoints {
            if !ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                continue;
            }
            for addr in &ep.addresses {
                if let Ok(ip) = addr.parse::<Ipv4Addr>() {
                    let host = ep.hostname.clone().unwrap_or_else(|| dashed(ip));
                    svc.endpoints.insert(Ep { ip, host });
                }
            }
        }
    }

    /// Answers `labels` (the question name's labels before the cluster
    /// domain, lowercase), e.g. `["web", "default", "svc"]`.
    pub fn lookup(&self, labels: &[&str], qtype: Qtype, domain: &str) -> Answer {
        match labels {
            [svc, ns, "svc"] => self.service(ns, svc, qtype),
            [host, svc, ns, "svc"] if !host.starts_with('_') => {
                match self
                    .headless(ns, svc)
                    .and_then(|s| s.endpoints.iter().find(|e| e.host == *host))
                {
                    Some(ep) => addresses(vec![ep.ip], qtype),
                    None => Answer::NxDomain,
                }
            }
            [port, proto, svc, ns, "svc"] => self.srv(port, proto, svc, ns, qtype, domain),
            [ip, _ns, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(ip) => addresses(vec![ip], qtype),
                Err(_) => Answer::NxDomain,
            },
            [] | ["svc"] | ["pod"] | [_, "svc"] | [_, "pod"] => Answer::NoData,
            _ => Answer::NxDomain,
        }
    }

    fn headless(&self, ns: &str, svc: &str) -> Option<&Svc> {
        self.services
            .get(&(ns.to_string(), svc.to_string()))
            .filter(|s| s.cluster_ip.is_none() && s.external_name.is_none())
    }

    fn service(&self, ns: &str, name: &str, qtype: Qtype) -> Answer {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        if let Some(target) = &svc.external_name {
            return Answer::Cname(target.trim_end_matches('.').to_string());
        }
        match svc.cluster_ip {
            Some(ip) => addresses(vec![ip], qtype),
            None => addresses(svc.endpoints.iter().map(|e| e.ip).collect(), qtype),
        }
    }

    fn srv(
        &self,
        port: &str,
        proto: &str,
        name: &str,
        ns: &str,
        qtype: Qtype,
        domain: &str,
    ) -> Answer {
        let (Some(port), Some(proto)) = (port.strip_prefix('_'), proto.strip_prefix('_')) else {
            return Answer::NxDomain;
        };
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        let base = format!("{name}.{ns}.svc.{domain}");
        let (records, extra) = if svc.cluster_ip.is_some() {
            let recs: Vec<(u16, String)> = svc
                .ports
                .iter()
                .filter(|(n, p, _)| n == port && p == proto)
                .map(|(_, _, num)| (*num, base.clone()))
                .collect();
            let extra = svc
                .cluster_ip
                .map(|ip| vec![(base.clone(), ip)])
                .unwrap_or_default();
            (recs, extra)
        } else {
            let nums: Vec<u16> = svc
                .endpoint_ports
                .iter()
                .filter(|(n, p, _)| n == port && p == proto)
                .map(|(_, _, num)| *num)
                .collect();
            let mut recs = Vec::new();
            let mut extra = Vec::new();
            for ep in &svc.endpoints {
                let target = format!("{}.{base}", ep.host);
                for num in &nums {
                    recs.push((*num, target.clone()));
                }
                extra.push((target, ep.ip));
            }
            (recs, extra)
        };
        match (records.is_empty(), qtype) {
            (true, _) => Answer::NxDomain,
            (false, Qtype::Srv) => Answer::Srv(records, extra),
            (false, _) => Answer::NoData,
        }
    }
}

fn addresses(ips: Vec<Ipv4Addr>, qtype: Qtype) -> Answer {
    match qtype {
        Qtype::A if !ips.is_empty() => Answer::A(ips),
        _ => Answer::NoData,
    }
}
