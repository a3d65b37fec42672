//! Starts every controller with its own work queue over the shared caches.

use crate::context::Context;
use crate::{
    cronjob, daemonset, deployment, endpointslice, gc, job, namespace, nodeipam, nodelifecycle,
    podgc, replicaset, serviceaccount, Error,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn error_policy<K>(_obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Settings of the controllers that have any (`bosun server` flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster CIDR node IPAM carves pod CIDRs from.
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR.
    pub node_cidr_mask_size: u8,
    /// Terminated pods kept before pod GC deletes the oldest.
    pub terminated_pod_gc_threshold: usize,
    /// Node lifecycle (grace period before a silent node is Unknown).
    pub node_lifecycle: nodelifecycle::Config,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            cluster_cidr: nodeipam::DEFAULT_CLUSTER_CIDR.into(),
            node_cidr_mask_size: nodeipam::DEFAULT_NODE_MASK,
            terminated_pod_gc_threshold: podgc::DEFAULT_THRESHOLD,
            node_lifecycle: nodelifecycle::Config::default(),
        }
    }
}

/// Runs the controllers until the process ends.
pub async fn run(client: Client, opts: Options) {
    let ctx = Arc::new(Context::start(client.clone()).await);
    let wc = watcher::Config::default;
    let cfg = Config::default().concurrency(8);
    let rs = Controller::new(Api::<ReplicaSet>::all(client.clone()), wc())
        .owns_stream(ctx.pods.changes())
        .with_config(cfg.clone())
        .run(replicaset::reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let deploy = Controller::new(Api::<Deployment>::all(client.clone()), wc())
        .owns_stream(ctx.replicasets.changes())
        .with_config(cfg)
        .run(deployment::reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let cleanup = async {
        futures::join!(
            gc::run(client.clone()),
            namespace::run(client.clone()),
            serviceaccount::run(client.clone()),
            podgc::run(ctx.clone(), opts.terminated_pod_gc_threshold),
            nodeipam::run(
                client.clone(),
                opts.cluster_cidr.clone(),
                opts.node_cidr_mask_size
            ),
        )
    };
    let lifecycle = nodelifecycle::run(
        client.clone(),
        ctx.pods.store.clone(),
        opts.node_lifecycle.clone(),
    );
    let endpoints = endpointslice::run(client.clone(), ctx.clone());
    let jobs = job::run(client.clone(), ctx.clone());
    let cronjobs = cronjob::run(client.clone(), ctx.clone());
    let daemonsets = daemonset::run(client.clone(), ctx.clone());
    futures::join!(rs, deploy, cleanup, lifecycle, endpoints, jobs, cronjobs, daemonsets);
}
