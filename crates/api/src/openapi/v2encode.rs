//! Encodes the Swagger 2.0 JSON of [`super::v2`] as gnostic's `openapi.v2`
//! protobuf [`Document`], the format kubectl 1.27/1.28 request. Keys the
//! messages have no field for (none of which kubectl reads) are dropped;
//! `x-` extensions become `NamedAny`s holding the value's JSON text, which
//! is also YAML (gnostic keeps extension values as YAML).

use prost::Message;
use serde_json::{Map, Value};

use super::v2proto::*;

/// The protobuf bytes of a v2 JSON document.
pub fn encode(document: &Value) -> Vec<u8> {
    to_document(document).encode_to_vec()
}

fn to_document(d: &Value) -> Document {
    let named_paths = obj(d.get("paths"))
        .iter()
        .map(|(name, item)| NamedPathItem {
            name: name.clone(),
            value: Some(path_item(item)),
        })
        .collect();
    Document {
        swagger: text(d, "swagger"),
        info: d.get("info").map(|i| Info {
            title: text(i, "title"),
            version: text(i, "version"),
        }),
        schemes: strings(d.get("schemes")),
        paths: Some(Paths { path: named_paths }),
        definitions: Some(Definitions {
            additional_properties: named_schemas(d.get("definitions")),
        }),
    }
}

fn obj(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn any(v: &Value) -> Any {
    Any {
        yaml: serde_json::to_string(v).unwrap_or_default(),
    }
}

/// The `x-` keys of an object, as vendor extensions.
fn extensions(v: &Value) -> Vec<NamedAny> {
    obj(Some(v))
        .iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny {
            name: k.clone(),
            value: Some(any(v)),
        })
        .collect()
}

fn path_item(item: &Value) -> PathItem {
    let op = |method: &str| item.get(method).map(operation);
    PathItem {
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        patch: op("patch"),
        parameters: parameters(item.get("parameters")),
    }
}

fn operation(op: &Value) -> Operation {
    let responses = obj(op.get("responses"))
        .iter()
        .map(|(code, r)| NamedResponseValue {
            name: code.clone(),
            value: Some(ResponseValue {
                response: Some(Response {
                    description: text(r, "description"),
                    schema: r.get("schema").map(|s| SchemaItem {
                        schema: Some(schema(s)),
                    }),
                }),
            }),
        })
        .collect();
    Operation {
        description: text(op, "description"),
        operation_id: text(op, "operationId"),
        produces: strings(op.get("produces")),
        consumes: strings(op.get("consumes")),
        parameters: parameters(op.get("parameters")),
        responses: Some(Responses {
            response_code: responses,
        }),
        schemes: strings(op.get("schemes")),
        vendor_extension: extensions(op),
    }
}

fn parameters(v: Option<&Value>) -> Vec<ParametersItem> {
    v.and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| ParametersItem {
                    parameter: Some(parameter(p)),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parameter(p: &Value) -> Parameter {
    let (name, place, description) = (text(p, "name"), text(p, "in"), text(p, "description"));
    let required = flag(p, "required");
    let (ty, unique) = (text(p, "type"), flag(p, "uniqueItems"));
    let mut out = Parameter::default();
    match place.as_str() {
        "body" => {
            out.body_parameter = Some(BodyParameter {
                description,
                name,
                r#in: place,
                required,
                schema: p.get("schema").map(schema),
            })
        }
        "path" => {
            out.non_body_parameter = Some(NonBodyParameter {
                path_parameter_sub_schema: Some(PathParameterSubSchema {
                    required,
                    r#in: place,
                    description,
                    name,
                    r#type: ty,
                    unique_items: unique,
                }),
                ..Default::default()
            })
        }
        _ => {
            out.non_body_parameter = Some(NonBodyParameter {
                query_parameter_sub_schema: Some(QueryParameterSubSchema {
                    required,
                    r#in: place,
                    description,
                    name,
                    r#type: ty,
                    unique_items: unique,
                }),
                ..Default::default()
            })
        }
    }
    out
}

fn named_schemas(v: Option<&Value>) -> Vec<NamedSchema> {
    obj(v)
        .iter()
        .map(|(name, s)| NamedSchema {
            name: name.clone(),
            value: Some(schema(s)),
        })
        .collect()
}

fn schema(s: &Value) -> Schema {
    let ty = match s.get("type") {
        Some(Value::String(t)) => Some(TypeItem {
            value: vec![t.clone()],
        }),
        Some(Value::Array(_)) => Some(TypeItem {
            value: strings(s.get("type")),
        }),
        _ => None,
    };
    let items = match s.get("items") {
        Some(Value::Array(list)) => Some(ItemsItem {
            schema: list.iter().map(schema).collect(),
        }),
        Some(one) => Some(ItemsItem {
            schema: vec![schema(one)],
        }),
        None => None,
    };
    let additional = s.get("additionalProperties").map(|a| {
        Box::new(match a {
            Value::Bool(b) => AdditionalPropertiesItem {
                schema: None,
                boolean: Some(*b),
            },
            other => AdditionalPropertiesItem {
                schema: Some(schema(other)),
                boolean: None,
            },
        })
    });
    Schema {
        xref: text(s, "$ref"),
        format: text(s, "format"),
        title: text(s, "title"),
        description: text(s, "description"),
        default: s.get("default").map(any),
        unique_items: flag(s, "uniqueItems"),
        required: strings(s.get("required")),
        r#enum: s
            .get("enum")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(any).collect())
            .unwrap_or_default(),
        additional_properties: additional,
        r#type: ty,
        items,
        all_of: s
            .get("allOf")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(schema).collect())
            .unwrap_or_default(),
        properties: s.get("properties").map(|_| Properties {
            additional_properties: named_schemas(s.get("properties")),
        }),
        read_only: flag(s, "readOnly"),
        vendor_extension: extensions(s),
    }
}
