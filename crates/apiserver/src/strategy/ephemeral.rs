//! Pods' ephemeral containers (the `pods/ephemeralcontainers` subresource),
//! as upstream's ephemeralcontainers strategy: a write through the
//! subresource changes only `spec.ephemeralContainers`; each ephemeral
//! container needs a unique name and an image, may not carry ports, probes,
//! lifecycle hooks, resources, a restart policy or subPath mounts, may only target an
//! existing (init) container, and once added is never removed or changed.

use crate::status::Cause;
use serde_json::Value;
use std::collections::HashSet;

/// Fields an ephemeral container may not set (upstream's list).
const FORBIDDEN: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
    "resizePolicy",
    "restartPolicy",
];

fn list<'a>(spec: &'a Value, field: &str) -> &'a [Value] {
    spec.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn name_of(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

/// Whether a field holds something (an empty object or list is "unset").
fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// The stored pod `old` with only `spec.ephemeralContainers` taken from `new`.
pub fn merge(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    let wanted = new
        .get("spec")
        .and_then(|s| s.get("ephemeralContainers"))
        .cloned();
    if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
        match wanted {
            Some(v) if !v.is_null() => {
                spec.insert("ephemeralContainers".into(), v);
            }
            _ => {
                spec.remove("ephemeralContainers");
            }
        }
    }
    out
}

fn not_found(field: String, value: &str) -> Cause {
    Cause {
        reason: "FieldValueNotFound",
        field,
        message: format!("Not found: {value:?}"),
    }
}

