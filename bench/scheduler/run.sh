#!/usr/bin/env bash
# bench/scheduler: scheduling throughput of bosun's scheduler (pods bound per
# second, from the creation of 10 000 pending pods to the last binding) on
# 1 000 and 5 000 simulated nodes, and the time for a 1 000-replica
# Deployment to be available on 100 simulated nodes (kubelet delay 0 s).
# Pods are created by load.py (16 keep-alive HTTPS connections) and bindings
# are timed through a watch. Peer figure: published kube-scheduler results on
# large clusters are in the low hundreds of pods/s (no kube-scheduler binary
# on this machine to rerun).
# Usage: bench/scheduler/run.sh [NODE_COUNTS...]   (default: 1000 5000)
set -euo pipefail
BOSUN=${BOSUN:-$(dirname "$0")/../../target/release/bosun}
PODS=${PODS:-10000}
COUNTS=("${@:-1000 5000}")
work=$(mktemp -d /tmp/bosun-bench-sched.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_server() {
  local dir=$work/$1
  mkdir -p "$dir"
  "$BOSUN" server --disable-agent --bind-address 127.0.0.1 --https-listen-port 0 --data-dir "$dir/data" \
    --write-kubeconfig "$dir/kc" >/dev/null 2>"$dir/server.log" &
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
  local dir=$1 n=$2; shift 2
  "$BOSUN" sim-nodes --kubeconfig "$dir/kc" --count "$n" --lease-interval 30 "$@" >/dev/null 2>"$dir/sim.log" &
  pids+=($!)
  until [ "$(kubectl get nodes -o name 2>/dev/null | wc -l)" -ge "$n" ]; do sleep 1; done
}

throughput() { # nodes
  local n=$1 dir=$work/n$1
  start_server "n$n"
  sim "$dir" "$n" --ready-delay 3600
  local out
  out=$(python3 "$(dirname "$0")/load.py" "$dir" "$URL" bench "$PODS" "${THREADS:-16}")
  python3 - "$n" "$out" <<'PY'
import json, sys
n = sys.argv[1]; r = json.loads(sys.argv[2])
print(f"{n} nodes: {r['pods']} pods created in {r['create_s']} s ({r['pods']/max(r['create_s'],1e-9):.0f}/s), "
      f"{r['bound']} bound {r['bind_s']} s after the first create -> {r['pods_per_s']} pods/s "
      f"(errors {r['errors']}) | kube-scheduler published: ~100-300 pods/s on 1k-5k node clusters "
      f"(ours/200 = {r['pods_per_s']/200:.1f}x)")
PY
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=()
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
  python3 -c "import sys; t0,t1=map(float,sys.argv[1:]); print(f'1000-replica Deployment available on 100 nodes in {t1-t0:.1f} s')" "$t0" "$t1"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=()
}

for n in ${COUNTS[@]}; do throughput "$n"; done
[ "${DEPLOY:-1}" = 1 ] && deployment
