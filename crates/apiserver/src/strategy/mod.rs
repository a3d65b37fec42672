//! Per-resource strategies: everything the generic REST handler needs to
//! know about one resource — how to decode (pruning unknown fields through
//! the k8s-openapi type) and default it, how to validate it, which names
//! are legal, which field selectors exist, and whether it has a spec whose
//! changes bump `metadata.generation`. Adding a resource is adding an entry.

mod defaults;
pub mod ephemeral;
mod validate;

use crate::registry::{self, Resource};
use crate::status::Cause;
use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// How an object name is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
}

pub struct Strategy {
    pub resource: &'static Resource,
    /// Decodes into the typed struct (dropping unknown fields), defaults, encodes.
    pub normalize: fn(Value) -> Result<Value, String>,
    /// Resource-specific validation (metadata is checked generically).
    pub validate: fn(&Value, Option<&Value>) -> Vec<Cause>,
    pub names: NameRule,
    /// Field selectors beyond `metadata.name` and `metadata.namespace`.
    pub fields: &'static [&'static str],
    /// Spec changes bump `metadata.generation`.
    pub has_spec: bool,
    /// Status given on create is kept (nodes, events); otherwise it is reset.
    pub keep_status_on_create: bool,
}

fn typed<K: DeserializeOwned + Serialize>(v: Value, default: fn(&mut K)) -> Result<Value, String> {
    let mut k: K = serde_json::from_value(v).map_err(|e| e.to_string())?;
    default(&mut k);
    serde_json::to_value(&k).map_err(|e| e.to_string())
}

fn nothing<K>(_: &mut K) {}

macro_rules! normalizer {
    ($name:ident, $ty:ty, $default:path) => {
        fn $name(v: Value) -> Result<Value, String> {
            typed::<$ty>(v, $default)
        }
    };
}

normalizer!(n_pod, core::Pod, defaults::pod);
normalizer!(n_service, core::Service, defaults::service);
normalizer!(n_namespace, core::Namespace, defaults::namespace);
normalizer!(n_secret, core::Secret, defaults::secret);
normalizer!(n_configmap, core::ConfigMap, nothing);
normalizer!(n_endpoints, core::Endpoints, nothing);
normalizer!(n_event, core::Event, nothing);
normalizer!(n_node, core::Node, nothing);
normalizer!(n_sa, core::ServiceAccount, nothing);
normalizer!(n_binding, core::Binding, nothing);
normalizer!(n_deployment, apps::Deployment, defaults::deployment);
normalizer!(n_replicaset, apps::ReplicaSet, defaults::replica_set);
normalizer!(n_statefulset, apps::StatefulSet, defaults::stateful_set);
normalizer!(n_daemonset, apps::DaemonSet, defaults::daemon_set);
normalizer!(n_job, batch::Job, defaults::job);
normalizer!(n_revision, apps::ControllerRevision, nothing);
normalizer!(n_cronjob, batch::CronJob, defaults::cron_job);
normalizer!(n_lease, k8s_openapi::api::coordination::v1::Lease, nothing);
normalizer!(
    n_slice,
    k8s_openapi::api::discovery::v1::EndpointSlice,
    nothing
);
normalizer!(n_event2, k8s_openapi::api::events::v1::Event, nothing);

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

