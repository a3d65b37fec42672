#!/usr/bin/env bash
# bench/scheduler: scheduling throughput of bosun's scheduler (pods bound per
# second, from the creation of 10 000 pending pods to the last binding) on
# 1 000 and 5 000 simulated nodes, and the time for a 1 000-replica
# Deployment to be available on 100 simulated nodes (kubelet delay 0 s).
# Peer figure: published kube-scheduler results on large clusters are in the
# low hundreds of pods/s (no kube-scheduler binary on this machine to rerun).
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

unbound() { kubectl get pods --field-selector spec.nodeName= -o name 2>/dev/null | wc -l; }
total() { kubectl get pods -o name 2>/dev/null | wc -l; }

throughput() { # nodes
  local n=$1 dir=$work/n$1
  start_server "n$n"
  sim "$dir" "$n" --ready-delay 3600
  cat > "$dir/pod.json" <<'J'
{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"bench-","labels":{"app":"bench"}},
 "spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}]}}
J
  : > "$dir/curl.cfg"
  for _ in $(seq "$PODS"); do
    printf 'url = "%s/api/v1/namespaces/default/pods"\nrequest = "POST"\ndata = "@%s/pod.json"\nheader = "Content-Type: application/json"\noutput = "/dev/null"\nnext\n' "$URL" "$dir" >> "$dir/curl.cfg"
  done
  local t0 t1 t2
  t0=$(date +%s.%N)
  curl -s --no-progress-meter --parallel --parallel-max 32 --cacert "$dir/ca.pem" --cert "$dir/cert.pem" --key "$dir/key.pem" -K "$dir/curl.cfg"
  t1=$(date +%s.%N)
  until [ "$(total)" -ge "$PODS" ] && [ "$(unbound)" -eq 0 ]; do sleep 0.5; done
  t2=$(date +%s.%N)
  python3 -c "import sys; t0,t1,t2=map(float,sys.argv[1:]); print(f'{$n} nodes: {$PODS} pods created in {t1-t0:.1f} s, all bound after {t2-t0:.1f} s -> {$PODS/(t2-t0):.0f} pods/s (peer kube-scheduler: low hundreds/s; ratio vs 200/s: {$PODS/(t2-t0)/200:.1f}x)')" "$t0" "$t1" "$t2"
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
deployment
