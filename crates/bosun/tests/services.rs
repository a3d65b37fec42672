//! Services end to end (issue 9): a real `bosun server` (proxy and DNS on,
//! controller manager off) in a private node network namespace, Services
//! and EndpointSlices made with kubectl, busybox httpd "pods" on a bridge,
//! and real requests through the kernel's nftables rules.

mod apiserver_support;
mod services_support;

use apiserver_support::{clients, have_kubectl, Client, Server};
use services_support::*;

const NS: &str = "svc-test";

fn setup(net: &mut Net, pods: usize) -> (Server, Client) {
    for i in 0..pods {
        net.add_pod(i, true);
    }
    let server = net.server(&["--proxy-cleanup"]);
    let c = clients().remove(0);
    server.ok(&c, &["create", "namespace", NS]);
    (server, c)
}

fn apply(s: &Server, c: &Client, name: &str, yaml: &str) {
    let f = s.file(name, yaml);
    s.ok(c, &["apply", "-f", &f]);
}

fn jsonpath(s: &Server, c: &Client, what: &str, path: &str) -> String {
    s.ok(
        c,
        &["-n", NS, "get", what, "-o", &format!("jsonpath={path}")],
    )
}

fn web_service(kind: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {NS}\nspec:\n  type: {kind}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 80\n"
    )
}

fn slice(net: &Net, eps: &[(usize, bool)]) -> String {
    let v: Vec<(String, bool)> = eps
        .iter()
        .map(|(i, r)| (net.pods[*i].ip.clone(), *r))
        .collect();
    let refs: Vec<(&str, bool)> = v.iter().map(|(ip, r)| (ip.as_str(), *r)).collect();
    slice_yaml(NS, "web", &refs)
}

/// Balancing, slice changes without failed requests, NodePort, affinity,
/// rejection without endpoints, rule removal and cleanup on SIGTERM.
#[test]
fn clusterip_nodeport_affinity_reject_and_cleanup() {
    testkit::require_root!();
    testkit::require_program!("nft");
    testkit::require_program!("busybox");
    if !have_kubectl() {
        return;
    }
    let mut net = Net::new();
    let (mut s, c) = setup(&mut net, 5);
    let client = net.add_pod(99, false);
    apply(&s, &c, "svc.yaml", &web_service("NodePort"));
    apply(
        &s,
        &c,
        "slice.yaml",
        &slice(&net, &[(0, true), (1, true), (2, true)]),
    );
    let vip = jsonpath(&s, &c, "svc/web", "{.spec.clusterIP}");
    let node_port = jsonpath(&s, &c, "svc/web", "{.spec.ports[0].nodePort}");
    let url = format!("http://{vip}/");
    wait_for("the ClusterIP to answer", || {
        (net.requests(Some(client), &url, 1)[0] != "FAIL").then_some(())
    });

    // 1. 300 requests from a pod and from the node reach all 3 backends.
    for from in [Some(client), None] {
        let replies = net.requests(from, &url, 300);
        assert_eq!(replies.len(), 300);
        for p in ["pod-0", "pod-1", "pod-2"] {
            assert!(count(&replies, p) >= 50, "{p} from {from:?}: {replies:?}");
        }
        assert_eq!(count(&replies, "FAIL"), 0);
    }
    // Hairpin: a backend reaching its own Service, itself included (the
    // reply only comes back because that connection is masqueraded).
    let replies = net.requests(Some(0), &url, 45);
    assert_eq!(count(&replies, "FAIL"), 0, "hairpin: {replies:?}");
    assert!(count(&replies, "pod-0") > 0, "hairpin: {replies:?}");

    // 2. Slice changes under load: no request fails, new pods get traffic,
    // removed and unready ones stop getting it.
    let stop = net.dir.path().join("stop");
    let log = net.dir.path().join("load.log");
    let script = format!(
        "while [ ! -e {} ]; do busybox timeout 10 busybox wget -q -O - {url} 2>&1 || echo FAIL; done > {}",
        stop.display(),
        log.display()
    );
    let node = net.pods[client].netns.name().to_string();
    let mut load = std::process::Command::new("ip")
        .args(["netns", "exec", &node, "busybox", "sh", "-c", &script])
        .spawn()
        .expect("start the load loop");
    net.cleanup.kill_process(load.id() as i32);
    let all5: Vec<(usize, bool)> = (0..5).map(|i| (i, true)).collect();
    apply(&s, &c, "slice.yaml", &slice(&net, &all5));
    wait_for("pods 3 and 4 to get traffic", || {
        let r = net.requests(Some(client), &url, 60);
        (count(&r, "pod-3") > 0 && count(&r, "pod-4") > 0).then_some(())
    });
    apply(
        &s,
        &c,
        "slice.yaml",
        &slice(&net, &[(0, true), (2, false), (3, true), (4, true)]),
    );
    wait_for("pods 1 (removed) and 2 (unready) to get none", || {
        let r = net.requests(Some(client), &url, 60);
        (count(&r, "pod-1") + count(&r, "pod-2") == 0).then_some(())
    });
    let r = net.requests(Some(client), &url, 100);
    assert_eq!(count(&r, "pod-1") + count(&r, "pod-2"), 0, "{r:?}");
    std::fs::write(&stop, "").expect("stop the load loop");
    let _ = load.wait();
    let replies = std::fs::read_to_string(&log).expect("read the load log");
    assert!(
        replies.lines().count() > 10,
        "load loop made few requests: {replies}"
    );
    assert!(
        !replies.contains("FAIL"),
        "a request failed during slice changes:\n{replies}"
    );

    // 3. NodePort on the node's address, from the node and from a pod.
    let np_url = format!("http://{GATEWAY}:{node_port}/");
    for from in [None, Some(client)] {
        let r = net.requests(from, &np_url, 20);
        assert_eq!(count(&r, "FAIL"), 0, "NodePort from {from:?}: {r:?}");
    }

    // 4. sessionAffinity ClientIP pins the client to one pod.
    s.ok(
        &c,
        &[
            "-n",
            NS,
            "patch",
            "svc",
            "web",
            "-p",
            r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
        ],
    );
    wait_for("affinity to pin the client", || {
        let r = net.requests(Some(client), &url, 30);
        (r.iter().all(|x| x == &r[0]) && r[0] != "FAIL").then_some(())
    });

    // 5. A Service without endpoints refuses connections (no hang).
    apply(
        &s,
        &c,
        "empty.yaml",
        &web_service("ClusterIP").replace("name: web", "name: empty"),
    );
    let empty = jsonpath(&s, &c, "svc/empty", "{.spec.clusterIP}");
    wait_for("the empty Service to refuse", || {
        let out = net.run(
            Some(client),
            &format!("busybox timeout 20 busybox wget -O - http://{empty}/ 2>&1"),
        );
        String::from_utf8_lossy(&out.stdout)
            .contains("refused")
            .then_some(())
    });

    // 6. Deleting the Service removes its rules.
    assert!(net.table().contains(&format!("svc-{NS}/web/tcp/http")));
    s.ok(&c, &["-n", NS, "delete", "svc", "web"]);
    wait_for("the web rules to go", || {
        let t = net.table();
        (!t.contains(&format!("{NS}/web/")) && !t.contains(&vip)).then_some(())
    });

    // 7. SIGTERM with --proxy-cleanup leaves no bosun table.
    assert!(s.terminate().success(), "server log: {}", s.log());
    let tables = net.node.exec("nft", &["list", "tables"]);
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    assert!(!tables.contains("bosun"), "{tables}");
}

