//! Syncing one Service's EndpointSlices: backends grouped by address type
//! and resolved port set, at most 100 endpoints per slice, endpoints kept in
//! the slice they are already in, only changed slices written, an empty
//! placeholder slice when nothing backs the Service.

use super::pods::{Backend, Port};
use crate::podutil::controller_ref;
use crate::replicaset::ignore_gone;
use crate::Result;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::Client;
use std::collections::{BTreeMap, HashMap};

/// Most endpoints in one slice (upstream's default `--max-endpoints-per-slice`).
pub const MAX_ENDPOINTS: usize = 100;
/// Label naming the Service of a slice.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming the slice's manager.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in `MANAGED_BY`.
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";

type Group = (String, Vec<EndpointPort>);

fn slice_ports(ports: &[Port]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

fn endpoint(b: &Backend) -> Endpoint {
    let m = &b.pod.metadata;
    let spec = b.pod.spec.as_ref();
    let svc_sub = spec.and_then(|s| s.subdomain.clone());
    Endpoint {
        addresses: vec![b.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(b.ready),
            serving: Some(b.serving),
            terminating: Some(b.terminating),
        }),
        hostname: spec
            .and_then(|s| s.hostname.clone())
            .filter(|_| svc_sub.is_some()),
        node_name: spec.and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            uid: m.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.join(","))
}

/// Labels every slice of `svc` carries.
pub fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    l.insert(
        SERVICE_NAME.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(MANAGED_BY.into(), CONTROLLER.into());
    let headless = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    if headless {
        l.insert("service.kubernetes.io/headless".into(), String::new());
    }
    l
}

/// Desired endpoints per (address type, ports); one empty group when there are none.
pub fn groups(backends: &[Backend]) -> BTreeMap<String, (Group, BTreeMap<String, Endpoint>)> {
    let mut out: BTreeMap<String, (Group, BTreeMap<String, Endpoint>)> = BTreeMap::new();
    for b in backends {
        let family = if b.ip.contains(':') { "IPv6" } else { "IPv4" };
        let ports = slice_ports(&b.ports);
        let gk = group_key(family, &ports);
        let e = endpoint(b);
        out.entry(gk)
            .or_insert_with(|| ((family.to_string(), ports), BTreeMap::new()))
            .1
            .insert(key(&e), e);
    }
    if out.is_empty() {
        let g = ("IPv4".to_string(), Vec::new());
        out.insert(group_key(&g.0, &g.1), (g, BTreeMap::new()));
    }
    out
}

fn group_key(family: &str, ports: &[EndpointPort]) -> String {
    let p: Vec<_> = ports
        .iter()
        .map(|p| {
            format!(
                "{:?}/{:?}/{:?}/{:?}",
                p.name, p.port, p.protocol, p.app_protocol
            )
        })
        .collect();
    format!("{family}|{}", p.join(","))
}

/// A planned write.
enum Write {
    Create(EndpointSlice),
    Update(EndpointSlice),
    Delete(String),
}

/// Plans the writes that turn `existing` into the desired slices.
fn plan(svc: &Service, backends: &[Backend], existing: Vec<EndpointSlice>) -> Vec<Write> {
    let labels = labels(svc);
    let mut by_group: HashMap<String, Vec<EndpointSlice>> = HashMap::new();
    for s in existing {
        let ports = s.ports.clone().unwrap_or_default();
        by_group
            .entry(group_key(&s.address_type, &ports))
            .or_default()
            .push(s);
    }
    let mut writes = Vec::new();
    for (gk, ((family, ports), mut want)) in groups(backends) {
        let placeholder = want.is_empty();
        let mut slices = by_group.remove(&gk).unwrap_or_default();
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut kept: Vec<(EndpointSlice, bool)> = Vec::new();
        for mut s in slices {
            let fresh: Vec<Endpoint> = s
                .endpoints
                .iter()
                .filter_map(|e| want.remove(&key(e)))
                .collect();
            let changed = fresh != s.endpoints
                || s.metadata.labels.as_ref() != Some(&labels)
                || s.metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty();
            s.endpoints = fresh;
            kept.push((s, changed));
        }
        let had_slice = !kept.is_empty();
        let mut rest = want.into_values();
        for (s, changed) in kept.iter_mut() {
            while s.endpoints.len() < MAX_ENDPOINTS {
                let Some(e) = rest.next() else { break };
                s.endpoints.push(e);
                *changed = true;
            }
        }
        for (i, (mut s, changed)) in kept.into_iter().enumerate() {
            if s.endpoints.is_empty() && !(placeholder && i == 0) {
                writes.push(Write::Delete(s.metadata.name.clone().unwrap_or_default()));
            } else if changed {
                s.metadata.labels = Some(labels.clone());
                s.metadata.owner_references = Some(vec![owner(svc)]);
                writes.push(Write::Update(s));
            }
        }
        let rest: Vec<Endpoint> = rest.collect();
        let no_slice = placeholder && !had_slice;
        for chunk in rest.chunks(MAX_ENDPOINTS) {
            writes.push(Write::Create(new_slice(
                svc,
                &labels,
                &family,
                &ports,
                chunk.to_vec(),
            )));
        }
        if no_slice {
            writes.push(Write::Create(new_slice(
                svc,
                &labels,
                &family,
                &ports,
                Vec::new(),
            )));
        }
    }
    for (_, slices) in by_group {
        for s in slices {
            writes.push(Write::Delete(s.metadata.name.unwrap_or_default()));
        }
    }
    writes
}

