//! What every reconcile function receives: the API client, shared informers
//! (one watch each, its cache, and a feed of every change) and the
//! expectations that cover the gap between a write and its echo in the cache.
//!
//! A controller that reads a cache must be triggered by that same cache: with
//! a second watch of its own (kube's `Controller::owns`) the trigger can
//! arrive before the cache has the change, the pass sees the old object, and
//! no later event comes to correct it (a DaemonSet's rollout or a Job's
//! completion then waits for the next resync). [`Informer::changes`] yields an
//! object only after the cache holds it, as client-go's shared informers do.

use crate::expectations::Expectations;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many changes a slow subscriber may fall behind before it is handed
/// the whole cache instead (see [`Informer::changes`]).
const FEED_CAPACITY: usize = 4096;

/// One watch of every `K`: its cache and a feed of each change after the cache has it.
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    pub store: Store<K>,
    feed: broadcast::Sender<Arc<K>>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// Starts the watch; the cache fills in the background.
    pub fn start(client: &Client) -> Informer<K> {
        let watch = watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .default_backoff();
        Informer::over(watch, FEED_CAPACITY)
    }

    /// An informer fed by `watch` (a watcher's events), publishing through a
    /// feed that holds `capacity` changes per subscriber.
    fn over<S>(watch: S, capacity: usize) -> Informer<K>
    where
        S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    {
        let (store, writer) = reflector::store();
        let (feed, _) = broadcast::channel(capacity);
        let events = reflector::reflector(writer, watch);
        tokio::spawn(publish(events, store.clone(), feed.clone()));
        Informer { store, feed }
    }

    /// Every object that changed (or was deleted) from now on, each yielded
    /// once the cache reflects the change; after a relist, or when this
    /// subscriber fell behind, every object in the cache. Shaped for
    /// `Controller::owns_stream` / `watches_stream`, which never see an error.
    pub fn changes(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let store = self.store.clone();
        futures::stream::unfold(self.feed.subscribe(), move |mut rx| {
            let store = store.clone();
            async move {
                let batch = match rx.recv().await {
                    Ok(obj) => vec![obj],
                    Err(broadcast::error::RecvError::Lagged(_)) => store.state(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                Some((batch, rx))
            }
        })
        .flat_map(futures::stream::iter)
        .map(|obj| Ok(K::clone(&obj)))
    }
}

/// Drives a reflector and publishes each change once the store has applied
/// it. During a relist the store swaps in the new list at `InitDone`, so the
/// listed objects are published then, all together.
async fn publish<K, S>(events: S, store: Store<K>, feed: broadcast::Sender<Arc<K>>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(obj) | Event::Delete(obj)) => {
                let _ = feed.send(Arc::new(obj));
            }
            Ok(Event::InitDone) => {
                for obj in store.state() {
                    let _ = feed.send(obj);
                }
            }
            Ok(Event::Init | Event::InitApply(_)) => {}
            Err(e) => tracing::debug!(error = %e, "watch failed; retrying"),
        }
    }
}

/// Starts a watch of every `K` and returns its (possibly stale) cache, for
/// readers that are not triggered by its changes.
pub fn cache<K>(client: &Client) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    Informer::<K>::start(client).store
}

/// Shared state of the controller manager.
pub struct Context {
    pub client: Client,
    pub pods: Store<Pod>,
    pub replicasets: Store<ReplicaSet>,
    pub pod_informer: Informer<Pod>,
    pub replicaset_informer: Informer<ReplicaSet>,
    pub expectations: Expectations,
}

impl Context {
    /// Starts the shared informers and waits until they have listed once.
    pub async fn start(client: Client) -> Context {
        let pod_informer = Informer::<Pod>::start(&client);
        let replicaset_informer = Informer::<ReplicaSet>::start(&client);
        let _ = pod_informer.store.wait_until_ready().await;
        let _ = replicaset_informer.store.wait_until_ready().await;
        Context {
            client,
            pods: pod_informer.store.clone(),
            replicasets: replicaset_informer.store.clone(),
            pod_informer,
            replicaset_informer,
            expectations: Expectations::default(),
        }
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
