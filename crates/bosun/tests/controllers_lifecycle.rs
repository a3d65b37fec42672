//! Node lifecycle (acceptance 5 of the scheduler/controllers issue) and the
//! EndpointSlice/Endpoints controllers, with the real kubectl against
//! `bosun server` and `bosun sim-nodes`: a node whose simulator stops is
//! marked Unknown and tainted, its pods are evicted after the configured
//! toleration and recreated elsewhere; a Service's slice and Endpoints
//! follow its pods' readiness, termination and scaling.

mod controllers_support;

use controllers_support::{kubectl_available, Cluster};
use serde_json::Value;

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn pods_on(c: &Cluster, node: &str) -> Vec<Value> {
    items(&c.json(&["get", "pods", "-l", "app=web"]))
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == node)
        .collect()
}

/// Whether a list holds an object with all these string fields.
fn has(list: &Value, fields: &[(&str, &str)]) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|o| fields.iter().all(|(k, v)| o[*k] == *v)))
}

fn ready_condition(node: &Value) -> Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn lost_node_is_tainted_and_its_pods_move_to_other_nodes() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let mut c = Cluster::start_with(&[
        "--node-monitor-grace-period",
        "8s",
        "--default-not-ready-toleration-seconds",
        "4",
        "--default-unreachable-toleration-seconds",
        "4",
    ]);
    let sim = ["--lease-interval", "1", "--ready-delay", "0"];
    c.sim(&[&["--count", "2", "--name-prefix", "keep-"][..], &sim].concat());
    let lost = c.sim(&[&["--count", "1", "--name-prefix", "lost-"][..], &sim].concat());
    c.wait_nodes(3);
    c.must(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=6",
    ]);
    c.must(&["rollout", "status", "deploy/web", "--timeout=180s"]);
    let victims = pods_on(&c, "lost-0");
    assert!(!victims.is_empty(), "owner spreading puts pods on lost-0");
    let tolerations = &victims[0]["spec"]["tolerations"];
    assert!(
        has(
            tolerations,
            &[
                ("key", "node.kubernetes.io/unreachable"),
                ("effect", "NoExecute")
            ]
        ) && tolerations.to_string().contains(r#""tolerationSeconds":4"#),
        "{tolerations}"
    );

    c.stop_sim(lost);
    c.wait("lost-0 Unknown and tainted unreachable:NoExecute", || {
        let n = c.json(&["get", "node", "lost-0"]);
        let ready = ready_condition(&n);
        let taints = &n["spec"]["taints"];
        ready["status"] == "Unknown"
            && ready["reason"] == "NodeStatusUnknown"
            && ready["message"] == "Kubelet stopped posting node status."
            && has(
                taints,
                &[
                    ("key", "node.kubernetes.io/unreachable"),
                    ("effect", "NoExecute"),
                ],
            )
    });
    let status = c.must(&["get", "node", "lost-0"]);
    assert!(status.contains("NotReady"), "{status}");
    c.wait("pods on lost-0 evicted", || {
        pods_on(&c, "lost-0")
            .iter()
            .all(|p| !p["metadata"]["deletionTimestamp"].is_null())
    });
    c.wait("a TaintManagerEviction event", || {
        c.kubectl(&["get", "events", "-o", "jsonpath={.items[*].reason}"])
            .is_ok_and(|o| o.contains("TaintManagerEviction"))
    });
    c.wait("6 ready replicas on the remaining nodes", || {
        let live: Vec<Value> = items(&c.json(&["get", "pods", "-l", "app=web"]))
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        let ready = c
            .kubectl(&[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .unwrap_or_default();
        live.len() == 6
            && live.iter().all(|p| {
                p["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("keep-"))
            })
            && ready == "6"
    });

    // The node comes back: Ready again and untainted.
    c.sim(&[&["--count", "1", "--name-prefix", "lost-"][..], &sim].concat());
    c.wait("lost-0 Ready without condition taints", || {
        let n = c.json(&["get", "node", "lost-0"]);
        ready_condition(&n)["status"] == "True"
            && !n["spec"]["taints"]
                .to_string()
                .contains("node.kubernetes.io/")
    });
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: busybox
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: web, port: 80, targetPort: http}]
"#;

/// (ready, serving, terminating) per pod name, from the Service's managed slices.
fn slice_endpoints(c: &Cluster) -> Vec<(String, bool, bool, bool)> {
    let slices = c.json(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io",
    ]);
    let mut out = Vec::new();
    for s in items(&slices) {
        for p in s["ports"].as_array().into_iter().flatten() {
            assert_eq!(
                (p["name"].as_str(), p["port"].as_i64()),
                (Some("web"), Some(8080))
            );
        }
        for e in s["endpoints"].as_array().into_iter().flatten() {
            let cond = |k: &str| e["conditions"][k].as_bool().unwrap_or(false);
            out.push((
                e["targetRef"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                cond("ready"),
                cond("serving"),
                cond("terminating"),
            ));
        }
    }
    out.sort();
    out
}

fn endpoints_counts(c: &Cluster) -> (usize, usize) {
    let e = c.json(&["get", "endpoints", "web"]);
    let mut ready = 0;
    let mut not_ready = 0;
    for s in e["subsets"].as_array().into_iter().flatten() {
        assert_eq!(s["ports"][0]["port"], 8080);
        ready += s["addresses"].as_array().map_or(0, Vec::len);
        not_ready += s["notReadyAddresses"].as_array().map_or(0, Vec::len);
    }
    (ready, not_ready)
}

#[test]
fn endpoint_slices_and_endpoints_follow_the_pods_of_a_service() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let mut c = Cluster::start();
    c.sim(&["--count", "3", "--ready-delay", "0"]);
    c.apply("web.yaml", WEB);
    c.wait("a slice with 3 ready endpoints on port http=8080", || {
        let eps = slice_endpoints(&c);
        eps.len() == 3 && eps.iter().all(|e| e.1 && e.2 && !e.3)
    });
    c.wait("Endpoints with 3 addresses", || {
        c.kubectl(&["get", "endpoints", "web"]).is_ok() && endpoints_counts(&c) == (3, 0)
    });
    let slice = items(&c.json(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]));
    assert_eq!(slice.len(), 1);
    assert_eq!(
        slice[0]["metadata"]["ownerReferences"][0]["kind"],
        "Service"
    );
    assert_eq!(slice[0]["addressType"], "IPv4");

    let names: Vec<String> = slice_endpoints(&c).into_iter().map(|e| e.0).collect();
    c.must(&[
        "patch",
        "pod",
        &names[0],
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ]);
    c.wait("the unready pod is not ready and not serving", || {
        slice_endpoints(&c)
            .iter()
            .any(|e| e.0 == names[0] && !e.1 && !e.2 && !e.3)
    });
    c.wait("Endpoints lists it as not ready", || {
        endpoints_counts(&c) == (2, 1)
    });

    c.must(&[
        "patch",
        "pod",
        &names[1],
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["bosun.dev/test-hold"]}}"#,
    ]);
    c.must(&["delete", "pod", &names[1], "--wait=false"]);
    c.wait("the deleted pod is terminating, serving, not ready", || {
        slice_endpoints(&c)
            .iter()
            .any(|e| e.0 == names[1] && !e.1 && e.2 && e.3)
    });
    c.must(&[
        "patch",
        "pod",
        &names[1],
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);

    c.must(&["scale", "deploy/web", "--replicas=5"]);
    c.wait("5 endpoints, 4 ready", || {
        let eps = slice_endpoints(&c);
        eps.len() == 5 && eps.iter().filter(|e| e.1).count() == 4
    });
    c.wait("Endpoints with 4 ready and 1 not ready", || {
        endpoints_counts(&c) == (4, 1)
    });
}
