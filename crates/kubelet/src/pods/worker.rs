//! One worker per pod: a loop that syncs the pod (sandbox, init containers
//! in order, then containers, with restart policy and CrashLoopBackOff),
//! reports its status, and on deletion stops everything within the grace
//! period before confirming the deletion. Volumes and probes plug in through
//! [`super::plugins::PodPlugins`].

use super::plugins::{PluginContext, PodPlugins};
use super::sandbox::{self, ANNOTATION_POD_CGROUP};
use super::status::{self, Observed};
use super::Ctx;
use crate::cri::{LABEL_CONTAINER_NAME, LABEL_POD_UID};
use crate::error::{api, cri, Result};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Restart back-off of one container: 10 s doubling to 300 s.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    pub delay: Duration,
    pub until: Instant,
}
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long resets its back-off.
const BACKOFF_RESET_NANOS: i64 = 600 * 1_000_000_000;
/// How often a busy pod is re-synced (upstream's PLEG relists every second).
const RESYNC: Duration = Duration::from_secs(1);

pub struct Worker {
    pub(super) ctx: Arc<Ctx>,
    pub(super) pod: Pod,
    pub(super) uid: String,
    /// The ready sandbox: (id, pod IP).
    pub(super) sandbox: Option<(String, String)>,
    pub(super) observed: HashMap<String, Observed>,
    /// Containers that ran in a sandbox since removed, or before this worker
    /// started: their last status (see `carry`). Always part of `observed`.
    pub(super) carried: HashMap<String, Observed>,
    /// The attempt an init container starts at in a recreated sandbox: one
    /// past its last (restartCount keeps counting).
    pub(super) next_attempt: HashMap<String, u32>,
    /// Last CRI status per container id (refreshed when its state changes).
    pub(super) cache: HashMap<String, v1::ContainerStatus>,
    pub(super) waiting: HashMap<String, (String, String)>,
    pub(super) backoff: HashMap<String, Backoff>,
    pub(super) plugins: PodPlugins,
    pub(super) pctx: PluginContext,
    pub(super) last_status: Option<Value>,
    pub(super) start_time: String,
    pub(super) cgroup: String,
    pub(super) init_done: bool,
    pub(super) init_failed: bool,
    /// Terminal phase reached: the sandbox is gone and the status frozen.
    pub(super) finished: bool,
    /// Deletion handled: containers stopped, sandbox removed.
    pub(super) terminated: bool,
    /// A container was started in this pass (observe again before reporting).
    pub(super) started_any: bool,
    /// Where the first start's time went (logged once Ready).
    pub(super) timeline: super::timing::Timeline,
}

impl Worker {
    pub fn new(ctx: Arc<Ctx>, pod: Pod) -> Self {
        let uid = sandbox::uid(&pod).to_string();
        let pctx = PluginContext {
            client: ctx.client.clone(),
            cri: ctx.cri.clone(),
            pod_dir: ctx.config.root_dir.join("pods").join(&uid),
            node: ctx.plugins.clone(),
        };
        let last_status = pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(status::now);
        let cgroup = crate::cgroup::pod_cgroup_path(&ctx.config.cgroup_root, &pod);
        let carried = super::carry::ran_before(&pod);
        let next_attempt = super::carry::next_attempts(&pod);
        Self {
            ctx,
            pod,
            uid,
            sandbox: None,
            observed: carried.clone(),
            carried,
            next_attempt,
            cache: HashMap::new(),
            waiting: HashMap::new(),
            backoff: HashMap::new(),
            plugins: PodPlugins::default(),
            pctx,
            last_status,
            start_time,
            cgroup,
            init_done: false,
            init_failed: false,
            finished: false,
            terminated: false,
            started_any: false,
            timeline: super::timing::Timeline::new(),
        }
    }

    fn name(&self) -> String {
        format!(
            "{}/{}",
            sandbox::namespace(&self.pod),
            sandbox::name(&self.pod)
        )
    }

