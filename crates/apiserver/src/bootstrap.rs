//! Objects every cluster starts with: the `default`, `kube-system`,
//! `kube-public` and `kube-node-lease` namespaces (each with its `default`
//! ServiceAccount), the `kubernetes` Service in `default` and the `kube-dns`
//! Service in `kube-system` (the 10th address of the service CIDR, no
//! selector: the cluster DNS publishes its own EndpointSlice). Also reserves
//! the addresses and ports of Services already stored.

use crate::meta;
use crate::rest::Api;
use serde_json::{json, Value};
use store::{ListOptions, StoreError};

async fn create_if_absent(api: &Api, key: &str, mut obj: Value) -> Result<(), StoreError> {
    meta::set(&mut obj, "uid", json!(uuid::Uuid::new_v4().to_string()));
    meta::set(&mut obj, "creationTimestamp", json!(meta::now()));
    match api
        .store
        .create(key, serde_json::to_vec(&obj).unwrap_or_default())
        .await
    {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn run(api: &Api) -> Result<(), StoreError> {
    let services = api
        .store
        .list("/registry/services/", ListOptions::default())
        .await?;
    for kv in &services.items {
        if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
            api.alloc.reserve(&v);
        }
    }
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        create_if_absent(api, &format!("/registry/namespaces/{ns}"), obj).await?;
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
        create_if_absent(api, &format!("/registry/serviceaccounts/{ns}/default"), sa).await?;
    }
    let ip = api.alloc.first().to_string();
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "sessionAffinity": "None",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        "status": {"loadBalancer": {}}});
    api.alloc.reserve(&svc);
    create_if_absent(api, "/registry/services/default/kubernetes", svc).await?;
    let dns = kube_dns(&api.alloc.nth(10).to_string());
    api.alloc.reserve(&dns);
    create_if_absent(api, "/registry/services/kube-system/kube-dns", dns).await
}

/// The cluster DNS Service: what pods' resolv.conf points at.
fn kube_dns(ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "bosun-dns"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "sessionAffinity": "None",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
        "status": {"loadBalancer": {}}})
}
