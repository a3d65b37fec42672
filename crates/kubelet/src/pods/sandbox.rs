//! The pod sandbox: its CRI config (hostname, DNS, hostPort mappings,
//! namespaces, cgroup parent, log directory, identifying labels) and the
//! per-pod files the kubelet writes and mounts: /etc/hosts and resolv.conf.

use crate::cri::{LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID};
use crate::error::{io, Result};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use std::path::{Path, PathBuf};

/// Annotation on the sandbox naming the pod cgroup (so orphans can be cleaned).
pub const ANNOTATION_POD_CGROUP: &str = "bosun.dev/pod-cgroup";

const NODE: i32 = v1::NamespaceMode::Node as i32;
const POD: i32 = v1::NamespaceMode::Pod as i32;
const CONTAINER: i32 = v1::NamespaceMode::Container as i32;

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

pub fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

pub fn spec(pod: &Pod) -> PodSpec {
    pod.spec.clone().unwrap_or_default()
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// `/var/log/pods/<ns>_<name>_<uid>`.
pub fn log_dir(root: &Path, pod: &Pod) -> PathBuf {
    root.join(format!("{}_{}_{}", namespace(pod), name(pod), uid(pod)))
}

/// The pod's hostname: spec.hostname or its name, at most 63 characters.
pub fn hostname(pod: &Pod) -> String {
    let s = spec(pod);
    let mut h = s.hostname.unwrap_or_else(|| name(pod).to_string());
    h.truncate(63);
    h.trim_end_matches(['-', '.']).to_string()
}

/// The namespaces of the pod's containers (network and IPC shared by the sandbox).
pub fn namespace_options(pod: &Pod) -> v1::NamespaceOption {
    let s = spec(pod);
    v1::NamespaceOption {
        network: if s.host_network.unwrap_or(false) {
            NODE
        } else {
            POD
        },
        pid: if s.host_pid.unwrap_or(false) {
            NODE
        } else if s.share_process_namespace.unwrap_or(false) {
            POD
        } else {
            CONTAINER
        },
        ipc: if s.host_ipc.unwrap_or(false) {
            NODE
        } else {
            POD
        },
        ..Default::default()
    }
}

/// Labels identifying the pod on CRI objects (upstream's keys).
pub fn pod_labels(pod: &Pod) -> std::collections::HashMap<String, String> {
    let mut labels: std::collections::HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.insert(LABEL_POD_UID.into(), uid(pod).into());
    labels.insert(LABEL_POD_NAME.into(), name(pod).into());
    labels.insert(LABEL_POD_NAMESPACE.into(), namespace(pod).into());
    labels
}

fn port_mappings(pod: &Pod) -> Vec<v1::PortMapping> {
    spec(pod)
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| v1::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => v1::Protocol::Udp as i32,
                Some("SCTP") => v1::Protocol::Sctp as i32,
                _ => v1::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect()
}

/// The sandbox config for attempt `attempt`.
pub fn config(
    pod: &Pod,
    attempt: u32,
    log_root: &Path,
    cgroup_parent: &str,
    dns: Option<v1::DnsConfig>,
) -> v1::PodSandboxConfig {
    let s = spec(pod);
    let mut annotations: std::collections::HashMap<String, String> = pod
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    annotations.insert(ANNOTATION_POD_CGROUP.into(), cgroup_parent.into());
    let sec = s.security_context.clone().unwrap_or_default();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name(pod).into(),
            uid: uid(pod).into(),
            namespace: namespace(pod).into(),
            attempt,
        }),
        hostname: hostname(pod),
        log_directory: log_dir(log_root, pod).display().to_string(),
        dns_config: dns,
        port_mappings: port_mappings(pod),
        labels: pod_labels(pod),
        annotations,
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: sec.run_as_user.map(|value| v1::Int64Value { value }),
                run_as_group: sec.run_as_group.map(|value| v1::Int64Value { value }),
                supplemental_groups: sec.supplemental_groups.clone().unwrap_or_default(),
                ..Default::default()
            }),
            sysctls: sec
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The DNS settings for the pod's policy; `cluster_dns` is the kube-dns
/// Service's ClusterIP when it exists.
pub fn dns_config(pod: &Pod, cluster_dns: Option<&str>, domain: &str) -> v1::DnsConfig {
    let s = spec(pod);
    let policy = s
        .dns_policy
        .clone()
        .unwrap_or_else(|| "ClusterFirst".into());
    let host_net = s.host_network.unwrap_or(false);
    let cluster = match policy.as_str() {
        "ClusterFirst" => !host_net,
        "ClusterFirstWithHostNet" => true,
        _ => false,
    };
    let mut cfg = v1::DnsConfig::default();
    match (policy.as_str(), cluster, cluster_dns) {
        ("None", ..) => {}
        (_, true, Some(ip)) => {
            let ns = namespace(pod);
            cfg.servers = vec![ip.to_string()];
            cfg.searches = vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ];
            cfg.options = vec!["ndots:5".into()];
        }
        _ => parse_resolv(&crate::host::host_resolv_conf(), &mut cfg),
    }
    if let Some(extra) = s.dns_config {
        cfg.servers.extend(extra.nameservers.unwrap_or_default());
        cfg.searches.extend(extra.searches.unwrap_or_default());
        for o in extra.options.unwrap_or_default() {
            let name = o.name.unwrap_or_default();
            cfg.options
                .retain(|x| x.split(':').next() != Some(name.as_str()));
            cfg.options.push(match o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    cfg
}

fn parse_resolv(text: &str, cfg: &mut v1::DnsConfig) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => cfg.servers.extend(words.map(String::from)),
            Some("search") => cfg.searches = words.map(String::from).collect(),
            Some("options") => cfg.options.extend(words.map(String::from)),
            _ => {}
        }
    }
}

/// resolv.conf text for a DNS config.
pub fn resolv_conf(cfg: &v1::DnsConfig) -> String {
    let mut out = String::new();
    for s in &cfg.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !cfg.searches.is_empty() {
        out.push_str(&format!("search {}\n", cfg.searches.join(" ")));
    }
    if !cfg.options.is_empty() {
        out.push_str(&format!("options {}\n", cfg.options.join(" ")));
    }
    out
}

/// The pod's /etc/hosts: localhost entries, its own IP and name, hostAliases.
pub fn hosts_file(pod: &Pod, ip: &str, domain: &str) -> String {
    let s = spec(pod);
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if !ip.is_empty() {
        let host = hostname(pod);
        match &s.subdomain {
            Some(sub) if !sub.is_empty() => out.push_str(&format!(
                "{ip}\t{host}.{sub}.{}.svc.{domain}\t{host}\n",
                namespace(pod)
            )),
            _ => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    for alias in s.host_aliases.iter().flatten() {
        let names = alias.hostnames.clone().unwrap_or_default().join("\t");
        out.push_str(&format!(
            "# Entries added by HostAliases.\n{}\t{names}\n",
            alias.ip
        ));
    }
    out
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    Ok(path)
}
