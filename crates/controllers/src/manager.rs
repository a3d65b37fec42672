//! Starts every controller with its own work queue over the shared caches.

use crate::context::Context;
use crate::{cronjob, daemonset, deployment, job, replicaset, Error};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn error_policy<K>(_obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the controllers until the process ends.
pub async fn run(client: Client) {
    let ctx = Arc::new(Context::start(client.clone()).await);
    let wc = watcher::Config::default;
    let cfg = Config::default().concurrency(8);
    let rs = Controller::new(Api::<ReplicaSet>::all(client.clone()), wc())
        .owns(Api::<Pod>::all(client.clone()), wc())
        .with_config(cfg.clone())
        .run(replicaset::reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let deploy = Controller::new(Api::<Deployment>::all(client.clone()), wc())
        .owns(Api::<ReplicaSet>::all(client.clone()), wc())
        .with_config(cfg)
        .run(deployment::reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let jobs = job::run(client.clone(), ctx.clone());
    let cronjobs = cronjob::run(client.clone(), ctx.clone());
    let daemonsets = daemonset::run(client.clone(), ctx.clone());
    futures::join!(rs, deploy, jobs, cronjobs, daemonsets);
}
