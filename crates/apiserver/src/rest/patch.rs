//! PATCH: JSON patch, JSON merge patch, strategic merge patch and
//! server-side apply (which may create), through crates/api, then the same
//! update path as PUT, retried when another write wins the race.

use super::write::Part;
use super::{object_response, with_rv, Api, Req};
use crate::body::Body;
use crate::status::{ApiError, ApiResult};
use api::patch::{ApplyError, PatchError};
use api::GroupVersionKind;
use http::Response;
use serde_json::{json, Value};

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Decode(_) | PatchError::Shape { .. } => ApiError::bad_request(e.to_string()),
        other => ApiError::new(422, "Invalid", other.to_string()),
    }
}

fn apply_error(e: ApplyError, group: &str, plural: &str, name: &str) -> ApiError {
    match &e {
        ApplyError::Conflicts { conflicts } => {
            let mut err = ApiError::new(409, "Conflict", e.to_string());
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {:?}", c.manager), "field": c.field}))
                .collect();
            err.details =
                Some(json!({"name": name, "group": group, "kind": plural, "causes": causes}));
            err
        }
        ApplyError::Invalid { .. } => ApiError::new(422, "Invalid", e.to_string()),
    }
}

/// The media type part of a Content-Type.
fn media(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

impl Api {
    fn gvk(&self, idx: usize) -> GroupVersionKind {
        let r = self.strategy(idx).resource;
        GroupVersionKind::new(r.group, r.version, r.kind)
    }

    /// Applies the request's patch to `live`.
    pub(super) fn apply_patch(
        &self,
        req: &Req<'_>,
        live: Option<&Value>,
        gvk: &GroupVersionKind,
    ) -> ApiResult<Value> {
        let r = self.strategy(req.idx).resource;
        let empty = json!({});
        let target = live.unwrap_or(&empty);
        match media(req.content_type) {
            "application/json-patch+json" => {
                api::patch::json_patch(target, &req.body).map_err(patch_error)
            }
            "application/merge-patch+json" => {
                api::patch::merge_patch(target, &req.body).map_err(patch_error)
            }
            "application/strategic-merge-patch+json" => {
                api::patch::strategic_merge_patch(target, &req.body, gvk).map_err(patch_error)
            }
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                let applied: Value = serde_json::from_slice(&req.body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                let force = req.query.flag("force");
                api::patch::server_side_apply(live, &applied, &req.manager(), force, gvk)
                    .map_err(|e| apply_error(e, r.group, r.plural, req.name()))
            }
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }

    pub(super) async fn patch(
        &self,
        req: &Req<'_>,
        part: Option<Part>,
    ) -> ApiResult<Response<Body>> {
        let s = self.strategy(req.idx);
        let gvk = self.gvk(req.idx);
        let key = self.key(req.idx, req.ns(), req.name());
        let is_apply = media(req.content_type).starts_with("application/apply-patch");
        for _ in 0..16 {
            let old_kv = self.get_kv(&key).await?;
            let Some(old_kv) = old_kv else {
                if is_apply && part.is_none() {
                    let obj = self.apply_patch(req, None, &gvk)?;
                    let obj = self.prepare_create(req, obj)?;
                    return self.create_object(req, obj).await;
                }
                return Err(ApiError::not_found(
                    s.resource.group,
                    s.resource.plural,
                    req.name(),
                ));
            };
            let live = with_rv(&old_kv)?;
            let mut patched = self.apply_patch(req, Some(&live), &gvk)?;
            // A patch that does not name a resourceVersion is not a precondition.
            let patch_has_rv =
                patched["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"];
            if !patch_has_rv {
                crate::meta::remove(&mut patched, "resourceVersion");
            }
            let outcome = self.compute_update(req, &old_kv, patched, part.unwrap_or(Part::Main))?;
            match self.store_outcome(req, &old_kv, outcome).await {
                Ok(v) => return Ok(object_response(200, &v)),
                Err(Some(e)) => return Err(e),
                Err(None) => continue,
            }
        }
        Err(ApiError::conflict(
            s.resource.group,
            s.resource.plural,
            req.name(),
            "too many concurrent writes",
        ))
    }
}
