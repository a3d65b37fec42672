//! Writes core/v1 Events about pods (Scheduled, FailedScheduling) and the
//! pod's PodScheduled condition, as kube-scheduler does.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use tokio::sync::mpsc;

/// Events written at once by a [`Sink`].
const SINK_PARALLEL: usize = 4;

/// Writes events in the background, a few at a time, in the order given, as
/// upstream's event broadcaster does: recording an event never holds up a
/// binding, and event writes never crowd out the bindings' API requests.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::UnboundedSender<Event>,
}

impl Sink {
    /// Starts the writer task (it ends when every `Sink` clone is dropped).
    pub fn start(client: Client) -> Sink {
        use futures::StreamExt;
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        tokio::spawn(stream.for_each_concurrent(SINK_PARALLEL, move |ev| {
            let client = client.clone();
            async move { emit(&client, ev).await }
        }));
        Sink { tx }
    }

    /// Queues an event for writing.
    pub fn record(&self, ev: Event) {
        if self.tx.send(ev).is_err() {
            tracing::debug!("event writer stopped; event dropped");
        }
    }
}

/// Component name in events, as upstream.
pub const COMPONENT: &str = "default-scheduler";

/// Builds an Event about `pod` (shared with the controllers' style).
pub fn pod_event(pod: &Pod, type_: &str, reason: &str, message: String) -> Event {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{nanos:x}")),
            namespace: pod.metadata.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(type_.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    }
}

/// Posts an event; failures are logged, never fatal.
pub async fn emit(client: &Client, ev: Event) {
    let ns = ev
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(error = %e, "cannot record event");
    }
}

/// Records why the pod is not scheduled: an event and the PodScheduled condition.
pub async fn failed(client: &Client, pod: &Pod, message: String) {
    emit(
        client,
        pod_event(pod, "Warning", "FailedScheduling", message.clone()),
    )
    .await;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }]}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        tracing::debug!(pod = name, error = %e, "cannot set PodScheduled condition");
    }
}
