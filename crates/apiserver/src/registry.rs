//! The resource table: every resource bosun serves, with its group, version,
//! kind, scope, short names, categories and subresources as upstream has them.
//! Discovery, routing and the OpenAPI documents are all generated from it.

/// A subresource such as `pods/status` or `deployments/scale`.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    /// Group, version and kind of the object the subresource takes and returns.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The URL segment (`pods`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// Store key prefix for every object of this resource (`/registry/pods/`).
    pub fn key_prefix(&self) -> String {
        if self.group.is_empty() || self.group == "apps" || self.group == "batch" {
            format!("/registry/{}/", self.plural)
        } else {
            format!("/registry/{}/{}/", self.group, self.plural)
        }
    }
}

/// Verbs every resource supports on its collection and items.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of namespaces and nodes-like resources without deletecollection.
const VERBS_NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

const GPU: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const GET: &[&str] = &["get"];
const GET_CREATE: &[&str] = &["create", "get"];

const fn sub(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

const fn status(group: &'static str, kind: &'static str) -> Subresource {
    sub("status", group, "v1", kind, GPU)
}

const SCALE: Subresource = sub("scale", "autoscaling", "v1", "Scale", GPU);

#[allow(clippy::too_many_arguments)]
const fn res(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
) -> Resource {
    Resource {
        group,
        version: "v1",
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        subresources,
    }
}

const ALL: &[&str] = &["all"];

/// Every resource served, in discovery order (core first, then groups).
pub static RESOURCES: &[Resource] = &[
    res("", "Binding", "bindings", "binding", true, &[], &[], &[]),
    res(
        "",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        &[],
        &[],
    ),
    res(
        "",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        &[],
        &[],
    ),
    res("", "Event", "events", "event", true, &["ev"], &[], &[]),
    res(
        "",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        &[],
        &[
            status("", "Namespace"),
            sub("finalize", "", "v1", "Namespace", &["update"]),
        ],
    ),
    res(
        "",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        &[],
        &[status("", "Node")],
    ),
    res(
        "",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        ALL,
        &[
            sub("attach", "", "v1", "PodAttachOptions", GET_CREATE),
            sub("binding", "", "v1", "Binding", CREATE),
            sub("ephemeralcontainers", "", "v1", "Pod", GPU),
            sub("eviction", "policy", "v1", "Eviction", CREATE),
            sub("exec", "", "v1", "PodExecOptions", GET_CREATE),
            sub("log", "", "v1", "Pod", GET),
            sub("portforward", "", "v1", "PodPortForwardOptions", GET_CREATE),
            status("", "Pod"),
        ],
    ),
    res("", "Secret", "secrets", "secret", true, &[], &[], &[]),
    res(
        "",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        &[],
        &[],
    ),
    res(
        "",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        ALL,
        &[status("", "Service")],
    ),
    res(
        "apps",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        &[],
        &[],
        &[],
    ),
    res(
        "apps",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        &["ds"],
        ALL,
        &[status("apps", "DaemonSet")],
    ),
    res(
        "apps",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        ALL,
        &[SCALE, status("apps", "Deployment")],
    ),
    res(
        "apps",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        ALL,
        &[SCALE, status("apps", "ReplicaSet")],
    ),
    res(
        "apps",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        &["sts"],
        ALL,
        &[SCALE, status("apps", "StatefulSet")],
    ),
    res(
        "batch",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        &["cj"],
        ALL,
        &[status("batch", "CronJob")],
    ),
    res(
        "batch",
        "Job",
        "jobs",
        "job",
        true,
        &[],
        ALL,
        &[status("batch", "Job")],
    ),
    res(
        "coordination.k8s.io",
        "Lease",
        "leases",
        "lease",
        true,
        &[],
        &[],
        &[],
    ),
    res(
        "discovery.k8s.io",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        &[],
        &[],
        &[],
    ),
    res(
        "events.k8s.io",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        &[],
        &[],
    ),
];

/// API groups in discovery order (the core group "" first).
pub const GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
];

/// Verbs a resource's main endpoint supports.
pub fn verbs(r: &Resource) -> &'static [&'static str] {
    match r.plural {
        "bindings" => CREATE,
        "namespaces" => VERBS_NO_COLLECTION,
        _ => VERBS,
    }
}

/// The resource at `group`/`version`/`plural`, if served.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Resources of one group-version.
pub fn in_group(group: &str) -> impl Iterator<Item = &'static Resource> + '_ {
    RESOURCES.iter().filter(move |r| r.group == group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_upstream_short_names_and_all_category() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.short_names, &["deploy"]);
        assert!(deploy.categories.contains(&"all"));
        assert!(deploy.subresource("scale").is_some());
        assert!(!find("", "v1", "nodes").unwrap().namespaced);
        assert_eq!(
            find("", "v1", "pods").unwrap().key_prefix(),
            "/registry/pods/"
        );
        assert_eq!(
            find("coordination.k8s.io", "v1", "leases")
                .unwrap()
                .key_prefix(),
            "/registry/coordination.k8s.io/leases/"
        );
    }
}
