//! create, update and patch: decode, default, validate, carry server-owned
//! metadata across updates, bump `generation` on spec changes, keep spec and
//! status apart, and write with compare-and-swap on the store revision.

use super::{decode_body, object_response, with_rv, Api, Req};
use crate::body::Body;
use crate::meta;
use crate::status::{ApiError, ApiResult, Cause};
use crate::strategy::Strategy;
use http::Response;
use serde_json::{json, Value};
use store::{KeyValue, StoreError};

const GENERATE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// What an update comes to.
pub(super) enum Outcome {
    Write(Value),
    Unchanged,
    /// The last finalizer went from an object being deleted.
    Remove,
}

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The main resource: everything but status (when there is a status subresource).
    Main,
    Status,
    /// `pods/ephemeralcontainers`: only `spec.ephemeralContainers`.
    EphemeralContainers,
}

/// Whether an update removed the last finalizer of an object being deleted
/// whose grace period is over (upstream's ShouldDeleteDuringUpdate): a pod
/// still terminating gracefully stays until its kubelet confirms.
fn last_finalizer_gone(old: &Value, new: &Value) -> bool {
    let grace_over = meta::meta(old)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .is_none_or(|g| g == 0);
    meta::meta(new).is_some_and(|m| m.contains_key("deletionTimestamp"))
        && meta::finalizers(new).is_empty()
        && !meta::finalizers(old).is_empty()
        && grace_over
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| GENERATE_CHARS[rng.random_range(0..GENERATE_CHARS.len())] as char)
        .collect()
}

fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn invalid(s: &Strategy, name: &str, causes: Vec<Cause>) -> ApiResult<()> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        s.resource.group,
        s.resource.kind,
        name,
        &causes,
    ))
}

fn decode_error(s: &Strategy, e: String) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {e}",
        s.resource.kind, s.resource.version, s.resource.kind
    ))
}

/// Runs the strategy's decoding and defaulting.
pub(super) fn normalize(s: &Strategy, obj: Value) -> ApiResult<Value> {
    if let Some(api) = obj.get("apiVersion").and_then(Value::as_str) {
        if api != s.resource.api_version() {
            return Err(decode_error(
                s,
                format!(
                    "apiVersion {api:?} does not match the expected {:?}",
                    s.resource.api_version()
                ),
            ));
        }
    }
    if !obj.is_object() {
        return Err(decode_error(s, "the body is not a JSON object".into()));
    }
    (s.normalize)(obj).map_err(|e| decode_error(s, e))
}

fn common_validation(s: &Strategy, obj: &Value) -> Vec<Cause> {
    let mut causes = meta::validate_labels(obj);
    causes.extend((s.validate)(obj, None));
    causes
}

/// `fieldValidation=Strict`: unknown or mistyped fields are a 400, as upstream.
pub(super) fn check_fields(req: &Req<'_>, s: &Strategy, obj: &Value) -> ApiResult<()> {
    if req.query.get("fieldValidation") != Some("Strict") {
        return Ok(());
    }
    let r = s.resource;
    let issues = api::openapi::check_object(r.group, r.version, r.kind, obj).unwrap_or_default();
    if issues.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = issues.iter().map(ToString::to_string).collect();
    Err(decode_error(
        s,
        format!("strict decoding error: {}", list.join(", ")),
    ))
}

impl Api {
    pub(super) async fn create(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let obj = decode_body(req.content_type, &req.body)?;
        let s = self.strategy(req.idx);
        if s.resource.plural == "bindings" {
            return self.bind(req, obj).await;
        }
        let obj = self.prepare_create(req, obj)?;
        self.create_object(req, obj).await
    }

