//! The legacy Endpoints controller (core/v1): one Endpoints object per
//! selector Service, named like it, with subsets grouped by resolved port
//! set — ready pods in `addresses`, the rest in `notReadyAddresses`;
//! terminating pods left out unless the Service publishes not-ready
//! addresses. Written only when it changes.

use crate::endpointslice::pods::{Backend, Port};
use crate::podutil::controller_ref;
use crate::replicaset::ignore_gone;
use crate::Result;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::Client;
use std::collections::BTreeMap;

fn address(b: &Backend) -> EndpointAddress {
    let m = &b.pod.metadata;
    let spec = b.pod.spec.as_ref();
    EndpointAddress {
        ip: b.ip.clone(),
        hostname: spec
            .filter(|s| s.subdomain.is_some())
            .and_then(|s| s.hostname.clone()),
        node_name: spec.and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            uid: m.uid.clone(),
            ..Default::default()
        }),
    }
}

fn ports(ports: &[Port]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            name: (!p.name.is_empty()).then(|| p.name.clone()),
            port: p.port,
            protocol: Some(p.protocol.clone()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// Subsets for the backends (terminating ones only when `publish`).
pub fn subsets(backends: &[Backend], publish: bool) -> Vec<EndpointSubset> {
    let mut groups: BTreeMap<Vec<Port>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for b in backends {
        if b.ports.is_empty() || (b.terminating && !publish) {
            continue;
        }
        let mut key = b.ports.clone();
        key.sort();
        let g = groups.entry(key).or_default();
        if b.ready {
            g.0.push(address(b));
        } else {
            g.1.push(address(b));
        }
    }
    groups
        .into_iter()
        .map(|(p, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: Some(ports(&p)),
            }
        })
        .collect()
}

/// Brings the Service's Endpoints object in line with its backends.
pub async fn sync(client: &Client, svc: &Service, backends: &[Backend]) -> Result<()> {
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let publish = crate::endpointslice::pods::publish_not_ready(svc);
    let subsets = subsets(backends, publish);
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    let current = ignore_gone(api.get(name).await)?;
    let want_subsets = (!subsets.is_empty()).then_some(subsets);
    match current {
        Some(mut e) => {
            let same = e.subsets.clone().unwrap_or_default()
                == want_subsets.clone().unwrap_or_default()
                && e.metadata.labels.clone().unwrap_or_default() == labels;
            if same {
                return Ok(());
            }
            e.subsets = want_subsets;
            e.metadata.labels = Some(labels);
            ignore_gone(api.replace(name, &PostParams::default(), &e).await)?;
        }
        None => {
            let e = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(ns.into()),
                    labels: Some(labels),
                    owner_references: Some(vec![controller_ref("v1", "Service", &svc.metadata)]),
                    ..Default::default()
                },
                subsets: want_subsets,
            };
            ignore_gone(api.create(&PostParams::default(), &e).await)?;
        }
    }
    Ok(())
}
