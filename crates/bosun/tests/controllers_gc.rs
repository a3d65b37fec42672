//! Acceptance 4 of the scheduler/controllers issue and the cluster
//! housekeeping controllers, with the real kubectl against `bosun server`
//! and `bosun sim-nodes`: cascading deletion (background, orphan,
//! foreground), namespace deletion, the `default` ServiceAccount, pod GC,
//! node IPAM across a restart, and leader election between two servers on
//! one etcd.

mod apiserver_support;
mod controllers_support;

use controllers_support::{kubectl_available, Cluster};

fn names(c: &Cluster, args: &[&str]) -> Vec<String> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "name"]);
    c.kubectl(&a)
        .map(|o| o.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn count(c: &Cluster, args: &[&str]) -> usize {
    names(c, args).len()
}

fn started(nodes: usize) -> Option<Cluster> {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return None;
    }
    let mut c = Cluster::start();
    sims(&mut c, nodes, "n-");
    Some(c)
}

fn sims(c: &mut Cluster, nodes: usize, prefix: &str) {
    let n = nodes.to_string();
    c.sim(&["--count", &n, "--name-prefix", prefix, "--ready-delay", "0"]);
}

#[test]
fn deleting_a_deployment_cascades_in_background_orphan_and_foreground() {
    let Some(c) = started(2) else { return };
    // Background (kubectl's default): ReplicaSets and Pods go.
    c.must(&[
        "create",
        "deployment",
        "bg",
        "--image=busybox",
        "--replicas=3",
    ]);
    c.wait("3 bg pods", || count(&c, &["pods", "-l", "app=bg"]) == 3);
    c.must(&["delete", "deployment", "bg"]);
    c.wait("bg replicasets and pods gone", || {
        count(&c, &["rs", "-l", "app=bg"]) == 0 && count(&c, &["pods", "-l", "app=bg"]) == 0
    });

    // Orphan: the ReplicaSet and its Pods stay, without the owner reference.
    c.must(&[
        "create",
        "deployment",
        "orph",
        "--image=busybox",
        "--replicas=2",
    ]);
    c.wait("2 orph pods", || {
        count(&c, &["pods", "-l", "app=orph"]) == 2
    });
    c.must(&["delete", "deployment", "orph", "--cascade=orphan"]);
    c.wait("orph deployment gone", || {
        count(&c, &["deploy", "orph"]) == 0
    });
    let refs = c.must(&[
        "get",
        "rs",
        "-l",
        "app=orph",
        "-o",
        "jsonpath={.items[*].metadata.ownerReferences}",
    ]);
    assert_eq!(
        refs.trim(),
        "",
        "orphaned ReplicaSet lost its owner reference"
    );
    assert_eq!(count(&c, &["rs", "-l", "app=orph"]), 1);
    assert_eq!(count(&c, &["pods", "-l", "app=orph"]), 2);

    // Foreground: a pod held by a finalizer keeps the Deployment visible,
    // deleting, with the foregroundDeletion finalizer; it goes last.
    c.must(&[
        "create",
        "deployment",
        "fg",
        "--image=busybox",
        "--replicas=2",
    ]);
    c.wait("2 fg pods", || count(&c, &["pods", "-l", "app=fg"]) == 2);
    let held = names(&c, &["pods", "-l", "app=fg"]).remove(0);
    c.must(&[
        "patch",
        &held,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["bosun.test/hold"]}}"#,
    ]);
    c.must(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]);
    c.wait("fg deployment deleting with foregroundDeletion", || {
        c.kubectl(&[
            "get",
            "deploy",
            "fg",
            "-o",
            "jsonpath={.metadata.deletionTimestamp} {.metadata.finalizers}",
        ])
        .is_ok_and(|o| o.contains("foregroundDeletion") && !o.starts_with(' '))
            && count(&c, &["pods", "-l", "app=fg"]) == 1
    });
    assert_eq!(
        count(&c, &["deploy", "fg"]),
        1,
        "deployment waits for its pods"
    );
    c.must(&[
        "patch",
        &held,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.wait("fg deployment gone, last", || {
        if count(&c, &["deploy", "fg"]) != 0 {
            return false;
        }
        // Read after the deployment was seen gone: its dependents must be gone already.
        assert_eq!(
            count(&c, &["rs", "-l", "app=fg"]),
            0,
            "rs outlived the deployment"
        );
        assert_eq!(
            count(&c, &["pods", "-l", "app=fg"]),
            0,
            "pod outlived the deployment"
        );
        true
    });
}

#[test]
fn deleting_a_namespace_empties_it_then_removes_it() {
    let Some(c) = started(2) else { return };
    let ns = "bosun-test-gone";
    c.must(&["create", "namespace", ns]);
    c.wait("default serviceaccount", || {
        count(&c, &["sa", "default", "-n", ns]) == 1
    });
    c.must(&["delete", "sa", "default", "-n", ns]);
    c.wait("default serviceaccount recreated", || {
        count(&c, &["sa", "default", "-n", ns]) == 1
    });
    c.must(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
        "-n",
        ns,
    ]);
    c.must(&["create", "configmap", "held", "-n", ns]);
    c.must(&[
        "patch",
        "configmap",
        "held",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["bosun.test/hold"]}}"#,
    ]);
    c.wait("2 pods", || count(&c, &["pods", "-n", ns]) == 2);
    c.must(&["delete", "namespace", ns, "--wait=false"]);
    c.wait("namespace terminating with content remaining", || {
        c.kubectl(&[
            "get",
            "ns",
            ns,
            "-o",
            "jsonpath={.status.phase} {.status.conditions}",
        ])
        .is_ok_and(|o| o.starts_with("Terminating") && o.contains("NamespaceContentRemaining"))
            && count(&c, &["pods", "-n", ns]) == 0
            && count(&c, &["deploy", "-n", ns]) == 0
    });
    assert_eq!(
        count(&c, &["ns", ns]),
        1,
        "the held configmap keeps the namespace"
    );
    c.must(&[
        "patch",
        "configmap",
        "held",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    c.wait("namespace gone", || count(&c, &["ns", ns]) == 0);
}

#[test]
fn pod_gc_removes_pods_bound_to_nodes_that_do_not_exist() {
    let Some(c) = started(1) else { return };
    c.must(&[
        "run",
        "lost",
        "--image=busybox",
        "--restart=Never",
        "--overrides",
        r#"{"spec":{"nodeName":"bosun-test-ghost-node"}}"#,
    ]);
    c.must(&["get", "pod", "lost"]);
    c.wait("pod of a missing node collected", || {
        count(&c, &["pod", "lost"]) == 0
    });
    // A node deleted under its pods: they go too.
    c.must(&[
        "create",
        "deployment",
        "w",
        "--image=busybox",
        "--replicas=2",
    ]);
    c.wait("2 scheduled pods", || {
        c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=w",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ])
        .is_ok_and(|o| o.split_whitespace().count() == 2)
    });
    c.must(&["delete", "node", "n-0"]);
    c.wait("pods of the deleted node collected", || {
        c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=w",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ])
        .is_ok_and(|o| !o.contains("n-0"))
    });
}

fn pod_cidrs(c: &Cluster) -> Vec<(String, String)> {
    let out = c
        .kubectl(&[
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}={.spec.podCIDR}{"\n"}{end}"#,
        ])
        .unwrap_or_default();
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn nodes_get_distinct_pod_cidrs_kept_across_a_restart_until_exhausted() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    // 4 blocks of /24.
    let mut c = Cluster::start_with(&[
        "--cluster-cidr",
        "10.99.0.0/22",
        "--node-cidr-mask-size",
        "24",
    ]);
    sims(&mut c, 3, "a-");
    c.wait("3 nodes with pod CIDRs", || {
        let v = pod_cidrs(&c);
        v.len() == 3 && v.iter().all(|(_, p)| !p.is_empty())
    });
    let before = pod_cidrs(&c);
    let mut distinct: Vec<&String> = before.iter().map(|(_, p)| p).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "distinct CIDRs: {before:?}");
    assert!(before
        .iter()
        .all(|(_, p)| p.starts_with("10.99.") && p.ends_with("/24")));
    c.restart_server();
    assert_eq!(pod_cidrs(&c), before, "CIDRs survive the restart");
    sims(&mut c, 2, "b-");
    c.wait("5 nodes, 4 with CIDRs", || {
        let v = pod_cidrs(&c);
        v.len() == 5 && v.iter().filter(|(_, p)| !p.is_empty()).count() == 4
    });
    let after = pod_cidrs(&c);
    let mut all: Vec<&String> = after
        .iter()
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "no block handed out twice: {after:?}");
    c.wait("CIDRNotAvailable event", || {
        c.kubectl(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "reason=CIDRNotAvailable",
        ])
        .is_ok_and(|o| o.contains("CIDRNotAvailable"))
    });
}

