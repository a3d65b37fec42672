//! Events about pods (Pulling, Pulled, Created, Started, Killing, BackOff,
//! Failed, …) posted as core/v1 Events from the `kubelet` component.
//! Posting is best effort: a failure is logged, never fatal.

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

/// Posts events for one node.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
}

impl Recorder {
    pub fn new(client: kube::Client, node: impl Into<String>) -> Self {
        Self {
            client,
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
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, %reason, "posting an event");
        }
    }
}
