//! Decoding Kubernetes protobuf request bodies into JSON objects.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` message
//! (`typeMeta{apiVersion, kind}`, `raw`, `contentEncoding`, `contentType`);
//! `raw` is the object in the field numbering of upstream `generated.proto`.
//! A table of message descriptors (field number → JSON name and type) turns
//! `raw` into the same JSON the object would have been posted as.

mod decode;
mod table;
#[cfg(test)]
mod tests;
mod wire;

use serde_json::Value;

use wire::{Payload, Reader};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be decoded; names the message and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the k8s magic bytes")]
    Magic,
    #[error("protobuf body has no type: runtime.Unknown.typeMeta is missing apiVersion or kind")]
    NoType,
    #[error("protobuf decoding of {api_version}, Kind={kind} is not supported")]
    Unsupported { api_version: String, kind: String },
    #[error("protobuf body uses content encoding {0:?}, only the empty encoding is supported")]
    Encoding(String),
    #[error("malformed protobuf in {message} field {field}: {reason}")]
    Malformed {
        message: String,
        field: u32,
        reason: &'static str,
    },
}

/// The parts of the `runtime.Unknown` envelope.
#[derive(Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

/// Decodes a `k8s\0`-prefixed body into the JSON object (with `apiVersion`
/// and `kind` set from the envelope).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(ProtobufError::Magic)?;
    let env = envelope(unknown)?;
    if env.api_version.is_empty() || env.kind.is_empty() {
        return Err(ProtobufError::NoType);
    }
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::Encoding(env.content_encoding));
    }
    let name = table::message_name(&env.api_version, &env.kind);
    let Some((&name, _)) = table::messages().get_key_value(name.as_str()) else {
        return Err(ProtobufError::Unsupported {
            api_version: env.api_version,
            kind: env.kind,
        });
    };
    let mut object = serde_json::Map::new();
    object.insert("apiVersion".into(), Value::String(env.api_version));
    object.insert("kind".into(), Value::String(env.kind));
    object.extend(decode::message(name, env.raw)?);
    Ok(Value::Object(object))
}

/// Whether [`decode`] knows the message layout of this type.
pub fn is_supported(api_version: &str, kind: &str) -> bool {
    table::messages().contains_key(table::message_name(api_version, kind).as_str())
}

fn envelope(buf: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let err = |field, reason| ProtobufError::Malformed {
        message: "runtime.Unknown".into(),
        field,
        reason,
    };
    let text = |field, b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| err(field, "string is not UTF-8"))
    };
    let mut env = Envelope::default();
    let mut reader = Reader::new(buf);
    while let Some(next) = reader.next_field() {
        match next.map_err(|r| err(0, r))? {
            (1, Payload::Bytes(type_meta)) => {
                let mut tm = Reader::new(type_meta);
                while let Some(f) = tm.next_field() {
                    match f.map_err(|r| err(1, r))? {
                        (1, Payload::Bytes(b)) => env.api_version = text(1, b)?,
                        (2, Payload::Bytes(b)) => env.kind = text(1, b)?,
                        _ => {}
                    }
                }
            }
            (2, Payload::Bytes(raw)) => env.raw = raw,
            (3, Payload::Bytes(b)) => env.content_encoding = text(3, b)?,
            _ => {}
        }
    }
    Ok(env)
}
