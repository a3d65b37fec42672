//! The generic REST handler: one implementation of get, list, watch,
//! create, update, patch, delete and deletecollection for every resource,
//! parameterised by the resource's [`Strategy`].

pub mod admit;
mod delete;
mod parts;
mod patch;
mod read;
mod sub;
mod watch;
mod write;

use crate::body::{self, Body};
use crate::cache::Cache;
use crate::metrics::Metrics;
use crate::request::{Query, ResourcePath};
use crate::services::Allocator;
use crate::status::{ApiError, ApiResult};
use crate::strategy::Strategy;
use bytes::Bytes;
use http::{Method, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use store::{KeyValue, Store};

/// Shared state of the REST handler.
pub struct Api {
    pub store: Arc<dyn Store>,
    pub cache: Arc<Cache>,
    pub strategies: Arc<Vec<Strategy>>,
    pub alloc: Allocator,
    pub metrics: Arc<Metrics>,
    /// tolerationSeconds of the not-ready/unreachable tolerations added to new pods.
    pub default_tolerations: admit::DefaultTolerations,
}

/// One resource request, parsed.
pub struct Req<'a> {
    pub path: &'a ResourcePath,
    pub idx: usize,
    pub query: &'a Query,
    pub accept: &'a str,
    pub content_type: &'a str,
    pub user_agent: &'a str,
    pub body: Bytes,
}

impl Req<'_> {
    pub fn ns(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    /// A server-side apply: the patch already recorded managedFields.
    pub fn is_apply(&self) -> bool {
        self.content_type.starts_with("application/apply-patch")
    }

    /// Records an ordinary write of `new` (over `old`) in managedFields.
    pub fn track(&self, old: Option<&Value>, new: Value) -> Value {
        if self.is_apply() {
            return new;
        }
        api::patch::managed_fields_update(old, &new, &self.manager())
    }

    /// The field manager: `fieldManager`, else the user agent's program name.
    pub fn manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}

impl Api {
    pub fn strategy(&self, idx: usize) -> &Strategy {
        &self.strategies[idx]
    }

    pub fn index_of(&self, group: &str, plural: &str) -> Option<usize> {
        self.strategies
            .iter()
            .position(|s| s.resource.group == group && s.resource.plural == plural)
    }

    /// Store key of an object.
    pub fn key(&self, idx: usize, ns: &str, name: &str) -> String {
        let s = self.strategy(idx);
        if s.resource.namespaced {
            format!("{}{ns}/{name}", s.resource.key_prefix())
        } else {
            format!("{}{name}", s.resource.key_prefix())
        }
    }

    pub async fn get_kv(&self, key: &str) -> ApiResult<Option<KeyValue>> {
        let t = Instant::now();
        let r = self.store.get(key).await;
        self.metrics.store_op("get", t.elapsed());
        Ok(r?)
    }

    /// Dispatches by method and path shape.
    pub async fn handle(&self, method: &Method, req: Req<'_>) -> ApiResult<Response<Body>> {
        let r = req.path.resource;
        // Namespaced resources are only listed and watched across namespaces.
        if r.namespaced
            && req.path.namespace.is_none()
            && (req.path.name.is_some() || *method != Method::GET)
        {
            return Err(ApiError::no_route());
        }
        if !r.namespaced && req.path.namespace.is_some() {
            return Err(ApiError::no_route());
        }
        if let Some(sub) = req.path.subresource.clone() {
            return self.subresource(method, &req, &sub).await;
        }
        let watch = req.path.watch_prefix || req.query.flag("watch");
        match (method, req.path.name.is_some()) {
            (&Method::GET, false) if watch => self.watch(&req).await,
            (&Method::GET, false) => self.list(&req).await,
            (&Method::GET, true) if watch => self.watch(&req).await,
            (&Method::GET, true) => self.get(&req).await,
            (&Method::POST, false) => self.create(&req).await,
            (&Method::PUT, true) => self.update(&req, None).await,
            (&Method::PATCH, true) => self.patch(&req, None).await,
            (&Method::DELETE, true) => self.delete(&req).await,
            (&Method::DELETE, false) => self.delete_collection(&req).await,
            (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
        }
    }
}

/// Parses a JSON (or Kubernetes protobuf) request body into an object.
pub fn decode_body(content_type: &str, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    match ct {
        "application/vnd.kubernetes.protobuf" => api::protobuf::decode(body)
            .map_err(|e| ApiError::unsupported_media_type(&e.to_string())),
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
        "application/yaml" => Err(ApiError::unsupported_media_type(ct)),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Writes `obj` as JSON with the given code.
pub fn object_response(code: u16, obj: &Value) -> Response<Body> {
    body::json(code, obj)
}

/// The object stored at `kv`, with its `resourceVersion`.
pub fn with_rv(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    crate::meta::set(
        &mut v,
        "resourceVersion",
        Value::String(kv.mod_revision.to_string()),
    );
    Ok(v)
}