fn strategy_for(r: &'static Resource) -> Strategy {
    let mut s = Strategy {
        resource: r,
        normalize: n_configmap,
        validate: validate::none,
        names: NameRule::Subdomain,
        fields: &[],
        has_spec: false,
        keep_status_on_create: false,
    };
    match (r.group, r.plural) {
        ("", "pods") => {
            (s.normalize, s.validate, s.fields, s.has_spec) =
                (n_pod, validate::pod, POD_FIELDS, true)
        }
        ("", "services") => {
            (s.normalize, s.validate, s.names, s.has_spec) =
                (n_service, validate::service, NameRule::Dns1035, true)
        }
        ("", "namespaces") => {
            (s.normalize, s.names, s.fields) = (n_namespace, NameRule::Label, &["status.phase"])
        }
        ("", "secrets") => {
            (s.normalize, s.validate, s.fields) = (n_secret, validate::secret, &["type"])
        }
        ("", "configmaps") => (s.normalize, s.validate) = (n_configmap, validate::config_map),
        ("", "endpoints") => s.normalize = n_endpoints,
        ("", "events") => {
            (s.normalize, s.fields, s.keep_status_on_create) = (n_event, EVENT_FIELDS, true)
        }
        ("", "nodes") => {
            (s.normalize, s.fields, s.keep_status_on_create, s.has_spec) =
                (n_node, &["spec.unschedulable"], true, true)
        }
        ("", "serviceaccounts") => s.normalize = n_sa,
        ("", "bindings") => s.normalize = n_binding,
        ("apps", "deployments") => {
            (s.normalize, s.validate, s.has_spec) = (n_deployment, validate::workload, true)
        }
        ("apps", "replicasets") => {
            (s.normalize, s.validate, s.has_spec, s.fields) =
                (n_replicaset, validate::workload, true, &["status.replicas"])
        }
        ("apps", "statefulsets") => {
            (s.normalize, s.validate, s.has_spec) = (n_statefulset, validate::workload, true)
        }
        ("apps", "daemonsets") => {
            (s.normalize, s.validate, s.has_spec) = (n_daemonset, validate::workload, true)
        }
        ("apps", "controllerrevisions") => s.normalize = n_revision,
        ("batch", "jobs") => {
            (s.normalize, s.validate, s.has_spec, s.fields) =
                (n_job, validate::job, true, &["status.successful"])
        }
        ("batch", "cronjobs") => {
            (s.normalize, s.validate, s.has_spec) = (n_cronjob, validate::cron_job, true)
        }
        ("coordination.k8s.io", _) => (s.normalize, s.has_spec) = (n_lease, true),
        ("discovery.k8s.io", _) => s.normalize = n_slice,
        ("events.k8s.io", _) => (s.normalize, s.keep_status_on_create) = (n_event2, true),
        _ => {}
    }
    s
}

/// Every strategy, one per served resource, in registry order.
pub fn all() -> Vec<Strategy> {
    registry::RESOURCES.iter().map(strategy_for).collect()
}

impl Strategy {
    /// Name checks for `metadata.name`.
    pub fn validate_name(&self, name: &str) -> Vec<Cause> {
        let f = "metadata.name";
        match self.names {
            NameRule::Subdomain => crate::meta::dns1123_subdomain(f, name),
            NameRule::Label => crate::meta::dns1123_label(f, name),
            NameRule::Dns1035 => crate::meta::dns1035_label(f, name),
        }
    }

    /// Whether `field` may be used in a field selector on this resource.
    pub fn selectable(&self, field: &str) -> bool {
        field == "metadata.name"
            || (field == "metadata.namespace" && self.resource.namespaced)
            || self.fields.contains(&field)
    }

    /// The text value of a selectable field (`""` when absent, as upstream).
    pub fn field_value(&self, obj: &Value, field: &str) -> String {
        if field == "source" {
            return api::selector::field_value(obj, "source.component").unwrap_or_default();
        }
        if field == "spec.hostNetwork" || field == "spec.unschedulable" {
            return api::selector::field_value(obj, field).unwrap_or_else(|| "false".into());
        }
        api::selector::field_value(obj, field).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_prunes_unknown_fields_and_defaults() {
        let all = all();
        let pods = all.iter().find(|s| s.resource.plural == "pods").unwrap();
        let v = (pods.normalize)(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "bogus": 1,
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "nope": true}]}
        }))
        .unwrap();
        assert!(v.get("bogus").is_none());
        assert!(v["spec"]["containers"][0].get("nope").is_none());
        assert_eq!(v["spec"]["restartPolicy"], "Always");
        assert_eq!(v["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(v["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(v["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(v["kind"], "Pod");
        assert!((pods.normalize)(serde_json::json!({"kind": "Service"})).is_err());
    }
}
