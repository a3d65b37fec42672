//! Sandbox lifecycle behind RunPodSandbox, StopPodSandbox, RemovePodSandbox,
//! PodSandboxStatus and ListPodSandbox. Every call is idempotent where CRI
//! says so (stop and remove of an unknown sandbox succeed).

use crate::error::{Error, Result};
use crate::sandbox::SandboxRecord;
use crate::server::Server;
use k8s_cri::v1;
use nix::sys::signal::Signal;
use std::time::Duration;

/// CRI's NamespaceMode::NODE: share the host's namespace.
const NS_NODE: i32 = v1::NamespaceMode::Node as i32;

impl Server {
    pub(crate) async fn run_sandbox(&self, req: v1::RunPodSandboxRequest) -> Result<String> {
        let config = req
            .config
            .ok_or_else(|| Error::Invalid("RunPodSandbox without a config".into()))?;
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| Error::Invalid("sandbox config without metadata".into()))?;
        let linux = config.linux.clone().unwrap_or_default();
        let host_network = linux
            .security_context
            .as_ref()
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|n| n.network == NS_NODE);
        let mut rec = SandboxRecord {
            id: crate::new_id(),
            name: meta.name,
            uid: meta.uid,
            namespace: meta.namespace,
            attempt: meta.attempt,
            created_at: crate::now_nanos(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            hostname: config.hostname.clone(),
            log_directory: config.log_directory.clone(),
            cgroup_parent: linux.cgroup_parent.clone(),
            host_network,
            pid: 0,
            pid_start: 0,
            ip: String::new(),
            ready: true,
            attached: false,
        };
        let hostname = if host_network {
            String::new()
        } else {
            rec.hostname.clone()
        };
        let pause = self.inner.config.pause_command.clone();
        let t0 = std::time::Instant::now();
        // fork+exec of this large process and the record's file writes
        // block: they run on the blocking pool, not on the async workers.
        let (pid, start) =
            Self::blocking(move || crate::proc::spawn_pause(&pause, &hostname, host_network))
                .await?;
        rec.pid = pid;
        rec.pid_start = start;
        let t_pause = t0.elapsed();
        if let Err(e) = self.attach_network(&mut rec, &config.port_mappings).await {
            crate::proc::signal_and_wait(pid, start, Signal::SIGKILL, Duration::from_secs(10))
                .await;
            return Err(e);
        }
        let (saved, root) = (rec.clone(), self.root().to_path_buf());
        let t_cni = t0.elapsed();
        Self::blocking(move || saved.save(&root)).await?;
        tracing::debug!(
            target: "cri::podstart",
            pod = %rec.name,
            pause_ms = t_pause.as_millis(),
            cni_ms = (t_cni - t_pause).as_millis(),
            save_ms = (t0.elapsed() - t_cni).as_millis(),
            "sandbox timeline"
        );
        tracing::info!(id = %rec.id, pod = %rec.name, ip = %rec.ip, "sandbox ready");
        let id = rec.id.clone();
        self.inner.sandboxes.lock().await.insert(id.clone(), rec);
        Ok(id)
    }

    /// CNI ADD into the pause process's network namespace.
    async fn attach_network(
        &self,
        rec: &mut SandboxRecord,
        ports: &[v1::PortMapping],
    ) -> Result<()> {
        if rec.host_network {
            return Ok(());
        }
        let netns = rec
            .ns_path("net")
            .ok_or_else(|| Error::Failed(format!("pause process of {} died", rec.id)))?;
        let mut rt = rec.cni_conf(netns);
        rt.port_mappings = ports.iter().filter_map(port_mapping).collect();
        let mut list = self.network().await;
        if rt.port_mappings.is_empty() {
            // portmap ADD does nothing without mappings: spare its exec (DEL,
            // with the full list, still runs it and finds nothing to undo).
            list.plugins.retain(|p| p["type"] != "portmap");
        }
        // `lo` is already up: the pause process set it up in its new netns
        // (what the loopback plugin would do, without an exec per sandbox).
        self.masq_acquire().await?;
        let cni = self.inner.cni.clone();
        let added = tokio::task::spawn_blocking(move || cni.add(&list, &rt))
            .await
            .map_err(|e| Error::Failed(format!("CNI ADD task: {e}")))
            .and_then(|r| r.map_err(Error::from));
        let result = match added {
            Ok(r) => r,
            Err(e) => {
                self.masq_release().await;
                return Err(e);
            }
        };
        rec.attached = true;
        rec.ip = result.address_of("eth0").unwrap_or_default();
        Ok(())
    }

    /// CNI DEL (while the namespace still exists), then the pause process goes.
    pub(crate) async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let Some(mut rec) = self.sandbox(id).await else {
            return Ok(());
        };
        self.sandbox_containers(&rec.id, false).await?;
        if rec.attached {
            let netns = rec.ns_path("net").unwrap_or_default();
            let rt = rec.cni_conf(netns);
            let list = self.network().await;
            let cni = self.inner.cni.clone();
            tokio::task::spawn_blocking(move || cni.del(&list, &rt))
                .await
                .map_err(|e| Error::Failed(format!("CNI DEL task: {e}")))??;
            rec.attached = false;
            self.masq_release().await;
        }
        let gone = crate::proc::signal_and_wait(
            rec.pid,
            rec.pid_start,
            Signal::SIGKILL,
            Duration::from_secs(30),
        )
        .await;
        if !gone {
            return Err(Error::Failed(format!(
                "pause process {} of sandbox {id} did not exit",
                rec.pid
            )));
        }
        rec.ready = false;
        rec.save(self.root())?;
        self.inner
            .sandboxes
            .lock()
            .await
            .insert(rec.id.clone(), rec);
        Ok(())
    }

    pub(crate) async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let Some(rec) = self.sandbox(id).await else {
            return Ok(());
        };
        self.stop_sandbox(&rec.id).await?;
        self.sandbox_containers(&rec.id, true).await?;
        SandboxRecord::delete(self.root(), &rec.id)?;
        self.inner.sandboxes.lock().await.remove(&rec.id);
        Ok(())
    }

    /// Finds a sandbox by id or unique id prefix.
    pub(crate) async fn sandbox(&self, id: &str) -> Option<SandboxRecord> {
        if id.is_empty() {
            return None;
        }
        let map = self.inner.sandboxes.lock().await;
        if let Some(r) = map.get(id) {
            return Some(r.clone());
        }
        let mut hits = map.values().filter(|r| r.id.starts_with(id));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Some(r.clone()),
            _ => None,
        }
    }

    pub(crate) async fn sandbox_status(&self, id: &str) -> Result<v1::PodSandboxStatus> {
        let rec = self.sandbox(id).await.ok_or_else(|| Error::NotFound {
            what: "pod sandbox",
            id: id.to_string(),
        })?;
        let mode = if rec.host_network { NS_NODE } else { 0 };
        Ok(v1::PodSandboxStatus {
            id: rec.id.clone(),
            metadata: Some(metadata(&rec)),
            state: state(&rec),
            created_at: rec.created_at,
            network: Some(v1::PodSandboxNetworkStatus {
                ip: rec.ip.clone(),
                additional_ips: Vec::new(),
            }),
            linux: Some(v1::LinuxPodSandboxStatus {
                namespaces: Some(v1::Namespace {
                    options: Some(v1::NamespaceOption {
                        network: mode,
                        pid: v1::NamespaceMode::Container as i32,
                        ipc: 0,
                        ..Default::default()
                    }),
                }),
            }),
            labels: rec.labels.clone(),
            annotations: rec.annotations.clone(),
            runtime_handler: String::new(),
        })
    }

    /// The verbose `info` map: `{"info": <JSON with pid and netns>}`, as containerd gives.
    pub(crate) async fn sandbox_info(&self, id: &str) -> std::collections::HashMap<String, String> {
        let Some(rec) = self.sandbox(id).await else {
            return Default::default();
        };
        let netns = rec.ns_path("net").map(|p| p.display().to_string());
        let info = serde_json::json!({
            "pid": rec.pid,
            "netNamespacePath": netns,
            "cgroupParent": rec.cgroup_parent,
            "hostNetwork": rec.host_network,
        });
        [("info".to_string(), info.to_string())].into()
    }

    pub(crate) async fn list_sandboxes(
        &self,
        filter: Option<v1::PodSandboxFilter>,
    ) -> Vec<v1::PodSandbox> {
        let filter = filter.unwrap_or_default();
        let map = self.inner.sandboxes.lock().await;
        let mut out: Vec<v1::PodSandbox> = map
            .values()
            .filter(|r| filter.id.is_empty() || r.id.starts_with(&filter.id))
            .filter(|r| filter.state.as_ref().is_none_or(|s| s.state == state(r)))
            .filter(|r| labels_match(&r.labels, &filter.label_selector))
            .map(|r| v1::PodSandbox {
                id: r.id.clone(),
                metadata: Some(metadata(r)),
                state: state(r),
                created_at: r.created_at,
                labels: r.labels.clone(),
                annotations: r.annotations.clone(),
                runtime_handler: String::new(),
            })
            .collect();
        out.sort_by_key(|s| s.created_at);
        out
    }
}

