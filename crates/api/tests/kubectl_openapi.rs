//! The real kubectl reads our OpenAPI v3 documents: `kubectl explain`
//! prints field descriptions, and `kubectl create -f` with the default
//! validation (`strict`) accepts the documents and sends
//! `fieldValidation=Strict` instead of failing to download OpenAPI.

mod common;

use std::sync::{Arc, Mutex};

use api::openapi::OpenApiV3;
use common::{Request, Response};
use serde_json::json;

/// Serves discovery and OpenAPI; echoes POSTs; logs every request.
fn start() -> (String, Arc<Mutex<Vec<String>>>) {
    let openapi = OpenApiV3::build(&common::resources());
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler_log = log.clone();
    let addr = common::start(Arc::new(move |req: &Request| {
        handler_log
            .lock()
            .unwrap()
            .push(format!("{} {}?{}", req.method, req.path, req.query));
        if req.method == "POST" {
            return Response {
                code: 201,
                headers: String::new(),
                body: req.body.clone(),
            };
        }
        common::discovery(&openapi, &req.path)
            .unwrap_or_else(|| Response::status(404, "NotFound", "not found"))
    }));
    (addr, log)
}

#[test]
fn kubectl_explain_reads_field_descriptions() {
    testkit::require_program!("kubectl");
    let (addr, _log) = start();
    for client in common::clients() {
        let dir = testkit::scratch_dir();
        let out = common::kubectl(
            &client,
            dir.path(),
            &addr,
            &["explain", "deployment.spec.replicas"],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            client.display(),
            common::text(&out)
        );
        assert!(
            stdout.contains("replicas") && stdout.contains("<integer>"),
            "{stdout}"
        );
        assert!(stdout.contains("Number of desired pods"), "{stdout}");
        let out = common::kubectl(
            &client,
            dir.path(),
            &addr,
            &["explain", "pods.spec.containers.ports"],
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("containerPort"),
            "{}",
            common::text(&out)
        );
    }
}

#[test]
fn kubectl_create_validates_against_our_documents() {
    testkit::require_program!("kubectl");
    let (addr, log) = start();
    for client in common::clients() {
        let dir = testkit::scratch_dir();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "b"}});
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
        for (name, manifest) in [("cm.json", cm), ("dep.json", dep)] {
            let file = dir.path().join(name);
            std::fs::write(&file, manifest.to_string()).unwrap();
            let out = common::kubectl(
                &client,
                dir.path(),
                &addr,
                &["create", "-f", &file.display().to_string()],
            );
            assert!(
                out.status.success(),
                "{}: {}",
                client.display(),
                common::text(&out)
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
