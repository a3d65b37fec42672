//! A small HTTP/1.1 listener that plays an API server for the real kubectl,
//! plus helpers to find kubectl clients and run them against it.

#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use api::openapi::{OpenApiV3, ResourceDescriptor};
use serde_json::{json, Value};

/// One request as the handler sees it.
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Request {
    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A reply: status code, extra header lines, JSON body.
pub struct Response {
    pub code: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(code: u16, body: &Value) -> Self {
        Self {
            code,
            headers: String::new(),
            body: body.to_string().into_bytes(),
        }
    }

    pub fn status(code: u16, reason: &str, message: &str) -> Self {
        Self::json(
            code,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": reason, "message": message, "code": code}),
        )
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("content-type") {
                content_type = v.trim().to_string();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        content_type,
        body,
    }))
}

fn serve_connection(stream: TcpStream, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(req) = read_request(&mut reader)? {
        let resp = handler(&req);
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            resp.code,
            resp.body.len(),
            resp.headers
        );
        out.write_all(head.as_bytes())?;
        out.write_all(&resp.body)?;
    }
    Ok(())
}

/// Starts the listener on an ephemeral loopback port; returns `host:port`.
/// The accept thread lives as long as the test process.
pub fn start(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || serve_connection(stream, &handler));
        }
    });
    addr
}

/// The resources the fake server offers.
pub fn resources() -> Vec<ResourceDescriptor> {
    let r = |group: &str, kind: &str, plural: &str, subs: &[&str]| ResourceDescriptor {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced: true,
        subresources: subs.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        r("", "Pod", "pods", &["status"]),
        r("", "ConfigMap", "configmaps", &[]),
        r("apps", "Deployment", "deployments", &["status", "scale"]),
    ]
}

/// Legacy discovery and `/version` for [`resources`], and the OpenAPI v3
/// documents; `None` for other paths.
pub fn discovery(openapi: &OpenApiV3, path: &str) -> Option<Response> {
    let res = |name: &str, kind: &str| {
        json!({"name": name, "singularName": "", "namespaced": true, "kind": kind,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    };
    let body = match path {
        "/version" => json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0"}),
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}),
        "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1",
            "resources": [res("pods", "Pod"), res("configmaps", "ConfigMap")]}),
        "/apis/apps/v1" => json!({"kind": "APIResourceList", "groupVersion": "apps/v1",
            "resources": [res("deployments", "Deployment")]}),
        "/openapi/v3" => {
            return Some(Response {
                code: 200,
                headers: String::new(),
                body: openapi.index().to_vec(),
            })
        }
        _ => {
            let (doc, etag) = openapi.document(path.strip_prefix("/openapi/v3/")?)?;
            return Some(Response {
                code: 200,
                headers: format!("ETag: \"{etag}\"\r\n"),
                body: doc.to_vec(),
            });
        }
    };
    Some(Response::json(200, &body))
}

/// kubectl clients to try: the versioned 1.33 and 1.32 binaries beside the
/// dispatcher when present, else `kubectl` itself.
pub fn clients() -> Vec<PathBuf> {
    let dispatcher = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output();
    let dir = dispatcher
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|p| PathBuf::from(p.trim()))
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let versioned: Vec<PathBuf> = ["kubectl.1.33", "kubectl.1.32"]
        .iter()
        .filter_map(|n| dir.as_ref().map(|d| d.join(n)))
        .filter(|p| p.is_file())
        .collect();
    if versioned.is_empty() {
        vec![PathBuf::from("kubectl")]
    } else {
        versioned
    }
}

/// Runs a kubectl client against `addr` with a kubeconfig and cache in `dir`.
pub fn kubectl(client: &Path, dir: &Path, addr: &str, args: &[&str]) -> std::process::Output {
    let config = dir.join("kubeconfig");
    std::fs::write(
        &config,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"http://{addr}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u, namespace: default}}}}]\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    Command::new(client)
        .arg(format!("--kubeconfig={}", config.display()))
        .arg(format!("--cache-dir={}", dir.join("cache").display()))
        .args(args)
        .output()
        .unwrap()
}

/// stdout and stderr of a kubectl run, for assertion messages.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
