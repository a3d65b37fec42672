//! Field selectors: `field=value`, `field==value`, `field!=value`, ANDed.

use serde_json::Value;

use super::SelectorError;

/// A field requirement's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    Equals,
    NotEquals,
}

/// One requirement: `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

/// A field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the string form used in `fieldSelector=` query parameters.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        Err(SelectorError::Syntax {
            selector: input.to_string(),
            token: String::new(),
            reason: "not implemented",
        })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Matches using a lookup from field path to value (a missing field is "").
    pub fn matches(&self, _lookup: impl Fn(&str) -> Option<String>) -> bool {
        false
    }

    /// Matches by reading each dotted field path from the JSON object.
    pub fn matches_object(&self, _object: &Value) -> bool {
        false
    }
}