    /// Everything a create does before the namespace check and the write.
    pub(super) fn prepare_create(&self, req: &Req<'_>, obj: Value) -> ApiResult<Value> {
        let s = self.strategy(req.idx);
        check_fields(req, s, &obj)?;
        let mut obj = obj;
        if s.resource.namespaced {
            let ns = meta::namespace(&obj).to_string();
            if !ns.is_empty() && ns != req.ns() {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
            meta::set(&mut obj, "namespace", json!(req.ns()));
        } else {
            meta::remove(&mut obj, "namespace");
        }
        if meta::name(&obj).is_empty() {
            let gen = meta::str_field(&obj, "generateName").to_string();
            if gen.is_empty() {
                let cause = Cause {
                    reason: "FieldValueRequired",
                    field: "metadata.name".into(),
                    message: "Required value: name or generateName is required".into(),
                };
                return Err(ApiError::invalid(
                    s.resource.group,
                    s.resource.kind,
                    "",
                    &[cause],
                ));
            }
            meta::set(&mut obj, "name", json!(format!("{gen}{}", random_suffix())));
        }
        let mut obj = normalize(s, obj)?;
        let name = meta::name(&obj).to_string();
        let mut causes = s.validate_name(&name);
        causes.extend(common_validation(s, &obj));
        invalid(s, &name, causes)?;
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta::remove(&mut obj, f);
        }
        meta::set(&mut obj, "uid", json!(uuid::Uuid::new_v4().to_string()));
        meta::set(&mut obj, "creationTimestamp", json!(meta::now()));
        if s.has_spec {
            meta::set(&mut obj, "generation", json!(1));
        }
        if s.resource.has_status() && !s.keep_status_on_create && s.resource.plural != "namespaces"
        {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        self.admit_create(req, &mut obj)?;
        Ok(req.track(None, obj))
    }

    /// Checks the namespace, writes, and answers 201 with the stored object.
    pub(super) async fn create_object(
        &self,
        req: &Req<'_>,
        obj: Value,
    ) -> ApiResult<Response<Body>> {
        let s = self.strategy(req.idx);
        let name = meta::name(&obj).to_string();
        if s.resource.namespaced {
            self.check_namespace(req.ns()).await?;
        }
        if req.dry_run() {
            return Ok(object_response(201, &obj));
        }
        let key = self.key(req.idx, req.ns(), &name);
        let bytes = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
        let t = std::time::Instant::now();
        let r = self.store.create(&key, bytes).await;
        self.metrics.store_op("create", t.elapsed());
        match r {
            Ok(kv) => {
                self.after_create(req, &obj).await;
                Ok(object_response(201, &with_rv(&kv)?))
            }
            Err(StoreError::AlreadyExists { .. }) => {
                self.release_on_failure(req, &obj);
                Err(ApiError::already_exists(
                    s.resource.group,
                    s.resource.plural,
                    &name,
                ))
            }
            Err(e) => {
                self.release_on_failure(req, &obj);
                Err(e.into())
            }
        }
    }

    /// The namespace must exist and not be terminating (upstream's
    /// NamespaceLifecycle admission). Read from the watch cache, as upstream
    /// reads its informer; a namespace too new for the cache is read from the store.
    async fn check_namespace(&self, ns: &str) -> ApiResult<()> {
        let key = format!("/registry/namespaces/{ns}");
        let cached = self
            .index_of("", "namespaces")
            .and_then(|idx| self.cache.get(idx, &key))
            .map(|o| o.value());
        let v = match cached {
            Some(v) => v,
            None => match self.get_kv(&key).await? {
                Some(kv) => serde_json::from_slice(&kv.value).unwrap_or(Value::Null),
                None => return Err(ApiError::not_found("", "namespaces", ns)),
            },
        };
        if v["status"]["phase"] == "Terminating" {
            return Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// Computes the new stored object from the old one and the client's.
    pub(super) fn compute_update(
        &self,
        req: &Req<'_>,
        old_kv: &KeyValue,
        new: Value,
        part: Part,
    ) -> ApiResult<Outcome> {
        let s = self.strategy(req.idx);
        let old = with_rv(old_kv)?;
        let name = req.name();
        let rv = meta::str_field(&new, "resourceVersion").to_string();
        if !rv.is_empty() && rv != old_kv.mod_revision.to_string() {
            return Err(ApiError::conflict(s.resource.group, s.resource.plural, name,
                "the object has been modified; please apply your changes to the latest version and try again"));
        }
        let body_name = meta::name(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        check_fields(req, s, &new)?;
        let new = normalize(s, new)?;
        let mut new = super::parts::select(s, part, &old, new);
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match meta::meta(&old).and_then(|m| m.get(f)).cloned() {
                Some(v) => meta::set(&mut new, f, v),
                None => {
                    meta::remove(&mut new, f);
                }
            }
        }
        if s.has_spec && spec_part(&new) != spec_part(&old) {
            let g = meta::meta(&old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta::set(&mut new, "generation", json!(g + 1));
        }
        let mut causes = meta::validate_labels(&new);
        causes.extend(super::parts::validate(s, part, &new, &old));
        invalid(s, name, causes)?;
        self.admit_update(req, &mut new, &old)?;
        let new = req.track(Some(&old), new);
        let mut cmp_new = new.clone();
        meta::set(
            &mut cmp_new,
            "resourceVersion",
            json!(old_kv.mod_revision.to_string()),
        );
        if cmp_new == old {
            return Ok(Outcome::Unchanged);
        }
        let mut new = new;
        meta::remove(&mut new, "resourceVersion");
        if last_finalizer_gone(&old, &new) {
            return Ok(Outcome::Remove);
        }
        Ok(Outcome::Write(new))
    }

    /// Stores an update outcome; `Err(None)` means a write race was lost.
    pub(super) async fn store_outcome(
        &self,
        req: &Req<'_>,
        old_kv: &KeyValue,
        outcome: Outcome,
    ) -> Result<Value, Option<ApiError>> {
        let key = &old_kv.key;
        let t = std::time::Instant::now();
        let r = match outcome {
            Outcome::Unchanged => return with_rv(old_kv).map_err(Some),
            Outcome::Write(v) if req.dry_run() => return Ok(v),
            Outcome::Remove if req.dry_run() => return with_rv(old_kv).map_err(Some),
            Outcome::Write(v) => {
                let bytes =
                    serde_json::to_vec(&v).map_err(|e| Some(ApiError::internal(e.to_string())))?;
                self.store.update(key, bytes, old_kv.mod_revision).await
            }
            Outcome::Remove => {
                let r = self.store.delete(key, Some(old_kv.mod_revision)).await;
                if let Ok(kv) = &r {
                    self.after_delete(req, kv).await;
                }
                r
            }
        };
        self.metrics.store_op("update", t.elapsed());
        match r {
            Ok(kv) => with_rv(&kv).map_err(Some),
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Err(None),
            Err(e) => Err(Some(e.into())),
        }
    }

    pub(super) async fn update(
        &self,
        req: &Req<'_>,
        part: Option<Part>,
    ) -> ApiResult<Response<Body>> {
        let new = decode_body(req.content_type, &req.body)?;
        let s = self.strategy(req.idx);
        let conditional = !meta::str_field(&new, "resourceVersion").is_empty();
        let key = self.key(req.idx, req.ns(), req.name());
        for _ in 0..16 {
            let Some(old_kv) = self.get_kv(&key).await? else {
                return Err(ApiError::not_found(
                    s.resource.group,
                    s.resource.plural,
                    req.name(),
                ));
            };
            let outcome =
                self.compute_update(req, &old_kv, new.clone(), part.unwrap_or(Part::Main))?;
            match self.store_outcome(req, &old_kv, outcome).await {
                Ok(v) => return Ok(object_response(200, &v)),
                Err(Some(e)) => return Err(e),
                Err(None) if conditional => {
                    return Err(ApiError::conflict(s.resource.group, s.resource.plural, req.name(),
                        "the object has been modified; please apply your changes to the latest version and try again"))
                }
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
