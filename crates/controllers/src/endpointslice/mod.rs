//! The EndpointSlice controller (discovery.k8s.io/v1), sharing its work
//! queue with the legacy Endpoints controller: both are keyed by Service
//! and recomputed from the Service's selector and the pods it matches.
//! Services without a selector are left alone (users manage their slices).
//! Pod changes are mapped to the Services that select the pod now or
//! listed it last time.

pub mod pods;
pub mod slices;

use crate::context::Context;
use crate::{endpoints, Error, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// State shared by reconciles.
pub struct State {
    client: Client,
    pods: Store<Pod>,
    /// `ns/service` → names of the pods it listed last time.
    members: Mutex<HashMap<String, HashSet<String>>>,
}

fn svc_key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// Reconciles one Service's EndpointSlices and Endpoints.
pub async fn reconcile(svc: Arc<Service>, st: Arc<State>) -> Result<Action> {
    if svc.metadata.deletion_timestamp.is_some() || pods::selector(&svc).is_none() {
        return Ok(Action::await_change());
    }
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let backends = pods::backends(&svc, &st.pods.state());
    if let Ok(mut m) = st.members.lock() {
        let names = backends
            .iter()
            .filter_map(|b| b.pod.metadata.name.clone())
            .collect();
        m.insert(svc_key(&ns, &name), names);
    }
    slices::sync(&st.client, &svc, &backends).await?;
    endpoints::sync(&st.client, &svc, &backends).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Services to reconcile after a change of `pod`.
fn services_of(pod: &Pod, services: &Store<Service>, st: &State) -> Vec<ObjectRef<Service>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let members = st.members.lock().ok();
    services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| {
            let selects = pods::selector(s)
                .is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
            let listed = members.as_ref().is_some_and(|m| {
                let key = svc_key(ns, s.metadata.name.as_deref().unwrap_or_default());
                m.get(&key).is_some_and(|set| set.contains(name))
            });
            selects || listed
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn error_policy(_svc: Arc<Service>, err: &Error, _st: Arc<State>) -> Action {
    tracing::debug!(error = %err, "endpoints reconcile failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the EndpointSlice and Endpoints controllers until the process ends.
pub async fn run(client: Client, ctx: Arc<Context>) {
    let st = Arc::new(State {
        client: client.clone(),
        pods: ctx.pods.store.clone(),
        members: Mutex::new(HashMap::new()),
    });
    let wc = watcher::Config::default;
    let ctl = Controller::new(Api::<Service>::all(client.clone()), wc());
    let services = ctl.store();
    let mapper_state = st.clone();
    ctl.owns(Api::<EndpointSlice>::all(client.clone()), wc())
        .watches_stream(ctx.pods.changes(), move |pod: Pod| {
            services_of(&pod, &services, &mapper_state)
        })
        .with_config(Config::default().concurrency(4))
        .run(reconcile, error_policy, st)
        .for_each(|_| futures::future::ready(()))
        .await;
}
