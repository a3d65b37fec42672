//! The scheduling loop: folds watch events into the cache and queue, takes
//! pods off the queue, decides, assumes and hands the binding to a task.

use crate::algorithm::{Algorithm, Decision};
use crate::cache::{pod_key, Cache};
use crate::filters::PodView;
use crate::queue::Queue;
use crate::{events, Config, Error};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

#[allow(clippy::large_enum_variant)] // short-lived, moved once per event
enum Input {
    Pod(Result<Event<Pod>, watcher::Error>),
    Node(Result<Event<Node>, watcher::Error>),
}

/// What a binding task reports.
enum Bound {
    Ok(String),
    /// The pod is gone or already bound elsewhere.
    Gone(String),
    Retry(String),
}

struct State {
    client: Client,
    cfg: Config,
    cache: Cache,
    queue: Queue,
    algo: Algorithm,
    binds: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Bound>,
    events: events::Sink,
}

/// Runs the scheduler until its watches end.
pub async fn run(client: Client, cfg: Config) -> Result<(), Error> {
    let pods = watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(Input::Pod);
    let nodes = watcher::watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(Input::Node);
    let mut inputs = futures::stream::select(pods.boxed(), nodes.boxed());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut st = State {
        binds: Arc::new(Semaphore::new(cfg.parallel_binds.max(1))),
        events: events::Sink::start(client.clone()),
        client,
        cfg,
        cache: Cache::default(),
        queue: Queue::default(),
        algo: Algorithm::default(),
        tx,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        while let Some(Some(input)) = inputs.next().now_or_never() {
            st.input(input);
        }
        while let Ok(b) = rx.try_recv() {
            st.bound(b);
        }
        if st.queue.has_active() && st.binds.available_permits() > 0 {
            st.schedule_some(256);
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            input = inputs.next() => match input {
                Some(i) => st.input(i),
                None => return Err(Error::StreamsEnded),
            },
            Some(b) = rx.recv() => st.bound(b),
            _ = tick.tick() => st.queue.tick(Instant::now()),
        }
    }
}

fn ours(pod: &Pod, cfg: &Config) -> bool {
    let Some(spec) = &pod.spec else { return false };
    let name = spec.scheduler_name.as_deref().unwrap_or(events::COMPONENT);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    name == cfg.scheduler_name
        && spec.node_name.as_deref().unwrap_or("").is_empty()
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some("Succeeded") | Some("Failed"))
}

impl State {
    fn input(&mut self, input: Input) {
        match input {
            Input::Pod(Ok(ev)) => self.pod_event(ev),
            Input::Node(Ok(ev)) => self.node_event(ev),
            Input::Pod(Err(e)) | Input::Node(Err(e)) => {
                tracing::warn!(error = %e, "scheduler watch error; retrying");
            }
        }
    }

    fn pod_event(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Apply(pod) | Event::InitApply(pod) => self.pod_applied(pod),
            Event::Delete(pod) => {
                let key = pod_key(&pod);
                self.queue.remove(&key);
                self.cache.remove_pod(&key);
                self.queue.cluster_changed();
            }
            Event::Init | Event::InitDone => {}
        }
    }

    fn pod_applied(&mut self, pod: Pod) {
        let key = pod_key(&pod);
        let had = self.cache.node_of(&key).is_some();
        self.cache.upsert_pod(&pod);
        if ours(&pod, &self.cfg) {
            self.queue.upsert(key, pod);
        } else {
            self.queue.remove(&key);
            if had && self.cache.node_of(&key).is_none() {
                self.queue.cluster_changed();
            }
        }
    }

    fn node_event(&mut self, ev: Event<Node>) {
        match ev {
            Event::Apply(node) | Event::InitApply(node) => self.cache.upsert_node(node),
            Event::Delete(node) => self
                .cache
                .remove_node(node.metadata.name.as_deref().unwrap_or_default()),
            Event::Init | Event::InitDone => return,
        }
        self.queue.cluster_changed();
    }

    fn bound(&mut self, b: Bound) {
        match b {
            Bound::Ok(key) => self.queue.done(&key),
            Bound::Gone(key) => {
                self.cache.forget(&key);
                self.queue.done(&key);
            }
            Bound::Retry(key) => {
                self.cache.forget(&key);
                self.queue.retry(&key);
            }
        }
    }

    fn schedule_some(&mut self, max: usize) {
        for _ in 0..max {
            let Ok(permit) = self.binds.clone().try_acquire_owned() else {
                return;
            };
            let Some((key, pod)) = self.queue.pop() else {
                return;
            };
            let view = PodView::new(&pod);
            match self.algo.schedule(&mut self.cache, &view) {
                Decision::Node(node) => {
                    self.cache.assume(&pod, &node);
                    let (client, tx) = (self.client.clone(), self.tx.clone());
                    let sink = self.events.clone();
                    tokio::spawn(async move {
                        let out = bind(&client, &pod, &node, key).await;
                        drop(permit);
                        if matches!(out, Bound::Ok(_)) {
                            // Queued, not awaited: events never hold up bindings.
                            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                            let name = pod.metadata.name.as_deref().unwrap_or_default();
                            let msg = format!("Successfully assigned {ns}/{name} to {node}");
                            sink.record(events::pod_event(&pod, "Normal", "Scheduled", msg));
                        }
                        let _ = tx.send(out);
                    });
                }
                Decision::Unschedulable(msg) => {
                    tracing::debug!(pod = %key, %msg, "unschedulable");
                    self.queue.unschedulable(&key);
                    let client = self.client.clone();
                    tokio::spawn(async move { events::failed(&client, &pod, msg).await });
                }
            }
        }
    }
}

async fn bind(client: &Client, pod: &Pod, node: &str, key: String) -> Bound {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.clone().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_string()),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let res: Result<serde_json::Value, _> = api
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await;
    match res {
        Ok(_) => Bound::Ok(key),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Bound::Gone(key),
        Err(e) => {
            tracing::warn!(pod = %key, node, error = %e, "binding failed");
            Bound::Retry(key)
        }
    }
}
