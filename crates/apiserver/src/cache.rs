//! The watch cache. One store watch over `/registry/` feeds, per resource, an
//! in-memory map of current objects (serialised once, with their
//! `resourceVersion`) and a ring of recent events. Lists are served from the
//! map once the cache has caught up with the store's revision; every client
//! watch is a filtered view of a resource's ring plus a broadcast of new
//! events. A watcher that falls behind the broadcast is closed (it relists),
//! never allowed to slow the others.

use crate::strategy::Strategy;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use store::{EventKind, ListOptions, Revision, Store};
use tokio::sync::{broadcast, watch};

/// Recent events kept per resource for watches resuming from a version.
const RING: usize = 1024;
/// Events a slow watcher may lag behind before it is closed.
const BROADCAST: usize = 4096;

/// One cached object.
#[derive(Debug)]
pub struct Obj {
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub rv: Revision,
    /// The object as JSON, `metadata.resourceVersion` included.
    pub json: Bytes,
    pub labels: BTreeMap<String, String>,
    /// Selectable field values (metadata.name, metadata.namespace, the strategy's fields).
    pub fields: Vec<(&'static str, String)>,
}

impl Obj {
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, v)| v.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub ty: EventType,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
}

struct Shard {
    objects: BTreeMap<String, Arc<Obj>>,
    ring: VecDeque<Arc<Event>>,
    /// Every event of this resource after `oldest` is in `ring`.
    oldest: Revision,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Shard {
    fn new(rv: Revision) -> Self {
        Self {
            objects: BTreeMap::new(),
            ring: VecDeque::new(),
            oldest: rv,
            tx: broadcast::channel(BROADCAST).0,
        }
    }
}

pub struct Cache {
    prefixes: Vec<String>,
    shards: Vec<RwLock<Shard>>,
    strategies: Arc<Vec<Strategy>>,
    rv: watch::Sender<Revision>,
}

/// Events to replay, a receiver of later ones, and a revision such that
/// every event of the resource at or below it is in the replay (or before
/// the watch's start): the only safe resourceVersion for a bookmark before
/// any live event is sent.
pub type WatchFeed = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>, Revision);

/// Why a watch could not start.
#[derive(Debug)]
pub enum WatchStart {
    /// The version is older than the events kept (410 Gone).
    TooOld(Revision),
}

fn lock_w(s: &RwLock<Shard>) -> std::sync::RwLockWriteGuard<'_, Shard> {
    s.write().unwrap_or_else(|p| p.into_inner())
}

