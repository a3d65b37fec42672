//! Which pods back a Service and how: selection, the ready/serving/
//! terminating conditions, and ports resolved per pod (a named targetPort
//! becomes that pod's containerPort), shared by the EndpointSlice and the
//! legacy Endpoints controllers.

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One port of a Service as resolved for one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// A pod that backs a Service.
#[derive(Debug, Clone)]
pub struct Backend {
    pub pod: Arc<Pod>,
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub ports: Vec<Port>,
}

/// The Service's selector, when it has one (services without one are left to users).
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether the Service publishes not-ready addresses.
pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Resolves a service port's targetPort on a pod; `None` when a named port is missing.
pub fn resolve(sp: &ServicePort, pod: &Pod) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        None | Some(IntOrString::Int(0)) => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => pod
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(s.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port),
        },
    }
}

fn ports(svc: &Service, pod: &Pod) -> Vec<Port> {
    let list = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    list.iter()
        .filter_map(|sp| {
            Some(Port {
                name: sp.name.clone().unwrap_or_default(),
                port: resolve(sp, pod)?,
                protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The pods selected by the Service that have an IP and have not finished,
/// ordered by name, with their conditions and resolved ports.
pub fn backends(svc: &Service, pods: &[Arc<Pod>]) -> Vec<Backend> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let publish = publish_not_ready(svc);
    let mut out: Vec<Backend> = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            sel.iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .filter_map(|p| {
            let status = p.status.as_ref()?;
            let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
            if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
                return None;
            }
            let terminating = p.metadata.deletion_timestamp.is_some();
            let serving = publish || pod_ready(p);
            Some(Backend {
                ip,
                ready: publish || (serving && !terminating),
                serving,
                terminating,
                ports: ports(svc, p),
                pod: p.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.pod.metadata.name.cmp(&b.pod.metadata.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: &str, port: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
                "status": {"phase": "Running", "podIP": format!("10.0.0.{port}"),
                    "conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "web", "port": 80, "targetPort": "http"},
                {"name": "metrics", "port": 9100, "targetPort": "missing"}]},
        }))
        .unwrap();
        let pods = vec![pod("b", "False", 81), pod("a", "True", 8080)];
        let got = backends(&svc, &pods);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].pod.metadata.name.as_deref(), Some("a"));
        assert_eq!(got[0].ports.len(), 1);
        assert_eq!(got[0].ports[0].port, 8080);
        assert_eq!(got[1].ports[0].port, 81);
        assert!(got[0].ready && !got[1].ready && !got[1].serving);
    }
}
