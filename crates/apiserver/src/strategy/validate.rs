//! Resource-specific validation on JSON objects, with upstream's field paths
//! and messages: required fields, selector/template agreement, supported
//! values and immutable fields.

use crate::meta;
use crate::status::Cause;
use serde_json::Value;

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, p| cur.get(p))
}

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

fn containers(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let list = spec.get("containers").and_then(Value::as_array);
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        causes.push(Cause::required(format!("{path}.containers")));
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let field = format!("{path}.containers[{i}].name");
        if name.is_empty() {
            causes.push(Cause::required(field));
        } else {
            causes.extend(meta::dns1123_label(&field, name));
            if !seen.insert(name.to_string()) {
                causes.push(Cause {
                    reason: "FieldValueDuplicate",
                    field,
                    message: format!("Duplicate value: {name:?}"),
                });
            }
        }
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            causes.push(Cause::required(format!("{path}.containers[{i}].image")));
        }
    }
}

fn pod_spec(spec: &Value, path: &str, restart: &[&str], causes: &mut Vec<Cause>) {
    containers(spec, path, causes);
    if let Some(rp) = spec.get("restartPolicy").and_then(Value::as_str) {
        if !restart.contains(&rp) {
            causes.push(Cause::not_supported(
                format!("{path}.restartPolicy"),
                rp,
                restart,
            ));
        }
    }
}

const RESTART_ANY: &[&str] = &["Always", "OnFailure", "Never"];

pub fn pod(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    match new.get("spec") {
        Some(spec) => pod_spec(spec, "spec", RESTART_ANY, &mut causes),
        None => causes.push(Cause::required("spec")),
    }
    causes.extend(super::ephemeral::through_pod(new, old));
    if let Some(old) = old {
        let strip = |v: &Value| {
            let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
            for list in ["containers", "initContainers"] {
                if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        c["image"] = Value::Null;
                    }
                }
            }
            for f in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
                "ephemeralContainers",
            ] {
                if let Some(m) = spec.as_object_mut() {
                    m.remove(f);
                }
            }
            spec
        };
        if strip(new) != strip(old) {
            causes.push(Cause::forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
        }
    }
    causes
}

fn selector_matches_template(spec: &Value, causes: &mut Vec<Cause>) {
    let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) else {
        causes.push(Cause::required("spec.selector"));
        return;
    };
    let labels = at(spec, "template.metadata.labels")
        .cloned()
        .unwrap_or(Value::Null);
    let template_obj = serde_json::json!({"metadata": {"labels": labels}});
    match api::selector::LabelSelector::from_object(sel) {
        Ok(ls) if ls.is_empty() => causes.push(Cause::invalid(
            "spec.selector",
            "{}",
            "empty selector is invalid for deployment",
        )),
        Ok(ls) if !ls.matches_object(&template_obj) => causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            &labels.to_string(),
            "`selector` does not match template `labels`",
        )),
        Ok(_) => {}
        Err(e) => causes.push(Cause::invalid(
            "spec.selector",
            &sel.to_string(),
            e.to_string(),
        )),
    }
}

