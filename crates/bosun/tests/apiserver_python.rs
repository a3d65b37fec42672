//! Acceptance 5: the official Python `kubernetes` client (from PyPI, in the
//! venv `./dev` prepares under the target dir) lists, creates, patches and
//! watches pods and deployments on a `bosun server`.

mod apiserver_support;

use apiserver_support::{output_within, Server};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SCRIPT: &str = r#"
import sys, threading, time
from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core, apps = client.CoreV1Api(), client.AppsV1Api()
ns = "py"
core.create_namespace({"metadata": {"name": ns}})

def pod(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "py"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}

def deploy(name):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}

core.create_namespaced_pod(ns, pod("p1"))
pods = core.list_namespaced_pod(ns, label_selector="app=py")
assert [p.metadata.name for p in pods.items] == ["p1"], pods
assert pods.items[0].spec.restart_policy == "Always"
core.patch_namespaced_pod("p1", ns, {"metadata": {"labels": {"patched": "yes"}}})
assert core.read_namespaced_pod("p1", ns).metadata.labels["patched"] == "yes"

apps.create_namespaced_deployment(ns, deploy("d1"))
apps.patch_namespaced_deployment("d1", ns, {"spec": {"replicas": 3}})
d = apps.read_namespaced_deployment("d1", ns)
assert d.spec.replicas == 3 and d.metadata.generation == 2, d
assert [x.metadata.name for x in apps.list_namespaced_deployment(ns).items] == ["d1"]

def watch_for(list_fn, create, name):
    rv = list_fn(ns).metadata.resource_version
    threading.Timer(0.5, create).start()
    w = watch.Watch()
    for ev in w.stream(list_fn, ns, resource_version=rv, timeout_seconds=60):
        if ev["type"] == "ADDED" and ev["object"].metadata.name == name:
            w.stop()
            return True
    return False

assert watch_for(core.list_namespaced_pod, lambda: core.create_namespaced_pod(ns, pod("p2")), "p2")
assert watch_for(apps.list_namespaced_deployment, lambda: apps.create_namespaced_deployment(ns, deploy("d2")), "d2")
print("python client: OK")
"#;

fn venv_python() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_bosun"));
    let target = bin
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    target.join("pyenv/bin/python")
}

#[test]
fn python_client_lists_creates_patches_and_watches() {
    let python = venv_python();
    let ok = python.is_file()
        && Command::new(&python)
            .args(["-c", "import kubernetes"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: the Python kubernetes client is not installed in {} (./dev setup installs it)", python.display());
        return;
    }
    let server = Server::start();
    let script = server.file("client.py", SCRIPT);
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(&server.kubeconfig);
    let out = output_within(cmd, Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("python client: OK"),
        "stdout: {stdout}\nstderr: {}\nserver log: {}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}
