//! Resources: Kubernetes quantities, QoS classes, the CRI resources of a
//! container, and the pod cgroup hierarchy (cgroupfs driver):
//! `<root>/kubepods[/burstable|/besteffort]/pod<uid>`, with the pod's summed
//! limits, under which the runtime puts each container's cgroup.

use crate::error::{Error, Result};
use k8s_cri::v1::LinuxContainerResources;
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// CFS period the kubelet uses (100 ms).
pub const CPU_PERIOD: i64 = 100_000;
const MIN_SHARES: i64 = 2;

/// A Kubernetes quantity as a number ("200m" → 0.2, "64Mi" → 67108864).
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(value * mult)
}

fn get(map: Option<&BTreeMap<String, Quantity>>, key: &str) -> Option<f64> {
    map.and_then(|m| m.get(key))
        .and_then(|q| parse_quantity(&q.0))
}

/// A container's cpu (millicores) and memory (bytes) requests and limits;
/// a request defaults to the limit, as the API server's defaulting does.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Amounts {
    pub cpu_request: Option<i64>,
    pub cpu_limit: Option<i64>,
    pub mem_request: Option<i64>,
    pub mem_limit: Option<i64>,
}

impl Amounts {
    pub fn of(r: Option<&ResourceRequirements>) -> Self {
        let lim = r.and_then(|r| r.limits.as_ref());
        let req = r.and_then(|r| r.requests.as_ref());
        let milli = |v: f64| (v * 1000.0).ceil() as i64;
        let cpu_limit = get(lim, "cpu").map(milli);
        let mem_limit = get(lim, "memory").map(|v| v.ceil() as i64);
        Self {
            cpu_request: get(req, "cpu").map(milli).or(cpu_limit),
            cpu_limit,
            mem_request: get(req, "memory").map(|v| v.ceil() as i64).or(mem_limit),
            mem_limit,
        }
    }
}

/// The pod's QoS class, as upstream computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "Guaranteed",
            Qos::Burstable => "Burstable",
            Qos::BestEffort => "BestEffort",
        }
    }
}

fn all_containers(pod: &Pod) -> Vec<&Container> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
                .collect()
        })
        .unwrap_or_default()
}

pub fn qos(pod: &Pod) -> Qos {
    let amounts: Vec<Amounts> = all_containers(pod)
        .iter()
        .map(|c| Amounts::of(c.resources.as_ref()))
        .collect();
    if amounts.iter().all(|a| *a == Amounts::default()) {
        return Qos::BestEffort;
    }
    let guaranteed = amounts.iter().all(|a| {
        a.cpu_limit.is_some()
            && a.mem_limit.is_some()
            && a.cpu_request == a.cpu_limit
            && a.mem_request == a.mem_limit
    });
    if guaranteed {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

fn shares(milli: Option<i64>) -> i64 {
    milli.map_or(MIN_SHARES, |m| (m * 1024 / 1000).max(MIN_SHARES))
}

fn quota(milli: i64) -> i64 {
    (milli * CPU_PERIOD / 1000).max(1000)
}

/// The CRI resources of one container.
pub fn container_resources(c: &Container) -> LinuxContainerResources {
    let a = Amounts::of(c.resources.as_ref());
    LinuxContainerResources {
        cpu_shares: shares(a.cpu_request),
        cpu_quota: a.cpu_limit.map_or(0, quota),
        cpu_period: if a.cpu_limit.is_some() { CPU_PERIOD } else { 0 },
        memory_limit_in_bytes: a.mem_limit.unwrap_or(0),
        ..Default::default()
    }
}

/// The pod's cgroup path (cgroupfs), e.g. `/kubepods/burstable/pod<uid>`.
pub fn pod_cgroup_path(root: &str, pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let class = match qos(pod) {
        Qos::Guaranteed => String::new(),
        Qos::Burstable => "/burstable".into(),
        Qos::BestEffort => "/besteffort".into(),
    };
    format!("{}/kubepods{class}/pod{uid}", root.trim_end_matches('/'))
}

/// The pod-level limits: summed when every container has one.
fn pod_resources(pod: &Pod) -> Result<oci_spec::runtime::LinuxResources> {
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};
    let spec_containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let amounts: Vec<Amounts> = spec_containers
        .iter()
        .map(|c| Amounts::of(c.resources.as_ref()))
        .collect();
    let sum = |f: fn(&Amounts) -> Option<i64>| -> Option<i64> {
        amounts.iter().map(f).sum::<Option<i64>>()
    };
    let req: i64 = amounts.iter().filter_map(|a| a.cpu_request).sum();
    let bad = |e: oci_spec::OciSpecError| Error::Config(format!("pod cgroup resources: {e}"));
    let mut cpu = LinuxCpuBuilder::default().shares(shares(Some(req).filter(|r| *r > 0)) as u64);
    if let Some(l) = sum(|a| a.cpu_limit) {
        cpu = cpu.quota(quota(l)).period(CPU_PERIOD as u64);
    }
    let mut b = LinuxResourcesBuilder::default().cpu(cpu.build().map_err(bad)?);
    if let Some(m) = sum(|a| a.mem_limit) {
        b = b.memory(
            LinuxMemoryBuilder::default()
                .limit(m)
                .build()
                .map_err(bad)?,
        );
    }
    b.build().map_err(bad)
}

fn named(path: &str) -> Result<cgroups::Cgroup> {
    let err = |source| Error::Cgroup {
        path: path.to_string(),
        source,
    };
    let h = cgroups::Hierarchy::detect().map_err(err)?;
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    let _ = parent;
    cgroups::Cgroup::new(&h, Some(path), id).map_err(err)
}

/// Creates the pod cgroup with its limits (idempotent).
pub fn create_pod_cgroup(path: &str, pod: &Pod) -> Result<()> {
    let cg = named(path)?;
    let err = |source| Error::Cgroup {
        path: path.to_string(),
        source,
    };
    cg.create().map_err(err)?;
    cg.apply(&pod_resources(pod)?).map_err(err)
}

/// Removes the pod cgroup (killing stragglers); its QoS parents stay.
pub fn remove_pod_cgroup(path: &str) -> Result<()> {
    named(path)?.destroy().map_err(|source| Error::Cgroup {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("200m"), Some(0.2));
        assert_eq!(parse_quantity("64Mi"), Some(67108864.0));
        assert_eq!(parse_quantity("1"), Some(1.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("2G"), Some(2e9));
        assert_eq!(parse_quantity("x"), None);
    }

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "u1"},
            "spec": {"containers": [{"name": "c", "resources": resources}]},
        }))
        .unwrap_or_default()
    }

    #[test]
    fn qos_classes_and_paths() {
        let g = pod(serde_json::json!({"limits": {"cpu": "200m", "memory": "64Mi"}}));
        assert_eq!(qos(&g), Qos::Guaranteed);
        assert_eq!(pod_cgroup_path("/", &g), "/kubepods/podu1");
        let b = pod(serde_json::json!({"requests": {"cpu": "100m"}}));
        assert_eq!(qos(&b), Qos::Burstable);
        assert_eq!(pod_cgroup_path("/t", &b), "/t/kubepods/burstable/podu1");
        let e = pod(serde_json::json!({}));
        assert_eq!(qos(&e), Qos::BestEffort);
        let spec = g
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        let r = container_resources(&spec);
        assert_eq!(
            (r.cpu_quota, r.cpu_period, r.cpu_shares),
            (20_000, 100_000, 204)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
    }
}
