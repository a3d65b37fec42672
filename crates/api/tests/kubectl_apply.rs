//! The real kubectl's apply flows against a fake API server whose PATCH
//! handling is this crate: client-side apply (create, then a strategic
//! merge patch, then "unchanged"), `kubectl diff`, `kubectl patch` of all
//! three types, and `kubectl apply --server-side` twice with changes,
//! including a conflict and `--force-conflicts`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use api::openapi::OpenApiV3;
use api::patch::{self, ApplyError};
use api::GroupVersionKind;
use common::{Request, Response};
use serde_json::{json, Value};

type Objects = Arc<Mutex<BTreeMap<String, Value>>>;

const COLLECTION: &str = "/apis/apps/v1/namespaces/default/deployments";

fn gvk() -> GroupVersionKind {
    GroupVersionKind::new("apps", "v1", "Deployment")
}

/// Stores the object unless it is a dry run; bumps resourceVersion.
fn store(objects: &Objects, req: &Request, name: &str, mut obj: Value, code: u16) -> Response {
    let rv = objects.lock().unwrap().len() as u64 * 10
        + 100
        + obj["spec"]["replicas"].as_u64().unwrap_or(0);
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    obj["metadata"]["namespace"] = json!("default");
    obj["metadata"]["uid"] = json!(format!("uid-{name}"));
    if req.param("dryRun").is_none() {
        objects
            .lock()
            .unwrap()
            .insert(name.to_string(), obj.clone());
    }
    Response::json(code, &obj)
}

fn patch_object(objects: &Objects, req: &Request, name: &str) -> Response {
    let live = objects.lock().unwrap().get(name).cloned();
    let manager = req.param("fieldManager").unwrap_or("unknown");
    let ct = req.content_type.split(';').next().unwrap_or("");
    if ct == "application/apply-patch+yaml" {
        let Ok(applied) = serde_json::from_slice::<Value>(&req.body) else {
            return Response::status(400, "BadRequest", "apply body is not JSON");
        };
        let force = req.param("force") == Some("true");
        return match patch::server_side_apply(live.as_ref(), &applied, manager, force, &gvk()) {
            Ok(obj) => store(
                objects,
                req,
                name,
                obj,
                if live.is_some() { 200 } else { 201 },
            ),
            Err(ApplyError::Conflicts { conflicts }) => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                    .collect();
                let msg = ApplyError::Conflicts { conflicts }.to_string();
                Response::json(
                    409,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": msg, "reason": "Conflict", "details": {"causes": causes}, "code": 409}),
                )
            }
            Err(e) => Response::status(422, "Invalid", &e.to_string()),
        };
    }
    let Some(live) = live else {
        return Response::status(
            404,
            "NotFound",
            &format!("deployments.apps \"{name}\" not found"),
        );
    };
    let result = match ct {
        "application/strategic-merge-patch+json" => {
            patch::strategic_merge_patch(&live, &req.body, &gvk())
        }
        "application/merge-patch+json" => patch::merge_patch(&live, &req.body),
        "application/json-patch+json" => patch::json_patch(&live, &req.body),
        other => return Response::status(415, "UnsupportedMediaType", other),
    };
    match result {
        Ok(obj) => {
            let obj = patch::managed_fields_update(Some(&live), &obj, manager);
            store(objects, req, name, obj, 200)
        }
        Err(e) => Response::status(422, "Invalid", &e.to_string()),
    }
}

