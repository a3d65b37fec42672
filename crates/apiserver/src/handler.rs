//! The request pipeline: authenticate, authorize, route (non-resource paths,
//! discovery, OpenAPI, resources), record metrics, and turn every error into
//! a `Status` response.

use crate::authn::{self, Tokens, User};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::body::{self, Body};
use crate::discovery;
use crate::metrics::Metrics;
use crate::request::{self, Query, Target};
use crate::rest::{Api, Req};
use crate::status::{ApiError, ApiResult};
use bytes::Bytes;
use http::{header, Method, Request, Response};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Largest request body accepted (upstream: 3 MiB objects, some slack).
const MAX_BODY: usize = 8 << 20;

/// The Kubernetes version served; kubectl's dispatcher picks its client from `minor`.
pub const GIT_VERSION: &str = "v1.33.0";

pub struct Handler {
    pub api: Api,
    pub tokens: Tokens,
    pub authorizer: Box<dyn Authorizer>,
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
    pub server_address: String,
    pub openapi: crate::openapi::Docs,
    /// Proxies pods/log, exec, attach and portforward to kubelets.
    pub kubelet: crate::kubelet::KubeletClient,
}

fn header_str(req: &Request<hyper::body::Incoming>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl Handler {
    /// Serves one request from a connection whose client certificate (if
    /// any) named `cert_user`.
    pub async fn serve(
        self: Arc<Self>,
        cert_user: Option<User>,
        req: Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let target = request::parse(&path);
        let resource = match &target {
            Target::Resource(r) => r.resource.plural.to_string(),
            _ => String::new(),
        };
        let auth = header_str(&req, header::AUTHORIZATION);
        let user = if auth.is_empty() {
            cert_user
        } else {
            self.tokens.authenticate(auth)
        };
        let verb = if req
            .uri()
            .query()
            .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"))
        {
            "WATCH".to_string()
        } else {
            method.as_str().to_string()
        };
        let result = match user {
            None => Err(ApiError::unauthorized()),
            Some(user) => self.route(&user, target, req).await,
        };
        let resp = result.unwrap_or_else(|e| body::error(&e));
        self.metrics
            .request(&verb, &resource, resp.status().as_u16(), start.elapsed());
        tracing::debug!(%method, %path, code = resp.status().as_u16(), "request");
        resp
    }

    fn authorize(&self, attrs: &Attributes<'_>) -> ApiResult<()> {
        match self.authorizer.authorize(attrs) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => Err(ApiError::forbidden(why)),
        }
    }

    async fn route(
        &self,
        user: &User,
        target: Target,
        req: Request<hyper::body::Incoming>,
    ) -> ApiResult<Response<Body>> {
        let path = req.uri().path().to_string();
        let query = Query::parse(req.uri().query());
        match target {
            Target::Resource(rp) => {
                let verb = req.method().as_str().to_lowercase();
                self.authorize(&Attributes {
                    user,
                    verb: &verb,
                    group: rp.resource.group,
                    resource: rp.resource.plural,
                    subresource: rp.subresource.as_deref().unwrap_or(""),
                    namespace: rp.namespace.as_deref().unwrap_or(""),
                    name: rp.name.as_deref().unwrap_or(""),
                    path: &path,
                })?;
                let idx = self
                    .api
                    .index_of(rp.resource.group, rp.resource.plural)
                    .ok_or_else(ApiError::no_route)?;
                if rp.resource.group.is_empty()
                    && rp.resource.plural == "pods"
                    && rp.name.is_some()
                    && rp
                        .subresource
                        .as_deref()
                        .is_some_and(|s| crate::kubelet::SUBRESOURCES.contains(&s))
                {
                    return self.kubelet.proxy(&self.api, &rp, req).await;
                }
                let method = req.method().clone();
                let accept = header_str(&req, header::ACCEPT).to_string();
                let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
                let user_agent = header_str(&req, header::USER_AGENT).to_string();
                let body = read_body(req).await?;
                let r = Req {
                    path: &rp,
                    idx,
                    query: &query,
                    accept: &accept,
                    content_type: &content_type,
                    user_agent: &user_agent,
                    body,
                };
                self.api.handle(&method, r).await
            }
            Target::UnknownResource => Err(ApiError::no_route()),
            Target::Other => {
                self.authorize(&Attributes {
                    user,
                    verb: &req.method().as_str().to_lowercase(),
                    group: "",
                    resource: "",
                    subresource: "",
                    namespace: "",
                    name: "",
                    path: &path,
                })?;
                if req.method() != Method::GET {
                    return Err(ApiError::method_not_allowed(req.method().as_str()));
                }
                let accept = header_str(&req, header::ACCEPT).to_string();
                self.non_resource(&path, &query, &accept, &req).await
            }
        }
    }

    async fn non_resource(
        &self,
        path: &str,
        query: &Query,
        accept: &str,
        req: &Request<hyper::body::Incoming>,
    ) -> ApiResult<Response<Body>> {
        let p = path.trim_end_matches('/');
        let aggregated = discovery::wants_aggregated(accept);
        match p {
            "/version" => Ok(body::json(
                200,
                &json!({
                    "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
                    "gitCommit": "bosun", "gitTreeState": "clean", "buildDate": "2025-05-15T00:00:00Z",
                    "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64",
                }),
            )),
            "/healthz" | "/livez" | "/readyz" | "/healthz/ping" | "/livez/ping"
            | "/readyz/ping" => self.health(p, query),
            "/metrics" => Ok(body::bytes(
                200,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            )),
            "/api" if aggregated => Ok(with_vary(body::bytes(
                200,
                discovery::AGGREGATED_V2,
                serde_json::to_vec(&discovery::aggregated(true)).unwrap_or_default(),
            ))),
            "/apis" if aggregated => Ok(with_vary(body::bytes(
                200,
                discovery::AGGREGATED_V2,
                serde_json::to_vec(&discovery::aggregated(false)).unwrap_or_default(),
            ))),
            "/api" => Ok(with_vary(body::json(
                200,
                &discovery::api_versions(&self.server_address),
            ))),
            "/apis" => Ok(with_vary(body::json(200, &discovery::api_group_list()))),
            "/api/v1" => discovery::resource_list("", "v1")
                .map(|v| body::json(200, &v))
                .ok_or_else(ApiError::no_route),
            "/openapi/v2" => self.openapi.v2(req),
            "/openapi/v3" => Ok(self.openapi.index()),
            p if p.starts_with("/openapi/v3/") => {
                self.openapi.document(&p["/openapi/v3/".len()..], req)
            }
            p if p.starts_with("/apis/") => {
                let parts: Vec<&str> = p["/apis/".len()..].split('/').collect();
                match parts.as_slice() {
                    [g] => discovery::api_group(g),
                    [g, v] => discovery::resource_list(g, v),
                    _ => None,
                }
                .map(|v| body::json(200, &v))
                .ok_or_else(ApiError::no_route)
            }
            _ => Err(ApiError::no_route()),
        }
    }

    fn health(&self, path: &str, query: &Query) -> ApiResult<Response<Body>> {
        let ready = self.ready.load(Ordering::Acquire);
        let verbose = query.get("verbose").is_some();
        if path.starts_with("/readyz") && !ready {
            return Ok(body::text(
                500,
                "[-]watch-cache failed: not synced yet\nreadyz check failed\n",
            ));
        }
        if verbose {
            let name = path.trim_start_matches('/');
            return Ok(body::text(
                200,
                format!("[+]ping ok\n[+]etcd ok\n[+]watch-cache ok\n{name} check passed\n"),
            ));
        }
        Ok(body::text(200, "ok"))
    }
}

fn with_vary(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    r
}

async fn read_body(req: Request<hyper::body::Incoming>) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// The user of a TLS connection's verified client certificate.
pub fn cert_user(conn: &tokio_rustls::rustls::ServerConnection) -> Option<User> {
    conn.peer_certificates()?
        .first()
        .and_then(authn::from_certificate)
}
