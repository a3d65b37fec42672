//! The garbage collector: cascading deletion through ownerReferences over
//! every resource the server serves. Discovery (refreshed periodically)
//! finds the resources; a metadata-only reflector per resource keeps the
//! object graph; any change triggers a (debounced) pass that decides with
//! the pure rules of [`graph`] and acts through the API ([`pass`]).

pub mod graph;
mod pass;
pub mod resources;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use resources::{MetaObject, Resources, Served};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often discovery runs again to pick up new resource types.
const REDISCOVER: Duration = Duration::from_secs(30);
/// A full pass runs at least this often, changes or not.
const RESYNC: Duration = Duration::from_secs(15);
/// Changes arriving within this window share one pass.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// One watched resource and its cache.
pub(crate) struct Watched {
    pub served: Served,
    pub store: Store<MetaObject>,
}

/// The reflectors over every served resource.
struct Watches {
    by_key: HashMap<String, Watched>,
    notify: Arc<Notify>,
}

fn key_of(s: &Served) -> String {
    format!("{}.{}", s.ar.plural, s.ar.group)
}

impl Watches {
    /// Starts a reflector for each newly served resource; waits (bounded) for its first list.
    async fn refresh(&mut self, client: &Client, res: &Resources) {
        for s in &res.all {
            if !s.watchable || !s.deletable || resources::gc_ignored(&s.ar) {
                continue;
            }
            let key = key_of(s);
            if self.by_key.contains_key(&key) {
                continue;
            }
            let store = spawn_reflector(client, s, self.notify.clone());
            if tokio::time::timeout(Duration::from_secs(30), store.wait_until_ready())
                .await
                .is_err()
            {
                tracing::warn!(resource = %key, "gc: the first list did not finish in 30s");
            }
            self.by_key.insert(
                key,
                Watched {
                    served: s.clone(),
                    store,
                },
            );
        }
    }
}

fn spawn_reflector(client: &Client, s: &Served, notify: Arc<Notify>) -> Store<MetaObject> {
    let writer = reflector::store::Writer::new(s.ar.clone());
    let reader = writer.as_reader();
    let api: Api<MetaObject> = Api::all_with(client.clone(), &s.ar);
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if ev.is_ok() {
                notify.notify_one();
            }
        }
    });
    reader
}

/// Runs the collector until the process ends.
pub async fn run(client: Client) {
    let notify = Arc::new(Notify::new());
    let mut watches = Watches {
        by_key: HashMap::new(),
        notify: notify.clone(),
    };
    let mut res = Resources::default();
    let mut discovered: Option<Instant> = None;
    let mut recent = pass::Recent::default();
    loop {
        if discovered.is_none_or(|t| t.elapsed() >= REDISCOVER) {
            match Resources::discover(&client).await {
                Ok(r) => {
                    res = r;
                    watches.refresh(&client, &res).await;
                    discovered = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "gc: discovery failed; retrying"),
            }
        }
        let watched: Vec<&Watched> = watches.by_key.values().collect();
        pass::run(&client, &res, &watched, &mut recent).await;
        let _ = tokio::time::timeout(RESYNC, notify.notified()).await;
        tokio::time::sleep(DEBOUNCE).await;
    }
}
