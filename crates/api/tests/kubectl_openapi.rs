//! The real kubectl reads our OpenAPI v3 documents: `kubectl explain`
//! prints field descriptions, and `kubectl create -f` with the default
//! validation (`strict`) accepts the documents and sends
//! `fieldValidation=Strict` instead of failing to download OpenAPI.
//! A small HTTP/1.1 listener serves discovery and the documents.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use api::openapi::{OpenApiV3, ResourceDescriptor};
use serde_json::{json, Value};

type Log = Arc<Mutex<Vec<String>>>;

fn resources() -> Vec<ResourceDescriptor> {
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

fn discovery(path: &str) -> Option<Value> {
    let res = |name: &str, kind: &str| {
        json!({"name": name, "singularName": "", "namespaced": true, "kind": kind,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    };
    Some(match path {
        "/version" => json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0"}),
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}),
        "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1",
            "resources": [res("pods", "Pod"), res("configmaps", "ConfigMap")]}),
        "/apis/apps/v1" => json!({"kind": "APIResourceList", "groupVersion": "apps/v1",
            "resources": [res("deployments", "Deployment")]}),
        _ => return None,
    })
}

/// Answers one request: (status, content type, extra header, body).
fn route(
    openapi: &OpenApiV3,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>, Option<String>) {
    let bare = path.split('?').next().unwrap_or(path);
    if method == "POST" {
        return (201, body.to_vec(), None);
    }
    if let Some(v) = discovery(bare) {
        return (200, v.to_string().into_bytes(), None);
    }
    if bare == "/openapi/v3" {
        return (200, openapi.index().to_vec(), None);
    }
    if let Some(doc) = bare
        .strip_prefix("/openapi/v3/")
        .and_then(|p| openapi.document(p))
    {
        return (
            200,
            doc.0.to_vec(),
            Some(format!("ETag: \"{}\"\r\n", doc.1)),
        );
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
    (404, status.to_string().into_bytes(), None)
}

fn serve_connection(stream: TcpStream, openapi: &OpenApiV3, log: &Log) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        log.lock().unwrap().push(format!("{method} {path}"));
        let (code, reply, extra) = route(openapi, &method, &path, &body);
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            reply.len(),
            extra.unwrap_or_default()
        );
        out.write_all(head.as_bytes())?;
        out.write_all(&reply)?;
    }
}

/// Starts the listener on an ephemeral port; returns its address and request log.
fn start() -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let openapi = Arc::new(OpenApiV3::build(&resources()));
    let thread_log = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (openapi, log) = (openapi.clone(), thread_log.clone());
            std::thread::spawn(move || serve_connection(stream, &openapi, &log));
        }
    });
    (addr, log)
}

/// kubectl clients to try: the versioned 1.33 and 1.32 binaries beside the
/// dispatcher when present, else `kubectl` itself.
fn clients() -> Vec<PathBuf> {
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

fn kubectl(client: &Path, dir: &Path, addr: &str, args: &[&str]) -> std::process::Output {
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

#[test]
fn kubectl_explain_reads_field_descriptions() {
    testkit::require_program!("kubectl");
    let (addr, _log) = start();
    for client in clients() {
        let dir = testkit::scratch_dir();
        let out = kubectl(
            &client,
            dir.path(),
            &addr,
            &["explain", "deployment.spec.replicas"],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: {stdout}{stderr}",
            client.display()
        );
        assert!(
            stdout.contains("replicas") && stdout.contains("<integer>"),
            "{stdout}"
        );
        assert!(stdout.contains("Number of desired pods"), "{stdout}");
        let out = kubectl(
            &client,
            dir.path(),
            &addr,
            &["explain", "pods.spec.containers.ports"],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("containerPort"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn kubectl_create_validates_against_our_documents() {
    testkit::require_program!("kubectl");
    let (addr, log) = start();
    for client in clients() {
        let dir = testkit::scratch_dir();
        let manifest = dir.path().join("cm.json");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "b"}});
        std::fs::write(&manifest, cm.to_string()).unwrap();
        let deploy = dir.path().join("dep.json");
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
        std::fs::write(&deploy, dep.to_string()).unwrap();
        for file in [&manifest, &deploy] {
            let out = kubectl(
                &client,
                dir.path(),
                &addr,
                &["create", "-f", &file.display().to_string()],
            );
            assert!(
                out.status.success(),
                "{}: {}{}",
                client.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let log = log.lock().unwrap();
    let posts: Vec<_> = log.iter().filter(|l| l.starts_with("POST")).collect();
    assert!(!posts.is_empty());
    for post in posts {
        assert!(post.contains("fieldValidation=Strict"), "{post}");
    }
    assert!(
        !log.iter().any(|l| l.contains("/openapi/v2")),
        "fell back to v2: {log:?}"
    );
}
