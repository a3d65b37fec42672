//! Label selectors: requirements ANDed together, matched against labels.

use std::collections::BTreeMap;

use serde_json::Value;

use super::SelectorError;

/// A label requirement's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One requirement: `key op values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Operator,
    pub values: Vec<String>,
}

/// A label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the string form used in `labelSelector=` query parameters.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        Err(SelectorError::Syntax {
            selector: input.to_string(),
            token: String::new(),
            reason: "not implemented",
        })
    }

    /// Converts a metav1 `LabelSelector` object (matchLabels, matchExpressions).
    pub fn from_object(_selector: &Value) -> Result<Self, SelectorError> {
        Err(SelectorError::Object {
            field: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// Whether the selector matches nothing-filtering (no requirements).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, _labels: &BTreeMap<String, String>) -> bool {
        false
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches_object(&self, _object: &Value) -> bool {
        false
    }
}
