//! Field selectors: `field=value`, `field==value`, `field!=value`, ANDed
//! with commas; `\,`, `\=` and `\\` escape those characters in values.

use std::fmt;

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
        let mut requirements = Vec::new();
        for term in split_unescaped(input, ',') {
            if term.trim().is_empty() {
                continue;
            }
            requirements.push(parse_term(input, term)?);
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value a requirement pins with `=`, if any (e.g. `metadata.name`).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.op == FieldOp::Equals)
            .map(|r| r.value.as_str())
    }

    /// Matches using a lookup from field path to value (a missing field is "").
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = lookup(&r.field).unwrap_or_default();
            (actual == r.value) == (r.op == FieldOp::Equals)
        })
    }

    /// Refuses field labels upstream does not support for this kind.
    pub fn check_supported(&self, group: &str, kind: &str) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !super::field_supported(group, kind, &r.field))
        {
            Some(r) => Err(SelectorError::UnsupportedField {
                field: r.field.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Matches an object of this kind, reading each label's object path
    /// (see [`super::field_object_path`]).
    pub fn matches_kind(&self, group: &str, kind: &str, object: &Value) -> bool {
        self.matches(|field| field_value(object, super::field_object_path(group, kind, field)))
    }

    /// Matches by reading each dotted field path from the JSON object;
    /// strings, numbers and booleans compare by their text.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(|field| field_value(object, field))
    }
}

/// Reads a dotted path (`spec.nodeName`) as text; None when absent or not a scalar.
pub fn field_value(object: &Value, field: &str) -> Option<String> {
    let mut cur = object;
    for part in field.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_term(input: &str, term: &str) -> Result<FieldRequirement, SelectorError> {
    let err = |reason| SelectorError::Syntax {
        selector: input.to_string(),
        token: term.to_string(),
        reason,
    };
    let (field, op, value) = if let Some((f, v)) = split_op(term, "!=") {
        (f, FieldOp::NotEquals, v)
    } else if let Some((f, v)) = split_op(term, "==") {
        (f, FieldOp::Equals, v)
    } else if let Some((f, v)) = split_op(term, "=") {
        (f, FieldOp::Equals, v)
    } else {
        return Err(err("expected field=value, field==value or field!=value"));
    };
    let field = field.trim();
    if field.is_empty() {
        return Err(err("empty field name"));
    }
    Ok(FieldRequirement {
        field: field.to_string(),
        op,
        value: unescape(value),
    })
}

/// Splits at the first unescaped occurrence of `op`.
fn split_op<'a>(term: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if term[i..].starts_with(op) {
            return Some((&term[..i], &term[i + op.len()..]));
        }
    }
    None
}

fn split_unescaped(input: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&input[start..i]);
            start = i + 1;
        }
    }
    parts.push(&input[start..]);
    parts
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if r.op == FieldOp::Equals { "=" } else { "!=" };
            let value = r
                .value
                .replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('=', "\\=");
            write!(f, "{}{op}{value}", r.field)?;
        }
        Ok(())
    }
}
