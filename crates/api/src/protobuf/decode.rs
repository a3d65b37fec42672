//! Turns one protobuf message into its JSON object by walking the table.
//!
//! Go's `generated.proto` encoding writes every non-pointer field, zero or
//! not, while Go's JSON leaves zero `omitempty` fields out. So, to produce
//! the JSON the client would have sent, empty strings are dropped, and
//! zero numbers and `false` are dropped unless the field is a pointer whose
//! zero means something (`replicas: 0`, `automountServiceAccountToken: false`).

use base64::Engine;
use serde_json::{Map, Value};

use super::table::{messages, Field, Kind};
use super::wire::{Payload, Reader};
use super::ProtobufError;

/// Pointer fields whose zero value is meaningful and kept.
const KEEP_ZERO: &[&str] = &[
    "activeDeadlineSeconds",
    "allocateLoadBalancerNodePorts",
    "allowPrivilegeEscalation",
    "automountServiceAccountToken",
    "backoffLimit",
    "backoffLimitPerIndex",
    "blockOwnerDeletion",
    "completions",
    "controller",
    "defaultMode",
    "deletionGracePeriodSeconds",
    "enableServiceLinks",
    "expirationSeconds",
    "failedJobsHistoryLimit",
    "fsGroup",
    "gracePeriodSeconds",
    "hostUsers",
    "immutable",
    "manualSelector",
    "maxFailedIndexes",
    "maxSurge",
    "maxUnavailable",
    "minAvailable",
    "mode",
    "optional",
    "orphanDependents",
    "parallelism",
    "partition",
    "priority",
    "privileged",
    "progressDeadlineSeconds",
    "readOnlyRootFilesystem",
    "replicas",
    "revisionHistoryLimit",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "suspend",
    "terminationGracePeriodSeconds",
    "ttlSecondsAfterFinished",
    "value",
];

/// Decodes `bytes` as the message `name` into a JSON object.
pub(super) fn message(
    name: &'static str,
    bytes: &[u8],
) -> Result<Map<String, Value>, ProtobufError> {
    let msg = messages()
        .get(name)
        .ok_or_else(|| ProtobufError::Malformed {
            message: name.to_string(),
            field: 0,
            reason: "message type not in the table",
        })?;
    let mut out = Map::new();
    let mut reader = Reader::new(bytes);
    while let Some(next) = reader.next_field() {
        let (number, payload) = next.map_err(|reason| malformed(name, 0, reason))?;
        let Some(field) = msg.fields.get(&number) else {
            continue; // a field newer than the table: skipped, as proto does
        };
        let err = |reason| malformed(name, number, reason);
        if field.map {
            let Payload::Bytes(entry) = payload else {
                return Err(err("map entry is not length-delimited"));
            };
            let (key, value) = map_entry(name, number, field, entry)?;
            let slot = out
                .entry(field.json)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = slot {
                m.insert(key, value);
            }
        } else if field.repeated {
            let items = repeated(name, number, field, payload)?;
            let slot = out
                .entry(field.json)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = slot {
                a.extend(items);
            }
        } else if field.json == "-" {
            if let Value::Object(inner) = scalar(name, number, field.kind, payload)? {
                out.extend(inner);
            }
        } else {
            let value = scalar(name, number, field.kind, payload)?;
            if keep(field.json, &value) {
                out.insert(field.json.to_string(), value);
            } else {
                out.remove(field.json);
            }
        }
    }
    Ok(out)
}

fn malformed(message: &str, field: u32, reason: &'static str) -> ProtobufError {
    ProtobufError::Malformed {
        message: message.to_string(),
        field,
        reason,
    }
}

/// Whether a singular field's decoded value belongs in the JSON.
fn keep(json: &str, value: &Value) -> bool {
    let zero = match value {
        Value::Null => return false,
        Value::String(s) => return !s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    };
    !zero || KEEP_ZERO.contains(&json)
}

