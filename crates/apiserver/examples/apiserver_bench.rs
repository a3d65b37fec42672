//! Load generator for bench/apiserver: creates, lists and watches through a
//! running `bosun server` over HTTPS (bearer token, the cluster CA) and prints
//! objects/s and latency percentiles.
//!
//! apiserver_bench --url https://127.0.0.1:PORT --token T --ca CA.crt MODE [--n N] [--clients C] [--watchers W]
//! MODE: create-configmaps | create-pods | list-pods | watch-fanout

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};

type Sender = http1::SendRequest<Full<Bytes>>;

struct Opts {
    url: String,
    token: String,
    tls: tokio_rustls::TlsConnector,
    n: usize,
    clients: usize,
    watchers: usize,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn connect(o: &Opts) -> Sender {
    let hostport = o.url.trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&hostport)
        .await
        .expect("connect");
    let _ = tcp.set_nodelay(true);
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or("127.0.0.1");
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("server name");
    let tls = o.tls.connect(name, tcp).await.expect("TLS handshake");
    let (send, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    send
}

async fn request(
    s: &mut Sender,
    o: &Opts,
    method: &str,
    path: &str,
    body: Option<String>,
) -> (u16, Bytes) {
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "bosun")
        .header("authorization", format!("Bearer {}", o.token))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    s.ready().await.expect("connection ready");
    let resp = s.send_request(req).await.expect("send");
    let code = resp.status().as_u16();
    (
        code,
        resp.into_body().collect().await.expect("body").to_bytes(),
    )
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(what: &str, mut lat: Vec<Duration>, total: Duration) {
    lat.sort();
    println!(
        "{what}: {} ops in {:.2}s = {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        total.as_secs_f64(),
        lat.len() as f64 / total.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

fn object(kind: &str, ns: &str, name: &str) -> (String, String) {
    match kind {
        "pods" => (
            format!("/api/v1/namespaces/{ns}/pods"),
            format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"bench"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox:1"}}]}}}}"#
            ),
        ),
        _ => (
            format!("/api/v1/namespaces/{ns}/configmaps"),
            format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"key":"value-{name}"}}}}"#
            ),
        ),
    }
}

async fn create_many(o: Arc<Opts>, kind: &'static str, ns: &'static str) {
    let start = Instant::now();
    let per = o.n.div_ceil(o.clients);
    let tasks: Vec<_> = (0..o.clients)
        .map(|c| {
            let o = o.clone();
            tokio::spawn(async move {
                let mut s = connect(&o).await;
                let mut lat = Vec::with_capacity(per);
                for i in 0..per {
                    if c * per + i >= o.n {
                        break;
                    }
                    let (path, body) = object(kind, ns, &format!("b-{c}-{i}"));
                    let t = Instant::now();
                    let (code, b) = request(&mut s, &o, "POST", &path, Some(body)).await;
                    assert!(
                        code == 201,
                        "create failed: {code} {}",
                        String::from_utf8_lossy(&b)
                    );
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    report(
        &format!("create {} {kind} ({} clients)", o.n, o.clients),
        all,
        start.elapsed(),
    );
}

async fn list_pods(o: Arc<Opts>) {
    let mut s = connect(&o).await;
    let mut lat = Vec::new();
    let start = Instant::now();
    for _ in 0..o.n {
        let t = Instant::now();
        let (code, b) = request(&mut s, &o, "GET", "/api/v1/namespaces/bench/pods", None).await;
        assert_eq!(code, 200);
        lat.push(t.elapsed());
        std::hint::black_box(b);
    }
    report(
        &format!("list all pods in a namespace, {} times", o.n),
        lat,
        start.elapsed(),
    );
}

async fn watch_fanout(o: Arc<Opts>) {
    let mut s = connect(&o).await;
    let (_, b) = request(
        &mut s,
        &o,
        "GET",
        "/api/v1/namespaces/fan/pods?limit=1",
        None,
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut ready = Vec::new();
    for _ in 0..o.watchers {
        let o = o.clone();
        let tx = tx.clone();
        let rv = rv.clone();
        let (rtx, rrx) = tokio::sync::oneshot::channel();
        ready.push(rrx);
        tokio::spawn(async move {
            let mut s = connect(&o).await;
            let req = hyper::Request::builder()
                .uri(format!(
                    "/api/v1/namespaces/fan/pods?watch=true&resourceVersion={rv}"
                ))
                .header("host", "bosun")
                .header("authorization", format!("Bearer {}", o.token))
                .body(Full::new(Bytes::new()))
                .expect("request");
            let resp = s.send_request(req).await.expect("watch");
            let _ = rtx.send(());
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let text = String::from_utf8_lossy(&line);
                        if let Some(i) = text.find("\"name\":\"f-") {
                            let rest = &text[i + 10..];
                            let n: usize = rest
                                .split('"')
                                .next()
                                .and_then(|x| x.parse().ok())
                                .unwrap_or(usize::MAX);
                            let _ = tx.send((n, Instant::now()));
                        }
                    }
                }
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    drop(tx);
    let mut sent = vec![Instant::now(); o.n];
    let start = Instant::now();
    for (i, at) in sent.iter_mut().enumerate() {
        let (path, body) = object("pods", "fan", &format!("f-{i}"));
        *at = Instant::now();
        let (code, _) = request(&mut s, &o, "POST", &path, Some(body)).await;
        assert_eq!(code, 201);
    }
    let expected = o.n * o.watchers;
    let mut lat = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(300);
    while lat.len() < expected {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some((n, at))) if n < o.n => lat.push(at.duration_since(sent[n])),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    println!("watch fan-out: {} of {} deliveries", lat.len(), expected);
    report(
        &format!("watch delivery ({} watchers x {} creates)", o.watchers, o.n),
        lat,
        start.elapsed(),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ca = std::fs::read(arg(&args, "--ca").expect("--ca")).expect("read CA");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let o = Arc::new(Opts {
        url: arg(&args, "--url").expect("--url"),
        token: arg(&args, "--token").expect("--token"),
        tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        n: arg(&args, "--n")
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000),
        clients: arg(&args, "--clients")
            .and_then(|n| n.parse().ok())
            .unwrap_or(16),
        watchers: arg(&args, "--watchers")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000),
    });
    match args.get(1).map(String::as_str) {
        Some("create-configmaps") => create_many(o, "configmaps", "bench").await,
        Some("create-pods") => create_many(o, "pods", "bench").await,
        Some("list-pods") => list_pods(o).await,
        Some("watch-fanout") => watch_fanout(o).await,
        _ => eprintln!("usage: apiserver_bench MODE --url URL --token T --ca CA [--n N] [--clients C] [--watchers W]"),
    }
}
