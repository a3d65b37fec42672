//! A client for one repository on a registry speaking the OCI distribution
//! API: manifests and blobs over HTTPS (or plain HTTP for loopback and
//! `--insecure` registries), with bearer-token and basic authentication
//! answered from the `WWW-Authenticate` challenge.

mod auth;
mod certs;
mod upload;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::spec;
use auth::Auth;
use reqwest::header::{HeaderValue, ACCEPT, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;

/// Media types we accept for a manifest, best first.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Speak plain HTTP to a non-loopback registry.
    pub insecure: bool,
    /// `user`, `password` for basic auth or the token service.
    pub credentials: Option<(String, String)>,
    /// Directories laid out like Docker's `certs.d`: every `<dir>/<host:port>/*.crt`
    /// is trusted as a CA for that registry, besides the public roots.
    pub certs_dirs: Vec<std::path::PathBuf>,
}

/// A manifest or index as fetched.
pub struct Fetched {
    pub data: Vec<u8>,
    pub media_type: String,
}

/// A client for one repository.
pub struct Client {
    http: reqwest::Client,
    base: String,
    repository: String,
    creds: Option<(String, String)>,
    auth: Mutex<Option<Auth>>,
}

impl Client {
    pub fn new(r: &Reference, opts: &RegistryOptions) -> Result<Self> {
        let scheme = if opts.insecure || r.is_loopback() {
            "http"
        } else {
            "https"
        };
        let base = format!("{scheme}://{}", r.api_host());
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("bosun/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30));
        for cert in certs::for_registry(&opts.certs_dirs, &r.registry)? {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|cause| Error::Http {
            url: base.clone(),
            cause,
        })?;
        Ok(Self {
            http,
            base,
            repository: r.repository.clone(),
            creds: opts.credentials.clone(),
            auth: Mutex::new(None),
        })
    }

    /// Fetches the manifest or index for a tag or digest.
    pub async fn manifest(&self, reference: &str) -> Result<Fetched> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let resp = self.get(&url, Some(MANIFEST_ACCEPT)).await?;
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .unwrap_or_default();
        let data = resp
            .bytes()
            .await
            .map_err(|cause| Error::Http {
                url: url.clone(),
                cause,
            })?
            .to_vec();
        let media_type = sniff_media_type(media_type, &data);
        Ok(Fetched { data, media_type })
    }

    /// Starts fetching a blob; the caller streams and verifies the body.
    pub async fn blob(&self, d: &Digest) -> Result<(String, Response)> {
        let url = format!("{}/v2/{}/blobs/{d}", self.base, self.repository);
        let resp = self.get(&url, None).await?;
        Ok((url, resp))
    }

    async fn get(&self, url: &str, accept: Option<&str>) -> Result<Response> {
        self.execute(url, || {
            let req = self.http.get(url);
            match accept {
                Some(a) => req.header(ACCEPT, a),
                None => req,
            }
        })
        .await
    }

    /// Sends the request `build` makes; on `401` answers the challenge and
    /// sends a fresh one. Error statuses become [`Error::Registry`].
    async fn execute(&self, url: &str, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let resp = self.send(url, build()).await?;
        let resp = if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp.headers().get(WWW_AUTHENTICATE).cloned();
            self.authenticate(url, challenge).await?;
            self.send(url, build()).await?
        } else {
            resp
        };
        check_status(url, resp).await
    }

    async fn send(&self, url: &str, mut req: RequestBuilder) -> Result<Response> {
        if let Some(auth) = self.auth.lock().await.as_ref() {
            req = auth.apply(req);
        }
        req.send().await.map_err(|cause| Error::Http {
            url: url.to_string(),
            cause,
        })
    }

    async fn authenticate(&self, url: &str, challenge: Option<HeaderValue>) -> Result<()> {
        let challenge = challenge
            .and_then(|v| v.to_str().ok().map(str::to_string))
            .ok_or_else(|| Error::Auth {
                url: url.to_string(),
                reason: "401 without a WWW-Authenticate challenge".into(),
            })?;
        let auth = auth::answer(&self.http, url, &challenge, self.creds.as_ref()).await?;
        *self.auth.lock().await = Some(auth);
        Ok(())
    }
}

/// Some registries send `application/json` or nothing; look inside.
fn sniff_media_type(header: String, data: &[u8]) -> String {
    if spec::is_index(&header) || spec::is_manifest(&header) {
        return header;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(data) {
        Ok(Probe {
            media_type: Some(m),
            ..
        }) => m,
        Ok(Probe {
            manifests: Some(_), ..
        }) => spec::OCI_INDEX.to_string(),
        _ => spec::OCI_MANIFEST.to_string(),
    }
}

/// Turns an error status into [`Error::Registry`] with the registry's own message.
async fn check_status(url: &str, resp: Response) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(Error::Registry {
        url: url.to_string(),
        status: status.as_u16(),
        message: registry_message(&body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase()),
    })
}

/// The distribution API's `{"errors":[{"code":…,"message":…}]}` as one line.
fn registry_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let errors = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|e| Some(e.get("message")?.as_str()?.to_string()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The root cause of an HTTP error in a few words ("connection refused").
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    if msg.contains("corrupt message") {
        return format!(
            "TLS handshake failed ({msg}): the registry seems to speak plain HTTP; use --insecure"
        );
    }
    if msg.contains("certificate") {
        return format!(
            "{msg}: trust its CA by putting it in certs.d/<host:port>/ca.crt under the state root"
        );
    }
    if err.is_connect() {
        return format!("cannot connect: {msg}");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_registry_error_bodies() {
        let body =
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(registry_message(body).as_deref(), Some("manifest unknown"));
        assert_eq!(registry_message("<html>"), None);
    }

    #[test]
    fn sniffs_media_types() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            sniff_media_type("application/json".into(), idx),
            spec::OCI_INDEX
        );
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(sniff_media_type(String::new(), m), spec::DOCKER_MANIFEST);
    }
}