fn state(r: &SandboxRecord) -> i32 {
    if r.ready && r.alive() {
        v1::PodSandboxState::SandboxReady as i32
    } else {
        v1::PodSandboxState::SandboxNotready as i32
    }
}

fn metadata(r: &SandboxRecord) -> v1::PodSandboxMetadata {
    v1::PodSandboxMetadata {
        name: r.name.clone(),
        uid: r.uid.clone(),
        namespace: r.namespace.clone(),
        attempt: r.attempt,
    }
}

/// Every selector label is present with the same value.
pub(crate) fn labels_match(
    labels: &std::collections::HashMap<String, String>,
    selector: &std::collections::HashMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn port_mapping(p: &v1::PortMapping) -> Option<cni::PortMapping> {
    let host_port = u16::try_from(p.host_port).ok().filter(|p| *p > 0)?;
    let protocol = match v1::Protocol::try_from(p.protocol) {
        Ok(v1::Protocol::Udp) => "udp",
        Ok(v1::Protocol::Sctp) => "sctp",
        _ => "tcp",
    };
    Some(cni::PortMapping {
        host_port,
        container_port: u16::try_from(p.container_port).ok()?,
        protocol: protocol.into(),
        host_ip: Some(p.host_ip.clone()).filter(|h| !h.is_empty()),
    })
}
