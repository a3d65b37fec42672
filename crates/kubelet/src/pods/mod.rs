//! The pods bound to this node: a watch on `spec.nodeName=<node>` feeding
//! one [`worker::Worker`] per pod, and on start-up the removal of sandboxes
//! whose pods no longer exist.

mod carry;
mod container;
mod devices;
pub mod env;
mod ephemeral;
mod hooks;
mod lifecycle;
pub mod plugins;
pub mod sandbox;
pub mod status;
mod timing;
mod worker;

use crate::cri::{Cri, LABEL_POD_UID};
use crate::events::Recorder;
use crate::host::HostInfo;
use crate::{Config, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// What every pod worker shares.
pub struct Ctx {
    pub client: kube::Client,
    pub cri: Cri,
    pub config: Config,
    pub node_ip: String,
    pub recorder: Recorder,
    /// The runtime's name, the scheme of containerIDs (`bosun://<id>`).
    pub runtime_name: String,
    pub host: HostInfo,
    /// Volume and probe managers shared by the workers.
    pub plugins: Arc<plugins::NodePlugins>,
    /// Device plugins' resources: allocated when a container is created.
    pub devices: Arc<deviceplugin::Manager>,
}

/// Runs the watch and the workers.
pub struct Manager {
    ctx: Arc<Ctx>,
    workers: HashMap<String, (watch::Sender<Option<Pod>>, tokio::task::JoinHandle<()>)>,
}

impl Manager {
    pub fn new(
        client: kube::Client,
        cri: Cri,
        config: Config,
        node_ip: IpAddr,
        devices: Arc<deviceplugin::Manager>,
    ) -> Self {
        let host = HostInfo::read(&config.root_dir);
        let recorder = Recorder::new(client.clone(), config.node_name.clone());
        let plugins =
            plugins::NodePlugins::start(&client, &cri, &config.root_dir, &host, recorder.clone());
        let ctx = Ctx {
            recorder,
            plugins,
            client,
            cri,
            node_ip: node_ip.to_string(),
            runtime_name: String::new(),
            host,
            config,
            devices,
        };
        Self {
            ctx: Arc::new(ctx),
            workers: HashMap::new(),
        }
    }

    /// Watches the node's pods forever.
    pub async fn run(mut self) -> Result<()> {
        let name = self.ctx.cri.version().await?.runtime_name;
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.runtime_name = name;
        }
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let selector = format!("spec.nodeName={}", self.ctx.config.node_name);
        let cfg = watcher::Config::default().fields(&selector);
        let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
        let mut listed: HashSet<String> = HashSet::new();
        let mut first_list = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(pod)) => {
                    listed.insert(sandbox::uid(&pod).to_string());
                    self.update(pod);
                }
                Ok(Event::InitDone) => {
                    let gone: Vec<String> = self
                        .workers
                        .keys()
                        .filter(|u| !listed.contains(*u))
                        .cloned()
                        .collect();
                    for uid in gone {
                        self.gone(&uid);
                    }
                    if first_list {
                        first_list = false;
                        self.remove_orphans(&listed).await;
                    }
                }
                Ok(Event::Apply(pod)) => self.update(pod),
                Ok(Event::Delete(pod)) => self.gone(sandbox::uid(&pod)),
                Err(e) => tracing::warn!(error = %e, "watching pods"),
            }
            self.workers.retain(|_, (_, h)| !h.is_finished());
            if !first_list {
                // Pods whose workers are done (or never came back) free their devices.
                let live: HashSet<String> = self.workers.keys().cloned().collect();
                self.ctx.devices.retain_pods(&live);
            }
        }
        Ok(())
    }

    fn update(&mut self, pod: Pod) {
        let uid = sandbox::uid(&pod).to_string();
        if let Some((tx, h)) = self.workers.get(&uid) {
            if !h.is_finished() {
                tx.send_replace(Some(pod));
                return;
            }
        }
        let (tx, rx) = watch::channel(Some(pod.clone()));
        let w = worker::Worker::new(self.ctx.clone(), pod);
        self.workers.insert(uid, (tx, tokio::spawn(w.run(rx))));
    }

    fn gone(&mut self, uid: &str) {
        if let Some((tx, _)) = self.workers.get(uid) {
            tx.send_replace(None);
        }
    }

    /// Sandboxes left by pods that no longer exist (deleted while the kubelet was down).
    async fn remove_orphans(&self, live: &HashSet<String>) {
        let all = match self.ctx.cri.sandboxes(&[]).await {
            Ok(a) => a,
            Err(e) => return tracing::warn!(error = %e, "listing sandboxes"),
        };
        for sb in all {
            let Some(uid) = sb.labels.get(LABEL_POD_UID) else {
                continue;
            };
            if live.contains(uid) {
                continue;
            }
            tracing::info!(sandbox = %sb.id, pod_uid = %uid, "removing orphaned sandbox");
            if let Err(e) = self.ctx.cri.remove_sandbox(&sb.id).await {
                tracing::warn!(error = %e, "removing orphaned sandbox");
            }
            if let Some(cg) = sb.annotations.get(sandbox::ANNOTATION_POD_CGROUP) {
                let _ = crate::cgroup::remove_pod_cgroup(cg);
            }
            // Unmounts tmpfs emptyDirs before removing the pod's directory.
            if let Err(e) = self.ctx.plugins.volumes.teardown(uid).await {
                tracing::warn!(error = %e, pod_uid = %uid, "tearing down orphaned volumes");
            }
            let _ = std::fs::remove_dir_all(self.ctx.config.root_dir.join("pods").join(uid));
        }
    }
}
