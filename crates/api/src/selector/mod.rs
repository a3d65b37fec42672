//! Label selectors and field selectors: parsing the query-string forms
//! (`app=web,tier in (a,b),!canary`, `spec.nodeName=n1,status.phase!=Failed`)
//! and metav1 `LabelSelector` objects, and matching objects against them.

mod field;
mod label;
mod labels;
mod lexer;
#[cfg(test)]
mod tests;

pub use field::{field_value, FieldOp, FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};
pub use labels::{object_path as field_object_path, supported as field_supported};

/// Why a selector was rejected; names the offending token or field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("invalid selector {selector:?}: {reason} at {token:?}")]
    Syntax {
        selector: String,
        token: String,
        reason: &'static str,
    },
    #[error("field label not supported: {field}")]
    UnsupportedField { field: String },
    #[error("invalid label selector field {field}: {reason}")]
    Object { field: String, reason: String },
}
