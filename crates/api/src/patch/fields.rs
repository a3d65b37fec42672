//! Field sets for `managedFields`: the paths an object (or an apply
//! configuration) sets, in the FieldsV1 notation — `f:<field>`,
//! `k:<key json>` for items of keyed lists (with `.` for the item itself),
//! `v:<value json>` for members of sets; other lists and atomic structs are
//! one leaf.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::apply::ApplyError;
use super::schema::{key_default, Strategy, TypeRef};

/// A path from the object root: `["f:spec", "f:replicas"]`.
pub(crate) type Path = Vec<String>;

/// A set of leaf paths.
pub(crate) type FieldSet = BTreeSet<Path>;

/// Top-level and metadata fields the server owns; never in a field set.
const IGNORED_TOP: &[&str] = &["apiVersion", "kind", "status"];
const IGNORED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The leaf paths of `object.status` (what a status-subresource write sets).
pub(crate) fn extract_status(object: &Value, root: TypeRef) -> Result<FieldSet, ApplyError> {
    let mut set = FieldSet::new();
    if let Some(status) = object.get("status") {
        walk_field(
            status,
            root,
            "status",
            &mut vec!["f:status".to_string()],
            &mut set,
        )?;
    }
    Ok(set)
}

/// The leaf paths `object` sets, walking it with the patch metadata of `root`.
pub(crate) fn extract(object: &Value, root: TypeRef) -> Result<FieldSet, ApplyError> {
    let mut set = FieldSet::new();
    let Value::Object(map) = object else {
        return Ok(set);
    };
    for (k, v) in map {
        if IGNORED_TOP.contains(&k.as_str()) {
            continue;
        }
        let mut path = vec![format!("f:{k}")];
        if k == "metadata" {
            if let Value::Object(meta) = v {
                let ty = root.child("metadata");
                for (mk, mv) in meta
                    .iter()
                    .filter(|(mk, _)| !IGNORED_META.contains(&mk.as_str()))
                {
                    path.push(format!("f:{mk}"));
                    walk_field(mv, ty, mk, &mut path, &mut set)?;
                    path.pop();
                }
            }
            continue;
        }
        walk_field(v, root, k, &mut path, &mut set)?;
    }
    Ok(set)
}

/// Adds the paths under one field's value (`path` already names the field).
fn walk_field(
    value: &Value,
    parent: TypeRef,
    field: &str,
    path: &mut Path,
    set: &mut FieldSet,
) -> Result<(), ApplyError> {
    let meta = parent.field(field);
    let child = parent.child(field);
    match (value, meta.strategy) {
        (Value::Object(m), Strategy::Default | Strategy::MergeByKey { .. } | Strategy::Set)
            if !m.is_empty() =>
        {
            for (k, v) in m {
                path.push(format!("f:{k}"));
                walk_field(v, child, k, path, set)?;
                path.pop();
            }
        }
        (
            Value::Array(items),
            Strategy::MergeByKey {
                merge_key,
                list_keys,
            },
        ) => {
            for item in items {
                path.push(item_key(item, merge_key, list_keys, &display(path))?);
                path.push(".".into());
                set.insert(path.clone());
                path.pop();
                if let Value::Object(m) = item {
                    for (k, v) in m {
                        path.push(format!("f:{k}"));
                        walk_field(v, child, k, path, set)?;
                        path.pop();
                    }
                }
                path.pop();
            }
        }
        (Value::Array(items), Strategy::Set) => {
            for item in items {
                path.push(format!("v:{item}"));
                set.insert(path.clone());
                path.pop();
            }
        }
        _ => {
            set.insert(path.clone());
        }
    }
    Ok(())
}

