//! Server-side apply and `managedFields` for ordinary writes.

use serde_json::Value;

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

/// Applies `applied` (the full intent of `manager`) to `live` (absent on
/// create). Fields the manager applied before but no longer applies are
/// removed unless another manager owns them; fields owned by another
/// manager with a different value are a conflict unless `force`, which
/// takes them over. Returns the new object with `metadata.managedFields`.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    gvk: &GroupVersionKind,
) -> Result<Value, ApplyError> {
    let _ = (live, applied, manager, force, gvk);
    Err(ApplyError::Invalid {
        path: String::new(),
        reason: "not implemented".into(),
    })
}

/// Records an ordinary write (create, update, patch) by `manager` in
/// `new`'s `metadata.managedFields` (operation `Update`): the fields it
/// changed relative to `old` move to its entry. Returns the updated object.
pub fn managed_fields_update(old: Option<&Value>, new: &Value, manager: &str) -> Value {
    let _ = (old, manager);
    new.clone()
}
