//! Label selectors: requirements ANDed together, matched against labels.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::lexer::{Lexer, Token};
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
    GreaterThan,
    LessThan,
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
        let mut lexer = Lexer::new(input);
        let mut requirements = Vec::new();
        if lexer.peek().is_none() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(parse_requirement(&mut lexer)?);
            match lexer.next() {
                None => break,
                Some(Token::Comma) => {}
                Some(t) => return Err(lexer.error(&t, "expected ',' or end of selector")),
            }
        }
        Ok(Self { requirements })
    }

    /// Converts a metav1 `LabelSelector` object (matchLabels, matchExpressions).
    /// Requirements are sorted by key, as upstream does.
    pub fn from_object(selector: &Value) -> Result<Self, SelectorError> {
        let obj_err = |field: String, reason: &str| SelectorError::Object {
            field,
            reason: reason.to_string(),
        };
        let mut requirements = Vec::new();
        if let Some(labels) = non_null(selector.get("matchLabels")) {
            let labels = labels
                .as_object()
                .ok_or_else(|| obj_err("matchLabels".into(), "must be an object"))?;
            for (key, value) in labels {
                let value = value
                    .as_str()
                    .ok_or_else(|| obj_err(format!("matchLabels.{key}"), "must be a string"))?;
                check_key(key).map_err(|r| obj_err(format!("matchLabels.{key}"), r))?;
                check_value(value).map_err(|r| obj_err(format!("matchLabels.{key}"), r))?;
                requirements.push(Requirement::new(key, Operator::Equals, vec![value.into()]));
            }
        }
        if let Some(exprs) = non_null(selector.get("matchExpressions")) {
            let exprs = exprs
                .as_array()
                .ok_or_else(|| obj_err("matchExpressions".into(), "must be a list"))?;
            for (i, expr) in exprs.iter().enumerate() {
                requirements.push(expression(expr, &format!("matchExpressions[{i}]"))?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirements (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        self.requirements
            .iter()
            .all(|r| r.matches(labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str)))
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Converts one `matchExpressions` entry; `at` names it in errors.
fn expression(expr: &Value, at: &str) -> Result<Requirement, SelectorError> {
    let err = |field: &str, reason: &str| SelectorError::Object {
        field: format!("{at}.{field}"),
        reason: reason.to_string(),
    };
    let key = expr
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| err("key", "required"))?;
    check_key(key).map_err(|r| err("key", r))?;
    let op = match expr.get("operator").and_then(Value::as_str) {
        Some("In") => Operator::In,
        Some("NotIn") => Operator::NotIn,
        Some("Exists") => Operator::Exists,
        Some("DoesNotExist") => Operator::DoesNotExist,
        Some(_) => return Err(err("operator", "not a valid selector operator")),
        None => return Err(err("operator", "required")),
    };
    let mut values = Vec::new();
    for v in non_null(expr.get("values"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let v = v.as_str().ok_or_else(|| err("values", "must be strings"))?;
        check_value(v).map_err(|r| err("values", r))?;
        values.push(v.to_string());
    }
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => Err(err(
            "values",
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => Err(err(
            "values",
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        _ => Ok(Requirement::new(key, op, values)),
    }
}

fn parse_requirement(lexer: &mut Lexer) -> Result<Requirement, SelectorError> {
    let negated = matches!(lexer.peek(), Some(Token::Bang));
    if negated {
        lexer.next();
    }
    let key = match lexer.next() {
        Some(Token::Ident(k)) => k,
        Some(t) => return Err(lexer.error(&t, "expected a label key")),
        None => return Err(lexer.error(&Token::End, "expected a label key")),
    };
    check_key(&key).map_err(|r| lexer.error(&Token::Ident(key.clone()), r))?;
    if negated {
        return Ok(Requirement::new(&key, Operator::DoesNotExist, vec![]));
    }
    let op = match lexer.peek() {
        None | Some(Token::Comma) => return Ok(Requirement::new(&key, Operator::Exists, vec![])),
        Some(Token::Eq | Token::DoubleEq) => Operator::Equals,
        Some(Token::NotEq) => Operator::NotEquals,
        Some(Token::Gt) => Operator::GreaterThan,
        Some(Token::Lt) => Operator::LessThan,
        Some(Token::Ident(w)) if w == "in" => Operator::In,
        Some(Token::Ident(w)) if w == "notin" => Operator::NotIn,
        Some(t) => {
            let t = t.clone();
            return Err(lexer.error(&t, "expected an operator (=, ==, !=, in, notin)"));
        }
    };
    lexer.next();
    let values = match op {
        Operator::In | Operator::NotIn => parse_set(lexer)?,
        _ => vec![parse_value(lexer, op)?],
    };
    Ok(Requirement::new(&key, op, values))
}

fn parse_value(lexer: &mut Lexer, op: Operator) -> Result<String, SelectorError> {
    let value = match lexer.peek() {
        Some(Token::Ident(v)) => {
            let v = v.clone();
            lexer.next();
            v
        }
        // `key=` selects an empty value.
        None | Some(Token::Comma) if matches!(op, Operator::Equals | Operator::NotEquals) => {
            String::new()
        }
        Some(t) => {
            let t = t.clone();
            return Err(lexer.error(&t, "expected a label value"));
        }
        None => return Err(lexer.error(&Token::End, "expected a label value")),
    };
    if matches!(op, Operator::GreaterThan | Operator::LessThan) && value.parse::<i64>().is_err() {
        return Err(lexer.error(&Token::Ident(value), "expected an integer"));
    }
    check_value(&value).map_err(|r| lexer.error(&Token::Ident(value.clone()), r))?;
    Ok(value)
}

fn parse_set(lexer: &mut Lexer) -> Result<Vec<String>, SelectorError> {
    match lexer.next() {
        Some(Token::Open) => {}
        t => return Err(lexer.error(&t.unwrap_or(Token::End), "expected '('")),
    }
    let mut values = Vec::new();
    loop {
        match lexer.next() {
            Some(Token::Ident(v)) => {
                check_value(&v).map_err(|r| lexer.error(&Token::Ident(v.clone()), r))?;
                values.push(v);
            }
            Some(Token::Close) if values.is_empty() => return Ok(values),
            t => return Err(lexer.error(&t.unwrap_or(Token::End), "expected a value")),
        }
        match lexer.next() {
            Some(Token::Comma) => {}
            Some(Token::Close) => return Ok(values),
            t => return Err(lexer.error(&t.unwrap_or(Token::End), "expected ',' or ')'")),
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters that starts and ends alphanumeric.
fn check_key(key: &str) -> Result<(), &'static str> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return Err("label key prefix must be a DNS subdomain");
            }
            let ok = prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !ok {
                return Err("label key prefix must be a DNS subdomain");
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("label key name must not be empty");
    }
    check_value(name)
}

/// A label value: empty, or at most 63 of `[A-Za-z0-9._-]` starting and
/// ending alphanumeric.
fn check_value(value: &str) -> Result<(), &'static str> {
    if value.len() > 63 {
        return Err("must be no more than 63 characters");
    }
    let bytes = value.as_bytes();
    let ok_char = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let ends_ok = bytes.first().is_none_or(u8::is_ascii_alphanumeric)
        && bytes.last().is_none_or(u8::is_ascii_alphanumeric);
    if bytes.iter().all(ok_char) && ends_ok {
        Ok(())
    } else {
        Err("must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric")
    }
}

impl Requirement {
    fn new(key: &str, op: Operator, values: Vec<String>) -> Self {
        Self {
            key: key.to_string(),
            op,
            values,
        }
    }

    /// Whether a label value (None when the label is absent) satisfies this.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let in_set = |v: &str| self.values.iter().any(|x| x == v);
        let compare = |v: &str, gt: bool| match (v.parse::<i64>(), self.values.first()) {
            (Ok(v), Some(bound)) => bound
                .parse::<i64>()
                .is_ok_and(|b| if gt { v > b } else { v < b }),
            _ => false,
        };
        match (self.op, value) {
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
            (Operator::Equals | Operator::In, Some(v)) => in_set(v),
            (Operator::NotEquals | Operator::NotIn, Some(v)) => !in_set(v),
            (Operator::NotEquals | Operator::NotIn, None) => true,
            (Operator::GreaterThan, Some(v)) => compare(v, true),
            (Operator::LessThan, Some(v)) => compare(v, false),
            (_, None) => false,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.op {
            Operator::Equals => write!(f, "{k}={first}"),
            Operator::NotEquals => write!(f, "{k}!={first}"),
            Operator::GreaterThan => write!(f, "{k}>{first}"),
            Operator::LessThan => write!(f, "{k}<{first}"),
            Operator::Exists => write!(f, "{k}"),
            Operator::DoesNotExist => write!(f, "!{k}"),
            Operator::In => write!(f, "{k} in ({})", self.values.join(",")),
            Operator::NotIn => write!(f, "{k} notin ({})", self.values.join(",")),
        }
    }
}

impl fmt::Display for LabelSelector {
    /// The query-string form (`app=web,tier in (a,b)`), as Scale's
    /// `status.selector` carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}
