//! Reading and writing `metadata` fields of objects held as JSON values,
//! plus the name rules (DNS-1123) every resource validates with.

use crate::status::Cause;
use serde_json::{json, Map, Value};

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

/// `metadata`, created when missing (a non-object is replaced).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

pub fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    str_field(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    str_field(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    str_field(obj, "uid")
}

pub fn set(obj: &mut Value, field: &str, value: Value) {
    meta_mut(obj).insert(field.to_string(), value);
}

pub fn remove(obj: &mut Value, field: &str) -> Option<Value> {
    meta_mut(obj).remove(field)
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn labels(obj: &Value) -> std::collections::BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 label (namespaces, container names).
pub fn dns1123_label(field: &str, value: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if value.len() > 63 {
        causes.push(Cause::invalid(
            field,
            value,
            "must be no more than 63 characters",
        ));
    }
    if !is_label(value) {
        causes.push(Cause::invalid(field, value, DNS1123_LABEL_MSG));
    }
    causes
}

/// DNS-1123 subdomain (most object names).
pub fn dns1123_subdomain(field: &str, value: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if value.len() > 253 {
        causes.push(Cause::invalid(
            field,
            value,
            "must be no more than 253 characters",
        ));
    }
    if value.is_empty() || !value.split('.').all(|p| is_label(p) || p.len() > 63) {
        causes.push(Cause::invalid(field, value, DNS1123_SUBDOMAIN_MSG));
    }
    causes
}

/// DNS-1035 label (service names).
pub fn dns1035_label(field: &str, value: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if value.len() > 63 {
        causes.push(Cause::invalid(
            field,
            value,
            "must be no more than 63 characters",
        ));
    }
    if !is_label(value) || !value.as_bytes()[0].is_ascii_lowercase() {
        causes.push(Cause::invalid(field, value, DNS1035_LABEL_MSG));
    }
    causes
}

/// Qualified names as label and annotation keys use (`prefix/name`).
fn qualified_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(|p| dns1123_subdomain("", p).is_empty())
}

fn label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Labels and annotation keys.
pub fn validate_labels(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (k, v) in labels(obj) {
        if !qualified_key(&k) {
            causes.push(Cause::invalid("metadata.labels", &k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
        }
        if !label_value(&v) {
            causes.push(Cause::invalid("metadata.labels", &v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
        }
    }
    if let Some(ann) = meta(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        for k in ann.keys() {
            if !qualified_key(k) {
                causes.push(Cause::invalid("metadata.annotations", k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns1123() {
        assert!(dns1123_subdomain("metadata.name", "web-1.example").is_empty());
        assert!(!dns1123_subdomain("metadata.name", "Web").is_empty());
        assert!(!dns1123_subdomain("metadata.name", "a_b").is_empty());
        assert!(dns1123_label("metadata.name", "kube-system").is_empty());
        assert!(!dns1123_label("metadata.name", "a.b").is_empty());
        assert!(!dns1035_label("metadata.name", "1abc").is_empty());
    }

    #[test]
    fn label_keys_and_values_are_checked() {
        let ok = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web", "tier": ""}}});
        assert!(validate_labels(&ok).is_empty());
        let bad = json!({"metadata": {"labels": {"-x": "web!"}}});
        assert_eq!(validate_labels(&bad).len(), 2);
    }
}
