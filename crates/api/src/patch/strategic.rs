//! Strategic merge patch: merge keys per list, `$patch`, `$setElementOrder`,
//! `$deleteFromPrimitiveList`, `$retainKeys` and null deletions, following
//! apimachinery's `strategicpatch` semantics for the built-in types.

use serde_json::{Map, Value};

use super::schema::{Strategy, TypeRef};
use super::{decode, PatchError};
use crate::GroupVersionKind;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `target`, an object of kind `gvk`.
/// Lists without a known merge key are replaced, as upstream does for
/// types it does not know.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &[u8],
    gvk: &GroupVersionKind,
) -> Result<Value, PatchError> {
    let patch = decode(patch)?;
    let Value::Object(patch) = patch else {
        return Err(PatchError::Shape { expected: "object" });
    };
    let original = target.as_object().cloned().unwrap_or_default();
    let merged = merge_map(original, patch, TypeRef::root(&gvk.kind), "")?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

fn invalid(path: &str, reason: impl Into<String>) -> PatchError {
    PatchError::Invalid {
        path: if path.is_empty() {
            ".".into()
        } else {
            path.to_string()
        },
        reason: reason.into(),
    }
}

/// Merges `patch` into `original`; `None` means the map was deleted
/// (`$patch: delete`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: TypeRef,
    path: &str,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.remove(PATCH) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => original.clear(),
        Some(other) => return Err(invalid(path, format!("unknown $patch directive {other}"))),
    }
    if let Some(keys) = patch.remove(RETAIN_KEYS) {
        let keys = keys
            .as_array()
            .ok_or_else(|| invalid(path, "$retainKeys must be a list"))?;
        original.retain(|k, _| keys.iter().any(|r| r.as_str() == Some(k)));
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(SET_ORDER) {
            orders.push((field.to_string(), value));
        } else if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) {
            let doomed = value
                .as_array()
                .ok_or_else(|| invalid(&format!("{path}.{key}"), "must be a list"))?;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|v| !doomed.contains(v));
            }
        } else if key.starts_with('$') {
            return Err(invalid(path, format!("unknown directive {key}")));
        } else if value.is_null() {
            original.remove(&key);
        } else {
            let sub = format!("{path}.{key}");
            let old = original.remove(&key);
            if let Some(v) = merge_value(old, value, ty, &key, &sub)? {
                original.insert(key, v);
            }
        }
    }
    for (field, order) in orders {
        let sub = format!("{path}.{field}");
        let order = order
            .as_array()
            .ok_or_else(|| invalid(&sub, "$setElementOrder must be a list"))?;
        if let Some(Value::Array(items)) = original.get_mut(&field) {
            reorder(items, order, ty, &field);
        }
    }
    Ok(Some(original))
}

/// Merges one field's patch value into its old value.
fn merge_value(
    old: Option<Value>,
    patch: Value,
    parent: TypeRef,
    field: &str,
    path: &str,
) -> Result<Option<Value>, PatchError> {
    let child = parent.child(field);
    match (old, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => {
            Ok(merge_map(o, p, child, path)?.map(Value::Object))
        }
        (None | Some(Value::Null), Value::Object(p)) => {
            Ok(merge_map(Map::new(), p, child, path)?.map(Value::Object))
        }
        (Some(Value::Array(o)), Value::Array(p)) => merge_list(o, p, parent, field, path).map(Some),
        (None | Some(Value::Null), Value::Array(p)) => {
            merge_list(Vec::new(), p, parent, field, path).map(Some)
        }
        (_, p) => Ok(Some(p)),
    }
}

/// Merges a list according to the field's strategy.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    parent: TypeRef,
    field: &str,
    path: &str,
) -> Result<Value, PatchError> {
    let meta = parent.field(field);
    let child = parent.child(field);
    match meta.strategy {
        Strategy::MergeByKey { merge_key, .. } => {
            merge_keyed(original, patch, merge_key, child, path).map(Value::Array)
        }
        Strategy::Set => {
            let mut out = original;
            for item in patch {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            Ok(Value::Array(out))
        }
        Strategy::Default | Strategy::Atomic => {
            let mut out = Vec::with_capacity(patch.len());
            for (i, item) in patch.into_iter().enumerate() {
                // New values still have their directives processed away.
                if let Some(v) = merge_value(None, item, parent, field, &format!("{path}[{i}]"))? {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn merge_keyed(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    child: TypeRef,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    let replace = patch
        .iter()
        .any(|p| p.get(PATCH).and_then(Value::as_str) == Some("replace"));
    if replace {
        original.clear();
    }
    for (i, item) in patch.into_iter().enumerate() {
        let sub = format!("{path}[{i}]");
        let Value::Object(mut item) = item else {
            return Err(invalid(&sub, "list item must be an object"));
        };
        let directive = item.get(PATCH).and_then(Value::as_str).map(str::to_string);
        if directive.as_deref() == Some("replace") {
            continue;
        }
        let Some(id) = item.get(key).cloned() else {
            return Err(invalid(
                &sub,
                format!("does not contain declared merge key: {key}"),
            ));
        };
        let pos = original.iter().position(|o| o.get(key) == Some(&id));
        if directive.as_deref() == Some("delete") {
            original.retain(|o| o.get(key) != Some(&id));
            continue;
        }
        item.remove(PATCH);
        let sub = format!("{path}[{key}={id}]");
        match pos {
            Some(p) => {
                let old = std::mem::take(&mut original[p]);
                let old = old.as_object().cloned().unwrap_or_default();
                match merge_map(old, item, child, &sub)? {
                    Some(m) => original[p] = Value::Object(m),
                    None => {
                        original.remove(p);
                    }
                }
            }
            None => {
                if let Some(m) = merge_map(Map::new(), item, child, &sub)? {
                    original.push(Value::Object(m));
                }
            }
        }
    }
    Ok(original)
}

/// Applies `$setElementOrder`: items named in `order` come in that order;
/// the rest keep their relative order after them.
fn reorder(items: &mut Vec<Value>, order: &[Value], parent: TypeRef, field: &str) {
    let key = match parent.field(field).strategy {
        Strategy::MergeByKey { merge_key, .. } => Some(merge_key),
        _ => None,
    };
    let rank = |item: &Value| {
        order.iter().position(|o| match key {
            Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
            None => o == item,
        })
    };
    let mut ranked: Vec<(usize, Value)> = std::mem::take(items)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (rank(&v).unwrap_or(order.len() + i), v))
        .collect();
    ranked.sort_by_key(|(r, _)| *r);
    *items = ranked.into_iter().map(|(_, v)| v).collect();
}