/// One element (or, for packed varints, several) of a repeated field.
fn repeated(
    name: &'static str,
    number: u32,
    field: &Field,
    payload: Payload,
) -> Result<Vec<Value>, ProtobufError> {
    let packable = matches!(field.kind, Kind::Bool | Kind::Int32 | Kind::Int64);
    match payload {
        Payload::Bytes(packed) if packable => {
            let mut reader = Reader::new(packed);
            let mut items = Vec::new();
            while !reader.is_empty() {
                let v = reader.varint().map_err(|r| malformed(name, number, r))?;
                items.push(scalar(name, number, field.kind, Payload::Varint(v))?);
            }
            Ok(items)
        }
        _ => Ok(vec![scalar(name, number, field.kind, payload)?]),
    }
}

/// A map entry: key (field 1, a string) and value (field 2, of the field's kind).
fn map_entry(
    name: &'static str,
    number: u32,
    field: &Field,
    entry: &[u8],
) -> Result<(String, Value), ProtobufError> {
    let (mut key, mut value) = (String::new(), None);
    let mut reader = Reader::new(entry);
    while let Some(next) = reader.next_field() {
        match next.map_err(|r| malformed(name, number, r))? {
            (1, Payload::Bytes(k)) => {
                key = std::str::from_utf8(k)
                    .map_err(|_| malformed(name, number, "map key is not UTF-8"))?
                    .to_string();
            }
            (2, payload) => value = Some(scalar(name, number, field.kind, payload)?),
            _ => {}
        }
    }
    let value = value.unwrap_or_else(|| empty(field.kind));
    Ok((key, value))
}

/// The value of an absent map value (proto omits zero values in entries).
fn empty(kind: Kind) -> Value {
    match kind {
        Kind::String | Kind::Bytes => Value::String(String::new()),
        Kind::Bool => Value::Bool(false),
        Kind::Int32 | Kind::Int64 => Value::from(0),
        Kind::Message(_) => Value::Object(Map::new()),
    }
}

fn scalar(
    name: &'static str,
    number: u32,
    kind: Kind,
    payload: Payload,
) -> Result<Value, ProtobufError> {
    let err = |reason| malformed(name, number, reason);
    Ok(match (kind, payload) {
        (Kind::Bool, Payload::Varint(v)) => Value::Bool(v != 0),
        // Proto int32 sign-extends negatives to 64 bits: truncate.
        (Kind::Int32, Payload::Varint(v)) => Value::from(v as i64 as i32),
        (Kind::Int64, Payload::Varint(v)) => Value::from(v as i64),
        (Kind::String, Payload::Bytes(b)) => Value::String(
            std::str::from_utf8(b)
                .map_err(|_| err("string is not UTF-8"))?
                .to_string(),
        ),
        (Kind::Bytes, Payload::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Kind::Message(m), Payload::Bytes(b)) => special(m, b)?,
        _ => return Err(err("wire type does not match the field's type")),
    })
}

/// Messages whose JSON form is not an object (times, quantities,
/// int-or-string, raw JSON), then ordinary nested messages.
fn special(name: &'static str, bytes: &[u8]) -> Result<Value, ProtobufError> {
    let short = name.rsplit('.').next().unwrap_or(name);
    let obj = message(name, bytes)?;
    let int = |k: &str| obj.get(k).and_then(Value::as_i64).unwrap_or(0);
    Ok(match short {
        "Time" | "MicroTime" => time(int("seconds"), int("nanos"), short == "MicroTime"),
        "Quantity" => obj
            .get("string")
            .cloned()
            .unwrap_or(Value::String("0".into())),
        "IntOrString" => match int("type") {
            1 => obj
                .get("strVal")
                .cloned()
                .unwrap_or(Value::String(String::new())),
            _ => Value::from(int("intVal")),
        },
        "FieldsV1" | "RawExtension" => raw_json(&obj),
        _ => Value::Object(obj),
    })
}

/// RFC 3339 in UTC, seconds (Time) or microseconds (MicroTime); the zero
/// time is `null`, as Go's JSON writes it.
fn time(seconds: i64, nanos: i64, micro: bool) -> Value {
    if seconds == 0 && nanos == 0 {
        return Value::Null;
    }
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(t) if micro => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        Some(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => Value::Null,
    }
}

/// A `raw` bytes field holding JSON (FieldsV1, RawExtension).
fn raw_json(obj: &Map<String, Value>) -> Value {
    let Some(Value::String(b64)) = obj.get("raw") else {
        return Value::Null;
    };
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or(Value::Null)
}
