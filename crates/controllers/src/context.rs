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
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Each subscriber's queue. Unbounded, as client-go's per-listener buffers:
/// the controllers drain theirs continuously, and a bounded queue would have
/// to drop changes — deletes among them — or stall the watch for everyone.
type Subscribers<K> = Arc<Mutex<Vec<mpsc::UnboundedSender<Arc<K>>>>>;

/// One watch of every `K`: its cache and a feed of each change after the cache has it.
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    pub store: Store<K>,
    subscribers: Subscribers<K>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// Starts the watch; the cache fills in the background.
    pub fn start(client: &Client) -> Informer<K> {
        let watch = watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .default_backoff();
        Informer::over(watch)
    }

    /// An informer fed by `watch` (a watcher's events).
    fn over<S>(watch: S) -> Informer<K>
    where
        S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    {
        let (store, writer) = reflector::store();
        let subscribers: Subscribers<K> = Arc::default();
        let events = reflector::reflector(writer, watch);
        tokio::spawn(publish(events, store.clone(), subscribers.clone()));
        Informer { store, subscribers }
    }

    /// Every object that changed or was deleted from now on, each yielded
    /// once the cache reflects the change; after a relist, every object in
    /// the cache and every one the relist found gone. Shaped for
    /// `Controller::owns_stream` / `watches_stream`, which never see an error.
    pub fn changes(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded();
        lock(&self.subscribers).push(tx);
        rx.map(|obj| Ok(K::clone(&obj)))
    }
}

/// The subscriber list (nothing can panic while holding it, so a poisoned
/// lock still guards a whole list).
fn lock<K>(subscribers: &Subscribers<K>) -> MutexGuard<'_, Vec<mpsc::UnboundedSender<Arc<K>>>> {
    subscribers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands `obj` to every subscriber, forgetting those that went away.
fn send<K>(subscribers: &Subscribers<K>, obj: &Arc<K>) {
    lock(subscribers).retain(|tx| tx.unbounded_send(obj.clone()).is_ok());
}

/// Drives a reflector and publishes each change once the store has applied
/// it. A relist fills a buffer that the store swaps in at `InitDone`, so the
/// listed objects are published then, together with those the store held
/// before the relist and no longer does (deleted while the watch was down:
/// no event says so, as client-go's `DeletedFinalStateUnknown` covers).
async fn publish<K, S>(events: S, store: Store<K>, subscribers: Subscribers<K>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    futures::pin_mut!(events);
    let mut before: Vec<Arc<K>> = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(obj) | Event::Delete(obj)) => send(&subscribers, &Arc::new(obj)),
            Ok(Event::Init) => before = store.state(),
            Ok(Event::InitDone) => {
                let now = store.state();
                let present: HashSet<ObjectRef<K>> = now
                    .iter()
                    .map(|o| ObjectRef::from_obj(o.as_ref()))
                    .collect();
                let gone = std::mem::take(&mut before)
                    .into_iter()
                    .filter(|o| !present.contains(&ObjectRef::from_obj(o.as_ref())));
                for obj in now.iter().cloned().chain(gone) {
                    send(&subscribers, &obj);
                }
            }
            Ok(Event::InitApply(_)) => {}
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
    pub pods: Informer<Pod>,
    pub replicasets: Informer<ReplicaSet>,
    pub expectations: Expectations,
}

impl Context {
    /// Starts the shared informers and waits until they have listed once.
    pub async fn start(client: Client) -> Context {
        let pods = Informer::<Pod>::start(&client);
        let replicasets = Informer::<ReplicaSet>::start(&client);
        let _ = pods.store.wait_until_ready().await;
        let _ = replicasets.store.wait_until_ready().await;
        Context {
            client,
            pods,
            replicasets,
            expectations: Expectations::default(),
        }
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
