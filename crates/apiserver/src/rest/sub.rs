//! Subresources: status (spec and status kept apart), ephemeralcontainers
//! (only `spec.ephemeralContainers`, see [`crate::strategy::ephemeral`]), scale (an
//! autoscaling/v1 Scale view of a workload), pod binding and eviction,
//! namespace finalize, and the kubelet streaming endpoints (log, exec,
//! attach, portforward) which answer a clear error until a kubelet exists.

use super::write::Part;
use super::{decode_body, object_response, with_rv, Api, Req};
use crate::body::Body;
use crate::meta;
use crate::status::{ApiError, ApiResult};
use http::{Method, Response};
use serde_json::{json, Value};
use store::StoreError;

impl Api {
    pub(super) async fn subresource(
        &self,
        method: &Method,
        req: &Req<'_>,
        sub: &str,
    ) -> ApiResult<Response<Body>> {
        let r = self.strategy(req.idx).resource;
        if r.subresource(sub).is_none() {
            return Err(ApiError::no_route());
        }
        match (sub, method) {
            ("status", &Method::GET) => self.get(req).await,
            ("status", &Method::PUT) => self.update(req, Some(Part::Status)).await,
            ("status", &Method::PATCH) => self.patch(req, Some(Part::Status)).await,
            ("ephemeralcontainers", &Method::GET) => self.get(req).await,
            ("ephemeralcontainers", &Method::PUT) => {
                self.update(req, Some(Part::EphemeralContainers)).await
            }
            ("ephemeralcontainers", &Method::PATCH) => {
                self.patch(req, Some(Part::EphemeralContainers)).await
            }
            ("scale", _) => self.scale(method, req).await,
            ("binding", &Method::POST) => {
                let b = decode_body(req.content_type, &req.body)?;
                self.bind(req, b).await
            }
            ("eviction", &Method::POST) => self.evict(req).await,
            ("finalize", &Method::PUT) => self.finalize(req).await,
            ("log" | "exec" | "attach" | "portforward", _) => self.streaming(req, sub).await,
            (_, m) => Err(ApiError::method_not_allowed(m.as_str())),
        }
    }

    async fn current(&self, req: &Req<'_>) -> ApiResult<(store::KeyValue, Value)> {
        let r = self.strategy(req.idx).resource;
        let key = self.key(req.idx, req.ns(), req.name());
        let kv = self
            .get_kv(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(r.group, r.plural, req.name()))?;
        let v = with_rv(&kv)?;
        Ok((kv, v))
    }

