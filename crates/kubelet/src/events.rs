//! Events about pods (Pulling, Pulled, Created, Started, Killing, BackOff,
//! Failed, …) posted as core/v1 Events from the `kubelet` component.
//! Posting is best effort: a failure is logged, never fatal. Events are
//! queued and posted in order by one background task (as upstream's event
//! broadcaster does), so a pod worker never waits for the API server to
//! record one.

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

/// Posts events for one node.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<(String, Event)>,
    node: String,
}

impl Recorder {
    /// Starts the task that posts the queued events; needs a tokio runtime.
    pub fn new(client: kube::Client, node: impl Into<String>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(post_queued(client, rx));
        Self {
            queue,
            node: node.into(),
        }
    }

    /// A Normal event about `pod` (field path names the container, if any).
    pub async fn normal(&self, pod: &Pod, container: Option<&str>, reason: &str, message: &str) {
        self.post(pod, container, "Normal", reason, message).await;
    }

    /// A Warning event about `pod`.
    pub async fn warning(&self, pod: &Pod, container: Option<&str>, reason: &str, message: &str) {
        self.post(pod, container, "Warning", reason, message).await;
    }

    async fn post(
        &self,
        pod: &Pod,
        container: Option<&str>,
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let t = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let suffix: u64 =
            (Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64) & 0xffff_ffff_ffff;
        let mut involved = json!({
            "kind": "Pod", "namespace": ns, "name": name, "apiVersion": "v1",
            "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version,
        });
        if let Some(c) = container {
            involved["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
        }
        let body = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{suffix:x}"), "namespace": ns},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet", "reportingInstance": self.node,
            "firstTimestamp": t, "lastTimestamp": t, "count": 1,
        });
        let event: Event = match serde_json::from_value(body) {
            Ok(e) => e,
            Err(e) => return tracing::debug!(error = %e, "building an event"),
        };
        if self.queue.send((ns, event)).is_err() {
            tracing::debug!(%reason, "event queue closed");
        }
    }
}

/// Posts queued events one after another until every [`Recorder`] is gone.
async fn post_queued(client: kube::Client, mut rx: mpsc::UnboundedReceiver<(String, Event)>) {
    while let Some((ns, event)) = rx.recv().await {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, reason = ?event.reason, "posting an event");
        }
    }
}
