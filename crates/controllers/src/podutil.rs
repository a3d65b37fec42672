//! Pod helpers shared by the workload controllers: activity, readiness,
//! availability, controller references, pods from templates, and the
//! ordering that picks which pods to delete first.

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use std::cmp::Ordering;

/// Not finished and not being deleted.
pub fn is_active(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    p.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// The pod's Ready condition is True.
pub fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

fn ready_since(p: &Pod) -> Option<i64> {
    let conds = p.status.as_ref()?.conditions.as_ref()?;
    let c = conds
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    let now = chrono::Utc::now().timestamp();
    Some(
        c.last_transition_time
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(now),
    )
}

/// Ready for at least `min_ready` seconds.
pub fn is_available(p: &Pod, min_ready: i32) -> bool {
    match ready_since(p) {
        Some(since) if min_ready > 0 => {
            chrono::Utc::now().timestamp() - since >= i64::from(min_ready)
        }
        Some(_) => true,
        None => false,
    }
}

/// The controlling owner reference of an object.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// An owner reference making `kind/name` (uid) the controller.
pub fn controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether a metav1 selector matches labels (an invalid selector matches nothing).
pub fn selects(
    sel: &LabelSelector,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let Ok(v) = serde_json::to_value(sel) else {
        return false;
    };
    let Ok(s) = api::selector::LabelSelector::from_object(&v) else {
        return false;
    };
    let empty = Default::default();
    s.matches(labels.unwrap_or(&empty))
}

/// A new pod from a template, owned by `owner`, named `{prefix}-xxxxx` by the server.
pub fn pod_from_template(
    t: &PodTemplateSpec,
    prefix: &str,
    namespace: &str,
    owner: OwnerReference,
) -> Pod {
    let meta = t.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            namespace: Some(namespace.into()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: t.spec.clone(),
        status: None,
    }
}

fn rank(p: &Pod) -> (u8, u8, u8) {
    let assigned = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    };
    (u8::from(assigned), phase, u8::from(is_ready(p)))
}

/// Orders pods from least to most valuable: unassigned, pending, not ready, newest first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| {
        let ca = a
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second());
        let cb = b
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second());
        cb.cmp(&ca)
    })
}