fn lock_r(s: &RwLock<Shard>) -> std::sync::RwLockReadGuard<'_, Shard> {
    s.read().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    pub fn new(strategies: Arc<Vec<Strategy>>) -> Arc<Self> {
        let prefixes = strategies.iter().map(|s| s.resource.key_prefix()).collect();
        let shards = strategies
            .iter()
            .map(|_| RwLock::new(Shard::new(0)))
            .collect();
        Arc::new(Self {
            prefixes,
            shards,
            strategies,
            rv: watch::channel(0).0,
        })
    }

    fn shard_of(&self, key: &str) -> Option<usize> {
        self.prefixes
            .iter()
            .position(|p| key.starts_with(p.as_str()))
    }

    fn make_obj(&self, idx: usize, key: &str, value: &[u8], rv: Revision) -> Option<Arc<Obj>> {
        let mut v: Value = serde_json::from_slice(value).ok()?;
        crate::meta::set(&mut v, "resourceVersion", Value::String(rv.to_string()));
        let strategy = &self.strategies[idx];
        let mut fields = vec![
            ("metadata.name", crate::meta::name(&v).to_string()),
            ("metadata.namespace", crate::meta::namespace(&v).to_string()),
        ];
        for f in strategy.fields {
            fields.push((f, strategy.field_value(&v, f)));
        }
        Some(Arc::new(Obj {
            key: key.to_string(),
            namespace: crate::meta::namespace(&v).to_string(),
            name: crate::meta::name(&v).to_string(),
            rv,
            labels: crate::meta::labels(&v),
            json: Bytes::from(serde_json::to_vec(&v).ok()?),
            fields,
        }))
    }

    /// The revision the cache reflects.
    pub fn revision(&self) -> Revision {
        *self.rv.borrow()
    }

    /// Waits until the cache reflects at least `rv`; false on timeout.
    pub async fn wait_for(&self, rv: Revision, timeout: Duration) -> bool {
        let mut rx = self.rv.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rv))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Current objects of resource `idx` (in key order) that `keep` accepts,
    /// starting after `start_after`, at most `limit`; `more` tells whether
    /// further matches exist.
    pub fn list(
        &self,
        idx: usize,
        start_after: Option<&str>,
        limit: Option<usize>,
        keep: impl Fn(&Obj) -> bool,
    ) -> (Vec<Arc<Obj>>, bool) {
        let shard = lock_r(&self.shards[idx]);
        let range = match start_after {
            Some(k) => shard
                .objects
                .range::<str, _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
            None => shard.objects.range::<str, _>(..),
        };
        let mut out = Vec::new();
        for (_, o) in range {
            if keep(o) {
                if limit.is_some_and(|l| out.len() >= l) {
                    return (out, true);
                }
                out.push(o.clone());
            }
        }
        (out, false)
    }

    /// The cached object at `key` of resource `idx`, if any.
    pub fn get(&self, idx: usize, key: &str) -> Option<Arc<Obj>> {
        lock_r(&self.shards[idx]).objects.get(key).cloned()
    }

    /// Starts a watch of resource `idx`: the events to replay (synthetic ADDED
    /// for every object when `from` is None, else the ring after `from`) and
    /// a receiver of every later event.
    pub fn watch(&self, idx: usize, from: Option<Revision>) -> Result<WatchFeed, WatchStart> {
        let shard = lock_r(&self.shards[idx]);
        let replay = match from {
            None => shard
                .objects
                .values()
                .map(|o| {
                    Arc::new(Event {
                        ty: EventType::Added,
                        obj: o.clone(),
                        prev: None,
                    })
                })
                .collect(),
            Some(rv) if rv < shard.oldest => return Err(WatchStart::TooOld(rv)),
            Some(rv) => shard
                .ring
                .iter()
                .filter(|e| e.obj.rv > rv)
                .cloned()
                .collect(),
        };
        // `rv` advances only after an event is in its shard, so read under
        // the shard's lock it never runs ahead of this snapshot.
        Ok((replay, shard.tx.subscribe(), self.revision()))
    }

    fn apply(&self, ev: store::WatchEvent) {
        let rev = ev.revision();
        if let Some(idx) = self.shard_of(&ev.kv.key) {
            if let Some(obj) = self.make_obj(idx, &ev.kv.key, &ev.kv.value, rev) {
                let mut shard = lock_w(&self.shards[idx]);
                let (ty, prev) = match ev.kind {
                    EventKind::Put => {
                        let prev = shard.objects.insert(obj.key.clone(), obj.clone());
                        let ty = if prev.is_some() {
                            EventType::Modified
                        } else {
                            EventType::Added
                        };
                        (ty, prev)
                    }
                    EventKind::Delete => (EventType::Deleted, shard.objects.remove(&obj.key)),
                };
                let event = Arc::new(Event { ty, obj, prev });
                if shard.ring.len() >= RING {
                    if let Some(old) = shard.ring.pop_front() {
                        shard.oldest = old.obj.rv;
                    }
                }
                shard.ring.push_back(event.clone());
                let _ = shard.tx.send(event);
            }
        }
        self.rv.send_if_modified(|r| {
            let newer = rev > *r;
            if newer {
                *r = rev;
            }
            newer
        });
    }

    /// Loads every object and returns the revision the load reflects.
    async fn load(&self, store: &dyn Store) -> store::Result<Revision> {
        let mut maps: Vec<BTreeMap<String, Arc<Obj>>> = vec![BTreeMap::new(); self.shards.len()];
        let mut start_after = None;
        let mut revision;
        loop {
            let page = store
                .list(
                    "/registry/",
                    ListOptions {
                        start_after: start_after.clone(),
                        limit: Some(5000),
                    },
                )
                .await?;
            revision = page.revision;
            for kv in &page.items {
                if let Some(idx) = self.shard_of(&kv.key) {
                    if let Some(o) = self.make_obj(idx, &kv.key, &kv.value, kv.mod_revision) {
                        maps[idx].insert(kv.key.clone(), o);
                    }
                }
            }
            if !page.more {
                break;
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
        }
        for (shard, objects) in self.shards.iter().zip(maps) {
            // A fresh broadcast channel ends every watch of the old state.
            let mut s = lock_w(shard);
            *s = Shard::new(revision);
            s.objects = objects;
        }
        self.rv.send_replace(revision);
        Ok(revision)
    }

    /// Runs forever: load, then follow the store's watch; reload when the
    /// watch fails (for example after a compaction it could not keep up with).
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, ready: watch::Sender<bool>) {
        loop {
            let rev = match self.load(store.as_ref()).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "watch cache: cannot load the store; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut stream = match store.watch("/registry/", rev).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "watch cache: cannot watch the store; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let _ = ready.send(true);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => self.apply(ev),
                    Err(e) => {
                        tracing::warn!(error = %e, "watch cache: store watch failed; reloading");
                        break;
                    }
                }
            }
        }
    }

    /// Number of objects cached per resource plural (for tests and metrics).
    pub fn counts(&self) -> HashMap<String, usize> {
        self.strategies
            .iter()
            .zip(&self.shards)
            .map(|(s, sh)| (s.resource.plural.to_string(), lock_r(sh).objects.len()))
            .collect()
    }
}
