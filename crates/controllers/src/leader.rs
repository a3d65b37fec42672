//! Leader election through a coordination.k8s.io/v1 Lease, as upstream's
//! client-go leaderelection: the holder renews every `retry` with
//! `leaseDurationSeconds` of validity; a candidate takes the Lease over only
//! after seeing the record unchanged for a full lease duration (local clock,
//! so clock skew between servers does not matter); every write carries the
//! read resourceVersion, so two candidates cannot both win. The elected work
//! runs on its own runtime, shut down (every task of it) as soon as
//! renewing fails for `renew_deadline`, which is shorter than the lease.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

/// Namespace of the control-plane Leases (as upstream).
pub const NAMESPACE: &str = "kube-system";

/// One election.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lease name: `kube-controller-manager` or `kube-scheduler`.
    pub name: String,
    /// This candidate's identity (unique per process).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Config {
    /// Upstream-like timing, tightened: renew every 2 s, lease 15 s, give up after 10 s.
    pub fn new(name: &str, identity: &str) -> Config {
        Config {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// A unique identity for this process: host name, pid and a random suffix.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "bosun".into());
    format!("{host}_{}_{}", std::process::id(), uuid::Uuid::new_v4())
}

/// The lease record as last seen, and when we first saw it so.
#[derive(Default)]
struct Observed {
    record: Option<(String, String)>,
    since: Option<Instant>,
}

impl Observed {
    fn held_by_other(&self, me: &str) -> bool {
        self.record
            .as_ref()
            .is_some_and(|(h, _)| !h.is_empty() && h != me)
    }
}

/// The elected work: its own runtime, so stopping it stops every task it spawned.
struct Term(Option<tokio::runtime::Runtime>);

impl Term {
    fn start<F, Fut>(name: &str, work: &F) -> std::io::Result<Term>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name(format!("bosun-{name}"))
            .enable_all()
            .build()?;
        rt.spawn(work());
        Ok(Term(Some(rt)))
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Campaigns forever; runs `work` on a fresh runtime while this process leads.
pub async fn run<F, Fut>(client: Client, cfg: Config, work: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let mut seen = Observed::default();
    let mut term: Option<Term> = None;
    let mut renewed = Instant::now();
    loop {
        match try_acquire_or_renew(&api, &cfg, &mut seen).await {
            Ok(true) => {
                renewed = Instant::now();
                if term.is_none() {
                    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "leader: acquired the lease");
                    match Term::start(&cfg.name, &work) {
                        Ok(t) => term = Some(t),
                        Err(e) => tracing::error!(error = %e, "leader: cannot start a runtime"),
                    }
                }
            }
            Ok(false) if seen.held_by_other(&cfg.identity) => {
                if term.take().is_some() {
                    tracing::warn!(lease = %cfg.name, "leader: lost the lease; stopping");
                }
            }
            res => {
                if let Err(e) = res {
                    tracing::debug!(lease = %cfg.name, error = %e, "leader: lease request failed");
                }
                if term.is_some() && renewed.elapsed() > cfg.renew_deadline {
                    tracing::warn!(lease = %cfg.name, "leader: could not renew in time; stopping");
                    term = None;
                }
            }
        }
        tokio::time::sleep(cfg.retry).await;
    }
}

fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// One round: Ok(true) when we hold the lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    cfg: &Config,
    seen: &mut Observed,
) -> Result<bool, kube::Error> {
    let secs = i32::try_from(cfg.lease_duration.as_secs()).unwrap_or(15);
    let Some(current) = api.get_opt(&cfg.name).await? else {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": cfg.name, "namespace": NAMESPACE},
            "spec": {"holderIdentity": cfg.identity, "leaseDurationSeconds": secs,
                     "acquireTime": now_micro(), "renewTime": now_micro(), "leaseTransitions": 0},
        }))
        .map_err(kube::Error::SerdeError)?;
        return won(api.create(&PostParams::default(), &lease).await);
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let record = (
        holder.clone(),
        current
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default(),
    );
    if seen.record.as_ref() != Some(&record) {
        seen.record = Some(record);
        seen.since = Some(Instant::now());
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(secs).max(1) as u64);
    let valid = seen.since.is_some_and(|t| t.elapsed() < duration);
    if !holder.is_empty() && holder != cfg.identity && valid {
        return Ok(false);
    }
    let mut v = serde_json::to_value(&current).map_err(kube::Error::SerdeError)?;
    v["spec"]["holderIdentity"] = json!(cfg.identity);
    v["spec"]["leaseDurationSeconds"] = json!(secs);
    v["spec"]["renewTime"] = json!(now_micro());
    if holder != cfg.identity {
        v["spec"]["acquireTime"] = json!(now_micro());
        v["spec"]["leaseTransitions"] = json!(spec.lease_transitions.unwrap_or(0) + 1);
    }
    let lease: Lease = serde_json::from_value(v).map_err(kube::Error::SerdeError)?;
    // resourceVersion from the read: a concurrent writer makes this a 409.
    won(api.replace(&cfg.name, &PostParams::default(), &lease).await)
}

fn won(r: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match r {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
