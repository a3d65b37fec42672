//! Server-side apply and `managedFields` for ordinary writes.
//!
//! Each manager owns a set of fields (see [`super::fields`]). An apply by
//! manager M with configuration C: (1) C's field set S is computed; (2)
//! fields in S that another manager owns with a different live value are
//! conflicts (or, with `force`, are taken from that manager); (3) C is
//! merged into the live object (maps recursively, keyed lists by key,
//! sets by value, everything else replaced); (4) fields M applied last
//! time but not now are removed unless another manager also owns them;
//! (5) M's Apply entry becomes S.

use serde_json::{json, Map, Value};

use super::fields::{self, FieldSet, Path};
use super::schema::{Strategy, TypeRef};
use crate::GroupVersionKind;

/// A field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: String,
    /// The field, written as upstream prints it: `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("Apply failed with {} conflict{}: {}", .conflicts.len(), if .conflicts.len() == 1 { "" } else { "s" }, describe(.conflicts))]
    Conflicts { conflicts: Vec<Conflict> },
    #[error("invalid apply configuration at {path}: {reason}")]
    Invalid { path: String, reason: String },
}

fn describe(conflicts: &[Conflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One `metadata.managedFields` entry with its set parsed.
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: Value,
    set: FieldSet,
}

impl Entry {
    fn parse(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some(Self {
            manager: v.get("manager")?.as_str()?.to_string(),
            operation: s("operation"),
            subresource: s("subresource"),
            api_version: s("apiVersion"),
            time: v.get("time").cloned().unwrap_or(Value::Null),
            set: v
                .get("fieldsV1")
                .map(fields::from_fields_v1)
                .unwrap_or_default(),
        })
    }

    fn to_value(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields::to_fields_v1(&self.set),
        });
        if !self.time.is_null() {
            v["time"] = self.time.clone();
        }
        if !self.subresource.is_empty() {
            v["subresource"] = Value::String(self.subresource.clone());
        }
        v
    }
}

fn now() -> Value {
    Value::String(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn entries_of(object: Option<&Value>) -> Vec<Entry> {
    object
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

/// Writes the entries (dropping empty ones) into `object.metadata.managedFields`.
fn store_entries(object: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(Entry::to_value)
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Whether `set` owns `path` or (for an item's `.`) anything inside the item.
fn owns(set: &FieldSet, path: &Path) -> bool {
    if set.contains(path) {
        return true;
    }
    match path.split_last() {
        Some((dot, item)) if dot == "." => set.iter().any(|p| p.starts_with(item)),
        _ => false,
    }
}

/// Applies `applied` (the full intent of `manager`) to `live` (absent on
/// create). Fields the manager applied before but no longer applies are
/// removed unless another manager owns them; fields owned by another
/// manager with a different value are a conflict unless `force`, which
/// takes them over. Returns the new object with `metadata.managedFields`.
/// The caller drops `status` from configurations sent to the main resource.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    gvk: &GroupVersionKind,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid {
            path: ".".into(),
            reason: "apply configuration must be an object".into(),
        });
    }
    let root = TypeRef::root(&gvk.kind);
    let new_set = fields::extract(applied, root)?;
    let mut entries = entries_of(live);
    let mine =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource.is_empty();

    let empty = Value::Object(Map::new());
    let live_obj = live.unwrap_or(&empty);
    let client_side = last_applied_fields(live_obj, root);
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| !mine(e)) {
        let clashing: Vec<Path> = entry
            .set
            .intersection(&new_set)
            .filter(|p| p.last().is_some_and(|l| l != "."))
            .filter(|p| fields::lookup(live_obj, p) != fields::lookup(applied, p))
            .cloned()
            .collect();
        // Fields client-side apply set (they are in the last-applied
        // annotation) change hands silently, as upstream's
        // lastAppliedManager does, so switching to --server-side works.
        let (taken, refused): (Vec<Path>, Vec<Path>) = clashing
            .into_iter()
            .partition(|p| force || (entry.operation == "Update" && client_side.contains(p)));
        entry.set.retain(|p| !taken.contains(p));
        conflicts.extend(refused.iter().map(|p| Conflict {
            manager: entry.manager.clone(),
            field: fields::display(p),
        }));
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflicts { conflicts });
    }

    let mut object = live_obj.clone();
    merge(&mut object, applied, root, "")?;
    let old_set = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| e.set.iter().cloned())
        .collect();
    for path in old_set.difference(&new_set) {
        if !owns(&others, path) && !owns(&new_set, path) {
            fields::remove(&mut object, path);
        }
    }

    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.set = new_set;
            e.time = now();
            e.api_version = api_version;
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            subresource: String::new(),
            api_version,
            time: now(),
            set: new_set,
        }),
    }
    store_entries(&mut object, &entries);
    Ok(object)
}