fn replicas(spec: &Value, causes: &mut Vec<Cause>) {
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64) {
        if r < 0 {
            causes.push(Cause::invalid(
                "spec.replicas",
                &r.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

fn immutable(new: &Value, old: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    if let Some(old) = old {
        if at(new, path) != at(old, path) {
            causes.push(Cause::immutable(path));
        }
    }
}

/// Deployments, ReplicaSets, StatefulSets and DaemonSets.
pub fn workload(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(spec) = new.get("spec") else {
        return vec![Cause::required("spec")];
    };
    selector_matches_template(spec, &mut causes);
    replicas(spec, &mut causes);
    match at(spec, "template.spec") {
        Some(ps) => pod_spec(ps, "spec.template.spec", &["Always"], &mut causes),
        None => causes.push(Cause::required("spec.template.spec.containers")),
    }
    immutable(new, old, "spec.selector", &mut causes);
    causes
}

pub fn job(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(spec) = new.get("spec") else {
        return vec![Cause::required("spec")];
    };
    match at(spec, "template.spec") {
        Some(ps) => {
            containers(ps, "spec.template.spec", &mut causes);
            let rp = s(ps, "restartPolicy").unwrap_or("");
            if rp != "OnFailure" && rp != "Never" {
                causes.push(Cause {
                    reason: "FieldValueRequired",
                    field: "spec.template.spec.restartPolicy".into(),
                    message: "Required value: valid values: \"OnFailure\", \"Never\"".into(),
                });
            }
        }
        None => causes.push(Cause::required("spec.template.spec.containers")),
    }
    immutable(new, old, "spec.selector", &mut causes);
    immutable(new, old, "spec.completions", &mut causes);
    causes
}

pub fn cron_job(new: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if s(new, "spec.schedule").unwrap_or("").is_empty() {
        causes.push(Cause::required("spec.schedule"));
    }
    match at(new, "spec.jobTemplate.spec.template.spec") {
        Some(ps) => containers(ps, "spec.jobTemplate.spec.template.spec", &mut causes),
        None => causes.push(Cause::required(
            "spec.jobTemplate.spec.template.spec.containers",
        )),
    }
    causes
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

pub fn service(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ty = s(new, "spec.type").unwrap_or("ClusterIP");
    if !SERVICE_TYPES.contains(&ty) {
        causes.push(Cause::not_supported("spec.type", ty, SERVICE_TYPES));
    }
    let headless = s(new, "spec.clusterIP") == Some("None");
    let ports = at(new, "spec.ports").and_then(Value::as_array);
    if ty != "ExternalName" && !headless && ports.is_none_or(|p| p.is_empty()) {
        causes.push(Cause::required("spec.ports"));
    }
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(Cause::invalid(
                format!("spec.ports[{i}].port"),
                &port.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if ports.is_some_and(|l| l.len() > 1)
            && p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            causes.push(Cause::required(format!("spec.ports[{i}].name")));
        }
    }
    if ty == "ExternalName" && s(new, "spec.externalName").unwrap_or("").is_empty() {
        causes.push(Cause::required("spec.externalName"));
    }
    if let Some(old) = old {
        let old_ip = s(old, "spec.clusterIP").unwrap_or("");
        let new_ip = s(new, "spec.clusterIP").unwrap_or("");
        if !old_ip.is_empty() && old_ip != new_ip && ty != "ExternalName" {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                new_ip,
                "may not change once set",
            ));
        }
    }
    causes
}

fn data_keys(obj: &Value, field: &str, causes: &mut Vec<Cause>) {
    if let Some(m) = obj.get(field).and_then(Value::as_object) {
        for k in m.keys() {
            let ok = !k.is_empty()
                && k.len() <= 253
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
            if !ok {
                causes.push(Cause::invalid(
                    format!("{field}[{k}]"),
                    k,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
}

pub fn config_map(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    data_keys(new, "data", &mut causes);
    data_keys(new, "binaryData", &mut causes);
    immutable_data(new, old, &mut causes);
    causes
}

fn immutable_data(new: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    if let Some(old) = old.filter(|o| o.get("immutable") == Some(&Value::Bool(true))) {
        for f in ["data", "binaryData", "stringData"] {
            if new.get(f) != old.get(f) {
                causes.push(Cause::forbidden(
                    f,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
}

pub fn secret(new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    data_keys(new, "data", &mut causes);
    immutable_data(new, old, &mut causes);
    if let Some(old) = old {
        if new.get("type") != old.get("type") {
            causes.push(Cause::immutable("type"));
        }
    }
    causes
}

pub fn none(_new: &Value, _old: Option<&Value>) -> Vec<Cause> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_selector_must_match_template_labels() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let causes = workload(&d, None);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn pod_needs_containers_and_keeps_spec_immutable() {
        assert_eq!(pod(&json!({"spec": {}}), None)[0].field, "spec.containers");
        let a = json!({"spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": "a"}});
        let mut b = a.clone();
        b["spec"]["containers"][0]["image"] = json!("j");
        assert!(pod(&b, Some(&a)).is_empty());
        b["spec"]["nodeName"] = json!("b");
        assert_eq!(pod(&b, Some(&a))[0].field, "spec");
    }
}
