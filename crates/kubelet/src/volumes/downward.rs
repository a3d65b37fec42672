//! The downward API's value rules, shared by downwardAPI volumes and env
//! vars: `fieldRef` paths of the Pod (`metadata.name`, `metadata.labels`,
//! `metadata.annotations['k']`, …) and `resourceFieldRef` requests/limits of
//! a container divided by a divisor and rounded up, with limits that are not
//! set falling back to the node's allocatable, as upstream does.

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use std::collections::BTreeMap;

/// The node's allocatable cpu (milli-cores) and memory/ephemeral storage
/// (bytes): the value of a limit a container did not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu_milli: i128,
    pub memory: i128,
    pub ephemeral_storage: i128,
}

impl Allocatable {
    /// This host's cpus and memory (ephemeral storage: 0 when unknown).
    pub fn detect() -> Allocatable {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: i128 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(0);
        Allocatable {
            cpu_milli: i128::try_from(cpus).unwrap_or(1) * 1000,
            memory,
            ephemeral_storage: 0,
        }
    }
}

/// Why a downward API value could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownwardError {
    #[error("unsupported fieldPath {0:?}")]
    FieldPath(String),
    #[error("unsupported resource {0:?}")]
    Resource(String),
    #[error("container {0:?} not found in the pod")]
    Container(String),
    #[error("invalid divisor {0:?}")]
    Divisor(String),
}

/// The value of a `fieldRef` for `pod`.
pub fn field_value(pod: &Pod, sel: &ObjectFieldSelector) -> Result<String, DownwardError> {
    let meta = &pod.metadata;
    let path = sel.field_path.as_str();
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let s = |v: Option<&String>| v.cloned().unwrap_or_default();
    Ok(match path {
        "metadata.name" => s(meta.name.as_ref()),
        "metadata.namespace" => s(meta.namespace.as_ref()),
        "metadata.uid" => s(meta.uid.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => s(spec.and_then(|p| p.node_name.as_ref())),
        "spec.serviceAccountName" => s(spec.and_then(|p| p.service_account_name.as_ref())),
        "status.hostIP" => s(status.and_then(|p| p.host_ip.as_ref())),
        "status.podIP" => s(status.and_then(|p| p.pod_ip.as_ref())),
        "status.hostIPs" => ips(status
            .and_then(|p| p.host_ips.as_ref())
            .map(|v| v.iter().map(|i| i.ip.clone()).collect::<Vec<_>>())),
        "status.podIPs" => ips(status
            .and_then(|p| p.pod_ips.as_ref())
            .map(|v| v.iter().map(|i| i.ip.clone()).collect::<Vec<_>>())),
        _ => {
            if let Some(key) = subscript(path, "metadata.labels") {
                s(meta.labels.as_ref().and_then(|m| m.get(key)))
            } else if let Some(key) = subscript(path, "metadata.annotations") {
                s(meta.annotations.as_ref().and_then(|m| m.get(key)))
            } else {
                return Err(DownwardError::FieldPath(path.to_string()));
            }
        }
    })
}

fn ips(list: Option<Vec<String>>) -> String {
    list.unwrap_or_default().join(",")
}

/// `metadata.labels['key']` → `key`.
fn subscript<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?
        .strip_prefix("['")?
        .strip_suffix("']")
}

/// Upstream's labels/annotations file: sorted `key="value"` lines.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a `resourceFieldRef`; `default_container` names the
/// container when the selector does not (env vars of that container).
pub fn resource_value(
    pod: &Pod,
    sel: &ResourceFieldSelector,
    default_container: Option<&str>,
    node: &Allocatable,
) -> Result<String, DownwardError> {
    let name = sel
        .container_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or(default_container)
        .unwrap_or_default();
    let container = find_container(pod, name)?;
    let (kind, resource) = sel
        .resource
        .split_once('.')
        .ok_or_else(|| DownwardError::Resource(sel.resource.clone()))?;
    let res = container.resources.as_ref();
    let set = match kind {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => return Err(DownwardError::Resource(sel.resource.clone())),
    }
    .and_then(|m| m.get(resource))
    .and_then(|q| api::quantity::Quantity::parse(&q.0).ok());
    let fallback = match resource {
        "cpu" => node.cpu_milli,
        "memory" => node.memory * 1000,
        "ephemeral-storage" => node.ephemeral_storage * 1000,
        r if r.starts_with("hugepages-") => 0,
        _ => return Err(DownwardError::Resource(sel.resource.clone())),
    };
    let milli = match (set, kind) {
        (Some(q), _) => q.milli_value(),
        (None, "limits") => fallback,
        (None, _) => 0,
    };
    let divisor = match &sel.divisor {
        Some(d) => api::quantity::Quantity::parse(&d.0)
            .map_err(|_| DownwardError::Divisor(d.0.clone()))?
            .milli_value(),
        None => 1000,
    };
    if divisor <= 0 {
        let shown = sel
            .divisor
            .as_ref()
            .map(|d| d.0.clone())
            .unwrap_or_default();
        return Err(DownwardError::Divisor(shown));
    }
    // Ceiling division of non-negative milli values.
    Ok(((milli + divisor - 1).div_euclid(divisor)).to_string())
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, DownwardError> {
    let spec = pod.spec.as_ref();
    let all = spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    let mut all = all;
    all.find(|c| c.name == name)
        .ok_or_else(|| DownwardError::Container(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                "labels": {"b": "2", "a": "x\"y"}, "annotations": {"k": "v"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]},
            "status": {"podIP": "10.0.0.5"}
        }))
        .expect("pod json")
    }

    fn field(path: &str) -> String {
        let sel = ObjectFieldSelector {
            field_path: path.into(),
            api_version: None,
        };
        field_value(&pod(), &sel).expect(path)
    }

    #[test]
    fn field_refs() {
        assert_eq!(field("metadata.name"), "p");
        assert_eq!(field("metadata.namespace"), "ns");
        assert_eq!(field("metadata.uid"), "u-1");
        assert_eq!(field("metadata.labels"), "a=\"x\\\"y\"\nb=\"2\"");
        assert_eq!(field("metadata.annotations['k']"), "v");
        assert_eq!(field("spec.nodeName"), "n1");
        assert_eq!(field("status.podIP"), "10.0.0.5");
        let sel = ObjectFieldSelector {
            field_path: "spec.bogus".into(),
            api_version: None,
        };
        assert!(field_value(&pod(), &sel).is_err());
    }

    fn resource(res: &str, divisor: Option<&str>) -> String {
        let sel = ResourceFieldSelector {
            container_name: Some("c".into()),
            resource: res.into(),
            divisor: divisor.map(|d| Quantity(d.into())),
        };
        let node = Allocatable {
            cpu_milli: 2000,
            memory: 1 << 30,
            ephemeral_storage: 0,
        };
        resource_value(&pod(), &sel, None, &node).expect(res)
    }

    #[test]
    fn resource_refs_round_up_and_fall_back_to_the_node() {
        assert_eq!(resource("limits.memory", None), (64u64 << 20).to_string());
        assert_eq!(resource("limits.memory", Some("1Mi")), "64");
        assert_eq!(resource("requests.cpu", None), "1");
        assert_eq!(resource("requests.cpu", Some("1m")), "250");
        assert_eq!(resource("limits.cpu", None), "2");
        assert_eq!(resource("requests.memory", None), "0");
    }
}