/// The annotation client-side `kubectl apply` keeps its configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The field set of the object's last-applied annotation (empty without one).
fn last_applied_fields(live: &Value, root: TypeRef) -> FieldSet {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|cfg| fields::extract(&cfg, root).ok())
        .unwrap_or_default()
}

/// Merges an apply configuration into the object in place.
fn merge(target: &mut Value, applied: &Value, ty: TypeRef, path: &str) -> Result<(), ApplyError> {
    let (Value::Object(t), Value::Object(a)) = (&mut *target, applied) else {
        *target = applied.clone();
        return Ok(());
    };
    for (k, v) in a {
        if k == "managedFields" && path == ".metadata" {
            continue;
        }
        let sub = format!("{path}.{k}");
        let meta = ty.field(k);
        let child = ty.child(k);
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        match (meta.strategy, &mut *slot, v) {
            (Strategy::Atomic, _, _) => *slot = v.clone(),
            (_, Value::Object(_), Value::Object(_)) => merge(slot, v, child, &sub)?,
            (
                Strategy::MergeByKey {
                    merge_key,
                    list_keys,
                },
                Value::Array(items),
                Value::Array(new),
            ) => {
                for item in new {
                    let key = fields::item_key(item, merge_key, list_keys, &sub)?;
                    match items.iter().position(|i| fields::item_matches(i, &key)) {
                        Some(p) => merge(&mut items[p], item, child, &sub)?,
                        None => items.push(item.clone()),
                    }
                }
            }
            (Strategy::Set, Value::Array(items), Value::Array(new)) => {
                for item in new {
                    if !items.contains(item) {
                        items.push(item.clone());
                    }
                }
            }
            _ => *slot = v.clone(),
        }
    }
    Ok(())
}

/// Records an ordinary write (create, update, patch) by `manager` in
/// `new`'s `metadata.managedFields` (operation `Update`): the fields it
/// changed relative to `old` (all of them on create) move to its entry,
/// and fields the write removed leave every entry. Returns the updated object.
pub fn managed_fields_update(old: Option<&Value>, new: &Value, manager: &str) -> Value {
    managed_fields_update_subresource(old, new, manager, "")
}

/// [`managed_fields_update`] for a write through a subresource: for
/// `status` only the fields under `.status` are tracked, and the entry
/// carries `subresource: status` as upstream's do.
pub fn managed_fields_update_subresource(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: &str,
) -> Value {
    let gvk = GroupVersionKind::of_object(new).unwrap_or_else(|| GroupVersionKind::new("", "", ""));
    let root = TypeRef::root(&gvk.kind);
    let extract = |o: &Value| {
        if subresource == "status" {
            fields::extract_status(o, root)
        } else {
            fields::extract(o, root)
        }
    };
    // An object that cannot be walked (a keyed item without its key) keeps its entries.
    let Ok(new_set) = extract(new) else {
        return new.clone();
    };
    let old_set = old.and_then(|o| extract(o).ok()).unwrap_or_default();
    let empty = Value::Object(Map::new());
    let old_obj = old.unwrap_or(&empty);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| p.last().is_some_and(|l| l != ".") || !old_set.contains(*p))
        .filter(|p| fields::lookup(old_obj, p) != fields::lookup(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    let mut entries = entries_of(Some(new));
    if entries.is_empty() {
        entries = entries_of(old);
    }
    for e in &mut entries {
        e.set
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mine =
        |e: &Entry| e.manager == manager && e.operation == "Update" && e.subresource == subresource;
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| mine(e)) {
            Some(e) => {
                e.set.extend(changed);
                e.time = now();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                subresource: subresource.to_string(),
                api_version,
                time: now(),
                set: changed,
            }),
        }
    }
    let mut out = new.clone();
    store_entries(&mut out, &entries);
    out
}
