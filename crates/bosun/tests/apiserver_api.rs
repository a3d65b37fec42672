//! API semantics at the HTTP level (curl with a bearer token): health,
//! version, metrics, OpenAPI, paging, dryRun, generateName, status split and
//! generation, Service allocation, binding, deletecollection, and watches
//! with sendInitialEvents, bookmarks, timeoutSeconds and Table events.

mod apiserver_support;

use apiserver_support::{contains, which, Server};
use serde_json::{json, Value};

struct Api<'a> {
    s: &'a Server,
    auth: String,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, body: Option<Value>, extra: &[&str]) -> (u16, String) {
        let mut args = vec!["-X", method, "-H", &self.auth];
        let data;
        if let Some(b) = body {
            data = b.to_string();
            args.extend(["-H", "Content-Type: application/json", "--data", &data]);
        }
        args.extend_from_slice(extra);
        args.push(path);
        self.s.curl(&args)
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (code, text) = self.call(method, path, body, &[]);
        assert_eq!(code, want, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"set": "x"}}, "data": {"a": "b"}})
}

#[test]
fn http_level_semantics() {
    if which("curl").is_none() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let s = Server::start();
    let api = Api {
        s: &s,
        auth: format!("Authorization: Bearer {}", s.token()),
    };
    for p in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(api.call("GET", p, None, &[]), (200, "ok".to_string()));
    }
    let v = api.json("GET", "/version", None, 200);
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    contains(
        &api.json("GET", "/openapi/v3", None, 200).to_string(),
        "apis/apps/v1",
    );

    let base = "/api/v1/namespaces/default/configmaps";
    for n in ["c1", "c2", "c3"] {
        api.json("POST", base, Some(cm(n)), 201);
    }
    let page = api.json("GET", &format!("{base}?limit=2"), None, 200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    let rest = api.json(
        "GET",
        &format!("{base}?limit=2&continue={token}"),
        None,
        200,
    );
    assert_eq!(rest["items"][0]["metadata"]["name"], "c3");
    assert!(rest["metadata"]["continue"].is_null());

    api.json("POST", &format!("{base}?dryRun=All"), Some(cm("dry")), 201);
    api.json("GET", &format!("{base}/dry"), None, 404);
    let gen = api.json(
        "POST",
        base,
        Some(json!({"metadata": {"generateName": "gen-"}})),
        201,
    );
    assert!(gen["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("gen-") && n.len() == 9));

    let deleted = api.json(
        "DELETE",
        &format!("{base}?labelSelector=set%3Dx"),
        None,
        200,
    );
    assert_eq!(deleted["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        api.json("GET", base, None, 200)["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Status is its own subresource; generation follows the spec only.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}, "status": {"replicas": 7}});
    let dbase = "/apis/apps/v1/namespaces/default/deployments";
    let d = api.json("POST", dbase, Some(deploy), 201);
    assert!(
        d["status"]["replicas"].is_null(),
        "status is reset on create"
    );
    let mut st = d.clone();
    st["status"] = json!({"replicas": 2, "observedGeneration": 1});
    st["spec"]["replicas"] = json!(9);
    let d2 = api.json("PUT", &format!("{dbase}/d/status"), Some(st), 200);
    assert_eq!(
        (
            d2["status"]["replicas"].as_i64(),
            d2["spec"]["replicas"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(d2["metadata"]["generation"], 1);
    let mut main = d2.clone();
    main["spec"]["replicas"] = json!(4);
    main["status"] = json!({});
    let d3 = api.json("PUT", &format!("{dbase}/d"), Some(main), 200);
    assert_eq!(
        (
            d3["metadata"]["generation"].as_i64(),
            d3["status"]["replicas"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let scale = api.json("GET", &format!("{dbase}/d/scale"), None, 200);
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(4))
    );
    assert_eq!(scale["status"]["selector"], "app=d");

    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let svc = api.json(
        "POST",
        "/api/v1/namespaces/default/services",
        Some(svc),
        201,
    );
    assert!(svc["spec"]["clusterIP"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.43.")));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
    assert!(svc["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .is_some_and(|p| (30000..=32767).contains(&p)));
    let mut changed = svc.clone();
    changed["spec"]["clusterIP"] = json!("10.43.99.99");
    changed["spec"]["clusterIPs"] = json!(["10.43.99.99"]);
    let (code, text) = api.call(
        "PUT",
        "/api/v1/namespaces/default/services/web",
        Some(changed),
        &[],
    );
    assert_eq!(code, 422, "{text}");
    contains(&text, "spec.clusterIPs[0]");

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let p = api.json("POST", "/api/v1/namespaces/default/pods", Some(pod), 201);
    assert_eq!(p["status"]["phase"], "Pending");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    api.json(
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        Some(binding.clone()),
        201,
    );
    assert_eq!(
        api.json("GET", "/api/v1/namespaces/default/pods/p", None, 200)["spec"]["nodeName"],
        "n1"
    );
    api.json(
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        Some(binding),
        409,
    );
    // Logs are proxied to the node's kubelet; node n1 has no Node object.
    let (code, body) = api.call("GET", "/api/v1/namespaces/default/pods/p/log", None, &[]);
    assert_eq!(code, 404, "{body:?}");
    api.json(
        "POST",
        "/api/v1/namespaces/nope/configmaps",
        Some(cm("x")),
        404,
    );

    // Watches: initial events, the initial-events-end bookmark, the timeout.
    let (code, text) = api.call(
        "GET",
        &format!("{base}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=2"),
        None,
        &["--max-time", "60"],
    );
    assert_eq!(code, 200, "{text}");
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines[0]["type"], "ADDED");
    let bookmark = lines
        .iter()
        .find(|l| l["type"] == "BOOKMARK")
        .expect("a bookmark");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let (code, text) = api.call(
        "GET",
        "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1",
        None,
        &[
            "--max-time",
            "60",
            "-H",
            "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        ],
    );
    assert_eq!(code, 200);
    let first: Value =
        serde_json::from_str(text.lines().next().unwrap_or("")).expect("a table event");
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(first["object"]["rows"][0]["cells"][0], "p");

    let (_, metrics) = api.call("GET", "/metrics", None, &[]);
    contains(
        &metrics,
        "apiserver_request_total{verb=\"POST\",resource=\"configmaps\",code=\"201\"}",
    );
    contains(&metrics, "bosun_store_request_duration_seconds_count");
    contains(&metrics, "apiserver_longrunning_requests");
}
