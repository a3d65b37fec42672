//! The Swagger 2.0 document of `/openapi/v2`, derived from the v3
//! group/version documents so both describe the same paths and schemas.
//! kubectl 1.27/1.28 download it (as protobuf, see [`super::v2proto`])
//! before every validated create/apply/edit, read the `fieldValidation`
//! query parameter of each PATCH operation (with its
//! `x-kubernetes-group-version-kind`) to decide that the server validates,
//! and parse every definition (dangling `$ref`s or multi-typed schemas
//! make it fail).
//!
//! PATCH operations list the same `consumes` as the v3 request bodies,
//! without strategic merge patch: kubectl 1.27/1.28 `apply` computes a
//! strategic merge patch from these schemas (found through the definitions'
//! `x-kubernetes-group-version-kind`) only when PATCH consumes it, and these
//! schemas (from k8s-openapi) have no `x-kubernetes-patch-merge-key`s, so
//! kubectl must use its compiled-in types instead.

use serde_json::{json, Map, Value};

use super::{group_versions, v3_group_version, ResourceDescriptor};

/// The whole v2 document for `resources`.
pub fn v2_document(resources: &[ResourceDescriptor]) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (group, version) in group_versions(resources) {
        let v3 = v3_group_version(&group, &version, resources);
        if let Some(v3_paths) = v3.get("paths").and_then(Value::as_object) {
            for (path, item) in v3_paths {
                paths.insert(path.clone(), path_item(item));
            }
        }
        if let Some(schemas) = v3.pointer("/components/schemas").and_then(Value::as_object) {
            for (name, schema) in schemas {
                definitions.insert(name.clone(), schema_v2(schema));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "definitions": definitions,
    })
}

/// A v3 schema as a v2 one: `$ref`s point into `#/definitions/`, a
/// `$ref` that OpenAPI 3 had to wrap in a one-element `allOf` (to give it a
/// description) stands beside the description again as upstream's v2 has
/// it (kube-openapi reads a bare `allOf` as "any value"), and int-or-string
/// values get upstream's `type: string, format: int-or-string`.
pub(super) fn schema_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => {
            let mut out = Map::new();
            if let Some(Value::Array(all)) = m.get("allOf") {
                if let [only] = all.as_slice() {
                    if let (Some(r), 1) = (only.get("$ref"), only.as_object().map_or(0, Map::len)) {
                        let mut m = m.clone();
                        m.remove("allOf");
                        m.insert("$ref".into(), r.clone());
                        return schema_v2(&Value::Object(m));
                    }
                }
            }
            for (k, v) in m {
                let v = match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        Value::String(r.replace("#/components/schemas/", "#/definitions/"))
                    }
                    // Property names and extension values are data, not schemas.
                    ("properties", Value::Object(props)) => Value::Object(
                        props
                            .iter()
                            .map(|(n, s)| (n.clone(), schema_v2(s)))
                            .collect(),
                    ),
                    (k, v) if k.starts_with("x-") || k == "enum" || k == "default" => v.clone(),
                    _ => schema_v2(v),
                };
                out.insert(k.clone(), v);
            }
            if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
                && !out.contains_key("type")
            {
                out.insert("type".into(), "string".into());
                out.insert("format".into(), "int-or-string".into());
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(schema_v2).collect()),
        other => other.clone(),
    }
}

/// A v3 path item as a v2 one.
fn path_item(item: &Value) -> Value {
    let mut out = Map::new();
    let Some(m) = item.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        let v = match k.as_str() {
            "parameters" => Value::Array(params(v)),
            "get" | "put" | "post" | "delete" | "patch" => operation(v),
            _ => continue,
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn params(v: &Value) -> Vec<Value> {
    v.as_array()
        .map(|ps| ps.iter().map(parameter).collect())
        .unwrap_or_default()
}

/// A v3 (non-body) parameter: its schema's `type`/`uniqueItems` move up.
fn parameter(p: &Value) -> Value {
    let mut out = Map::new();
    for key in ["name", "in", "description", "required"] {
        if let Some(v) = p.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(schema) = p.get("schema").and_then(Value::as_object) {
        for (k, v) in schema {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The media types keyed in a v3 `content` object.
fn media_types(content: Option<&Value>) -> Vec<Value> {
    content
        .and_then(Value::as_object)
        .map(|c| c.keys().map(|k| Value::String(k.clone())).collect())
        .unwrap_or_default()
}

/// The schema of the first media type of a v3 `content` object.
fn content_schema(content: Option<&Value>) -> Option<Value> {
    content?
        .as_object()?
        .values()
        .next()?
        .get("schema")
        .map(schema_v2)
}

/// A v3 operation as a v2 one: the request body becomes a `body`
/// parameter, media types become `consumes`/`produces`.
fn operation(op: &Value) -> Value {
    let mut out = Map::new();
    let Some(m) = op.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        if k.starts_with("x-") || k == "operationId" || k == "description" {
            out.insert(k.clone(), v.clone());
        }
    }
    let body = m.get("requestBody").map(|b| b.get("content"));
    if let Some(content) = body {
        out.insert("consumes".into(), Value::Array(media_types(content)));
    }
    let ok = op.pointer("/responses/200/content");
    out.insert("produces".into(), Value::Array(media_types(ok)));
    out.insert("schemes".into(), json!(["https"]));
    let mut parameters = m.get("parameters").map(params).unwrap_or_default();
    if let Some(schema) = body.and_then(content_schema) {
        parameters.insert(
            0,
            json!({"name": "body", "in": "body", "required": true, "schema": schema}),
        );
    }
    out.insert("parameters".into(), Value::Array(parameters));
    let mut responses = Map::new();
    if let Some(rs) = m.get("responses").and_then(Value::as_object) {
        for (code, r) in rs {
            let mut resp =
                json!({"description": r.get("description").cloned().unwrap_or_default()});
            if let Some(schema) = content_schema(r.get("content")) {
                resp["schema"] = schema;
            }
            responses.insert(code.clone(), resp);
        }
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}
