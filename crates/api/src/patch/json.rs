//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386).

use serde_json::Value;

use super::{decode, PatchError};

/// Applies an RFC 6902 JSON patch (a JSON array of operations) to `target`.
pub fn json_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let _ = (target, decode(patch)?);
    Err(PatchError::Shape {
        expected: "array (not implemented)",
    })
}

/// Applies an RFC 7386 JSON merge patch to `target`.
pub fn merge_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let _ = (target, decode(patch)?);
    Err(PatchError::Shape {
        expected: "object (not implemented)",
    })
}