fn holder(c: &Cluster, lease: &str) -> String {
    c.kubectl(&[
        "get",
        "lease",
        lease,
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .unwrap_or_default()
}

#[test]
fn two_servers_on_one_etcd_run_the_loops_once_and_fail_over() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let Some(members) = apiserver_support::etcd::cluster(1) else {
        return;
    };
    let ep = apiserver_support::etcd::endpoints(&members);
    let mut a = Cluster::start_with(&["--datastore-endpoint", &ep]);
    let mut b = Cluster::start_with(&["--datastore-endpoint", &ep]);
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        a.wait("lease held", || !holder(&a, lease).is_empty());
    }
    let cm = holder(&a, "kube-controller-manager");
    let pid_of = |c: &Cluster| format!("_{}_", c.server_pid());
    let a_leads = cm.contains(&pid_of(&a));
    assert!(
        a_leads || cm.contains(&pid_of(&b)),
        "holder {cm} is one of the servers"
    );
    let (leader, other) = if a_leads {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    sims(other, 3, "e-");
    other.must(&[
        "create",
        "deployment",
        "one",
        "--image=busybox",
        "--replicas=5",
    ]);
    other.wait("5 pods", || count(other, &["pods", "-l", "app=one"]) == 5);
    other.wait("5 ready replicas", || {
        other
            .kubectl(&[
                "get",
                "deploy",
                "one",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .is_ok_and(|o| o == "5")
    });
    assert_eq!(
        count(other, &["pods", "-l", "app=one"]),
        5,
        "exactly replicas pods"
    );
    assert_eq!(count(other, &["rs", "-l", "app=one"]), 1, "one ReplicaSet");

    leader.kill_server();
    let survivor = format!("_{}_", other.server_pid());
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        other.wait("the survivor takes the lease over", || {
            holder(other, lease).contains(&survivor)
        });
    }
    other.must(&["scale", "deployment", "one", "--replicas=7"]);
    other.wait("7 pods after failover", || {
        count(other, &["pods", "-l", "app=one"]) == 7
    });
    other.wait("7 ready replicas", || {
        other
            .kubectl(&[
                "get",
                "deploy",
                "one",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .is_ok_and(|o| o == "7")
    });
    assert_eq!(count(other, &["pods", "-l", "app=one"]), 7);
}
