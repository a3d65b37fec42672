#!/usr/bin/env bash
# bench/exec: `kubectl exec -- true` round trip (p50/p99 over 50 runs) through
# bosun server → kubelet server → CRI streaming server, and port-forward
# throughput (64 MB from busybox httpd) against a direct connection to the
# pod IP from the same host. Needs root, CNI plugins and kubectl; it runs the
# ignored bench test of crates/bosun/tests/streaming_kubectl.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --release -p bosun --test streaming_kubectl -- --ignored --nocapture \
  bench_exec_round_trip_and_port_forward_throughput 2>&1 | grep -E "kubectl exec|port-forward|test result"
