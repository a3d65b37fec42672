//! Which part of a stored object an update may change: the main resource
//! (everything but status when there is a status subresource), the status
//! subresource (only status), or `pods/ephemeralcontainers` (only
//! `spec.ephemeralContainers`) — and the validation each part runs.

use super::write::Part;
use crate::status::Cause;
use crate::strategy::{ephemeral, Strategy};
use serde_json::Value;

/// Sets (or removes) `field` of `obj` to `from`'s.
fn take(obj: &mut Value, from: &Value, field: &str) {
    match from.get(field) {
        Some(v) => obj[field] = v.clone(),
        None => {
            if let Some(m) = obj.as_object_mut() {
                m.remove(field);
            }
        }
    }
}

/// The object to store: `new` limited to what `part` may change of `old`.
pub(super) fn select(s: &Strategy, part: Part, old: &Value, new: Value) -> Value {
    match part {
        Part::Status => {
            let mut out = old.clone();
            take(&mut out, &new, "status");
            out
        }
        Part::EphemeralContainers => ephemeral::merge(old, &new),
        Part::Main if s.resource.has_status() => {
            let mut out = new;
            take(&mut out, old, "status");
            out
        }
        Part::Main => new,
    }
}

/// The resource-specific validation of an update of `part`.
pub(super) fn validate(s: &Strategy, part: Part, new: &Value, old: &Value) -> Vec<Cause> {
    match part {
        Part::EphemeralContainers => ephemeral::validate(new, Some(old)),
        Part::Main | Part::Status => (s.validate)(new, Some(old)),
    }
}
