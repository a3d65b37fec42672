//! get and list: single objects from the store, lists from the watch cache
//! (after it has caught up with the store), with label/field selectors,
//! `limit`/`continue`, and Table output.

use super::{Api, Req};
use crate::body::{self, Body};
use crate::cache::Obj;
use crate::status::{ApiError, ApiResult};
use crate::table::{self, Include};
use api::selector::{FieldSelector, LabelSelector};
use base64::Engine;
use http::Response;
use serde_json::{json, Value};
use std::time::Duration;

/// A list or watch filter: namespace, label and field selectors.
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_req(api: &Api, req: &Req<'_>) -> ApiResult<Self> {
        let labels = LabelSelector::parse(req.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(req.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        let s = api.strategy(req.idx);
        for r in &fields.requirements {
            if !s.selectable(&r.field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        let mut namespace = req.path.namespace.clone();
        if let Some(name) = req.path.name.as_deref() {
            // A watch on one item is a watch filtered by name.
            let mut f = fields;
            f.requirements.push(api::selector::FieldRequirement {
                field: "metadata.name".into(),
                op: api::selector::FieldOp::Equals,
                value: name.to_string(),
            });
            return Ok(Self {
                namespace: namespace.take(),
                labels,
                fields: f,
            });
        }
        Ok(Self {
            namespace,
            labels,
            fields,
        })
    }

    pub fn matches(&self, o: &Obj) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == o.namespace)
            && self.labels.matches(&o.labels)
            && self.fields.matches(|f| o.field(f))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, start: &str) -> String {
    let c = Continue {
        rv,
        start: start.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&c).unwrap_or_default())
}

fn decode_continue(token: &str) -> ApiResult<Continue> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::bad_request("continue key is not valid"))
}

impl Api {
    pub(super) async fn get(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let r = self.strategy(req.idx).resource;
        let key = self.key(req.idx, req.ns(), req.name());
        let kv = self
            .get_kv(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(r.group, r.plural, req.name()))?;
        let obj = super::with_rv(&kv)?;
        if table::wants_table(req.accept) {
            let include = Include::parse(req.query.get("includeObject"));
            let rv = kv.mod_revision.to_string();
            return Ok(table_response(&table::table(
                r.plural,
                &[obj],
                &rv,
                None,
                include,
                true,
            )));
        }
        Ok(body::json(200, &obj))
    }

    /// Waits until the cache has every write the store has acknowledged.
    pub(super) async fn fresh_cache(&self) -> ApiResult<i64> {
        let rev = self.store.current_revision().await?;
        if !self.cache.wait_for(rev, Duration::from_secs(3)).await {
            return Err(ApiError::new(
                504,
                "Timeout",
                "Too large resource version: the watch cache is not ready",
            ));
        }
        Ok(rev.max(self.cache.revision()))
    }

    pub(super) async fn list(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let filter = Filter::from_req(self, req)?;
        let r = self.strategy(req.idx).resource;
        let limit = req
            .query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let (start, rv) = match req.query.get("continue").filter(|c| !c.is_empty()) {
            Some(tok) => {
                let c = decode_continue(tok)?;
                (Some(c.start), c.rv)
            }
            None => match req.query.get("resourceVersion") {
                Some(v) if !v.is_empty() => (None, self.cache.revision()),
                _ => (None, self.fresh_cache().await?),
            },
        };
        let (objs, more) = self
            .cache
            .list(req.idx, start.as_deref(), limit, |o| filter.matches(o));
        let cont = if more {
            objs.last().map(|o| encode_continue(rv, &o.key))
        } else {
            None
        };
        let rv_s = rv.to_string();
        if table::wants_table(req.accept) {
            let include = Include::parse(req.query.get("includeObject"));
            let values: Vec<Value> = objs.iter().map(|o| o.value()).collect();
            let t = table::table(r.plural, &values, &rv_s, cont.as_deref(), include, true);
            return Ok(table_response(&t));
        }
        let mut meta = json!({"resourceVersion": rv_s});
        if let Some(c) = &cont {
            meta["continue"] = json!(c);
        }
        let mut out = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
            r.list_kind(),
            r.api_version(),
            meta
        )
        .into_bytes();
        for (i, o) in objs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&o.json);
        }
        out.extend_from_slice(b"]}");
        Ok(body::json_bytes(200, out))
    }
}

pub fn table_response(t: &Value) -> Response<Body> {
    let mut r = body::json(200, t);
    if let Ok(v) = http::HeaderValue::from_str("application/json;as=Table;v=v1;g=meta.k8s.io") {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}
