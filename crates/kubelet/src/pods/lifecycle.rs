//! Container and pod lifecycle of a [`Worker`]: pulling images by policy,
//! creating and starting containers (events, postStart), killing them
//! (preStop, grace), and tearing the pod down on deletion, on reaching a
//! terminal phase, and when the object is gone.

use super::container::{self, bind};
use super::env::EnvContext;
use super::sandbox;
use super::worker::{Backoff, Worker};
use crate::cri::LABEL_POD_UID;
use crate::error::{cri, Error, Result};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::Container;
use std::time::{Duration, Instant};

/// The waiting reason a failed start shows.
fn waiting_reason(e: &Error) -> &'static str {
    match e {
        Error::Config(_) => "CreateContainerConfigError",
        Error::Image { reason, .. } => reason,
        _ => "RunContainerError",
    }
}

/// The pull policy, defaulted by the image's tag as the API server does.
fn pull_policy(c: &Container, image: &str) -> String {
    if let Some(p) = c.image_pull_policy.clone().filter(|p| !p.is_empty()) {
        return p;
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || name.split_once(':').is_some_and(|(_, t)| t != "latest") {
        "IfNotPresent".into()
    } else {
        "Always".into()
    }
}

impl Worker {
    /// Creates and starts container `c` as `attempt`; failures become its waiting state.
    pub(super) async fn start(&mut self, sid: &str, c: &Container, attempt: u32) {
        let pull_key = format!("pull/{}", c.name);
        if let Some(b) = self
            .backoff
            .get(&pull_key)
            .filter(|b| Instant::now() < b.until)
        {
            let msg = format!(
                "Back-off pulling image {:?} ({}s)",
                c.image.clone().unwrap_or_default(),
                b.delay.as_secs()
            );
            self.waiting
                .insert(c.name.clone(), ("ImagePullBackOff".into(), msg));
            return;
        }
        match self.create_and_start(sid, c, attempt).await {
            Ok(()) => {
                self.started_any = true;
                self.waiting.remove(&c.name);
                self.backoff.remove(&pull_key);
            }
            Err(e) => {
                let reason = waiting_reason(&e);
                let msg = e.to_string();
                if let Error::Image { .. } = e {
                    let delay = self
                        .backoff
                        .get(&pull_key)
                        .map_or(Duration::from_secs(10), |b| {
                            (b.delay * 2).min(Duration::from_secs(300))
                        });
                    self.backoff.insert(
                        pull_key,
                        Backoff {
                            delay,
                            until: Instant::now() + delay,
                        },
                    );
                }
                if self.waiting.get(&c.name).map(|w| &w.1) != Some(&msg) {
                    tracing::warn!(pod = %sandbox::name(&self.pod), container = %c.name, error = %msg, "starting container");
                    self.ctx
                        .recorder
                        .warning(&self.pod, Some(&c.name), "Failed", &msg)
                        .await;
                }
                self.waiting.insert(c.name.clone(), (reason.into(), msg));
            }
        }
    }

    async fn create_and_start(&mut self, sid: &str, c: &Container, attempt: u32) -> Result<()> {
        let image = c.image.clone().unwrap_or_default();
        let image_uid = self.ensure_image(c, &image).await?;
        self.timeline.mark("image");
        let pod_ip = self.pod_ip();
        let env = EnvContext {
            client: &self.ctx.client,
            pod: &self.pod,
            pod_ip: &pod_ip,
            host_ip: &self.ctx.node_ip,
            node_cpus: self.ctx.host.cpus,
            node_memory: self.ctx.host.memory_bytes,
        }
        .resolve(c)
        .await?;
        let mut mounts = self.pod_mounts();
        mounts.extend(self.plugins.mounts(c));
        let mut config = container::config(container::Inputs {
            pod: &self.pod,
            container: c,
            attempt,
            image: &image,
            env,
            mounts,
            image_uid,
        })?;
        super::ephemeral::set_target(&self.pod, &self.observed, &c.name, &mut config)?;
        self.add_devices(c, &mut config).await?;
        let dns = sandbox::dns_config(&self.pod, None, &self.ctx.config.cluster_domain);
        let sandbox_config = sandbox::config(
            &self.pod,
            0,
            &self.ctx.config.pod_log_dir,
            &self.cgroup,
            Some(dns),
        );
        let mut rt = self.ctx.cri.rt.clone();
        let req = v1::CreateContainerRequest {
            pod_sandbox_id: sid.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let id = rt
            .create_container(req)
            .await
            .map_err(cri("CreateContainer"))?
            .into_inner()
            .container_id;
        self.timeline.mark("create_container");
        let rec = self.ctx.recorder.clone();
        rec.normal(
            &self.pod,
            Some(&c.name),
            "Created",
            &format!("Created container {}", c.name),
        )
        .await;
        rt.start_container(v1::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .map_err(cri("StartContainer"))?;
        self.timeline.mark("start_container");
        rec.normal(
            &self.pod,
            Some(&c.name),
            "Started",
            &format!("Started container {}", c.name),
        )
        .await;
        self.plugins.started(&self.pctx, &self.pod, c, &id, &pod_ip);
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let grace = Duration::from_secs(self.grace().max(30) as u64);
            if let Err(e) = super::hooks::run(&self.ctx.cri, h, c, &id, &pod_ip, grace).await {
                let msg = format!("PostStartHook failed: {e}");
                rec.warning(&self.pod, Some(&c.name), "FailedPostStartHook", &msg)
                    .await;
                self.kill(c, &id, self.grace()).await;
            }
        }
        Ok(())
    }

    /// /etc/hosts and /etc/resolv.conf from the pod dir (not for hostNetwork /etc/hosts).
    fn pod_mounts(&self) -> Vec<v1::Mount> {
        let dir = &self.pctx.pod_dir;
        let mut m = vec![bind(&dir.join("resolv.conf"), "/etc/resolv.conf", false)];
        if !sandbox::host_network(&self.pod) {
            m.push(bind(&dir.join("etc-hosts"), "/etc/hosts", false));
        }
        m
    }

    /// Pulls by policy; returns the image's user id when known.
    async fn ensure_image(&self, c: &Container, image: &str) -> Result<Option<i64>> {
        let cri = &self.ctx.cri;
        let rec = &self.ctx.recorder;
        let present = cri.image_status(image).await?;
        let uid = |i: &Option<v1::Image>| i.as_ref().and_then(|i| i.uid.as_ref()).map(|u| u.value);
        match pull_policy(c, image).as_str() {
            "Never" if present.is_none() => {
                return Err(Error::Image {
                    reason: "ErrImageNeverPull",
                    message: format!(
                        "Container image {image:?} is not present with pull policy of Never"
                    ),
                })
            }
            "Never" | "IfNotPresent" if present.is_some() => {
                let msg = format!("Container image {image:?} already present on machine");
                rec.normal(&self.pod, Some(&c.name), "Pulled", &msg).await;
                return Ok(uid(&present));
            }
            _ => {}
        }
        rec.normal(
            &self.pod,
            Some(&c.name),
            "Pulling",
            &format!("Pulling image {image:?}"),
        )
        .await;
        let started = Instant::now();
        match cri.pull(image).await {
            Ok(_) => {
                let msg = format!(
                    "Successfully pulled image {image:?} in {:.3}s",
                    started.elapsed().as_secs_f64()
                );
                rec.normal(&self.pod, Some(&c.name), "Pulled", &msg).await;
                Ok(uid(&cri.image_status(image).await?))
            }
            // Offline nodes: policy Always with a local copy runs the local copy.
            Err(e) if present.is_some() => {
                let msg =
                    format!("Pulling {image:?} failed ({e}); using the image present on the node");
                rec.warning(&self.pod, Some(&c.name), "Pulled", &msg).await;
                Ok(uid(&present))
            }
            Err(e) => Err(e),
        }
    }

    /// preStop (bounded by the grace period), then StopContainer with what is left.
    pub(super) async fn kill(&mut self, c: &Container, id: &str, grace: i64) {
        kill_one(&self.ctx, &self.pod, c, id, grace, &self.pod_ip()).await;
        self.plugins.stopped(&c.name);
    }

    /// Stops every running container concurrently within the grace period.
    async fn kill_all(&mut self, grace: i64) {
        let spec = sandbox::spec(&self.pod);
        let pod_ip = self.pod_ip();
        let all: Vec<Container> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .cloned()
            .chain(super::ephemeral::containers(&self.pod))
            .collect();
        let mut work = Vec::new();
        for c in &all {
            if let Some(o) = self.observed.get(&c.name).filter(|o| o.running()) {
                work.push(kill_one(
                    &self.ctx,
                    &self.pod,
                    c,
                    &o.latest.id,
                    grace,
                    &pod_ip,
                ));
            }
        }
        futures::future::join_all(work).await;
        for c in &all {
            self.plugins.stopped(&c.name);
        }
    }

    /// Deletion: stop containers within grace, report, remove the sandbox.
    pub(super) async fn terminate(&mut self) {
        if let Ok(Some(sid)) = self.adopt_only().await {
            let _ = self.observe(&sid).await;
            self.kill_all(self.grace()).await;
            let _ = self.observe(&sid).await;
        }
        // No status write here: this API server removes an object that has a
        // deletionTimestamp and no finalizers on any update, which would drop
        // the pod before its sandbox is gone.
        self.remove_sandboxes().await;
        self.terminated = true;
    }

    /// A terminal phase: the sandbox stops (network, pause process, cgroup,
    /// volumes and devices are released) but stays with its exited
    /// containers, so `kubectl logs` of a completed pod (a Job's) still
    /// reads them; deletion removes them. The status stays.
    pub(super) async fn finish(&mut self) {
        self.kill_all(self.grace()).await;
        self.drop_sandboxes(false).await;
        self.finished = true;
    }

    /// The pod object is gone: make sure nothing of it is left.
    pub(super) async fn cleanup(&mut self) {
        if !self.terminated {
            if let Ok(Some(sid)) = self.adopt_only().await {
                let _ = self.observe(&sid).await;
                self.kill_all(self.grace().min(2)).await;
            }
            self.remove_sandboxes().await;
        }
        let dir = self.pctx.pod_dir.clone();
        let _ = std::fs::remove_dir_all(&dir);
        let logs = sandbox::log_dir(&self.ctx.config.pod_log_dir, &self.pod);
        let _ = std::fs::remove_dir_all(&logs);
        tracing::info!(pod = %sandbox::name(&self.pod), "pod cleaned up");
    }

    /// The pod's ready sandbox, without creating one.
    async fn adopt_only(&mut self) -> Result<Option<String>> {
        if let Some((id, _)) = &self.sandbox {
            return Ok(Some(id.clone()));
        }
        let ready = v1::PodSandboxState::SandboxReady as i32;
        let all = self
            .ctx
            .cri
            .sandboxes(&[(LABEL_POD_UID, &self.uid)])
            .await?;
        Ok(all.into_iter().find(|s| s.state == ready).map(|s| s.id))
    }

    /// StopPodSandbox + RemovePodSandbox for every sandbox of the pod, then its cgroup.
    async fn remove_sandboxes(&mut self) {
        self.drop_sandboxes(true).await;
    }

    /// Stops (and with `remove`, removes) every sandbox of the pod, then
    /// releases its cgroup, volumes and devices.
    async fn drop_sandboxes(&mut self, remove: bool) {
        match self.ctx.cri.sandboxes(&[(LABEL_POD_UID, &self.uid)]).await {
            Ok(all) => {
                for sb in all {
                    let r = if remove {
                        self.ctx.cri.remove_sandbox(&sb.id).await
                    } else {
                        self.ctx.cri.stop_sandbox(&sb.id).await
                    };
                    if let Err(e) = r {
                        tracing::warn!(sandbox = %sb.id, error = %e, remove, "dropping sandbox");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing sandboxes"),
        }
        self.sandbox = None;
        self.reset_observed();
        self.cache.clear();
        if let Err(e) = crate::cgroup::remove_pod_cgroup(&self.cgroup) {
            tracing::warn!(error = %e, "removing the pod cgroup");
        }
        self.plugins.teardown(&self.pctx, &self.uid).await;
        self.ctx.devices.release_pod(&self.uid);
    }
}

/// Kills one container: Killing event, preStop within grace, StopContainer.
async fn kill_one(
    ctx: &super::Ctx,
    pod: &k8s_openapi::api::core::v1::Pod,
    c: &Container,
    id: &str,
    grace: i64,
    pod_ip: &str,
) {
    let started = Instant::now();
    ctx.recorder
        .normal(
            pod,
            Some(&c.name),
            "Killing",
            &format!("Stopping container {}", c.name),
        )
        .await;
    if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        let limit = Duration::from_secs(grace.max(1) as u64);
        if let Err(e) = super::hooks::run(&ctx.cri, h, c, id, pod_ip, limit).await {
            let msg = format!("PreStopHook failed: {e}");
            ctx.recorder
                .warning(pod, Some(&c.name), "FailedPreStopHook", &msg)
                .await;
        }
    }
    let left = grace - started.elapsed().as_secs() as i64;
    if let Err(e) = ctx.cri.stop_container(id, left.max(0)).await {
        tracing::warn!(container = %id, error = %e, "stopping container");
    }
}
