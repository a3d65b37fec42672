//! Acceptance 6 and 1 of the scheduler/controllers issue, with the real
//! kubectl against `bosun server` and `bosun sim-nodes`: unschedulable pods
//! wait with an upstream-worded FailedScheduling event and are placed when a
//! fitting node appears; topology spread constraints balance zones; a
//! Deployment rolls out (never below replicas − maxUnavailable ready, as
//! sampled through a watch), rolls back and scales.

mod controllers_support;

use controllers_support::{kubectl_available, Cluster};
use std::io::BufRead;

#[test]
fn unschedulable_pods_wait_with_a_reason_then_land_on_a_new_node() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let mut c = Cluster::start();
    c.sim(&[
        "--count",
        "3",
        "--cpu",
        "2",
        "--name-prefix",
        "small-",
        "--ready-delay",
        "0",
    ]);
    c.wait_nodes(3);
    c.must(&["run", "big", "--image=busybox", "--restart=Never", "--overrides",
        r#"{"spec":{"containers":[{"name":"big","image":"busybox","resources":{"requests":{"cpu":"4"}}}]}}"#]);
    c.must(&[
        "run",
        "picky",
        "--image=busybox",
        "--restart=Never",
        "--overrides",
        r#"{"spec":{"nodeSelector":{"disk":"ssd"}}}"#,
    ]);
    c.wait("FailedScheduling for cpu", || {
        c.kubectl(&[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.reason}:{.message}{\"\\n\"}{end}",
        ])
        .is_ok_and(|o| o.contains("FailedScheduling:0/3 nodes are available: 3 Insufficient cpu."))
    });
    c.wait("FailedScheduling for the selector", || {
        c.kubectl(&[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .is_ok_and(|o| {
            o.contains(
                "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            )
        })
    });
    assert_eq!(
        c.must(&["get", "pod", "big", "-o", "jsonpath={.status.phase}"]),
        "Pending"
    );
    c.sim(&[
        "--count",
        "1",
        "--cpu",
        "8",
        "--name-prefix",
        "big-",
        "--label",
        "disk=ssd",
        "--ready-delay",
        "0",
    ]);
    for pod in ["big", "picky"] {
        c.wait("pod on the new node", || {
            c.kubectl(&[
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.spec.nodeName}/{.status.phase}",
            ])
            .is_ok_and(|o| o == "big-0/Running")
        });
    }
}

fn ready_replicas(c: &Cluster, name: &str) -> String {
    c.kubectl(&[
        "get",
        "deploy",
        name,
        "-o",
        "jsonpath={.status.readyReplicas}/{.status.updatedReplicas}/{.status.replicas}",
    ])
    .unwrap_or_default()
}

#[test]
fn deployment_rolls_out_rolls_back_and_scales() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let mut c = Cluster::start();
    c.sim(&["--count", "3", "--ready-delay", "0.5"]);
    c.must(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1",
        "--replicas=10",
    ]);
    c.must(&["rollout", "status", "deploy/web", "--timeout=180s"]);
    assert_eq!(ready_replicas(&c, "web"), "10/10/10");
    let mut watch = c.kubectl_child(&[
        "get",
        "deploy",
        "web",
        "--watch",
        "-o",
        "jsonpath={.status.readyReplicas}{\"\\n\"}",
    ]);
    let out = watch.stdout.take().expect("watch stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let sampler = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(n) = line.trim().parse::<i64>() {
                let _ = tx.send(n);
            }
        }
    });
    // kubectl prints the current object first: the watch is live once it has.
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("first sample from the watch");
    c.must(&["set", "image", "deploy/web", "busybox=busybox:2"]);
    c.must(&["rollout", "status", "deploy/web", "--timeout=180s"]);
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = sampler.join();
    let samples: Vec<i64> = std::iter::once(first).chain(rx.try_iter()).collect();
    // maxUnavailable defaults to 25% of 10, rounded down: 2.
    assert!(samples.len() >= 2, "too few samples: {samples:?}");
    assert!(
        samples.iter().all(|n| *n >= 8),
        "ready dropped below 8: {samples:?}"
    );
    let images = c.must(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(
        images
            .split_whitespace()
            .filter(|i| *i == "busybox:2")
            .count()
            >= 10,
        "{images}"
    );
    let history = c.must(&["rollout", "history", "deploy/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    c.must(&["rollout", "undo", "deploy/web"]);
    c.must(&["rollout", "status", "deploy/web", "--timeout=180s"]);
    let image = c.must(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "busybox:1");
    c.must(&["scale", "deploy/web", "--replicas=3"]);
    c.wait("scale down to 3", || ready_replicas(&c, "web") == "3/3/3");
    c.must(&["scale", "deploy/web", "--replicas=6"]);
    c.wait("scale up to 6", || ready_replicas(&c, "web") == "6/6/6");
}

const SPREAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 4
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: spread}}}
      containers: [{name: c, image: busybox}]
"#;

#[test]
fn topology_spread_balances_zones_and_explains_missing_labels() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let mut c = Cluster::start();
    c.sim(&[
        "--count",
        "2",
        "--name-prefix",
        "za-",
        "--label",
        "zone=a",
        "--ready-delay",
        "0",
    ]);
    c.sim(&[
        "--count",
        "1",
        "--name-prefix",
        "zb-",
        "--label",
        "zone=b",
        "--ready-delay",
        "0",
    ]);
    c.wait_nodes(3);
    c.apply("spread.yaml", SPREAD);
    c.must(&["rollout", "status", "deploy/spread", "--timeout=180s"]);
    let nodes = c.must(&[
        "get",
        "pods",
        "-l",
        "app=spread",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    let zone_b = nodes
        .split_whitespace()
        .filter(|n| n.starts_with("zb-"))
        .count();
    let zone_a = nodes
        .split_whitespace()
        .filter(|n| n.starts_with("za-"))
        .count();
    assert_eq!((zone_a, zone_b), (2, 2), "{nodes}");
    c.must(&["run", "racked", "--image=busybox", "--restart=Never", "--labels=app=racked", "--overrides",
        r#"{"spec":{"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"rack","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"racked"}}}]}}"#]);
    c.wait("FailedScheduling for the missing topology label", || {
        c.kubectl(&["get", "events", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"])
            .is_ok_and(|o| o.contains("0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints (missing required label)."))
    });
}
