//! Makes the DNS server reachable at the kube-dns ClusterIP: the `kube-dns`
//! Service has no selector, and this module keeps its EndpointSlice
//! (`kube-dns-bosun-<node>`: one per node running the DNS, `bosun server`
//! and each `bosun agent`) pointing at the address and port the server
//! listens on, so the service proxy DNATs `<kube-dns IP>:53` there.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Where the kube-dns Service's endpoints point.
#[derive(Debug, Clone)]
pub struct Publish {
    pub namespace: String,
    pub service: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub node_name: String,
}

/// The slice that sends the Service's `dns` (UDP) and `dns-tcp` ports to
/// the server.
pub fn slice(p: &Publish) -> Result<EndpointSlice, serde_json::Error> {
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{}-bosun-{}", p.service, p.node_name), "namespace": p.namespace,
            "labels": {"kubernetes.io/service-name": p.service,
                       "endpointslice.kubernetes.io/managed-by": "bosun-dns"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [p.address.to_string()], "nodeName": p.node_name,
                       "conditions": {"ready": true, "serving": true, "terminating": false}}],
        "ports": [{"name": "dns", "protocol": "UDP", "port": p.port},
                  {"name": "dns-tcp", "protocol": "TCP", "port": p.port}]
    }))
}

/// Creates or corrects the slice, then checks it again every 30 s (it may
/// be deleted by hand), until the future is dropped.
pub async fn keep(client: Client, p: Publish) {
    let api: Api<EndpointSlice> = Api::namespaced(client, &p.namespace);
    let want = match slice(&p) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the kube-dns EndpointSlice");
            return;
        }
    };
    let name = want.metadata.name.clone().unwrap_or_default();
    loop {
        let result = match api.get_opt(&name).await {
            Ok(None) => api.create(&PostParams::default(), &want).await.map(|_| ()),
            Ok(Some(have)) if have.endpoints != want.endpoints || have.ports != want.ports => {
                let mut next = want.clone();
                next.metadata.resource_version = have.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &next)
                    .await
                    .map(|_| ())
            }
            Ok(Some(_)) => Ok(()),
            Err(e) => Err(e),
        };
        let wait = match result {
            Ok(()) => Duration::from_secs(30),
            Err(e) => {
                tracing::warn!(error = %e, slice = %name, "cannot publish the DNS endpoint");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(wait).await;
    }
}
