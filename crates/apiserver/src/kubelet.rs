//! pods/log, pods/exec, pods/attach and pods/portforward: the API server
//! finds the pod's node, reads its InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`, and proxies the request
//! (an HTTP upgrade, or a streamed GET for logs) to the kubelet's
//! `/{containerLogs,exec,attach,portForward}/<ns>/<pod>[/<container>]`
//! over TLS, authenticating with a client certificate the cluster CA
//! issued at start. As upstream's default, the kubelet's serving
//! certificate is not verified (no `--kubelet-certificate-authority`).

use crate::body::Body;
use crate::pki::Pki;
use crate::request::ResourcePath;
use crate::rest::{with_rv, Api};
use crate::status::{ApiError, ApiResult};
use crate::tls::TlsError;
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};

/// The subresources served by the kubelet.
pub const SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward"];

/// Longest error body read back from a kubelet.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Connects to kubelets with the API server's client certificate.
#[derive(Clone)]
pub struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
}

impl KubeletClient {
    pub fn new(pki: &Pki) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = CertificateDer::pem_slice_iter(pki.kubelet_client_cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                what: "kubelet client certificate",
                source,
            })?;
        let key =
            PrivateKeyDer::from_pem_slice(pki.kubelet_client_key.as_bytes()).map_err(|source| {
                TlsError::Pem {
                    what: "kubelet client key",
                    source,
                }
            })?;
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_client_auth_cert(certs, key)?;
        Ok(KubeletClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// Proxies a pod streaming subresource request to the pod's kubelet.
    pub async fn proxy(
        &self,
        api: &Api,
        rp: &ResourcePath,
        req: Request<hyper::body::Incoming>,
    ) -> ApiResult<Response<Body>> {
        let (ns, name) = (
            rp.namespace.as_deref().unwrap_or(""),
            rp.name.as_deref().unwrap_or(""),
        );
        let sub = rp.subresource.as_deref().unwrap_or("");
        let pod = object(api, "pods", ns, name).await?;
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
        if node_name.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let node = object(api, "nodes", "", node_name).await?;
        let (ip, port) = kubelet_endpoint(&node).ok_or_else(|| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!("node {node_name:?} reports no InternalIP for its kubelet"),
            )
        })?;
        let query = req.uri().query().unwrap_or("").to_string();
        let path = match sub {
            "portforward" => format!("/portForward/{ns}/{name}"),
            _ => {
                let c = container_of(&pod, &query)?;
                let kind = if sub == "log" { "containerLogs" } else { sub };
                format!("/{kind}/{ns}/{name}/{c}")
            }
        };
        let path = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let host = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let unreachable = |e: String| {
            ApiError::new(
                502,
                "InternalError",
                format!("error dialing the kubelet of node {node_name:?} at {host}: {e}"),
            )
        };
        let tcp = tokio::net::TcpStream::connect(&host)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let server_name =
            ServerName::try_from(ip.clone()).map_err(|e| unreachable(e.to_string()))?;
        let tls = self
            .tls
            .connect(server_name, tcp)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = streaming::proxy::forward(req, tls, &host, &path)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if resp.status().is_success() || resp.status().is_informational() {
            return Ok(resp);
        }
        Err(kubelet_error(resp).await)
    }
}

async fn object(api: &Api, plural: &str, ns: &str, name: &str) -> ApiResult<Value> {
    let idx = api
        .index_of("", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    let kv = api
        .get_kv(&api.key(idx, ns, name))
        .await?
        .ok_or_else(|| ApiError::not_found("", plural, name))?;
    with_rv(&kv)
}

/// The node's InternalIP (else any address) and kubelet port.
fn kubelet_endpoint(node: &Value) -> Option<(String, u64)> {
    let addrs = node["status"]["addresses"].as_array()?;
    let pick = |t: &str| {
        addrs
            .iter()
            .find(|a| a["type"] == t)
            .and_then(|a| a["address"].as_str())
    };
    let ip = pick("InternalIP").or_else(|| pick("ExternalIP"))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0)
        .unwrap_or(10250);
    Some((ip.to_string(), port))
}

/// The container named in the query, else the pod's only (or default) one.
fn container_of(pod: &Value, query: &str) -> ApiResult<String> {
    let named = query
        .split('&')
        .filter_map(|p| p.strip_prefix("container="))
        .next()
        .map(|c| {
            percent_encoding::percent_decode_str(c)
                .decode_utf8_lossy()
                .into_owned()
        });
    if let Some(c) = named.filter(|c| !c.is_empty()) {
        return Ok(c);
    }
    if let Some(c) =
        pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str()
    {
        return Ok(c.to_string());
    }
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {}, choose one of: [{}]",
            pod["metadata"]["name"].as_str().unwrap_or(""),
            names.join(" ")
        ))),
    }
}

/// Turns a kubelet's error answer into a Status with its code and text.
async fn kubelet_error(resp: Response<Body>) -> ApiError {
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let msg = String::from_utf8_lossy(&body).trim().to_string();
    let reason = match code {
        400 => "BadRequest",
        404 => "NotFound",
        _ => "InternalError",
    };
    ApiError::new(code, reason, msg)
}

/// Accepts any kubelet serving certificate (upstream's default) while still
/// checking the handshake signatures.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