fn handle(objects: &Objects, openapi: &OpenApiV3, req: &Request) -> Response {
    if let Some(resp) = common::discovery(openapi, &req.path) {
        return resp;
    }
    if req.method == "POST" && req.path == COLLECTION {
        let Ok(obj) = serde_json::from_slice::<Value>(&req.body) else {
            return Response::status(400, "BadRequest", "body is not JSON");
        };
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let obj = patch::managed_fields_update(
            None,
            &obj,
            req.param("fieldManager").unwrap_or("unknown"),
        );
        return store(objects, req, &name, obj, 201);
    }
    let Some(name) = req
        .path
        .strip_prefix(COLLECTION)
        .and_then(|n| n.strip_prefix('/'))
    else {
        return Response::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    match req.method.as_str() {
        "GET" => match objects.lock().unwrap().get(name) {
            Some(obj) => Response::json(200, obj),
            None => Response::status(
                404,
                "NotFound",
                &format!("deployments.apps \"{name}\" not found"),
            ),
        },
        "PATCH" => patch_object(objects, req, name),
        _ => Response::status(405, "MethodNotAllowed", &req.method),
    }
}

fn start() -> (String, Objects) {
    let openapi = OpenApiV3::build(&common::resources());
    let objects: Objects = Arc::default();
    let o = objects.clone();
    let addr = common::start(Arc::new(move |req: &Request| handle(&o, &openapi, req)));
    (addr, objects)
}

fn manifest(name: &str, replicas: u32, env: &str, sidecar: bool) -> Value {
    let mut containers = vec![
        json!({"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
        "env": [{"name": "MODE", "value": env}]}),
    ];
    if sidecar {
        containers
            .push(json!({"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}));
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}})
}

fn write(dir: &std::path::Path, manifest: &Value) -> String {
    let path = dir.join("dep.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn client_side_apply_twice_patches_and_diff_shows_the_change() {
    testkit::require_program!("kubectl");
    let (addr, objects) = start();
    for (i, client) in common::clients().iter().enumerate() {
        let dir = testkit::scratch_dir();
        let name = format!("web{i}");
        let run = |args: &[&str]| common::kubectl(client, dir.path(), &addr, args);
        let out = run(&[
            "apply",
            "-f",
            &write(dir.path(), &manifest(&name, 2, "a", false)),
        ]);
        assert!(
            common::text(&out).contains("created"),
            "{}",
            common::text(&out)
        );
        let file = write(dir.path(), &manifest(&name, 4, "b", true));
        let out = run(&["diff", "-f", &file]);
        assert!(
            common::text(&out).contains("replicas: 4"),
            "{}",
            common::text(&out)
        );
        let out = run(&["apply", "-f", &file]);
        assert!(
            common::text(&out).contains("configured"),
            "{}",
            common::text(&out)
        );
        // kubectl computed the patch from its built-in types without complaint.
        assert!(
            !common::text(&out).contains("warning"),
            "{}",
            common::text(&out)
        );
        let live = objects.lock().unwrap()[&name].clone();
        assert_eq!(live["spec"]["replicas"], 4);
        let containers = &live["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "MODE", "value": "b"}])
        );
        assert_eq!(containers[1]["name"], "sidecar");
        let last = live["metadata"]["annotations"]
            ["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap();
        assert!(last.contains("\"replicas\":4"), "{last}");
        let out = run(&["apply", "-f", &file]);
        assert!(
            common::text(&out).contains("unchanged"),
            "{}",
            common::text(&out)
        );
        // Remove the sidecar again.
        let out = run(&[
            "apply",
            "-f",
            &write(dir.path(), &manifest(&name, 4, "b", false)),
        ]);
        assert!(out.status.success(), "{}", common::text(&out));
        let live = objects.lock().unwrap()[&name].clone();
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // kubectl patch, all three types.
        let dep = format!("deployment/{name}");
        for (ty, body) in [
            (
                "strategic",
                r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}"#,
            ),
            ("merge", r#"{"metadata":{"labels":{"patched":"yes"}}}"#),
            (
                "json",
                r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
            ),
        ] {
            let out = run(&["patch", &dep, "--type", ty, "-p", body]);
            assert!(
                common::text(&out).contains("patched"),
                "{ty}: {}",
                common::text(&out)
            );
        }
        let live = objects.lock().unwrap()[&name].clone();
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.28"
        );
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            "b"
        );
        assert_eq!(live["metadata"]["labels"]["patched"], "yes");
        assert_eq!(live["spec"]["replicas"], 1);
        // Switching to server-side apply: fields set by client-side apply
        // (in the last-applied annotation) change hands without conflicts;
        // kubectl then migrates the managedFields entries.
        let mut m = manifest(&name, 1, "c", false);
        m["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        let out = run(&["apply", "--server-side", "-f", &write(dir.path(), &m)]);
        assert!(
            common::text(&out).contains("serverside-applied"),
            "{}",
            common::text(&out)
        );
        let live = objects.lock().unwrap()[&name].clone();
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            "c"
        );
    }
}

#[test]
fn server_side_apply_twice_with_changes_then_conflict_and_force() {
    testkit::require_program!("kubectl");
    let (addr, objects) = start();
    for (i, client) in common::clients().iter().enumerate() {
        let dir = testkit::scratch_dir();
        let name = format!("ssa{i}");
        let run = |args: &[&str]| common::kubectl(client, dir.path(), &addr, args);
        let out = run(&[
            "apply",
            "--server-side",
            "-f",
            &write(dir.path(), &manifest(&name, 2, "a", true)),
        ]);
        assert!(
            common::text(&out).contains("serverside-applied"),
            "{}",
            common::text(&out)
        );
        let out = run(&[
            "apply",
            "--server-side",
            "-f",
            &write(dir.path(), &manifest(&name, 3, "b", false)),
        ]);
        assert!(
            common::text(&out).contains("serverside-applied"),
            "{}",
            common::text(&out)
        );
        let live = objects.lock().unwrap()[&name].clone();
        assert_eq!(live["spec"]["replicas"], 3);
        let containers = live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(
            containers.len(),
            1,
            "the sidecar the manager stopped applying is gone"
        );
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "MODE", "value": "b"}])
        );
        let owners: Vec<_> = live["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].clone())
            .collect();
        assert_eq!(owners, vec![json!("kubectl")]);
        // Another manager changing replicas conflicts, then forces.
        let file = write(
            dir.path(),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name}, "spec": {"replicas": 9}}),
        );
        let out = run(&["apply", "--server-side", "--field-manager=ops", "-f", &file]);
        assert!(!out.status.success());
        assert!(
            common::text(&out).contains(".spec.replicas"),
            "{}",
            common::text(&out)
        );
        let out = run(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--force-conflicts",
            "-f",
            &file,
        ]);
        assert!(out.status.success(), "{}", common::text(&out));
        assert_eq!(objects.lock().unwrap()[&name]["spec"]["replicas"], 9);
    }
}
