//! delete and deletecollection: preconditions, propagation policy (as the
//! `orphan`/`foregroundDeletion` finalizers the garbage collector acts on),
//! graceful deletion of scheduled pods, and objects with finalizers marked
//! with `deletionTimestamp` instead of removed.

use super::read::Filter;
use super::{object_response, with_rv, Api, Req};
use crate::body::{self, Body};
use crate::meta;
use crate::status::{ApiError, ApiResult};
use http::Response;
use serde_json::{json, Value};
use store::{KeyValue, StoreError};

/// The parts of `DeleteOptions` bosun honours.
#[derive(Debug, Default)]
struct Options {
    uid: Option<String>,
    resource_version: Option<String>,
    propagation: Option<String>,
    grace: Option<i64>,
}

fn options(req: &Req<'_>) -> ApiResult<Options> {
    let mut o = Options::default();
    if !req.body.is_empty() {
        let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?;
        o.uid = v["preconditions"]["uid"].as_str().map(str::to_string);
        o.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        o.propagation = v["propagationPolicy"].as_str().map(str::to_string);
        o.grace = v["gracePeriodSeconds"].as_i64();
        if v["orphanDependents"] == true && o.propagation.is_none() {
            o.propagation = Some("Orphan".into());
        }
    }
    if let Some(p) = req.query.get("propagationPolicy") {
        o.propagation = Some(p.to_string());
    }
    if let Some(g) = req
        .query
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
    {
        o.grace = Some(g);
    }
    if let Some(p) = &o.propagation {
        if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {p:?}: want Orphan, Background or Foreground"
            )));
        }
    }
    Ok(o)
}

/// The garbage-collector finalizers a propagation policy asks for (as
/// upstream: Orphan and Foreground exclude each other, an explicit
/// Background drops both; no policy leaves them as they are).
fn gc_finalizers(finalizers: &mut Vec<String>, policy: Option<&str>) {
    let (add, drop): (Option<&str>, &[&str]) = match policy {
        Some("Orphan") => (Some("orphan"), &["foregroundDeletion"]),
        Some("Foreground") => (Some("foregroundDeletion"), &["orphan"]),
        Some("Background") => (None, &["orphan", "foregroundDeletion"]),
        _ => (None, &[]),
    };
    finalizers.retain(|f| !drop.contains(&f.as_str()));
    if let Some(a) = add {
        if !finalizers.iter().any(|f| f == a) {
            finalizers.push(a.to_string());
        }
    }
}

