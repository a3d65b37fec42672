//! One probe attempt: exec through CRI `ExecSync`, an HTTP(S) GET (no
//! certificate verification, as upstream; 200–399 is success), a TCP
//! connect, or a gRPC health check. Each returns an [`Outcome`] with the
//! message upstream would put in its `Unhealthy` event.

use super::grpc;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::ExecSyncRequest;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;
use tonic::transport::Channel;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The probe ran and failed; the message says how.
    Failure(String),
    /// The probe could not run (CRI error, bad port name): not counted.
    Errored(String),
}

/// What an attempt needs beyond the probe itself.
#[derive(Clone)]
pub struct Target {
    pub cri: RuntimeServiceClient<Channel>,
    pub http: reqwest::Client,
    pub container_id: String,
    pub container: Container,
    pub pod_ip: String,
}

/// Runs one attempt of `probe` with its timeoutSeconds (default 1).
pub async fn run(t: &Target, probe: &Probe) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &probe.exec {
        return exec(t, e.command.clone().unwrap_or_default(), timeout).await;
    }
    if let Some(h) = &probe.http_get {
        let Some(port) = resolve_port(&h.port, &t.container) else {
            return Outcome::Errored(format!("unknown port {:?}", h.port));
        };
        let host = h.host.clone().filter(|h| !h.is_empty());
        let host = host.unwrap_or_else(|| t.pod_ip.clone());
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let path = h.path.clone().unwrap_or_default();
        let url = url(&scheme, &host, port, &path);
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return http_get(&t.http, &url, &headers, timeout).await;
    }
    if let Some(s) = &probe.tcp_socket {
        let Some(port) = resolve_port(&s.port, &t.container) else {
            return Outcome::Errored(format!("unknown port {:?}", s.port));
        };
        let host = s.host.clone().filter(|h| !h.is_empty());
        return tcp(&host.unwrap_or_else(|| t.pod_ip.clone()), port, timeout).await;
    }
    if let Some(g) = &probe.grpc {
        let service = g.service.clone().unwrap_or_default();
        return grpc::check(&t.pod_ip, g.port, &service, timeout).await;
    }
    Outcome::Errored("probe has no handler".into())
}

/// A port number, or a container port looked up by name.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok().filter(|p| *p > 0),
        IntOrString::String(s) => match s.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        },
    }
}

fn url(scheme: &str, host: &str, port: u16, path: &str) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("{scheme}://{host}:{port}{slash}{path}")
}

async fn exec(t: &Target, cmd: Vec<String>, timeout: Duration) -> Outcome {
    let req = ExecSyncRequest {
        container_id: t.container_id.clone(),
        cmd,
        timeout: timeout.as_secs() as i64,
    };
    let mut cri = t.cri.clone();
    let call = tokio::time::timeout(timeout + Duration::from_secs(5), cri.exec_sync(req));
    let resp = match call.await {
        Err(_) => return Outcome::Failure(format!("command timed out after {timeout:?}")),
        Ok(Err(s))
            if s.code() == tonic::Code::DeadlineExceeded || s.message().contains("timed out") =>
        {
            return Outcome::Failure(format!("command timed out: {}", s.message()))
        }
        Ok(Err(s)) => return Outcome::Errored(format!("exec: {}", s.message())),
        Ok(Ok(r)) => r.into_inner(),
    };
    if resp.exit_code == 0 {
        return Outcome::Success;
    }
    let mut out = String::from_utf8_lossy(&resp.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&resp.stderr));
    let out = out.trim_end();
    if out.is_empty() {
        Outcome::Failure(format!("command exited with {}", resp.exit_code))
    } else {
        Outcome::Failure(out.to_string())
    }
}

/// A client for httpGet probes as upstream's: no certificate checks, no
/// proxy from the environment, no kept-alive connections, its User-Agent.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .pool_max_idle_per_host(0)
        .user_agent("kube-probe/1.33")
        .build()
}

async fn http_get(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    let mut req = client.get(url).timeout(timeout).header("Accept", "*/*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if (200..400).contains(&code) {
                Outcome::Success
            } else {
                Outcome::Failure(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
        Err(e) if e.is_timeout() => Outcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Err(e) => Outcome::Failure(format!("Get \"{url}\": {}", root_cause(&e))),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn tcp(host: &str, port: u16, timeout: Duration) -> Outcome {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: {e}")),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_by_number_and_name() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .expect("json");
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Some(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Some(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("81".into()), &c),
            Some(81)
        );
        assert_eq!(resolve_port(&IntOrString::String("nope".into()), &c), None);
        assert_eq!(resolve_port(&IntOrString::Int(0), &c), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            url("http", "10.0.0.1", 80, "healthz"),
            "http://10.0.0.1:80/healthz"
        );
        assert_eq!(
            url("https", "::1", 8443, "/x?y=1"),
            "https://[::1]:8443/x?y=1"
        );
    }
}