    fn scale_of(obj: &Value) -> Value {
        let sel = api::selector::LabelSelector::from_object(&obj["spec"]["selector"])
            .map(|s| s.to_string())
            .unwrap_or_default();
        let m = &obj["metadata"];
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
               "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
               "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": sel}})
    }

    async fn scale(&self, method: &Method, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let r = self.strategy(req.idx).resource;
        for _ in 0..16 {
            let (kv, obj) = self.current(req).await?;
            let scale = Self::scale_of(&obj);
            let wanted = match *method {
                Method::GET => return Ok(object_response(200, &scale)),
                Method::PUT => decode_body(req.content_type, &req.body)?,
                Method::PATCH => {
                    let gvk = api::GroupVersionKind::new("autoscaling", "v1", "Scale");
                    self.apply_patch(req, Some(&scale), &gvk)?
                }
                ref m => return Err(ApiError::method_not_allowed(m.as_str())),
            };
            let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
                return Err(ApiError::bad_request(
                    "spec.replicas is required in a Scale",
                ));
            };
            let rv = wanted["metadata"]["resourceVersion"].as_str().unwrap_or("");
            if !rv.is_empty() && rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(r.group, r.plural, req.name(),
                    "the object has been modified; please apply your changes to the latest version and try again"));
            }
            let mut new = obj.clone();
            new["spec"]["replicas"] = json!(replicas);
            let outcome = self.compute_update(req, &kv, new, Part::Main)?;
            match self.store_outcome(req, &kv, outcome).await {
                Ok(v) => return Ok(object_response(200, &Self::scale_of(&v))),
                Err(Some(e)) => return Err(e),
                Err(None) => continue,
            }
        }
        Err(ApiError::conflict(
            r.group,
            r.plural,
            req.name(),
            "too many concurrent writes",
        ))
    }

    /// Binds a pod to a node (`pods/<name>/binding` or `bindings`).
    pub(super) async fn bind(&self, req: &Req<'_>, binding: Value) -> ApiResult<Response<Body>> {
        let pod_name = match req.path.name.as_deref() {
            Some(n) if req.path.subresource.is_some() => n.to_string(),
            _ => meta::name(&binding).to_string(),
        };
        let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
        if node.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                "Binding is invalid: target.name: Required value",
            ));
        }
        let pods = self
            .index_of("", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        let key = self.key(pods, req.ns(), &pod_name);
        for attempt in 0..16 {
            // The watch cache first (the scheduler saw the pod through it); a
            // stale copy only costs a conflict and a re-read from the store.
            let cached = (attempt == 0)
                .then(|| self.cache.get(pods, &key))
                .flatten()
                .map(|o| store::KeyValue {
                    key: key.clone(),
                    value: o.json.to_vec(),
                    create_revision: 0,
                    mod_revision: o.rv,
                });
            let kv = match cached {
                Some(kv) => kv,
                None => self
                    .get_kv(&key)
                    .await?
                    .ok_or_else(|| ApiError::not_found("", "pods", &pod_name))?,
            };
            let mut pod = with_rv(&kv)?;
            if meta::meta(&pod).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            let current = pod["spec"]["nodeName"].as_str().unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &pod_name,
                    &format!("pod {pod_name} is already assigned to node {current:?}"),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            let conds = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conds: Vec<Value> = conds
                .into_iter()
                .filter(|c| c["type"] != "PodScheduled")
                .collect();
            conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now()}));
            pod["status"]["conditions"] = json!(conds);
            meta::remove(&mut pod, "resourceVersion");
            let success = || {
                object_response(
                    201,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                )
            };
            if req.dry_run() {
                return Ok(success());
            }
            let bytes = serde_json::to_vec(&pod).map_err(|e| ApiError::internal(e.to_string()))?;
            match self.store.update(&key, bytes, kv.mod_revision).await {
                Ok(_) => return Ok(success()),
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            "",
            "pods",
            &pod_name,
            "too many concurrent writes",
        ))
    }

    async fn evict(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let (kv, _) = self.current(req).await?;
        let del = Req {
            body: bytes::Bytes::new(),
            ..*req
        };
        let _ = kv;
        self.delete(&del).await?;
        Ok(object_response(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    async fn finalize(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let wanted = decode_body(req.content_type, &req.body)?;
        for _ in 0..16 {
            let (kv, mut ns) = self.current(req).await?;
            ns["spec"]["finalizers"] = wanted["spec"]["finalizers"].clone();
            let terminating = meta::meta(&ns).is_some_and(|m| m.contains_key("deletionTimestamp"));
            let empty = ns["spec"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty())
                && meta::finalizers(&ns).is_empty();
            meta::remove(&mut ns, "resourceVersion");
            let r = if terminating && empty {
                self.store.delete(&kv.key, Some(kv.mod_revision)).await
            } else {
                let bytes =
                    serde_json::to_vec(&ns).map_err(|e| ApiError::internal(e.to_string()))?;
                self.store.update(&kv.key, bytes, kv.mod_revision).await
            };
            match r {
                Ok(kv) => return Ok(object_response(200, &with_rv(&kv)?)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            "",
            "namespaces",
            req.name(),
            "too many concurrent writes",
        ))
    }

    async fn streaming(&self, req: &Req<'_>, sub: &str) -> ApiResult<Response<Body>> {
        let (_, pod) = self.current(req).await?;
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        if node.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {} does not have a host assigned",
                req.name()
            )));
        }
        let mut e = ApiError::new(503, "ServiceUnavailable", format!(
            "{sub} for pod {} is not available: no kubelet streaming server is connected for node {node:?}", req.name()));
        e.retry_after = None;
        Err(e)
    }
}
