//! Patch metadata of the built-in types: which lists merge by which key,
//! which are sets of primitives, which maps honour `$retainKeys`, and which
//! structs are atomic for server-side apply. Taken from the upstream Go
//! types' `patchStrategy`/`patchMergeKey` tags and `+listType`/`+listMapKey`
//! markers. Lists not described here are atomic (replaced as a whole).

/// How a field's value merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Maps merge recursively, lists are replaced.
    Default,
    /// A list of objects merged by key: `patchMergeKey` for strategic merge
    /// patch, `list_keys` (the `+listMapKey`s) for server-side apply.
    MergeByKey {
        merge_key: &'static str,
        list_keys: &'static [&'static str],
    },
    /// A list of primitives merged as a set (`finalizers`).
    Set,
    /// Replaced as a whole by server-side apply (`+structType=atomic`).
    Atomic,
}

/// The patch metadata of one field: its strategy, whether it honours
/// `$retainKeys`, and the type of its value (or of its list items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldMeta {
    pub strategy: Strategy,
    pub retain_keys: bool,
    pub child: Option<&'static str>,
}

const fn of(child: &'static str) -> FieldMeta {
    FieldMeta {
        strategy: Strategy::Default,
        retain_keys: false,
        child: Some(child),
    }
}

const fn keyed(merge_key: &'static str, child: Option<&'static str>) -> FieldMeta {
    keyed_by(merge_key, &[], child)
}

const fn keyed_by(
    merge_key: &'static str,
    list_keys: &'static [&'static str],
    child: Option<&'static str>,
) -> FieldMeta {
    FieldMeta {
        strategy: Strategy::MergeByKey {
            merge_key,
            list_keys,
        },
        retain_keys: false,
        child,
    }
}

const SET: FieldMeta = FieldMeta {
    strategy: Strategy::Set,
    retain_keys: false,
    child: None,
};

const ATOMIC: FieldMeta = FieldMeta {
    strategy: Strategy::Atomic,
    retain_keys: false,
    child: None,
};

const fn retain(mut meta: FieldMeta) -> FieldMeta {
    meta.retain_keys = true;
    meta
}

const CONDITIONS: FieldMeta = keyed("type", None);

type Fields = &'static [(&'static str, FieldMeta)];

/// Type name → its fields with patch metadata.
static TYPES: &[(&str, Fields)] = &[
    (
        "ObjectMeta",
        &[("ownerReferences", keyed("uid", None)), ("finalizers", SET)],
    ),
    (
        "PodTemplateSpec",
        &[("metadata", of("ObjectMeta")), ("spec", of("PodSpec"))],
    ),
    (
        "PodSpec",
        &[
            ("containers", keyed("name", Some("Container"))),
            ("initContainers", keyed("name", Some("Container"))),
            ("ephemeralContainers", keyed("name", Some("Container"))),
            ("volumes", retain(keyed("name", None))),
            ("imagePullSecrets", keyed("name", None)),
            ("hostAliases", keyed("ip", None)),
            (
                "topologySpreadConstraints",
                keyed_by("topologyKey", &["topologyKey", "whenUnsatisfiable"], None),
            ),
            ("resourceClaims", retain(keyed("name", None))),
            ("schedulingGates", keyed("name", None)),
        ],
    ),
    (
        "Container",
        &[
            (
                "ports",
                keyed_by("containerPort", &["containerPort", "protocol"], None),
            ),
            ("env", keyed("name", None)),
            ("volumeMounts", keyed("mountPath", None)),
            ("volumeDevices", keyed("devicePath", None)),
        ],
    ),
    (
        "PodStatus",
        &[
            ("conditions", CONDITIONS),
            ("podIPs", keyed("ip", None)),
            ("hostIPs", keyed("ip", None)),
        ],
    ),
    (
        "WorkloadSpec",
        &[("selector", ATOMIC), ("template", of("PodTemplateSpec"))],
    ),
    (
        "DeploymentSpec",
        &[
            ("selector", ATOMIC),
            ("template", of("PodTemplateSpec")),
            ("strategy", retain(of("Any"))),
        ],
    ),
    ("ConditionsStatus", &[("conditions", CONDITIONS)]),
    (
        "JobSpec",
        &[("selector", ATOMIC), ("template", of("PodTemplateSpec"))],
    ),
    (
        "JobTemplateSpec",
        &[("metadata", of("ObjectMeta")), ("spec", of("JobSpec"))],
    ),
    ("CronJobSpec", &[("jobTemplate", of("JobTemplateSpec"))]),
    (
        "ServiceSpec",
        &[("ports", keyed_by("port", &["port", "protocol"], None))],
    ),
    ("ServiceAccount", &[("secrets", keyed("name", None))]),
    (
        "NodeStatus",
        &[
            ("conditions", CONDITIONS),
            ("addresses", keyed("type", None)),
        ],
    ),
    ("PodDisruptionBudgetSpec", &[("selector", ATOMIC)]),
    ("Any", &[]),
];

