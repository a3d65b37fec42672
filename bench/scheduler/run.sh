#!/usr/bin/env bash
# bench/scheduler: scheduling throughput of bosun's scheduler (pods bound per
# second, from the creation of 10 000 pending pods to the last binding) on
# 1 000 and 5 000 simulated nodes, and the time for a 1 000-replica
# Deployment to be available on 100 simulated nodes (kubelet delay 0 s).
#
# Throughput runs use upstream scheduler_perf's setup: API server + scheduler,
# no controller manager (CONTROLLERS=1 runs it too). Pods are created by
# load.py (16 keep-alive HTTPS connections); bindings are timed through a
# watch, and the run also waits for every pod's Scheduled event.
# Peers, from the same run: the API server's own ceiling (no scheduler: the
# client creates each pod and binds it itself through pods/binding), and the
# published kube-scheduler figures (no kube-scheduler binary here to rerun).
# Usage: bench/scheduler/run.sh [NODE_COUNTS...]   (default: 1000 5000)
# Env: PODS (10000), THREADS (16), CONTROLLERS (0), PEER (1), DEPLOY (1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BOSUN=${BOSUN:-$here/../../target/release/bosun}
PODS=${PODS:-10000}
COUNTS=("${@:-1000 5000}")
work=$(mktemp -d /tmp/bosun-bench-sched.XXXXXX)
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT

start_server() { # name extra-server-flags...
  local dir=$work/$1
  shift
  mkdir -p "$dir"
  "$BOSUN" server --disable-agent --bind-address 127.0.0.1 --https-listen-port 0 --data-dir "$dir/data" \
    --write-kubeconfig "$dir/kc" "$@" >/dev/null 2>"$dir/server.log" &
  pids+=($!)
  export KUBECONFIG=$dir/kc
  until kubectl get --raw /readyz >/dev/null 2>&1; do sleep 0.2; done
  URL=$(awk '/server:/{print $2}' "$dir/kc")
  python3 - "$dir" <<'PY'
import base64, sys, re
d = sys.argv[1]; kc = open(d + "/kc").read()
for key, out in [("certificate-authority-data", "ca.pem"), ("client-certificate-data", "cert.pem"), ("client-key-data", "key.pem")]:
    open(f"{d}/{out}", "wb").write(base64.b64decode(re.search(key + r": (\S+)", kc).group(1)))
PY
}

sim() { # dir count extra...
  local dir=$1 n=$2
  shift 2
  "$BOSUN" sim-nodes --kubeconfig "$dir/kc" --count "$n" --lease-interval 30 "$@" >/dev/null 2>"$dir/sim.log" &
  pids+=($!)
  until [ "$(kubectl get nodes -o name 2>/dev/null | wc -l)" -ge "$n" ]; do sleep 1; done
}

load() { # dir
  python3 "$here/load.py" "$1" "$URL" bench "$PODS" "${THREADS:-16}"
}

throughput() { # nodes
  local n=$1 dir=$work/n$1 flags=(--disable-controller-manager)
  [ "${CONTROLLERS:-0}" = 1 ] && flags=()
  start_server "n$n" "${flags[@]}"
  sim "$dir" "$n" --ready-delay 3600
  local out
  out=$(load "$dir")
  python3 - "$n" "$out" "$(cat /proc/loadavg)" "${CONTROLLERS:-0}" <<'PY'
import json, sys
n, r, load, ctl = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"{n} nodes: {r['pods']} pods created in {r['create_s']} s ({r['pods']/max(r['create_s'],1e-9):.0f}/s), "
      f"{r['bound']} bound {r['bind_s']} s after the first create -> {r['pods_per_s']} pods/s "
      f"(errors {r['errors']}; all Scheduled events at {r['events_s']} s; controllers {'on' if ctl == '1' else 'off'}) "
      f"| kube-scheduler published ~100-300 pods/s on 1k-5k nodes (ours/300 = {r['pods_per_s']/300:.1f}x) "
      f"| loadavg {load.split()[0]}")
PY
  stop_all
}

peer() { # API server create+bind ceiling: no scheduler, no controllers
  local dir=$work/peer
  start_server peer --disable-scheduler --disable-controller-manager
  local out
  out=$(BIND_NODES=1000 load "$dir")
  python3 - "$out" "$(cat /proc/loadavg)" <<'PY'
import json, sys
r, load = json.loads(sys.argv[1]), sys.argv[2]
print(f"peer, API server alone (client creates and binds each pod, no scheduler): {r['bound']} pods "
      f"created+bound in {r['bind_s']} s -> {r['pods_per_s']} pods/s (errors {r['errors']}) | loadavg {load.split()[0]}")
PY
  stop_all
}

deployment() {
  local dir=$work/deploy
  start_server deploy
  sim "$dir" 100 --ready-delay 0
  local t0 t1
  t0=$(date +%s.%N)
  kubectl create deployment big --image=busybox --replicas=1000 >/dev/null
  kubectl rollout status deploy/big --timeout=600s >/dev/null
  t1=$(date +%s.%N)
  python3 -c "import sys; t0,t1=map(float,sys.argv[1:3]); print(f'1000-replica Deployment available on 100 nodes in {t1-t0:.1f} s | loadavg {sys.argv[3]}')" \
    "$t0" "$t1" "$(cut -d' ' -f1 /proc/loadavg)"
  stop_all
}

for n in ${COUNTS[@]}; do throughput "$n"; done
[ "${PEER:-1}" = 1 ] && peer
[ "${DEPLOY:-1}" = 1 ] && deployment
exit 0