/// Seconds a pod gets to stop, or None to remove it at once.
fn pod_grace(obj: &Value, requested: Option<i64>) -> Option<i64> {
    let scheduled = !obj["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
    let finished = matches!(
        obj["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !scheduled || finished {
        return None;
    }
    let g = requested.unwrap_or_else(|| {
        obj["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    });
    (g > 0).then_some(g)
}

impl Api {
    pub(super) async fn delete(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let opts = options(req)?;
        let key = self.key(req.idx, req.ns(), req.name());
        for _ in 0..16 {
            let s = self.strategy(req.idx);
            let Some(kv) = self.get_kv(&key).await? else {
                return Err(ApiError::not_found(
                    s.resource.group,
                    s.resource.plural,
                    req.name(),
                ));
            };
            match self.delete_one(req, &kv, &opts).await {
                Ok(v) => return Ok(v),
                Err(None) => continue,
                Err(Some(e)) => return Err(e),
            }
        }
        let s = self.strategy(req.idx);
        Err(ApiError::conflict(
            s.resource.group,
            s.resource.plural,
            req.name(),
            "too many concurrent writes",
        ))
    }

    /// Deletes or marks one object; `Err(None)` when a write race was lost.
    async fn delete_one(
        &self,
        req: &Req<'_>,
        kv: &KeyValue,
        opts: &Options,
    ) -> Result<Response<Body>, Option<ApiError>> {
        let s = self.strategy(req.idx);
        let r = s.resource;
        let mut obj = with_rv(kv).map_err(Some)?;
        let name = meta::name(&obj).to_string();
        if let Some(uid) = &opts.uid {
            if uid != meta::uid(&obj) {
                return Err(Some(ApiError::conflict(
                    r.group,
                    r.plural,
                    &name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::uid(&obj)
                    ),
                )));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if *rv != kv.mod_revision.to_string() {
                return Err(Some(ApiError::conflict(r.group, r.plural, &name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", kv.mod_revision))));
            }
        }
        let mut finalizers = meta::finalizers(&obj);
        let already = meta::meta(&obj).is_some_and(|m| m.contains_key("deletionTimestamp"));
        gc_finalizers(&mut finalizers, opts.propagation.as_deref());
        if r.plural == "namespaces" {
            let spec_fin = obj["spec"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            if spec_fin || !finalizers.is_empty() {
                obj["status"]["phase"] = json!("Terminating");
                return self.mark(req, kv, obj, finalizers, 0, already).await;
            }
        }
        let grace = if r.plural == "pods" {
            pod_grace(&obj, opts.grace)
        } else {
            None
        };
        if !finalizers.is_empty() || grace.is_some() {
            return self
                .mark(req, kv, obj, finalizers, grace.unwrap_or(0), already)
                .await;
        }
        if req.dry_run() {
            return Ok(object_response(200, &obj));
        }
        let t = std::time::Instant::now();
        let res = self.store.delete(&kv.key, Some(kv.mod_revision)).await;
        self.metrics.store_op("delete", t.elapsed());
        match res {
            Ok(deleted) => {
                self.after_delete(req, &deleted).await;
                Ok(object_response(200, &with_rv(&deleted).map_err(Some)?))
            }
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Err(None),
            Err(e) => Err(Some(e.into())),
        }
    }

    /// Sets `deletionTimestamp` (and the finalizers) instead of removing.
    async fn mark(
        &self,
        req: &Req<'_>,
        kv: &KeyValue,
        mut obj: Value,
        finalizers: Vec<String>,
        grace: i64,
        already: bool,
    ) -> Result<Response<Body>, Option<ApiError>> {
        if already && grace == 0 {
            // A forced delete of an object already terminating ends its grace period.
            meta::set(&mut obj, "deletionGracePeriodSeconds", json!(0));
        }
        if !already {
            let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
            meta::set(
                &mut obj,
                "deletionTimestamp",
                json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
            meta::set(&mut obj, "deletionGracePeriodSeconds", json!(grace));
        }
        if !finalizers.is_empty() || !meta::finalizers(&obj).is_empty() {
            meta::set(&mut obj, "finalizers", json!(finalizers));
        }
        if req.dry_run() {
            return Ok(object_response(200, &obj));
        }
        meta::remove(&mut obj, "resourceVersion");
        let bytes =
            serde_json::to_vec(&obj).map_err(|e| Some(ApiError::internal(e.to_string())))?;
        match self.store.update(&kv.key, bytes, kv.mod_revision).await {
            Ok(new) => Ok(object_response(200, &with_rv(&new).map_err(Some)?)),
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Err(None),
            Err(e) => Err(Some(e.into())),
        }
    }

    pub(super) async fn delete_collection(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let r = self.strategy(req.idx).resource;
        if r.plural == "namespaces" {
            return Err(ApiError::method_not_allowed("DELETE"));
        }
        let opts = options(req)?;
        let filter = Filter::from_req(self, req)?;
        self.fresh_cache().await?;
        let (objs, _) = self.cache.list(req.idx, None, None, |o| filter.matches(o));
        let mut items = Vec::new();
        for o in objs {
            if let Some(kv) = self.get_kv(&o.key).await? {
                if let Ok(resp) = self.delete_one(req, &kv, &opts).await {
                    let _ = resp;
                    items.push(with_rv(&kv)?);
                }
            }
        }
        let list = json!({"kind": r.list_kind(), "apiVersion": r.api_version(),
                          "metadata": {"resourceVersion": self.cache.revision().to_string()}, "items": items});
        Ok(body::json(200, &list))
    }
}

#[cfg(test)]
mod tests {
    use super::gc_finalizers;

    fn run(start: &[&str], policy: Option<&str>) -> Vec<String> {
        let mut f: Vec<String> = start.iter().map(|s| s.to_string()).collect();
        gc_finalizers(&mut f, policy);
        f
    }

    #[test]
    fn propagation_policy_sets_the_gc_finalizers_like_upstream() {
        assert_eq!(run(&["x"], Some("Orphan")), vec!["x", "orphan"]);
        assert_eq!(
            run(&["orphan"], Some("Foreground")),
            vec!["foregroundDeletion"]
        );
        assert!(run(&["orphan", "foregroundDeletion"], Some("Background")).is_empty());
        assert_eq!(run(&["orphan"], None), vec!["orphan"]);
        assert_eq!(run(&["orphan"], Some("Orphan")), vec!["orphan"]);
    }
}