fn owner(svc: &Service) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    controller_ref("v1", "Service", &svc.metadata)
}

fn new_slice(
    svc: &Service,
    labels: &BTreeMap<String, String>,
    family: &str,
    ports: &[EndpointPort],
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                svc.metadata.name.as_deref().unwrap_or("svc")
            )),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner(svc)]),
            ..Default::default()
        },
        address_type: family.into(),
        endpoints,
        ports: Some(ports.to_vec()),
    }
}

/// Brings the Service's managed slices in line with its backends.
pub async fn sync(client: &Client, svc: &Service, backends: &[Backend]) -> Result<()> {
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let lp =
        ListParams::default().labels(&format!("{SERVICE_NAME}={name},{MANAGED_BY}={CONTROLLER}"));
    let existing = api.list(&lp).await?.items;
    for w in plan(svc, backends, existing) {
        match w {
            Write::Create(s) => {
                api.create(&PostParams::default(), &s).await?;
            }
            Write::Update(s) => {
                let n = s.metadata.name.clone().unwrap_or_default();
                ignore_gone(api.replace(&n, &PostParams::default(), &s).await)?;
            }
            Write::Delete(n) => {
                ignore_gone(api.delete(&n, &DeleteParams::default()).await)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::pods::backends;
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;
    use std::sync::Arc;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "s1"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80}]},
        }))
        .unwrap()
    }

    fn pods(n: usize) -> Vec<Arc<Pod>> {
        (0..n)
            .map(|i| {
                Arc::new(
                    serde_json::from_value(json!({
                        "metadata": {"name": format!("p{i:03}"), "namespace": "default",
                            "uid": format!("u{i}"), "labels": {"app": "web"}},
                        "spec": {"containers": []},
                        "status": {"phase": "Running", "podIP": format!("10.1.{}.{}", i / 250, i % 250),
                            "conditions": [{"type": "Ready", "status": "True"}]},
                    }))
                    .unwrap(),
                )
            })
            .collect()
    }

    /// Applies planned writes to an in-memory set of slices.
    fn apply(existing: &mut Vec<EndpointSlice>, writes: Vec<Write>) -> usize {
        let count = writes.len();
        for w in writes {
            match w {
                Write::Create(mut s) => {
                    s.metadata.name = Some(format!("web-{}", existing.len() + 100));
                    existing.push(s);
                }
                Write::Update(s) => {
                    let i = existing
                        .iter()
                        .position(|e| e.metadata.name == s.metadata.name)
                        .unwrap();
                    existing[i] = s;
                }
                Write::Delete(n) => existing.retain(|e| e.metadata.name.as_deref() != Some(&n)),
            }
        }
        count
    }

    #[test]
    fn slices_hold_at_most_100_and_unchanged_slices_are_not_rewritten() {
        let s = svc();
        let mut state = Vec::new();
        let b = backends(&s, &pods(250));
        let w = plan(&s, &b, state.clone());
        assert_eq!(apply(&mut state, w), 3);
        assert!(state.iter().all(|s| s.endpoints.len() <= MAX_ENDPOINTS));
        assert_eq!(state.iter().map(|s| s.endpoints.len()).sum::<usize>(), 250);
        assert_eq!(
            plan(&s, &b, state.clone()).len(),
            0,
            "steady state writes nothing"
        );
        let b = backends(&s, &pods(251));
        let w = plan(&s, &b, state.clone());
        assert_eq!(apply(&mut state, w), 1, "one slice takes the new pod");
        let b = backends(&s, &[]);
        let w = plan(&s, &b, state.clone());
        apply(&mut state, w);
        assert_eq!(state.len(), 1, "an empty placeholder remains");
        assert!(state[0].endpoints.is_empty());
    }
}