/// One ephemeral container's own rules; `names` holds every name seen so far.
fn one(c: &Value, path: &str, targets: &HashSet<&str>, names: &mut HashSet<String>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = name_of(c);
    let field = format!("{path}.name");
    if name.is_empty() {
        causes.push(Cause::required(field));
    } else {
        causes.extend(crate::meta::dns1123_label(&field, name));
        if !names.insert(name.to_string()) {
            causes.push(Cause {
                reason: "FieldValueDuplicate",
                field,
                message: format!("Duplicate value: {name:?}"),
            });
        }
    }
    if !is_set(c.get("image")) {
        causes.push(Cause::required(format!("{path}.image")));
    }
    for f in FORBIDDEN {
        if is_set(c.get(*f)) {
            causes.push(Cause::forbidden(
                format!("{path}.{f}"),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }
    let mounts = c.get("volumeMounts").and_then(Value::as_array);
    for (j, m) in mounts.into_iter().flatten().enumerate() {
        for f in ["subPath", "subPathExpr"] {
            if is_set(m.get(f)) {
                causes.push(Cause::forbidden(
                    format!("{path}.volumeMounts[{j}].{f}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    if let Some(t) = c.get("targetContainerName").and_then(Value::as_str) {
        if !t.is_empty() && !targets.contains(t) {
            causes.push(not_found(format!("{path}.targetContainerName"), t));
        }
    }
    causes
}

/// Validates `spec.ephemeralContainers` of `new` (against `old` when an update).
pub fn validate(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let null = Value::Null;
    let spec = new.get("spec").unwrap_or(&null);
    let regular: Vec<&Value> = list(spec, "containers")
        .iter()
        .chain(list(spec, "initContainers"))
        .collect();
    let targets: HashSet<&str> = regular.iter().map(|c| name_of(c)).collect();
    let mut names: HashSet<String> = targets.iter().map(|n| n.to_string()).collect();
    let mut causes = Vec::new();
    let ephemeral = list(spec, "ephemeralContainers");
    for (i, c) in ephemeral.iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        causes.extend(one(c, &path, &targets, &mut names));
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&null);
        causes.extend(unchanged(list(old_spec, "ephemeralContainers"), ephemeral));
    }
    causes
}

/// Existing ephemeral containers may be neither removed nor changed.
fn unchanged(old: &[Value], new: &[Value]) -> Vec<Cause> {
    let mut causes = Vec::new();
    for o in old {
        let name = name_of(o);
        match new.iter().position(|n| name_of(n) == name) {
            None => causes.push(Cause::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers {name:?} may not be removed"),
            )),
            Some(i) if new[i] != *o => causes.push(Cause::forbidden(
                format!("spec.ephemeralContainers[{i}]"),
                format!("existing ephemeral containers {name:?} may not be changed"),
            )),
            Some(_) => {}
        }
    }
    causes
}

/// Pod creation may not set ephemeral containers; pod updates may not change them.
pub fn through_pod(new: &Value, old: Option<&Value>) -> Option<Cause> {
    let get = |v: &Value| {
        v.get("spec")
            .and_then(|s| s.get("ephemeralContainers"))
            .filter(|e| is_set(Some(e)))
            .cloned()
    };
    match old {
        None => get(new).map(|_| {
            Cause::forbidden("spec.ephemeralContainers", "cannot be set on create")
        }),
        Some(old) if get(new) != get(old) => Some(Cause::forbidden(
            "spec.ephemeralContainers",
            "ephemeral containers may only be changed through the pods/ephemeralcontainers subresource",
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ephemeral: Value) -> Value {
        json!({"spec": {"containers": [{"name": "app", "image": "busybox"}],
                        "initContainers": [{"name": "init", "image": "busybox"}],
                        "ephemeralContainers": ephemeral}})
    }

    fn fields(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| c.field.clone()).collect()
    }

    #[test]
    fn accepts_a_plain_debug_container() {
        let p = pod(
            json!([{"name": "dbg", "image": "busybox", "targetContainerName": "app",
                            "stdin": true, "tty": true}]),
        );
        assert_eq!(validate(&p, Some(&pod(json!([])))), vec![]);
    }

    #[test]
    fn names_are_unique_across_all_containers() {
        let p = pod(
            json!([{"name": "app", "image": "b"}, {"name": "init", "image": "b"},
                           {"name": "x", "image": "b"}, {"name": "x", "image": "b"}]),
        );
        let c = validate(&p, None);
        assert_eq!(
            fields(&c),
            [
                "spec.ephemeralContainers[0].name",
                "spec.ephemeralContainers[1].name",
                "spec.ephemeralContainers[3].name"
            ]
        );
        assert!(c.iter().all(|c| c.reason == "FieldValueDuplicate"));
    }

    #[test]
    fn image_and_name_are_required() {
        let c = validate(&pod(json!([{"image": ""}])), None);
        assert_eq!(
            fields(&c),
            [
                "spec.ephemeralContainers[0].name",
                "spec.ephemeralContainers[0].image"
            ]
        );
    }

    #[test]
    fn ports_probes_lifecycle_resources_are_forbidden() {
        let c = validate(
            &pod(
                json!([{"name": "d", "image": "b", "ports": [{"containerPort": 80}],
                "readinessProbe": {"exec": {"command": ["true"]}},
                "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
                "resources": {"limits": {"cpu": "1"}}}]),
            ),
            None,
        );
        assert_eq!(
            fields(&c),
            [
                "spec.ephemeralContainers[0].ports",
                "spec.ephemeralContainers[0].readinessProbe",
                "spec.ephemeralContainers[0].lifecycle",
                "spec.ephemeralContainers[0].resources"
            ]
        );
        let sub = pod(json!([{"name": "d", "image": "b",
            "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}]}]));
        assert_eq!(
            fields(&validate(&sub, None)),
            ["spec.ephemeralContainers[0].volumeMounts[0].subPath"]
        );
        // An empty resources object (a client's default) is not "set".
        let ok = pod(json!([{"name": "d", "image": "b", "resources": {}}]));
        assert!(validate(&ok, None).is_empty());
    }

    #[test]
    fn target_must_exist() {
        let c = validate(
            &pod(json!([{"name": "d", "image": "b", "targetContainerName": "nope"}])),
            None,
        );
        assert_eq!(
            c[0].field,
            "spec.ephemeralContainers[0].targetContainerName"
        );
        assert_eq!(c[0].reason, "FieldValueNotFound");
    }

    #[test]
    fn existing_ones_are_never_removed_or_changed() {
        let old = pod(json!([{"name": "d", "image": "b"}]));
        let removed = validate(&pod(json!([])), Some(&old));
        assert_eq!(fields(&removed), ["spec.ephemeralContainers"]);
        let changed = validate(&pod(json!([{"name": "d", "image": "c"}])), Some(&old));
        assert_eq!(fields(&changed), ["spec.ephemeralContainers[0]"]);
        let added = pod(json!([{"name": "d", "image": "b"}, {"name": "e", "image": "b"}]));
        assert!(validate(&added, Some(&old)).is_empty());
    }

    #[test]
    fn merge_takes_only_the_ephemeral_containers() {
        let old = pod(json!([]));
        let mut new = pod(json!([{"name": "d", "image": "b"}]));
        new["spec"]["containers"][0]["image"] = json!("other");
        new["metadata"] = json!({"labels": {"x": "y"}});
        let m = merge(&old, &new);
        assert_eq!(m["spec"]["containers"][0]["image"], "busybox");
        assert_eq!(m["spec"]["ephemeralContainers"][0]["name"], "d");
        assert!(m.get("metadata").is_none());
    }

    #[test]
    fn the_pod_itself_may_not_set_them() {
        let p = pod(json!([{"name": "d", "image": "b"}]));
        assert!(through_pod(&p, None).is_some());
        assert!(through_pod(&pod(json!([])), None).is_none());
        assert!(through_pod(&p, Some(&pod(json!([])))).is_some());
        assert!(through_pod(&p, Some(&p)).is_none());
    }
}
