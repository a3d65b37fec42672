//! Container probes: exec (through CRI ExecSync), httpGet, tcpSocket and
//! grpc, for liveness, readiness and startup.
//!
//! The pod worker calls [`ProbeManager::add`] once a container runs and
//! [`ProbeManager::remove`] when it is gone. Results are published two ways:
//! [`ProbeManager::status`] is the current truth per container (ready,
//! started, and a pending restart request), and [`ProbeManager::subscribe`]
//! streams [`ProbeEvent`]s to wake workers and to post events. A container
//! without a readiness probe is ready and one without a startup probe is
//! started from the moment it is added.

mod check;
mod grpc;
#[cfg(test)]
mod tests;
mod worker;

pub use check::Outcome;
pub use worker::Timing;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tonic::transport::Channel;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl std::fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        })
    }
}

/// The container a probe belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub pod_uid: String,
    pub namespace: String,
    pub pod_name: String,
    pub container_name: String,
    pub container_id: String,
}

/// What the probes report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// One attempt failed: an `Unhealthy` Warning event with this message
    /// (e.g. `Liveness probe failed: HTTP probe failed with statuscode: 500`).
    Unhealthy {
        target: ContainerRef,
        kind: ProbeKind,
        message: String,
    },
    /// The readiness result changed.
    Readiness { target: ContainerRef, ready: bool },
    /// The startup probe succeeded.
    Started { target: ContainerRef },
    /// Liveness or startup failed failureThreshold times in a row: kill the
    /// container and restart it per its restartPolicy. `message` is
    /// `Liveness probe failed: …`.
    Restart {
        target: ContainerRef,
        kind: ProbeKind,
        message: String,
    },
}

/// The current probe results of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeStatus {
    pub ready: bool,
    pub started: bool,
    /// Set once liveness/startup failed: the restart to perform and why.
    pub restart: Option<String>,
}

struct Entry {
    status: ProbeStatus,
    pod_uid: String,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// State shared between the manager and its workers.
#[derive(Clone)]
pub(crate) struct Shared {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    events: broadcast::Sender<ProbeEvent>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, e: ProbeEvent) {
        let _ = self.events.send(e); // no subscriber is fine
    }

    fn started(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|e| e.status.started)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut ProbeStatus) -> bool) -> bool {
        self.lock().get_mut(id).is_some_and(|e| f(&mut e.status))
    }

    fn set_ready(&self, t: &ContainerRef, ready: bool) {
        let changed = self.update(&t.container_id, |s| {
            std::mem::replace(&mut s.ready, ready) != ready
        });
        if changed {
            self.emit(ProbeEvent::Readiness {
                target: t.clone(),
                ready,
            });
        }
    }

    fn set_started(&self, t: &ContainerRef) {
        if self.update(&t.container_id, |s| {
            !std::mem::replace(&mut s.started, true)
        }) {
            self.emit(ProbeEvent::Started { target: t.clone() });
        }
    }

    fn kill(&self, t: &ContainerRef, kind: ProbeKind, message: String) {
        let set = self.update(&t.container_id, |s| {
            s.restart = Some(message.clone());
            s.ready = false;
            true
        });
        if set {
            self.emit(ProbeEvent::Restart {
                target: t.clone(),
                kind,
                message,
            });
        }
    }
}

/// Runs the probes of the containers it is given.
#[derive(Clone)]
pub struct ProbeManager {
    cri: RuntimeServiceClient<Channel>,
    http: reqwest::Client,
    shared: Shared,
}

/// Why the manager could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the HTTP probe client: {0}")]
pub struct ProbeError(#[from] reqwest::Error);

impl ProbeManager {
    /// A manager probing through `cri` (exec probes use its ExecSync).
    pub fn new(cri: RuntimeServiceClient<Channel>) -> Result<ProbeManager, ProbeError> {
        let (events, _) = broadcast::channel(1024);
        Ok(ProbeManager {
            cri,
            http: check::http_client()?,
            shared: Shared {
                entries: Arc::new(Mutex::new(HashMap::new())),
                events,
            },
        })
    }

    /// Starts probing `container` (running as `container_id` in `pod`, whose
    /// IP is `pod_ip`). Adding a container id twice does nothing.
    pub fn add(&self, pod: &Pod, container: &Container, container_id: &str, pod_ip: &str) {
        let mut entries = self.shared.lock();
        if entries.contains_key(container_id) {
            return;
        }
        let meta = &pod.metadata;
        let target = ContainerRef {
            pod_uid: meta.uid.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            pod_name: meta.name.clone().unwrap_or_default(),
            container_name: container.name.clone(),
            container_id: container_id.to_string(),
        };
        let ctx = check::Target {
            cri: self.cri.clone(),
            http: self.http.clone(),
            container_id: container_id.to_string(),
            container: container.clone(),
            pod_ip: pod_ip.to_string(),
        };
        let probes = [
            (ProbeKind::Startup, &container.startup_probe),
            (ProbeKind::Liveness, &container.liveness_probe),
            (ProbeKind::Readiness, &container.readiness_probe),
        ];
        let tasks = probes
            .into_iter()
            .filter_map(|(kind, p)| Some((kind, p.clone()?)))
            .map(|(kind, probe)| {
                let run = worker::run(
                    self.shared.clone(),
                    target.clone(),
                    kind,
                    probe,
                    ctx.clone(),
                );
                tokio::spawn(run).abort_handle()
            })
            .collect();
        let status = ProbeStatus {
            ready: container.readiness_probe.is_none(),
            started: container.startup_probe.is_none(),
            restart: None,
        };
        let entry = Entry {
            status,
            pod_uid: target.pod_uid.clone(),
            tasks,
        };
        entries.insert(container_id.to_string(), entry);
    }

    /// Stops probing a container (it exited or was removed).
    pub fn remove(&self, container_id: &str) {
        if let Some(e) = self.shared.lock().remove(container_id) {
            e.tasks.iter().for_each(|t| t.abort());
        }
    }

    /// Stops probing every container of a pod.
    pub fn remove_pod(&self, pod_uid: &str) {
        self.shared.lock().retain(|_, e| {
            let keep = e.pod_uid != pod_uid;
            if !keep {
                e.tasks.iter().for_each(|t| t.abort());
            }
            keep
        });
    }

    /// The current results of a container (None when not probed).
    pub fn status(&self, container_id: &str) -> Option<ProbeStatus> {
        self.shared
            .lock()
            .get(container_id)
            .map(|e| e.status.clone())
    }

    /// A stream of probe events for every container.
    pub fn subscribe(&self) -> broadcast::Receiver<ProbeEvent> {
        self.shared.events.subscribe()
    }
}
