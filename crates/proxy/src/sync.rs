//! The sync loop: reflectors for Services and EndpointSlices wake one task
//! that waits a short batch window, recomputes the ruleset (cheap: pure
//! functions over the caches) and applies only the difference to what is in
//! the kernel. The first sync, and any sync after a failure, replaces the
//! whole table.

use crate::diff;
use crate::model;
use crate::nft::{Nft, NftCommand};
use crate::render::{self, Options, Ruleset};
use crate::{ProxyConfig, ProxyError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Runs the proxy with the `nft` program until the future is dropped.
pub async fn run(client: Client, cfg: ProxyConfig) -> Result<(), ProxyError> {
    run_with(client, cfg, Arc::new(NftCommand::default())).await
}

/// Runs the proxy with the given nft implementation.
pub async fn run_with(
    client: Client,
    cfg: ProxyConfig,
    nft: Arc<dyn Nft>,
) -> Result<(), ProxyError> {
    let wake = Arc::new(Notify::new());
    let services = cache::<Service>(&client, wake.clone());
    let slices = cache::<EndpointSlice>(&client, wake.clone());
    let _ = services.wait_until_ready().await;
    let _ = slices.wait_until_ready().await;
    let opts = Options {
        cluster_cidr: cfg.cluster_cidr.clone(),
        masquerade_all: cfg.masquerade_all,
    };
    tracing::info!(node = %cfg.node_name, cluster_cidr = ?cfg.cluster_cidr,
        masquerade_all = cfg.masquerade_all, "service proxy started");
    let mut applied: Option<Ruleset> = None;
    loop {
        let svcs = services.state();
        let eps = slices.state();
        let ports = model::build(
            svcs.iter().map(|s| s.as_ref()),
            eps.iter().map(|s| s.as_ref()),
            &cfg.node_name,
        );
        let rs = render::render(&ports, &opts);
        let script = match &applied {
            None => Some(diff::full(&rs)),
            Some(old) => diff::incremental(old, &rs),
        };
        if let Some(script) = script {
            let started = Instant::now();
            let full = applied.is_none();
            let n = nft.clone();
            match tokio::task::spawn_blocking(move || n.apply(&script)).await? {
                Ok(()) => {
                    tracing::debug!(
                        full,
                        ports = ports.len(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "nftables synced"
                    );
                    applied = Some(rs);
                }
                Err(e) => {
                    tracing::warn!(error = %e, full, "nftables sync failed; retrying with a full sync");
                    applied = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        wake.notified().await;
        tokio::time::sleep(cfg.batch).await;
    }
}

/// A reflector over every `K` that wakes the sync loop on each event.
fn cache<K>(client: &Client, wake: Arc<Notify>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "service proxy watch error");
            }
            wake.notify_one();
        }
    });
    reader
}
