//! Acceptance 6 at the API level: the API server on etcd (kubectl's
//! everyday flows), and a three-member etcd cluster that loses a member
//! while the API keeps serving.

mod apiserver_support;

use apiserver_support::{contains, etcd, have_kubectl, lines_of, wait_for_line, Server};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn kubectl_flows_work_on_etcd() {
    if !have_kubectl() {
        return;
    }
    let Some(members) = etcd::cluster(1) else {
        return;
    };
    let s = Server::start_with(&["--datastore-endpoint", &etcd::endpoints(&members)]);
    let c = &apiserver_support::clients()[0];
    contains(&s.ok(c, &["get", "ns"]), "kube-system");
    s.ok(c, &["create", "namespace", "e"]);
    s.ok(
        c,
        &["-n", "e", "create", "configmap", "cm", "--from-literal=a=b"],
    );
    s.ok(
        c,
        &[
            "-n",
            "e",
            "create",
            "deployment",
            "web",
            "--image=busybox:1",
        ],
    );
    s.ok(c, &["-n", "e", "scale", "deploy", "web", "--replicas=3"]);
    assert_eq!(
        s.ok(
            c,
            &[
                "-n",
                "e",
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}"
            ]
        ),
        "3"
    );
    let mut watch = s
        .kubectl_cmd(c, &["-n", "e", "get", "cm", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let rx = lines_of(&mut watch);
    assert!(wait_for_line(&rx, Duration::from_secs(30), |l| l.starts_with("cm")).is_some());
    s.ok(
        c,
        &[
            "-n",
            "e",
            "create",
            "configmap",
            "late",
            "--from-literal=a=b",
        ],
    );
    let got = wait_for_line(&rx, Duration::from_secs(30), |l| l.starts_with("late"));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(got.is_some(), "watch on etcd delivered the new configmap");
    let json = s.ok(c, &["-n", "e", "get", "cm", "cm", "-o", "json"]);
    s.ok(c, &["-n", "e", "label", "cm", "cm", "x=y"]);
    let stale = s.file("stale.json", &json);
    contains(
        &s.fails(c, &["-n", "e", "replace", "-f", &stale]),
        "Conflict",
    );
    s.ok(c, &["-n", "e", "delete", "deploy", "web"]);
    assert!(!s
        .kubectl(c, &["-n", "e", "get", "deploy", "web"])
        .status
        .success());
}

#[test]
fn api_keeps_serving_when_one_of_three_etcd_members_dies() {
    if !have_kubectl() {
        return;
    }
    let Some(mut members) = etcd::cluster(3) else {
        return;
    };
    let s = Server::start_with(&["--datastore-endpoint", &etcd::endpoints(&members)]);
    let c = &apiserver_support::clients()[0];
    s.ok(c, &["create", "configmap", "before", "--from-literal=a=b"]);
    members[0].kill();
    // A new leader may take an election; then writes and reads go on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    loop {
        i += 1;
        let out = s.kubectl(
            c,
            &[
                "create",
                "configmap",
                &format!("after-{i}"),
                "--from-literal=a=b",
            ],
        );
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded after a member died: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let names = s.ok(c, &["get", "cm", "-o", "name"]);
    contains(&names, "configmap/before");
    contains(&names, &format!("configmap/after-{i}"));
}