    /// Runs until the pod object is gone (the channel carries None or closes).
    pub async fn run(mut self, mut rx: watch::Receiver<Option<Pod>>) {
        loop {
            let latest = rx.borrow_and_update().clone();
            let Some(pod) = latest else { break };
            self.pod = pod;
            // Boxed: the pass's state (CRI and API calls in flight) is large
            // (~25 KiB) and lives only while a pass runs, not in the task of
            // every idle pod.
            let wait = Box::pin(self.step()).await;
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(wait) => {}
            }
        }
        Box::pin(self.cleanup()).await;
    }

    /// One pass; returns how long to sleep unless the pod changes.
    async fn step(&mut self) -> Duration {
        if self.pod.metadata.deletion_timestamp.is_some() {
            if !self.terminated {
                self.terminate().await;
            }
            if let Err(e) = self.confirm_deletion().await {
                tracing::warn!(pod = %self.name(), error = %e, "confirming deletion");
                return Duration::from_secs(2);
            }
            return Duration::from_secs(3600);
        }
        if self.finished {
            return Duration::from_secs(3600);
        }
        if status::terminal(&self.pod) {
            // Terminal before this worker started (a kubelet restart): never
            // rerun it, only make sure its sandbox is stopped.
            self.finish().await;
            return Duration::from_secs(3600);
        }
        if let Err(e) = self.sync().await {
            tracing::warn!(pod = %self.name(), error = %e, "pod sync");
        }
        let status = self.report().await;
        // Finish only once the terminal status is in the API: a finished
        // worker never reports again, so a failed write is retried first.
        let written = self.last_status.as_ref() == Some(&status);
        if written && matches!(status["phase"].as_str(), Some("Succeeded" | "Failed")) {
            self.finish().await;
        }
        RESYNC
    }

    /// Sandbox, init containers, containers.
    async fn sync(&mut self) -> Result<()> {
        if let Err(e) = self.plugins.setup(&self.pctx, &self.pod).await {
            self.wait_all("ContainerCreating", &e.to_string());
            self.warn_once("FailedMount", &e.to_string()).await;
            return Ok(());
        }
        self.timeline.mark("volumes");
        let sid = match self.ensure_sandbox().await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.warn_once("FailedCreatePodSandBox", &e.to_string())
                    .await;
                return Err(e);
            }
        };
        self.observe(&sid).await?;
        if !self.sync_init(&sid).await? {
            return Ok(());
        }
        let containers = sandbox::spec(&self.pod).containers;
        for c in &containers {
            self.sync_container(&sid, c).await;
        }
        self.sync_ephemeral(&sid).await;
        if std::mem::take(&mut self.started_any) {
            // This pass's status shows what it started (one status write, not two).
            self.observe(&sid).await?;
            self.timeline.mark("observe");
        }
        Ok(())
    }

    fn wait_all(&mut self, reason: &str, message: &str) {
        let spec = sandbox::spec(&self.pod);
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
        {
            self.waiting
                .insert(c.name.clone(), (reason.into(), message.into()));
        }
    }

    /// A Warning event, once per distinct message.
    async fn warn_once(&mut self, reason: &str, message: &str) {
        let key = format!("event/{reason}");
        if self.waiting.get(&key).is_some_and(|(_, m)| m == message) {
            return;
        }
        self.waiting.insert(key, (reason.into(), message.into()));
        self.ctx
            .recorder
            .warning(&self.pod, None, reason, message)
            .await;
    }

    /// Adopts the pod's ready sandbox or creates one (removing dead ones);
    /// none when the pod's containers ran and are not to run again.
    async fn ensure_sandbox(&mut self) -> Result<Option<String>> {
        let all = self
            .ctx
            .cri
            .sandboxes(&[(LABEL_POD_UID, &self.uid)])
            .await?;
        let ready = v1::PodSandboxState::SandboxReady as i32;
        let mut attempt = 0;
        let mut found = None;
        for sb in &all {
            let a = sb.metadata.as_ref().map_or(0, |m| m.attempt);
            if sb.state == ready && found.is_none() {
                found = Some(sb.clone());
            } else if sb.state != ready {
                attempt = attempt.max(a + 1);
                tracing::info!(pod = %self.name(), sandbox = %sb.id, "removing dead sandbox");
                self.forget_sandbox();
                self.ctx.cri.remove_sandbox(&sb.id).await?;
                self.sandbox = None;
            }
        }
        if let Some(sb) = found {
            if self.sandbox.as_ref().map(|s| &s.0) != Some(&sb.id) {
                let ip = self.ctx.cri.sandbox_ip(&sb.id).await?;
                if let Some(cg) = sb.annotations.get(ANNOTATION_POD_CGROUP) {
                    self.cgroup = cg.clone();
                }
                tracing::info!(pod = %self.name(), sandbox = %sb.id, %ip, "adopted sandbox");
                self.sandbox = Some((sb.id.clone(), ip));
            }
            return Ok(Some(sb.id));
        }
        if !super::carry::needs_sandbox(&self.pod, &self.carried) {
            return Ok(None);
        }
        self.create_sandbox(attempt).await.map(Some)
    }

    /// What a dead sandbox's containers leave to its successor: containers
    /// and ephemeral containers are carried over (see `carry`); init
    /// containers run again, one attempt further, as upstream does.
    fn forget_sandbox(&mut self) {
        let carried = super::carry::carry_over(&self.pod, &self.observed);
        for (name, o) in self.observed.drain() {
            if !carried.contains_key(&name) {
                self.next_attempt.insert(name, o.attempt() + 1);
            }
        }
        self.carried.extend(carried);
        self.reset_observed();
        self.init_done = false;
    }

    /// Forgets the containers seen in a sandbox that is gone, keeping what
    /// was carried (so a status report made before the next `observe` still
    /// shows it).
    pub(super) fn reset_observed(&mut self) {
        self.observed = self.carried.clone();
    }

    /// The attempt container `name` starts at when it has no instance here.
    fn first_attempt(&self, name: &str) -> u32 {
        self.next_attempt.get(name).copied().unwrap_or(0)
    }

    async fn create_sandbox(&mut self, attempt: u32) -> Result<String> {
        let dns = self.dns().await;
        let config = sandbox::config(
            &self.pod,
            attempt,
            &self.ctx.config.pod_log_dir,
            &self.cgroup,
            Some(dns.clone()),
        );
        // cgroupfs and file writes block: off the async workers, which the
        // API server, the other pod workers and CRI share.
        let (cgroup, pod, dir) = (
            self.cgroup.clone(),
            self.pod.clone(),
            self.pctx.pod_dir.clone(),
        );
        let log_dir = sandbox::log_dir(&self.ctx.config.pod_log_dir, &self.pod);
        blocking(move || {
            crate::cgroup::create_pod_cgroup(&cgroup, &pod)?;
            sandbox::write_file(&dir, "resolv.conf", &sandbox::resolv_conf(&dns))?;
            std::fs::create_dir_all(&log_dir).map_err(crate::error::io("create", &log_dir))
        })
        .await?;
        self.timeline.mark("sandbox_prep");
        let req = v1::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let id = self
            .ctx
            .cri
            .rt
            .clone()
            .run_pod_sandbox(req)
            .await
            .map_err(cri("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id;
        self.timeline.mark("run_sandbox");
        let ip = if sandbox::host_network(&self.pod) {
            self.ctx.node_ip.clone()
        } else {
            self.ctx.cri.sandbox_ip(&id).await?
        };
        let hosts = sandbox::hosts_file(&self.pod, &ip, &self.ctx.config.cluster_domain);
        let dir = self.pctx.pod_dir.clone();
        blocking(move || sandbox::write_file(&dir, "etc-hosts", &hosts)).await?;
        tracing::info!(pod = %self.name(), sandbox = %id, %ip, "sandbox started");
        self.sandbox = Some((id.clone(), ip));
        self.reset_observed();
        Ok(id)
    }

    /// The DNS config: cluster DNS when the kube-dns Service exists.
    async fn dns(&self) -> v1::DnsConfig {
        let svcs: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(self.ctx.client.clone(), "kube-system");
        let ip = svcs
            .get_opt("kube-dns")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.spec?.cluster_ip)
            .filter(|ip| !ip.is_empty() && ip != "None");
        sandbox::dns_config(&self.pod, ip.as_deref(), &self.ctx.config.cluster_domain)
    }

    pub(super) fn pod_ip(&self) -> String {
        self.sandbox
            .as_ref()
            .map(|s| s.1.clone())
            .unwrap_or_default()
    }

    /// Reads the sandbox's containers: newest and previous instance per
    /// name; older instances are removed.
    pub(super) async fn observe(&mut self, sid: &str) -> Result<()> {
        let list = self.ctx.cri.containers(sid).await?;
        let mut by_name: HashMap<String, Vec<v1::Container>> = HashMap::new();
        for c in list {
            let name = c
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default();
            by_name.entry(name).or_default().push(c);
        }
        let mut observed = HashMap::new();
        for (name, mut list) in by_name {
            list.sort_by_key(|c| std::cmp::Reverse(c.metadata.as_ref().map_or(0, |m| m.attempt)));
            for old in list.iter().skip(2) {
                let _ = self.ctx.cri.remove_container(&old.id).await;
                self.cache.remove(&old.id);
            }
            let latest = self.status_of(&list[0]).await?;
            let previous = match list.get(1) {
                Some(p) => Some(self.status_of(p).await?),
                None => None,
            };
            observed.insert(name, Observed { latest, previous });
        }
        super::carry::merge(&mut observed, &self.carried);
        self.observed = observed;
        Ok(())
    }

    async fn status_of(&mut self, c: &v1::Container) -> Result<v1::ContainerStatus> {
        if let Some(s) = self.cache.get(&c.id).filter(|s| s.state == c.state) {
            return Ok(s.clone());
        }
        let s = self.ctx.cri.container_status(&c.id).await?;
        self.cache.insert(c.id.clone(), s.clone());
        Ok(s)
    }

    fn restart_policy(&self) -> String {
        sandbox::spec(&self.pod)
            .restart_policy
            .unwrap_or_else(|| "Always".into())
    }

    /// Runs init containers one at a time; true once all completed.
    async fn sync_init(&mut self, sid: &str) -> Result<bool> {
        if self.init_done {
            return Ok(true);
        }
        let inits = sandbox::spec(&self.pod).init_containers.unwrap_or_default();
        for c in &inits {
            let Some(o) = self.observed.get(&c.name).cloned() else {
                self.start(sid, c, self.first_attempt(&c.name)).await;
                return Ok(false);
            };
            if o.exited() && o.latest.exit_code == 0 {
                continue;
            }
            if !o.exited() {
                return Ok(false);
            }
            if self.restart_policy() == "Never" {
                self.init_failed = true;
            } else {
                self.restart(sid, c, &o).await;
            }
            return Ok(false);
        }
        self.init_done = true;
        Ok(true)
    }

    async fn sync_container(&mut self, sid: &str, c: &Container) {
        let Some(o) = self.observed.get(&c.name).cloned() else {
            self.start(sid, c, self.first_attempt(&c.name)).await;
            return;
        };
        if o.running() {
            let ip = self.pod_ip();
            self.plugins
                .started(&self.pctx, &self.pod, c, &o.latest.id, &ip);
            if self.plugins.take_liveness_failure(&c.name) {
                let msg = format!(
                    "Container {} failed liveness probe, will be restarted",
                    c.name
                );
                self.ctx
                    .recorder
                    .normal(&self.pod, Some(&c.name), "Killing", &msg)
                    .await;
                let grace = self.grace();
                self.kill(c, &o.latest.id, grace).await;
            }
            return;
        }
        if !o.exited() {
            // Created but never started (a crash between the two calls).
            let _ = self.ctx.cri.remove_container(&o.latest.id).await;
            return;
        }
        let restart = match self.restart_policy().as_str() {
            "Never" => false,
            "OnFailure" => o.latest.exit_code != 0,
            _ => true,
        };
        if restart {
            self.restart(sid, c, &o).await;
        } else {
            self.waiting.remove(&c.name);
        }
    }

    /// Restarts an exited container unless its back-off is running.
    async fn restart(&mut self, sid: &str, c: &Container, o: &Observed) {
        let now = Instant::now();
        let prev = self.backoff.get(&c.name).copied();
        if let Some(b) = prev.filter(|b| now < b.until) {
            let msg = format!(
                "back-off {}s restarting failed container={} pod={}",
                b.delay.as_secs(),
                c.name,
                sandbox::name(&self.pod)
            );
            if self.waiting.get(&c.name).map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
                let ev = format!(
                    "Back-off restarting failed container {} in pod {}",
                    c.name,
                    sandbox::name(&self.pod)
                );
                self.ctx
                    .recorder
                    .warning(&self.pod, Some(&c.name), "BackOff", &ev)
                    .await;
            }
            self.waiting
                .insert(c.name.clone(), ("CrashLoopBackOff".into(), msg));
            return;
        }
        let ran = o.latest.finished_at - o.latest.started_at;
        let delay = match prev {
            Some(b) if ran < BACKOFF_RESET_NANOS => (b.delay * 2).min(BACKOFF_MAX),
            _ => BACKOFF_START,
        };
        self.backoff.insert(
            c.name.clone(),
            Backoff {
                delay,
                until: now + delay,
            },
        );
        self.start(sid, c, o.attempt() + 1).await;
    }

    /// The pod's grace period in seconds.
    pub(super) fn grace(&self) -> i64 {
        self.pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| sandbox::spec(&self.pod).termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0)
    }

    /// Reports the status when it changed; returns it.
    async fn report(&mut self) -> Value {
        let runtime = self.ctx.runtime_name.clone();
        let pod_ip = self.pod_ip();
        let st = status::Inputs {
            pod: &self.pod,
            observed: &self.observed,
            waiting: &self.waiting,
            plugins: &self.plugins,
            runtime: &runtime,
            pod_ip: &pod_ip,
            host_ip: &self.ctx.node_ip,
            start_time: &self.start_time,
            sandbox_ready: self.sandbox.is_some(),
            init_done: self.init_done,
            init_failed: self.init_failed,
        }
        .build(self.last_status.as_ref());
        if self.last_status.as_ref() != Some(&st) {
            if let Err(e) = self.patch_status(&st).await {
                tracing::warn!(pod = %self.name(), error = %e, "patching pod status");
                return st;
            }
            self.last_status = Some(st.clone());
            if super::timing::is_ready(&st) {
                self.timeline.ready_reported(&self.name());
            }
        }
        st
    }

    pub(super) async fn patch_status(&self, st: &Value) -> Result<()> {
        let pods: Api<Pod> =
            Api::namespaced(self.ctx.client.clone(), sandbox::namespace(&self.pod));
        pods.patch_status(
            sandbox::name(&self.pod),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": st })),
        )
        .await
        .map_err(api(format!("patch status of pod {}", self.name())))?;
        Ok(())
    }

    /// Deletes the pod object for good (grace 0) once everything stopped.
    async fn confirm_deletion(&self) -> Result<()> {
        let pods: Api<Pod> =
            Api::namespaced(self.ctx.client.clone(), sandbox::namespace(&self.pod));
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match pods.delete(sandbox::name(&self.pod), &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(api(format!("delete pod {}", self.name()))(e)),
        }
    }
}

/// Runs blocking file-system work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::Error::Config(format!("blocking task: {e}")))?
}
