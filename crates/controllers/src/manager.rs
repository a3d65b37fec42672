//! Starts every controller with its own work queue over the shared caches.

use crate::context::Context;
use crate::{deployment, endpointslice, nodelifecycle, replicaset, Error};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

fn error_policy<K>(_obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Settings of the controller manager (`bosun server` flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub node_lifecycle: nodelifecycle::Config,
}

/// Runs the controllers until the process ends.
pub async fn run(client: Client, opts: Options) {
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
    let lifecycle = nodelifecycle::run(client.clone(), ctx.pods.clone(), opts.node_lifecycle);
    let endpoints = endpointslice::run(client.clone(), ctx.pods.clone());
    futures::join!(rs, deploy, lifecycle, endpoints);
}