/// The root type of a kind: its `spec` and `status` types. Kinds not
/// listed get only ObjectMeta's metadata.
fn root(kind: &str) -> (Option<&'static str>, Option<&'static str>) {
    match kind {
        "Pod" => (Some("PodSpec"), Some("PodStatus")),
        "PodTemplate" => (None, None),
        "Deployment" => (Some("DeploymentSpec"), Some("ConditionsStatus")),
        "ReplicaSet" | "StatefulSet" | "DaemonSet" | "ReplicationController" => {
            (Some("WorkloadSpec"), Some("ConditionsStatus"))
        }
        "Job" => (Some("JobSpec"), Some("ConditionsStatus")),
        "CronJob" => (Some("CronJobSpec"), None),
        "Service" => (Some("ServiceSpec"), Some("ConditionsStatus")),
        "Node" => (None, Some("NodeStatus")),
        "Namespace" | "PersistentVolumeClaim" => (None, Some("ConditionsStatus")),
        "PodDisruptionBudget" => (Some("PodDisruptionBudgetSpec"), Some("ConditionsStatus")),
        _ => (None, None),
    }
}

/// A position in the type graph while walking an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeRef {
    /// The top level of an object of this kind.
    Root(&'static str),
    /// A named type from the table.
    Named(&'static str),
    /// Nothing known: maps merge, lists are atomic.
    Unknown,
}

impl TypeRef {
    /// The top level of an object of `kind`.
    pub(crate) fn root(kind: &str) -> Self {
        KINDS
            .iter()
            .find(|k| **k == kind)
            .map_or(TypeRef::Unknown, |k| TypeRef::Root(k))
    }

    /// Patch metadata of `field` within this type.
    pub(crate) fn field(self, field: &str) -> FieldMeta {
        let unknown = FieldMeta {
            strategy: Strategy::Default,
            retain_keys: false,
            child: None,
        };
        match self {
            TypeRef::Root(kind) => {
                let (spec, status) = root(kind);
                match field {
                    "metadata" => of("ObjectMeta"),
                    "spec" => spec.map_or(unknown, of),
                    "status" => status.map_or(unknown, of),
                    "template" if kind == "PodTemplate" => of("PodTemplateSpec"),
                    "secrets" if kind == "ServiceAccount" => keyed("name", None),
                    _ => unknown,
                }
            }
            TypeRef::Named(name) => TYPES
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, fields)| fields.iter().find(|(f, _)| *f == field))
                .map_or(unknown, |(_, meta)| *meta),
            TypeRef::Unknown => unknown,
        }
    }

    /// The type of a field's value (or list items).
    pub(crate) fn child(self, field: &str) -> TypeRef {
        self.field(field)
            .child
            .map_or(TypeRef::Unknown, TypeRef::Named)
    }
}

/// Kinds with a known root type.
static KINDS: &[&str] = &[
    "Pod",
    "PodTemplate",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Service",
    "Node",
    "Namespace",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Event",
    "Lease",
    "EndpointSlice",
];

/// A value filled in by defaulting that identifies list items for
/// server-side apply (`protocol` of ports defaults to TCP).
pub(crate) fn key_default(field: &str) -> Option<&'static str> {
    (field == "protocol").then_some("TCP")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_paths_resolve_to_merge_keys() {
        let dep = TypeRef::root("Deployment");
        let pod = dep.child("spec").child("template").child("spec");
        assert_eq!(pod, TypeRef::Named("PodSpec"));
        let containers = pod.field("containers");
        assert!(matches!(
            containers.strategy,
            Strategy::MergeByKey {
                merge_key: "name",
                ..
            }
        ));
        let c = pod.child("containers");
        assert!(matches!(
            c.field("ports").strategy,
            Strategy::MergeByKey {
                merge_key: "containerPort",
                ..
            }
        ));
        assert_eq!(c.field("args").strategy, Strategy::Default);
        assert!(dep.child("spec").field("strategy").retain_keys);
        assert_eq!(
            dep.child("metadata").field("finalizers").strategy,
            Strategy::Set
        );
        let cron = TypeRef::root("CronJob")
            .child("spec")
            .child("jobTemplate")
            .child("spec");
        assert!(matches!(
            cron.child("template")
                .child("spec")
                .field("volumes")
                .strategy,
            Strategy::MergeByKey { .. }
        ));
        assert_eq!(TypeRef::root("Widget"), TypeRef::Unknown);
    }
}