/// Cluster DNS at the kube-dns ClusterIP: A for a ClusterIP Service, the
/// endpoint IPs for a headless one, CNAME for ExternalName, SRV for a named
/// port, NXDOMAIN for unknown names, and search paths for `wget http://web`.
#[test]
fn cluster_dns_names_and_search_paths() {
    testkit::require_root!();
    testkit::require_program!("nft");
    testkit::require_program!("busybox");
    if !have_kubectl() {
        return;
    }
    let mut net = Net::new();
    let (s, c) = setup(&mut net, 2);
    let client = net.add_pod(99, false);
    net.pod_resolv_conf(client, NS);
    apply(&s, &c, "svc.yaml", &web_service("ClusterIP"));
    apply(&s, &c, "slice.yaml", &slice(&net, &[(0, true), (1, true)]));
    let headless = web_service("ClusterIP")
        .replace("name: web", "name: db")
        .replace("  ports:", "  clusterIP: None\n  ports:");
    apply(&s, &c, "db.yaml", &headless);
    let (ip0, ip1) = (net.pods[0].ip.clone(), net.pods[1].ip.clone());
    apply(
        &s,
        &c,
        "db-slice.yaml",
        &slice_yaml(NS, "db", &[(&ip0, true), (&ip1, true)]),
    );
    let ext = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\n  namespace: {NS}\nspec:\n  type: ExternalName\n  externalName: example.com\n"
    );
    apply(&s, &c, "ext.yaml", &ext);
    let vip = jsonpath(&s, &c, "svc/web", "{.spec.clusterIP}");
    let dns_ip = s.ok(
        &c,
        &[
            "-n",
            "kube-system",
            "get",
            "svc",
            "kube-dns",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    assert_eq!(dns_ip, DNS_IP);

    let lookup = |from: Option<usize>, args: &str| {
        let out = net.run(from, &format!("busybox nslookup {args} {DNS_IP} 2>&1"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fqdn = format!("web.{NS}.svc.cluster.local");
    wait_for(
        "the cluster DNS to answer at the kube-dns ClusterIP",
        || lookup(Some(client), &fqdn).contains(&vip).then_some(()),
    );
    // From the node itself too (output hook, DNAT to a local address).
    assert!(lookup(None, &fqdn).contains(&vip));
    wait_for("the headless Service to resolve to its endpoints", || {
        let out = lookup(Some(client), &format!("db.{NS}.svc.cluster.local"));
        (out.contains(&ip0) && out.contains(&ip1)).then_some(())
    });
    let out = lookup(
        Some(client),
        &format!("-type=CNAME ext.{NS}.svc.cluster.local"),
    );
    assert!(out.contains("canonical name = example.com"), "{out}");
    let out = lookup(
        Some(client),
        &format!("-type=SRV _http._tcp.web.{NS}.svc.cluster.local"),
    );
    assert!(
        out.contains(&format!("80 web.{NS}.svc.cluster.local")),
        "{out}"
    );
    let out = lookup(Some(client), &format!("nope.{NS}.svc.cluster.local"));
    assert!(out.contains("NXDOMAIN"), "{out}");
    let out = lookup(Some(client), &format!("10-42-0-10.{NS}.pod.cluster.local"));
    assert!(out.contains("10.42.0.10"), "{out}");

    // Search paths: the client's resolv.conf is what the kubelet writes.
    for url in ["http://web/", &format!("http://{fqdn}/")] {
        let r = net.requests(Some(client), url, 4);
        assert!(
            r.iter().all(|x| x == "pod-0" || x == "pod-1"),
            "{url}: {r:?}"
        );
    }
    let out = net.run(Some(client), "busybox nslookup web 2>&1");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains(&vip), "{out}");
}
