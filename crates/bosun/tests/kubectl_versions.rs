//! Older and current kubectl clients against a real `bosun server` with
//! default validation (`--validate=strict`): kubectl 1.27 and 1.28 download
//! `/openapi/v2` (protobuf) before every create/apply/edit and fail when it
//! is missing; 1.33 (through the dispatcher) uses only v3. Each must create,
//! apply (configured, then unchanged), edit, and get the server's strict
//! field validation error for an unknown field.

mod apiserver_support;

use std::path::PathBuf;
use std::time::Duration;

use apiserver_support::{contains, have_kubectl, output_within, which, Client, Server};
use serde_json::Value;

/// `kubectl.1.<minor>` beside the dispatcher, if installed.
fn versioned(minor: u32) -> Option<Client> {
    let real = std::fs::canonicalize(which("kubectl")?).ok()?;
    let path: PathBuf = real.with_file_name(format!("kubectl.1.{minor}"));
    path.is_file().then(|| Client {
        name: format!("kubectl.1.{minor}"),
        path,
    })
}

fn clients() -> Vec<(String, Client)> {
    let mut out = Vec::new();
    for minor in [27, 28] {
        match versioned(minor) {
            Some(c) => out.push((format!("1{minor}"), c)),
            None => eprintln!("skipped kubectl 1.{minor}: kubectl.1.{minor} is not installed"),
        }
    }
    if let Some(path) = which("kubectl") {
        let name = "kubectl (1.33 via dispatcher)".to_string();
        out.push(("133".into(), Client { name, path }));
    }
    out
}

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n")
}

/// A Deployment with `replicas`, its `app` container, and `extra` lines
/// appended to the containers list (or to the spec, for unknown fields).
fn deployment(name: &str, replicas: u32, spec_extra: &str, containers_extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n{spec_extra}  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: busybox\n{containers_extra}"
    )
}

const SIDECAR: &str = "      - name: side\n        image: busybox\n";

fn containers(s: &Server, c: &Client, name: &str) -> String {
    let out = s.ok(
        c,
        &[
            "get",
            "deploy",
            name,
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].name}",
        ],
    );
    out.trim().to_string()
}

fn exercise(s: &Server, tag: &str, c: &Client) {
    let (cm, web) = (format!("cm-{tag}"), format!("web-{tag}"));
    let f = |n: &str, text: String| s.file(&format!("{tag}-{n}.yaml"), &text);
    let out = s.ok(c, &["create", "-f", &f("cm", configmap(&cm))]);
    contains(&out, &format!("configmap/{cm} created"));
    let out = s.ok(c, &["create", "-f", &f("d1", deployment(&web, 1, "", ""))]);
    contains(&out, &format!("deployment.apps/{web} created"));

    // Adding, then removing, a container: the removal only reaches the
    // server as `$patch: delete` when kubectl computes the strategic merge
    // patch with the containers' merge key (from its built-in types).
    let with_side = f("d2", deployment(&web, 2, "", SIDECAR));
    let out = s.ok(c, &["apply", "-f", &with_side]);
    contains(&out, &format!("deployment.apps/{web} configured"));
    assert_eq!(containers(s, c, &web), "2 app side", "{}", c.name);
    let without = f("d3", deployment(&web, 3, "", ""));
    let out = s.ok(c, &["apply", "-f", &without]);
    contains(&out, &format!("deployment.apps/{web} configured"));
    assert_eq!(containers(s, c, &web), "3 app", "{}", c.name);
    let out = s.ok(c, &["apply", "-f", &without]);
    contains(&out, &format!("deployment.apps/{web} unchanged"));

    let editor = s.file(
        &format!("{tag}-editor.sh"),
        "#!/bin/sh\nsed -i 's/replicas: 3/replicas: 4/' \"$1\"\n",
    );
    let _ = std::process::Command::new("chmod")
        .args(["+x", &editor])
        .status();
    let mut edit = s.kubectl_cmd(c, &["edit", "deploy", &web]);
    edit.env("KUBE_EDITOR", &editor);
    let out = output_within(edit, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: edit failed: {text}{}",
        c.name,
        String::from_utf8_lossy(&out.stderr)
    );
    contains(&text, &format!("deployment.apps/{web} edited"));
    assert_eq!(containers(s, c, &web), "4 app", "{}", c.name);

    if tag != "133" {
        // `explain` from the v2 document: its definitions parse and are
        // found through their x-kubernetes-group-version-kind.
        let mut explain = s.kubectl_cmd(c, &["explain", "deployment.spec.replicas"]);
        explain.env("KUBECTL_EXPLAIN_OPENAPIV3", "false");
        let out = output_within(explain, Duration::from_secs(120));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: explain failed: {text}", c.name);
        contains(&text, "replicas <integer>");
        contains(&text, "Number of desired pods");
    }

    // The server's strict decoding error (not kubectl's client-side
    // "ValidationError"), as with 1.33: kubectl sent fieldValidation=Strict.
    let bad = format!("bad-{tag}");
    let err = s.fails(
        c,
        &[
            "create",
            "-f",
            &f("bad", deployment(&bad, 1, "  foo: 1\n", "")),
        ],
    );
    contains(&err, "strict decoding error: unknown field \"spec.foo\"");
    assert!(!err.contains("ValidationError"), "{}: {err}", c.name);
    let err = s.fails(c, &["get", "deploy", &bad]);
    contains(&err, "not found");
}

#[test]
fn kubectl_1_27_1_28_and_1_33_create_apply_and_edit_with_default_validation() {
    if !have_kubectl() {
        return;
    }
    let s = Server::start();
    for (tag, c) in clients() {
        exercise(&s, &tag, &c);
    }
}

/// Headers (lower-cased names) and body of a `curl -D -` answer.
fn split_headers(text: &str) -> (String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    (head.to_lowercase(), body.to_string())
}

#[test]
fn openapi_v2_is_served_as_protobuf_and_json_with_etags() {
    if which("curl").is_none() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let s = Server::start();
    let auth = format!("Authorization: Bearer {}", s.token());
    let proto = "Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let (code, text) = s.curl(&["-H", &auth, "-H", proto, "-D", "-", "/openapi/v2"]);
    assert_eq!(code, 200, "{text}");
    let (head, body) = split_headers(&text);
    contains(
        &head,
        "content-type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    );
    assert!(body.len() > 1000, "a tiny protobuf document");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .trim()
        .to_uppercase();
    let inm = format!("If-None-Match: {etag}");
    let (code, _) = s.curl(&["-H", &auth, "-H", proto, "-H", &inm, "/openapi/v2"]);
    assert_eq!(code, 304);

    let json = "Accept: application/json";
    let (code, text) = s.curl(&["-H", &auth, "-H", json, "/openapi/v2"]);
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&text).expect("a JSON document");
    assert_eq!(doc["swagger"], "2.0");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    let params = patch["parameters"].as_array().cloned().unwrap_or_default();
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    assert!(doc["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());

    let (code, _) = s.curl(&["-H", &auth, "-H", "Accept: text/html", "/openapi/v2"]);
    assert_eq!(code, 406);
}
