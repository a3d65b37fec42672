//! The gRPC probe: one `grpc.health.v1.Health/Check` call over plaintext
//! HTTP/2 to the pod IP; SERVING is success. The two messages are declared
//! here with prost rather than compiling the health proto.

use super::check::Outcome;
use std::time::Duration;
use tonic::codegen::http::uri::PathAndQuery;

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: i32 = 1;

/// Runs one health check against `host:port` for `service`.
pub async fn check(host: &str, port: i32, service: &str, timeout: Duration) -> Outcome {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(timeout, call(&addr, service)).await {
        Ok(Ok(SERVING)) => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failure(format!(
            "service unhealthy (responded with \"{}\")",
            status_name(status)
        )),
        Ok(Err(e)) => Outcome::Failure(format!("rpc error: {e}")),
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {timeout:?}"
        )),
    }
}

fn status_name(status: i32) -> &'static str {
    match status {
        0 => "UNKNOWN",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNRECOGNIZED",
    }
}

async fn call(addr: &str, service: &str) -> Result<i32, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("failed to connect to service at \"{addr}\": {e}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| e.to_string())?;
    let req = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    let path = PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    let resp = grpc
        .unary(req, path, codec)
        .await
        .map_err(|s| format!("code = {:?} desc = {}", s.code(), s.message()))?;
    Ok(resp.into_inner().status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connection_is_a_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let out = check("127.0.0.1", i32::from(port), "", Duration::from_secs(5)).await;
        match out {
            Outcome::Failure(m) => assert!(m.contains("failed to connect"), "{m}"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
