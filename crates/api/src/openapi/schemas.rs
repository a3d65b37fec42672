//! `components.schemas` from k8s-openapi's schemars implementations, with
//! upstream's `x-kubernetes-group-version-kind` on each top-level kind.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

/// The schemas of a set of kinds, collected in one generator so shared
/// types (ObjectMeta, PodSpec…) appear once.
pub(super) struct Schemas {
    generator: SchemaGenerator,
    /// Schema name → the GVKs whose top-level schema it is.
    kinds: Vec<(String, Value)>,
}

impl Schemas {
    pub(super) fn new() -> Self {
        Self {
            generator: SchemaSettings::openapi3().into_generator(),
            kinds: Vec::new(),
        }
    }

    /// Adds the schema of a kind and returns a `$ref` to it, or `None`
    /// when k8s-openapi has no type for it (a custom resource).
    pub(super) fn add_kind(&mut self, group: &str, version: &str, kind: &str) -> Option<Value> {
        let schema = schema_of(&mut self.generator, group, version, kind)?;
        let value = schema.to_value();
        let name = value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())?
            .to_string();
        let gvk = json!({"group": group, "version": version, "kind": kind});
        if !self.kinds.iter().any(|(n, g)| *n == name && *g == gvk) {
            self.kinds.push((name, gvk));
        }
        Some(value)
    }

    /// A `$ref` to a meta type used by every document (Status, Patch, DeleteOptions).
    pub(super) fn add_meta(&mut self, which: &str) -> Value {
        let schema = match which {
            "Status" => self.generator.subschema_for::<meta::Status>(),
            "DeleteOptions" => self.generator.subschema_for::<meta::DeleteOptions>(),
            _ => self.generator.subschema_for::<meta::Patch>(),
        };
        schema.to_value()
    }

    /// The collected schemas, with `x-kubernetes-group-version-kind` set.
    pub(super) fn finish(mut self) -> Map<String, Value> {
        let mut defs = self.generator.take_definitions(true);
        for (name, gvk) in self.kinds {
            if let Some(Value::Object(schema)) = defs.get_mut(&name) {
                let list = schema
                    .entry("x-kubernetes-group-version-kind")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.push(gvk);
                }
            }
        }
        defs
    }
}

/// Expands to a match from (group, version, kind) to `subschema_for::<T>()`.
macro_rules! kinds {
    ($gen:expr, $gvk:expr; $( ($g:literal, $v:literal, $k:literal) => $ty:ty ),* $(,)?) => {
        match $gvk {
            $( ($g, $v, $k) => Some($gen.subschema_for::<$ty>()), )*
            _ => None,
        }
    };
}

pub(super) fn schema_of(
    generator: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<schemars::Schema> {
    use api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    kinds!(generator, (group, version, kind);
        ("", "v1", "Pod") => core::Pod,
        ("", "v1", "Service") => core::Service,
        ("", "v1", "Endpoints") => core::Endpoints,
        ("", "v1", "Secret") => core::Secret,
        ("", "v1", "ConfigMap") => core::ConfigMap,
        ("", "v1", "ServiceAccount") => core::ServiceAccount,
        ("", "v1", "Namespace") => core::Namespace,
        ("", "v1", "Node") => core::Node,
        ("", "v1", "Event") => core::Event,
        ("", "v1", "Binding") => core::Binding,
        ("", "v1", "PersistentVolume") => core::PersistentVolume,
        ("", "v1", "PersistentVolumeClaim") => core::PersistentVolumeClaim,
        ("", "v1", "ResourceQuota") => core::ResourceQuota,
        ("", "v1", "LimitRange") => core::LimitRange,
        ("", "v1", "PodTemplate") => core::PodTemplate,
        ("", "v1", "ReplicationController") => core::ReplicationController,
        ("apps", "v1", "Deployment") => apps::Deployment,
        ("apps", "v1", "ReplicaSet") => apps::ReplicaSet,
        ("apps", "v1", "StatefulSet") => apps::StatefulSet,
        ("apps", "v1", "DaemonSet") => apps::DaemonSet,
        ("apps", "v1", "ControllerRevision") => apps::ControllerRevision,
        ("batch", "v1", "Job") => batch::Job,
        ("batch", "v1", "CronJob") => batch::CronJob,
        ("autoscaling", "v1", "Scale") => api::autoscaling::v1::Scale,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => api::autoscaling::v2::HorizontalPodAutoscaler,
        ("coordination.k8s.io", "v1", "Lease") => api::coordination::v1::Lease,
        ("discovery.k8s.io", "v1", "EndpointSlice") => api::discovery::v1::EndpointSlice,
        ("events.k8s.io", "v1", "Event") => api::events::v1::Event,
        ("policy", "v1", "PodDisruptionBudget") => api::policy::v1::PodDisruptionBudget,
        ("policy", "v1", "Eviction") => api::policy::v1::Eviction,
        ("rbac.authorization.k8s.io", "v1", "Role") => api::rbac::v1::Role,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => api::rbac::v1::RoleBinding,
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => api::rbac::v1::ClusterRole,
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => api::rbac::v1::ClusterRoleBinding,
        ("scheduling.k8s.io", "v1", "PriorityClass") => api::scheduling::v1::PriorityClass,
        ("networking.k8s.io", "v1", "Ingress") => api::networking::v1::Ingress,
        ("networking.k8s.io", "v1", "IngressClass") => api::networking::v1::IngressClass,
        ("networking.k8s.io", "v1", "NetworkPolicy") => api::networking::v1::NetworkPolicy,
        ("storage.k8s.io", "v1", "StorageClass") => api::storage::v1::StorageClass,
        ("authentication.k8s.io", "v1", "TokenRequest") => api::authentication::v1::TokenRequest,
    )
}
