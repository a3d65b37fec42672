//! The sync loop. Reflectors for Services and EndpointSlices record which
//! Services changed ([`Dirty`]) and wake one task; it waits a short batch
//! window (and at least `min_interval` after the previous sync), recomputes
//! only the changed Services' fragments and applies the difference to what
//! is in the kernel in one small transaction. The first sync, any sync after
//! a failure, and one every `resync` replace the whole table atomically.

use crate::diff::{Changes, Ruleset};
use crate::model::{self, SERVICE_NAME_LABEL};
use crate::nft::{Nft, NftCommand};
use crate::render::{self, Options};
use crate::{ProxyConfig, ProxyError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Runs the proxy with the `nft` program until the future is dropped.
pub async fn run(client: Client, cfg: ProxyConfig) -> Result<(), ProxyError> {
    run_with(client, cfg, Arc::new(NftCommand::default())).await
}

/// Services (`namespace/name`) whose rules may be out of date.
#[derive(Debug, Default)]
struct Dirty {
    /// Everything (a watch restarted).
    all: bool,
    services: BTreeSet<String>,
    /// Object (`namespace/name`) → the Service it belonged to last.
    owner: HashMap<String, String>,
}

/// Something that names the Service whose rules it affects.
trait Owner {
    /// (own key, owning Service's key).
    fn keys(&self) -> Option<(String, String)>;
}

impl Owner for Service {
    fn keys(&self) -> Option<(String, String)> {
        let m = &self.metadata;
        let key = format!("{}/{}", m.namespace.as_deref()?, m.name.as_deref()?);
        Some((key.clone(), key))
    }
}

impl Owner for EndpointSlice {
    fn keys(&self) -> Option<(String, String)> {
        let m = &self.metadata;
        let ns = m.namespace.as_deref()?;
        let svc = m.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
        Some((
            format!("{ns}/{}", m.name.as_deref()?),
            format!("{ns}/{svc}"),
        ))
    }
}

impl Dirty {
    fn mark<K: Owner>(&mut self, ev: &watcher::Event<K>) {
        match ev {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                let Some((own, svc)) = o.keys() else { return };
                if let Some(prev) = self.owner.insert(own, svc.clone()) {
                    self.services.insert(prev);
                }
                self.services.insert(svc);
            }
            watcher::Event::InitDone => self.all = true,
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    fn take(&mut self) -> (bool, BTreeSet<String>) {
        let all = std::mem::take(&mut self.all);
        (all, std::mem::take(&mut self.services))
    }
}

struct Caches {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    dirty: Arc<Mutex<Dirty>>,
    wake: Arc<Notify>,
}

/// Runs the proxy with the given nft implementation.
pub async fn run_with(
    client: Client,
    cfg: ProxyConfig,
    nft: Arc<dyn Nft>,
) -> Result<(), ProxyError> {
    let wake = Arc::new(Notify::new());
    let dirty = Arc::new(Mutex::new(Dirty::default()));
    let c = Caches {
        services: cache::<Service>(&client, &cfg, dirty.clone(), wake.clone()),
        slices: cache::<EndpointSlice>(&client, &cfg, dirty.clone(), wake.clone()),
        dirty,
        wake,
    };
    let _ = c.services.wait_until_ready().await;
    let _ = c.slices.wait_until_ready().await;
    tracing::info!(node = %cfg.node_name, cluster_cidr = ?cfg.cluster_cidr,
        masquerade_all = cfg.masquerade_all, "service proxy started");
    let mut applied: Option<Ruleset> = None;
    let mut last_full = Instant::now();
    loop {
        let mut full = applied.is_none();
        if !full {
            tokio::select! {
                _ = c.wake.notified() => {}
                _ = tokio::time::sleep_until((last_full + cfg.resync).into()) => full = true,
            }
            tokio::time::sleep(cfg.batch).await;
        }
        let started = Instant::now();
        let result = match (full, applied.as_mut()) {
            (false, Some(rs)) => sync_changed(&c, &cfg, rs, &nft).await,
            _ => {
                last_full = Instant::now();
                sync_full(&c, &cfg, &nft).await.map(|rs| applied = Some(rs))
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, full, "nftables sync failed; retrying with a full sync");
            applied = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Rate limit: at most one sync per min_interval.
        tokio::time::sleep(cfg.min_interval.saturating_sub(started.elapsed())).await;
    }
}

fn options(cfg: &ProxyConfig) -> Options {
    Options {
        cluster_cidr: cfg.cluster_cidr.clone(),
        masquerade_all: cfg.masquerade_all,
    }
}

/// Replaces the whole table with what the caches say.
async fn sync_full(
    c: &Caches,
    cfg: &ProxyConfig,
    nft: &Arc<dyn Nft>,
) -> Result<Ruleset, ProxyError> {
    let _ = c.dirty.lock().map(|mut d| d.take());
    let svcs = c.services.state();
    let eps = c.slices.state();
    let ports = model::build(
        svcs.iter().map(|s| s.as_ref()),
        eps.iter().map(|s| s.as_ref()),
        &cfg.node_name,
    );
    let rs = Ruleset::new(render::render(&ports, &options(cfg)));
    apply(nft, rs.full(), true, ports.len()).await?;
    Ok(rs)
}

/// Recomputes the dirty Services and applies what differs.
async fn sync_changed(
    c: &Caches,
    cfg: &ProxyConfig,
    rs: &mut Ruleset,
    nft: &Arc<dyn Nft>,
) -> Result<(), ProxyError> {
    let (all, mut keys) = c.dirty.lock().map(|mut d| d.take()).unwrap_or_default();
    let svcs = c.services.state();
    if all {
        keys.extend(svcs.iter().filter_map(|s| s.keys()).map(|(k, _)| k));
        keys.extend(rs.fragments().keys().map(|k| service_of(k).to_string()));
    }
    if keys.is_empty() {
        return Ok(());
    }
    let eps = c.slices.state();
    let ports = model::build(
        svcs.iter()
            .map(|s| s.as_ref())
            .filter(|s| s.keys().is_some_and(|(k, _)| keys.contains(&k))),
        eps.iter()
            .map(|s| s.as_ref())
            .filter(|s| s.keys().is_some_and(|(_, k)| keys.contains(&k))),
        &cfg.node_name,
    );
    let mut changes: Changes = keys
        .iter()
        .flat_map(|s| rs.ports_of(s))
        .map(|k| (k.clone(), None))
        .collect();
    for (k, f) in render::render(&ports, &options(cfg)) {
        changes.insert(k, Some(f));
    }
    let changes = rs.effective(changes);
    let Some(script) = rs.incremental(&changes) else {
        return Ok(());
    };
    apply(nft, script, false, changes.len()).await?;
    rs.commit(changes);
    Ok(())
}

/// `namespace/name` of a port key `namespace/name/proto/port`.
fn service_of(port_key: &str) -> &str {
    let mut slashes = port_key.match_indices('/').map(|(i, _)| i);
    match (slashes.next(), slashes.next()) {
        (Some(_), Some(i)) => &port_key[..i],
        _ => port_key,
    }
}

async fn apply(
    nft: &Arc<dyn Nft>,
    script: String,
    full: bool,
    ports: usize,
) -> Result<(), ProxyError> {
    let started = Instant::now();
    let lines = script.lines().count();
    // nft is a short child process: block a worker thread, not the runtime.
    let nft = nft.clone();
    tokio::task::spawn_blocking(move || nft.apply(&script)).await??;
    tracing::debug!(
        full,
        ports,
        lines,
        took_ms = started.elapsed().as_millis() as u64,
        "nftables synced"
    );
    Ok(())
}

/// A reflector over every `K` that marks what changed and wakes the sync loop.
fn cache<K>(
    client: &Client,
    cfg: &ProxyConfig,
    dirty: Arc<Mutex<Dirty>>,
    wake: Arc<Notify>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Owner
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let wc = watcher::Config {
        timeout: cfg.watch_timeout,
        ..watcher::Config::default()
    };
    let stream = reflector::reflector(writer, watcher::watcher(Api::<K>::all(client.clone()), wc))
        .default_backoff();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if let Ok(mut d) = dirty.lock() {
                        d.mark(&ev);
                    }
                }
                // Recovered by the watcher itself (resume or relist after a
                // backoff); warn so a slow convergence can be traced.
                Err(e) => tracing::warn!(error = %e, "service proxy watch error; retrying"),
            }
            wake.notify_one();
        }
    });
    reader
}

#[cfg(test)]
mod tests {
    use super::service_of;

    #[test]
    fn service_of_a_port_key() {
        assert_eq!(service_of("ns/web/tcp/http"), "ns/web");
        assert_eq!(service_of("ns/web"), "ns/web");
    }
}