/// The `k:{…}` element of a keyed list item (keys sorted, defaults filled).
pub(crate) fn item_key(
    item: &Value,
    merge_key: &str,
    list_keys: &[&str],
    at: &str,
) -> Result<String, ApplyError> {
    let keys: &[&str] = if list_keys.is_empty() {
        &[merge_key]
    } else {
        list_keys
    };
    let mut key = Map::new();
    for k in keys {
        match item.get(*k).filter(|v| !v.is_null()) {
            Some(v) => {
                key.insert(k.to_string(), v.clone());
            }
            None => {
                if let Some(d) = key_default(k) {
                    key.insert(k.to_string(), Value::String(d.into()));
                }
            }
        }
    }
    if !key.contains_key(merge_key) {
        return Err(ApplyError::Invalid {
            path: at.to_string(),
            reason: format!("associative list item is missing its key field {merge_key:?}"),
        });
    }
    Ok(format!("k:{}", Value::Object(key)))
}

/// Whether a list item matches a `k:{…}` path element.
pub(crate) fn item_matches(item: &Value, elem: &str) -> bool {
    elem.strip_prefix("k:")
        .and_then(|k| serde_json::from_str::<Map<String, Value>>(k).ok())
        .is_some_and(|key| matches_key(item, &key))
}

/// Whether a list item has the key values of `key`.
fn matches_key(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, want)| match item.get(k) {
        Some(v) => v == want,
        None => key_default(k).is_some_and(|d| want.as_str() == Some(d)),
    })
}

/// The FieldsV1 JSON tree of a set.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for elem in path {
            let next = node
                .entry(elem.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = next else { break };
            node = next;
        }
    }
    Value::Object(root)
}

/// The set a FieldsV1 tree describes: every empty node is a leaf.
pub(crate) fn from_fields_v1(tree: &Value) -> FieldSet {
    fn walk(node: &Map<String, Value>, path: &mut Path, set: &mut FieldSet) {
        for (k, v) in node {
            path.push(k.clone());
            match v {
                Value::Object(m) if !m.is_empty() => walk(m, path, set),
                _ => {
                    set.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut set = FieldSet::new();
    if let Value::Object(m) = tree {
        walk(m, &mut Vec::new(), &mut set);
    }
    set
}

/// The value a path points at, if present.
pub(crate) fn lookup<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = object;
    for elem in path {
        cur = step(cur, elem)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, elem: &str) -> Option<&'a Value> {
    if elem == "." {
        return Some(cur);
    }
    if let Some(f) = elem.strip_prefix("f:") {
        return cur.get(f);
    }
    let items = cur.as_array()?;
    if let Some(k) = elem.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(k).ok()?;
        return items.iter().find(|i| matches_key(i, &key));
    }
    let v: Value = serde_json::from_str(elem.strip_prefix("v:")?).ok()?;
    items.iter().find(|i| **i == v)
}

/// Removes what a path points at: a field, a keyed item (`k:…`, `.`) or a set member.
pub(crate) fn remove(object: &mut Value, path: &[String]) {
    let (parent_path, last) = match path {
        [rest @ .., k, dot] if dot == "." && k.starts_with("k:") => (rest, k.as_str()),
        [rest @ .., last] => (rest, last.as_str()),
        [] => return,
    };
    let Some(parent) = lookup_mut(object, parent_path) else {
        return;
    };
    if let Some(f) = last.strip_prefix("f:") {
        if let Value::Object(m) = parent {
            m.remove(f);
        }
    } else if let (Some(k), Value::Array(items)) = (last.strip_prefix("k:"), &mut *parent) {
        if let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) {
            items.retain(|i| !matches_key(i, &key));
        }
    } else if let (Some(v), Value::Array(items)) = (last.strip_prefix("v:"), parent) {
        if let Ok(v) = serde_json::from_str::<Value>(v) {
            items.retain(|i| *i != v);
        }
    }
}

fn lookup_mut<'a>(object: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = object;
    for elem in path {
        cur = if let Some(f) = elem.strip_prefix("f:") {
            cur.get_mut(f)?
        } else if let Some(k) = elem.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur.as_array_mut()?
                .iter_mut()
                .find(|i| matches_key(i, &key))?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// A path as upstream prints it in conflicts:
/// `.spec.template.spec.containers[name="app"].image`.
pub(crate) fn display(path: &[String]) -> String {
    let mut out = String::new();
    for elem in path {
        if let Some(f) = elem.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = elem.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = elem.strip_prefix("v:") {
            out.push_str(&format!("[{v}]"));
        }
    }
    out
}
