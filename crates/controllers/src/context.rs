//! What every reconcile function receives: the API client, shared reflector
//! caches (one writer each: the reflector task) and the expectations that
//! cover the gap between a write and its echo in the cache.

use crate::expectations::Expectations;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;

/// Shared state of the controller manager.
pub struct Context {
    pub client: Client,
    pub pods: Store<Pod>,
    pub replicasets: Store<ReplicaSet>,
    pub expectations: Expectations,
}

/// Starts a reflector for every object of `K` and returns its (possibly stale) cache.
pub fn cache<K>(client: &Client) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader
}

impl Context {
    /// Starts the shared caches and waits until they have listed once.
    pub async fn start(client: Client) -> Context {
        let pods = cache::<Pod>(&client);
        let replicasets = cache::<ReplicaSet>(&client);
        let _ = pods.wait_until_ready().await;
        let _ = replicasets.wait_until_ready().await;
        Context {
            client,
            pods,
            replicasets,
            expectations: Expectations::default(),
        }
    }
}
