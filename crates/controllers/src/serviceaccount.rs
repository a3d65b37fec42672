//! The ServiceAccount controller: every active namespace has a `default`
//! ServiceAccount; one deleted is created again.

use crate::{Error, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::PostParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

/// The account every namespace gets.
pub const DEFAULT: &str = "default";

/// Runs the controller until the process ends.
pub async fn run(client: Client) {
    Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default(),
        |sa: ServiceAccount| {
            let ns = sa.metadata.namespace.clone().unwrap_or_default();
            (sa.metadata.name.as_deref() == Some(DEFAULT)).then(|| ObjectRef::<Namespace>::new(&ns))
        },
    )
    .run(reconcile, error_policy, Arc::new(client))
    .for_each(|_| futures::future::ready(()))
    .await;
}

fn error_policy(_ns: Arc<Namespace>, err: &Error, _client: Arc<Client>) -> Action {
    tracing::debug!(error = %err, "serviceaccount: reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(ns: Arc<Namespace>, client: Arc<Client>) -> Result<Action> {
    let active = ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating");
    if !active {
        return Ok(Action::await_change());
    }
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    let api: Api<ServiceAccount> = Api::namespaced((*client).clone(), name);
    if api.get_opt(DEFAULT).await?.is_some() {
        return Ok(Action::await_change());
    }
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some(DEFAULT.into());
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => tracing::debug!(namespace = name, "serviceaccount: created default"),
        // Exists already (409), or the namespace is going away (403/404).
        Err(kube::Error::Api(e)) if [403, 404, 409].contains(&e.code) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}
