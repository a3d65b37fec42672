//! `/openapi/v3`: the index and one document per group/version, generated
//! by crates/api from the resource table, built once on first use and served
//! with an ETag (kubectl revalidates with If-None-Match).

use crate::body::{self, Body};
use crate::registry::{GROUPS, RESOURCES};
use crate::status::{ApiError, ApiResult};
use api::openapi::{self, ResourceDescriptor};
use bytes::Bytes;
use http::{header, Request, Response};
use std::collections::HashMap;
use std::sync::OnceLock;

struct Doc {
    bytes: Bytes,
    hash: String,
}

#[derive(Default)]
pub struct Docs {
    built: OnceLock<(Bytes, HashMap<String, Doc>)>,
}

fn descriptors() -> Vec<ResourceDescriptor> {
    RESOURCES
        .iter()
        .filter(|r| r.plural != "bindings")
        .map(|r| ResourceDescriptor {
            group: r.group.into(),
            version: r.version.into(),
            kind: r.kind.into(),
            plural: r.plural.into(),
            namespaced: r.namespaced,
            subresources: r.subresources.iter().map(|s| s.name.to_string()).collect(),
        })
        .collect()
}

impl Docs {
    fn built(&self) -> &(Bytes, HashMap<String, Doc>) {
        self.built.get_or_init(|| {
            let ds = descriptors();
            let mut docs = HashMap::new();
            for g in GROUPS {
                let v = openapi::v3_group_version(g, "v1", &ds);
                let hash = openapi::hash(&v);
                docs.insert(
                    openapi::group_version_path(g, "v1"),
                    Doc {
                        bytes: Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
                        hash,
                    },
                );
            }
            let index = openapi::v3_index(&ds);
            (
                Bytes::from(serde_json::to_vec(&index).unwrap_or_default()),
                docs,
            )
        })
    }

    pub fn index(&self) -> Response<Body> {
        body::json_bytes(200, self.built().0.clone())
    }

    /// `/openapi/v3/<path>` (`api/v1`, `apis/apps/v1`).
    pub fn document<B>(&self, path: &str, req: &Request<B>) -> ApiResult<Response<Body>> {
        let doc = self.built().1.get(path).ok_or_else(ApiError::no_route)?;
        let etag = format!("\"{}\"", doc.hash);
        let inm = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        let mut r = if inm == Some(etag.as_str()) {
            body::bytes(304, "application/json", Bytes::new())
        } else {
            body::json_bytes(200, doc.bytes.clone())
        };
        if let Ok(v) = header::HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("public, immutable"),
        );
        Ok(r)
    }
}
