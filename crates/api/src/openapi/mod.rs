//! OpenAPI v3 documents: the `/openapi/v3` index and one document per
//! group/version with item-path operations (for kubectl's server-side
//! validation check) and full `components.schemas` from k8s-openapi (for
//! `kubectl explain`). Output is deterministic; [`hash`] gives the ETag.
//! [`OpenApiV3`] builds everything once so a server can cache the bytes.
//! [`check_object`] finds unknown fields and wrongly typed values for
//! `fieldValidation=Strict`. [`OpenApiV2`] holds the Swagger 2.0 document
//! (JSON and gnostic protobuf) derived from the same documents, which
//! kubectl 1.27/1.28 need.

mod paths;
mod schemas;
#[cfg(test)]
mod tests;
mod v2;
mod v2encode;
mod v2proto;
#[cfg(test)]
mod v2tests;
mod validate;

pub use v2::v2_document;
pub use validate::{check_object, FieldIssue};

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

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
    let mut paths = Map::new();
    for (group, version) in group_versions(resources) {
        let doc = v3_group_version(&group, &version, resources);
        let path = group_version_path(&group, &version);
        let url = format!("/openapi/v3/{path}?hash={}", hash(&doc));
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

/// The OpenAPI v3 document for one group/version (`""`, `v1` for core).
pub fn v3_group_version(group: &str, version: &str, resources: &[ResourceDescriptor]) -> Value {
    let mut schemas = schemas::Schemas::new();
    let mut paths = Map::new();
    let generic = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let refs = paths::Refs {
            kind: schemas
                .add_kind(group, version, &r.kind)
                .unwrap_or_else(|| generic.clone()),
            scale: schemas.add_kind("autoscaling", "v1", "Scale"),
            status: schemas.add_meta("Status"),
            patch: schemas.add_meta("Patch"),
            delete_options: schemas.add_meta("DeleteOptions"),
        };
        paths::add_resource(&mut paths, r, &refs);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas.finish()},
    })
}

/// The distinct (group, version) pairs among `resources`, sorted.
fn group_versions(resources: &[ResourceDescriptor]) -> Vec<(String, String)> {
    let mut gvs: Vec<_> = resources
        .iter()
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    gvs
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
    hash_bytes(&serde_json::to_vec(document).unwrap_or_default())
}

fn hash_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode_upper(sha2::Sha256::digest(bytes))
}

/// All OpenAPI v3 documents of a resource table, serialized once.
#[derive(Debug, Clone)]
pub struct OpenApiV3 {
    index: Vec<u8>,
    /// `apis/apps/v1` → (document bytes, hash).
    documents: BTreeMap<String, (Vec<u8>, String)>,
}

impl OpenApiV3 {
    /// Builds the index and every group/version document.
    pub fn build(resources: &[ResourceDescriptor]) -> Self {
        let mut documents = BTreeMap::new();
        let mut paths = Map::new();
        for (group, version) in group_versions(resources) {
            let doc = serde_json::to_vec(&v3_group_version(&group, &version, resources))
                .unwrap_or_default();
            let hash = hash_bytes(&doc);
            let path = group_version_path(&group, &version);
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
            documents.insert(path, (doc, hash));
        }
        let index = serde_json::to_vec(&json!({ "paths": paths })).unwrap_or_default();
        Self { index, documents }
    }

    /// The body of `GET /openapi/v3`.
    pub fn index(&self) -> &[u8] {
        &self.index
    }

    /// The body and ETag (hash) of `GET /openapi/v3/<path>` (`apis/apps/v1`).
    pub fn document(&self, path: &str) -> Option<(&[u8], &str)> {
        self.documents
            .get(path.trim_matches('/'))
            .map(|(d, h)| (d.as_slice(), h.as_str()))
    }
}

/// The `/openapi/v2` document of a resource table, serialized once as
/// JSON and as protobuf, each with its content hash (for the ETag).
#[derive(Debug, Clone)]
pub struct OpenApiV2 {
    json: (Vec<u8>, String),
    protobuf: (Vec<u8>, String),
}

impl OpenApiV2 {
    /// Builds the document and both encodings.
    pub fn build(resources: &[ResourceDescriptor]) -> Self {
        let doc = v2_document(resources);
        let json = serde_json::to_vec(&doc).unwrap_or_default();
        let protobuf = v2encode::encode(&doc);
        let (json_hash, protobuf_hash) = (hash_bytes(&json), hash_bytes(&protobuf));
        Self {
            json: (json, json_hash),
            protobuf: (protobuf, protobuf_hash),
        }
    }

    /// The JSON body and its hash.
    pub fn json(&self) -> (&[u8], &str) {
        (&self.json.0, &self.json.1)
    }

    /// The protobuf body (gnostic `openapi.v2.Document`) and its hash.
    pub fn protobuf(&self) -> (&[u8], &str) {
        (&self.protobuf.0, &self.protobuf.1)
    }
}
