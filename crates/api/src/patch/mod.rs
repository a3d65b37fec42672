//! The four PATCH content types and `managedFields` bookkeeping.
//!
//! - [`json_patch()`] for `application/json-patch+json` (RFC 6902).
//! - [`merge_patch`] for `application/merge-patch+json` (RFC 7386).
//! - [`strategic_merge_patch`] for `application/strategic-merge-patch+json`,
//!   with the merge keys and strategies of the built-in types and the
//!   directives client-side `kubectl apply` sends.
//! - [`server_side_apply`] for `application/apply-patch+yaml`, tracking field
//!   ownership in `metadata.managedFields`; [`managed_fields_update`] records
//!   ordinary writes (operation `Update`).

mod apply;
#[cfg(test)]
mod apply_tests;
mod fields;
mod json;
mod schema;
#[cfg(test)]
mod smp_tests;
mod strategic;

pub use apply::{
    managed_fields_update, managed_fields_update_subresource, server_side_apply, ApplyError,
    Conflict,
};
pub use json::{json_patch, merge_patch};
pub use strategic::strategic_merge_patch;

/// Why a patch could not be applied; names the path or directive at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("patch body is not valid JSON: {0}")]
    Decode(String),
    #[error("patch body must be a JSON {expected}")]
    Shape { expected: &'static str },
    #[error("json patch operation {index} failed: {reason}")]
    JsonPatch { index: usize, reason: String },
    #[error("invalid patch at {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// Parses a patch body, mapping a syntax error to [`PatchError::Decode`].
fn decode(bytes: &[u8]) -> Result<serde_json::Value, PatchError> {
    serde_json::from_slice(bytes).map_err(|e| PatchError::Decode(e.to_string()))
}
