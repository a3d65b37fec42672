#!/usr/bin/env bash
# bench/pod-startup/run.sh — pod startup latency and idle memory of `bosun
# server` with its built-in agent, beside podman, in one run.
#
#   bench/pod-startup/run.sh [COUNTS...]        (default: 1 30 100)
#
# Starts its own one-node cluster on scratch paths (state root with busybox,
# CRI socket, bridge, pod CIDR, cgroup root, log dir; no service proxy or
# cluster DNS on the shared host network, as the kubelet tests run it), then
# for each N creates N busybox pods at once into a fresh namespace (burst.py:
# concurrent POSTs; image present, imagePullPolicy IfNotPresent) and times
# each pod from the moment a watch sees it created to the moment it sees it
# Ready (local clock, microseconds). Prints p50/p99/max, the makespan
# (first create to last Ready), the memory of the server process and of the
# processes it owns (per-pod pause processes and container monitors counted
# apart), idle with 0 pods and with the largest N, and the same N started as
# `podman run -d` at once (runc, --network=none) with their conmons' memory.
#
# Env: BOSUN (binary; default: cargo build --release, target/release/bosun),
# BOSUN_LOG (server log level, default warn plus the start-up timelines
# that phases.py tabulates; PHASES=0 skips that table), PEER=none skips podman,
# KEEP=1 keeps the scratch dir (server log) at exit.
# Needs root, kubectl, python3, /usr/lib/cni; podman for the peer. Everything it made
# (pods, sandboxes, veths, bridge, cgroups, mounts, iptables rules, podman
# containers) is removed at exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/pod-startup
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl not found" >&2; exit 1; }
[ -x /usr/lib/cni/bridge ] || { echo "CNI plugins not in /usr/lib/cni" >&2; exit 1; }
read -r -a COUNTS <<<"${*:-1 30 100}"
if [ -z "${BOSUN:-}" ]; then
  cargo build --release -q -p bosun
  BOSUN=${CARGO_TARGET_DIR:-$PWD/target}/release/bosun
fi
BOSUN=$(realpath "$BOSUN")
work=$(mktemp -d /tmp/bosun-bench-pods.XXXXXX)
tag=$(($$ % 10000))
node=bosun-bench-$tag
bridge=bbp$tag
cg=/bosun-bench-pods-$tag
pcg=/bosun-bench-podman-$tag
server=
export KUBECONFIG=$work/kc
# shellcheck source=bench/pod-startup/lib.sh
. "$here/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }

# busybox:latest in the scratch root, as ./dev setup builds it.
# shellcheck source=hack/busybox.sh
. hack/busybox.sh
busybox_rootfs "$work/fs"
busybox_import "$BOSUN" "$work/root" "$work/fs"

BOSUN_LOG=${BOSUN_LOG:-warn,kubelet::podstart=debug,cri::podstart=debug} "$BOSUN" --root "$work/root" server --bind-address 127.0.0.1 \
  --https-listen-port 0 --kubelet-port 0 --disable-kube-proxy --disable-cluster-dns \
  --data-dir "$work/data" --write-kubeconfig "$work/kc" --node-name "$node" \
  --cni-bridge "$bridge" --cgroup-root "$cg" --pod-cidr "10.$((200 + tag % 50)).$((tag / 50 % 250)).0/24" \
  --cri-socket "$work/cri.sock" --pod-log-dir "$work/logs" >/dev/null 2>"$work/server.log" &
server=$!
for _ in $(seq 600); do
  [ "$(kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
  kill -0 "$server" 2>/dev/null || { tail "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
sleep 10 # let start-up settle (node status, leases, controllers' first lists)

echo "## bosun pod startup (node $node, $(nproc) CPUs, $(date -u +%FT%TZ))"
echo
echo "| measure | value | loadavg |"
echo "|---|---|---|"
echo "| RSS idle, 0 pods: $(mem_report "$server" | tr '\n' ' ') | | $(load) |"

for n in "${COUNTS[@]}"; do
  ns=bench-$n
  kubectl create ns "$ns" >/dev/null
  wait_default_sa "$ns"
  events=$work/events$n
  read -r cpu0 kids0 < <(cpu_of "$server")
  if [ "${PERF:-0}" = 1 ] && [ "$n" = "${COUNTS[-1]}" ]; then
    perf record -q -F 499 -g -p "$server" -o "$work/perf.data" 2>/dev/null &
    perf=$!
  fi
  create=$(python3 "$here/burst.py" "$KUBECONFIG" "$ns" "$n" "$events" 300) ||
    echo "note: not all $n pods Ready within 300 s" >&2
  [ -n "${perf:-}" ] && { kill -INT "$perf"; wait "$perf" || true; perf=; }
  read -r cpu1 kids1 < <(cpu_of "$server")
  echo "| $n pods at once: created → Ready p50 / p99 / max | $(latencies "$events" | stats) ms ($(ready_count "$events")/$n Ready; first create → last Ready $(makespan "$events") ms; the creates' own p50 / p99 $create ms) | $(load) |"
  echo "| $n pods: CPU used until all Ready | server $((cpu1 - cpu0)) ms, its reaped children (CNI plugins) $((kids1 - kids0)) ms, per-pod processes (pause, monitors with their \`bosun oci\` children, containers) $(cpu_descendants "$server") ms | $(load) |"
  if [ "${PHASES:-1}" = 1 ] && [ "$n" -gt 1 ]; then
    echo
    echo "Where the $n pods' time went (kubelet and CRI timelines, watch events):"
    echo
    python3 "$here/phases.py" "$events" "$work/server.log" "$ns"
    echo
  fi
  if [ "$n" = "${COUNTS[-1]}" ]; then
    sleep 10
    echo "| RSS idle, $n pods: $(mem_report "$server" | tr '\n' ' ') | | $(load) |"
  fi
  t0=$EPOCHREALTIME
  kubectl delete pods --all -n "$ns" --wait=true --timeout=300s >/dev/null
  echo "| $n pods deleted (kubectl delete --wait) | $(ms "$t0" "$EPOCHREALTIME") ms | $(load) |"
  kubectl delete ns "$ns" --wait=false >/dev/null 2>&1 || true
done

if [ "${PEER:-podman}" = podman ] && command -v podman >/dev/null; then
  echo
  echo "## peer: podman $(podman --version | awk '{print $3}') \`run -d\` (runc, --network=none, overlay), N at once"
  echo
  echo "| measure | value | loadavg |"
  echo "|---|---|---|"
  podman_setup "$work/fs"
  for n in "${COUNTS[@]}"; do
    podman_burst "$n"
    echo "| $n containers at once: \`podman run -d\` wall p50 / p99 / max | $(stats <"$work/podman$n") ms (first start → last return $(cat "$work/podman$n.span") ms) | $(load) |"
    if [ "$n" = "${COUNTS[-1]}" ]; then
      sleep 5
      echo "| RSS, $n containers: $(conmon_report | tr '\n' ' ') | | $(load) |"
    fi
    podman_clear
  done
fi
echo
echo "Target (issue 7): p99 ≤ 1 s for the 30-pod burst, ≤ 80 MiB RSS for server + agent idle."
