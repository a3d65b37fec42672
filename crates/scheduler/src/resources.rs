//! Resource arithmetic for scheduling: a pod's effective requests (containers,
//! init containers, overhead) and a node's allocatable, in integer units
//! (milli-CPU, bytes, counts) with extended resources kept by name.

use api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;
use std::collections::BTreeMap;

/// CPU assumed for a container without a request when scoring (upstream's 100m).
pub const DEFAULT_MILLI_CPU: i64 = 100;
/// Memory assumed for a container without a request when scoring (200Mi).
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// An amount of each resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended and hugepage resources by name (counts or bytes).
    pub scalar: BTreeMap<String, i64>,
}

fn quantity(q: &KQuantity, milli: bool) -> i64 {
    match Quantity::parse(&q.0) {
        Ok(q) if milli => i64::try_from(q.milli_value()).unwrap_or(i64::MAX),
        Ok(q) => i64::try_from(q.value()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

impl Resources {
    /// Reads a resource list (`requests`, `allocatable`).
    pub fn from_list(list: &BTreeMap<String, KQuantity>) -> Self {
        let mut r = Resources::default();
        for (name, q) in list {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &KQuantity) {
        match name {
            "cpu" => self.milli_cpu = quantity(q, true),
            "memory" => self.memory = quantity(q, false),
            "ephemeral-storage" => self.ephemeral_storage = quantity(q, false),
            "pods" => self.pods = quantity(q, false),
            other if is_scalar(other) => {
                self.scalar.insert(other.to_string(), quantity(q, false));
            }
            _ => {}
        }
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Element-wise maximum (init containers run one at a time).
    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

/// Extended resources (`vendor/name`) and hugepages count as scalar resources.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
        || name.starts_with("requests.")
}

/// A container's requests; limits stand in for missing requests, as defaulting does.
fn container_requests(c: &Container) -> Resources {
    let Some(res) = &c.resources else {
        return Resources::default();
    };
    let mut r = res
        .limits
        .as_ref()
        .map(Resources::from_list)
        .unwrap_or_default();
    if let Some(req) = &res.requests {
        for (name, q) in req {
            r.set(name, q);
        }
    }
    r
}

/// The pod's effective request: sum of containers (and sidecar init
/// containers), at least the largest init container, plus overhead; pods = 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    let mut total = Resources::default();
    let Some(spec) = &pod.spec else {
        return total;
    };
    for c in &spec.containers {
        total.add(&container_requests(c));
    }
    for c in spec.init_containers.iter().flatten() {
        total.max(&container_requests(c));
    }
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_list(overhead));
    }
    total.pods = 1;
    total
}

/// Requests with upstream's non-zero defaults for CPU and memory, used by scores.
pub fn pod_nonzero_requests(pod: &Pod) -> (i64, i64) {
    let Some(spec) = &pod.spec else {
        return (0, 0);
    };
    let mut cpu = 0;
    let mut mem = 0;
    for c in &spec.containers {
        let r = container_requests(c);
        cpu += if r.milli_cpu == 0 {
            DEFAULT_MILLI_CPU
        } else {
            r.milli_cpu
        };
        mem += if r.memory == 0 {
            DEFAULT_MEMORY
        } else {
            r.memory
        };
    }
    (cpu, mem)
}

/// The node's allocatable (falling back to capacity).
pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    status
        .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
        .map(Resources::from_list)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn sums_containers_and_takes_max_of_init() {
        let p = pod(json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi", "example.com/gpu": "1"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}]
        }}));
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 2000);
        assert_eq!(r.memory, 64 * 1024 * 1024 + 1024 * 1024 * 1024);
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&1));
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn nonzero_defaults_for_scoring() {
        let p = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(
            pod_nonzero_requests(&p),
            (DEFAULT_MILLI_CPU, DEFAULT_MEMORY)
        );
    }
}
