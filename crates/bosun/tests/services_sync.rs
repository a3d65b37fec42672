//! The service proxy never loses a change: a real `bosun server` (proxy on)
//! in a private node namespace whose proxy watches end every second
//! (`--proxy-watch-timeout 1`, so every few updates arrive across a watch
//! resume from the last resourceVersion), while kubectl rewrites every
//! EndpointSlice of many Services round after round without waiting, and
//! deletes some Services midway. The rules in the kernel must end up
//! exactly the final state.

mod apiserver_support;
mod services_support;

use apiserver_support::{clients, have_kubectl};
use services_support::{wait_for, Net};

const NS: &str = "svc-sync";
const SERVICES: usize = 40;
const ROUNDS: usize = 12;
/// Services 0..GONE are deleted after round ROUNDS / 2.
const GONE: usize = 5;

fn endpoint(round: usize, s: usize) -> String {
    format!("10.{}.{}.{}", 100 + round, s / 250, s % 250 + 1)
}

/// Services (with `svc`) and their slices for round `round`.
fn manifests(round: usize, from: usize, svc: bool) -> String {
    let mut y = String::new();
    for s in from..SERVICES {
        if svc {
            y.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{s}, namespace: {NS}}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n"
            ));
        }
        y.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: svc-{s}-1, namespace: {NS}, labels: {{kubernetes.io/service-name: svc-{s}}}}}\naddressType: IPv4\nports: [{{name: http, port: 80, protocol: TCP}}]\nendpoints: [{{addresses: [\"{}\"], conditions: {{ready: true}}}}]\n",
            endpoint(round, s)
        ));
    }
    y
}

/// What is wrong with the table for the final round (None: all right).
fn mismatch(table: &str) -> Option<String> {
    for s in 0..GONE {
        if table.contains(&format!("svc-{NS}/svc-{s}/")) {
            return Some(format!("deleted service svc-{s} still programmed"));
        }
    }
    for s in GONE..SERVICES {
        // One endpoint: a plain dnat (no numgen map).
        if !table.contains(&format!("dnat to {}:80", endpoint(ROUNDS, s))) {
            return Some(format!("svc-{s} lacks its final endpoint"));
        }
    }
    for round in 0..ROUNDS {
        if table.contains(&format!(" 10.{}.", 100 + round)) {
            return Some(format!("an endpoint of round {round} is still programmed"));
        }
    }
    None
}

#[test]
fn rapid_slice_changes_across_watch_restarts_all_reach_the_kernel() {
    testkit::require_root!();
    testkit::require_program!("nft");
    if !have_kubectl() {
        return;
    }
    let net = Net::new();
    let server = net.server(&["--proxy-watch-timeout", "1"]);
    let c = clients().remove(0);
    server.ok(&c, &["create", "namespace", NS]);
    let first = server.file("round-0.yaml", &manifests(0, 0, true));
    server.ok(&c, &["create", "-f", &first]);
    for round in 1..=ROUNDS {
        if round == ROUNDS / 2 + 1 {
            for s in 0..GONE {
                let name = format!("svc-{s}");
                server.ok(&c, &["-n", NS, "delete", "service", &name]);
                server.ok(
                    &c,
                    &["-n", NS, "delete", "endpointslice", &format!("{name}-1")],
                );
            }
        }
        let from = if round > ROUNDS / 2 { GONE } else { 0 };
        let f = server.file(
            &format!("round-{round}.yaml"),
            &manifests(round, from, false),
        );
        server.ok(&c, &["replace", "-f", &f]);
    }
    // Generous: a loaded machine; a lost change never converges.
    let mut last = String::new();
    let converged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the final slices in the kernel", || {
            last = net.table();
            mismatch(&last).is_none().then_some(())
        })
    }));
    if converged.is_err() {
        panic!(
            "{}\n--- table ---\n{last}\n--- server log (tail) ---\n{}",
            mismatch(&last).unwrap_or_default(),
            tail(&server.log())
        );
    }
    // No transaction was rejected on the way.
    let log = server.log();
    assert!(!log.contains("nftables sync failed"), "{}", tail(&log));
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(8000);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
