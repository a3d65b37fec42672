//! Structural checks of an object against its kind's schema, for
//! `fieldValidation=Strict|Warn`: fields the schema does not know
//! (`unknown field "spec.replica"`, as upstream's strict decoder words it)
//! and values of the wrong JSON type. Schemas are generated once per kind
//! and kept for the life of the process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};

use super::schemas::schema_of;

/// One problem found in an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldIssue {
    /// A field the schema does not define.
    Unknown { path: String },
    /// A value of the wrong JSON type.
    Type {
        path: String,
        expected: &'static str,
    },
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldIssue::Unknown { path } => write!(f, "unknown field \"{path}\""),
            FieldIssue::Type { path, expected } => write!(f, "{path}: expected {expected}"),
        }
    }
}

/// The generator (its definitions grow as kinds are asked for) and the
/// root schema name of each kind seen.
struct Cache {
    generator: SchemaGenerator,
    roots: HashMap<(String, String, String), Option<String>>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(Cache {
            generator: SchemaSettings::openapi3().into_generator(),
            roots: HashMap::new(),
        })
    })
}

/// Checks `object` against the schema of `group/version, kind`. Returns
/// `None` when the kind has no built-in schema (a custom resource).
pub fn check_object(
    group: &str,
    version: &str,
    kind: &str,
    object: &Value,
) -> Option<Vec<FieldIssue>> {
    let mut cache = cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Cache { generator, roots } = &mut *cache;
    let key = (group.to_string(), version.to_string(), kind.to_string());
    let root = roots
        .entry(key)
        .or_insert_with(|| {
            let schema = schema_of(generator, group, version, kind)?;
            let r = schema.as_value().get("$ref")?.as_str()?;
            Some(r.rsplit('/').next()?.to_string())
        })
        .clone()?;
    let defs = generator.definitions();
    let schema = defs.get(&root)?;
    let mut issues = Vec::new();
    walk(defs, schema, object, &mut String::new(), &mut issues);
    Some(issues)
}

/// Follows `$ref` and single-element `allOf` to the schema that describes the value.
fn resolve<'a>(defs: &'a Map<String, Value>, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match r.rsplit('/').next().and_then(|name| defs.get(name)) {
                Some(next) => schema = next,
                None => return schema,
            }
        } else if let Some(first) = schema.get("allOf").and_then(|a| a.get(0)) {
            schema = first;
        } else {
            break;
        }
    }
    schema
}

fn walk(
    defs: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: &mut String,
    issues: &mut Vec<FieldIssue>,
) {
    let schema = resolve(defs, schema);
    if value.is_null()
        || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
    {
        return;
    }
    let mut wrong = |expected| {
        issues.push(FieldIssue::Type {
            path: shown(path),
            expected,
        })
    };
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            wrong("integer or string");
        }
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") if !value.is_string() => wrong("string"),
        Some("integer") if !(value.is_i64() || value.is_u64()) => wrong("integer"),
        Some("number") if !value.is_number() => wrong("number"),
        Some("boolean") if !value.is_boolean() => wrong("boolean"),
        Some("array") => match value.as_array() {
            None => wrong("array"),
            Some(items) => {
                let item_schema = schema.get("items");
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if let Some(s) = item_schema {
                        walk(defs, s, item, path, issues);
                    }
                    path.truncate(len);
                }
            }
        },
        Some("object") => match value.as_object() {
            None => wrong("object"),
            Some(map) => walk_object(defs, schema, map, path, issues),
        },
        _ => {}
    }
}

fn walk_object(
    defs: &Map<String, Value>,
    schema: &Value,
    map: &Map<String, Value>,
    path: &mut String,
    issues: &mut Vec<FieldIssue>,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let extra = schema.get("additionalProperties").filter(|a| a.is_object());
    if props.is_none() && extra.is_none() {
        return; // free-form object (RawExtension, FieldsV1)
    }
    for (k, v) in map {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(k);
        match props.and_then(|p| p.get(k)).or(extra) {
            Some(s) => walk(defs, s, v, path, issues),
            None => issues.push(FieldIssue::Unknown { path: path.clone() }),
        }
        path.truncate(len);
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "<root>".into()
    } else {
        path.to_string()
    }
}
