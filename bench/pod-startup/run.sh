#!/usr/bin/env bash
# bench/pod-startup/run.sh — pod startup latency and idle RSS of `bosun server`
# with its built-in agent, in one run, on scratch paths (own state root with
# busybox, bridge, pod CIDR, cgroup root; everything removed at exit).
#
#   bench/pod-startup/run.sh [COUNTS...]     (default: 1 30 100)
#
# Latency = from just before `kubectl apply` of N pods (created at once,
# image present, imagePullPolicy IfNotPresent) to the moment a watch sees
# each pod Ready. Prints p50/p99 per N, and VmRSS of the server process
# (API server + controllers + kubelet + CRI) idle with 0 pods and with the
# largest N running. Kubernetes' SLO: p99 <= 5 s; target here p99 <= 1 s for
# 30 pods, <= 80 MiB RSS idle. Needs root, kubectl, /usr/lib/cni.
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTS=("${@:-1 30 100}")
read -r -a COUNTS <<<"${COUNTS[*]}"
cargo build --release -q -p bosun
BOSUN=${CARGO_TARGET_DIR:-target}/release/bosun
work=$(mktemp -d /tmp/bosun-bench-pods.XXXXXX)
tag=$$
bridge=bbench$((tag % 10000))
cg=/bosun-bench-pods-$tag
server=
cleanup() {
  if [ -n "$server" ]; then
    kubectl --kubeconfig "$work/kc" delete pods --all -n bench --timeout=180s >/dev/null 2>&1 || true
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  for d in /sys/fs/cgroup/*/"${cg#/}"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# busybox:latest in the scratch root, as ./dev setup builds it.
fs=$work/fs
mkdir -p "$fs"/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$fs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$fs/bin/$a" ] || ln -s busybox "$fs/bin/$a"; done
"$BOSUN" --root "$work/root" image import --rootfs "$fs" -c 'CMD ["sh"]' busybox:latest >/dev/null
rm -rf "$fs"

"$BOSUN" --root "$work/root" server --bind-address 127.0.0.1 --https-listen-port 0 \
  --data-dir "$work/data" --write-kubeconfig "$work/kc" --node-name "bosun-bench-$tag" \
  --cni-bridge "$bridge" --cgroup-root "$cg" --pod-cidr "10.199.$((tag % 200)).0/24" \
  --cri-socket "$work/cri.sock" --pod-log-dir "$work/logs" >"$work/server.out" 2>"$work/server.log" &
server=$!
export KUBECONFIG=$work/kc
for _ in $(seq 600); do
  kubectl get node "bosun-bench-$tag" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True && break
  sleep 0.1
done
kubectl create ns bench >/dev/null
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$server/status"; }
sleep 5
echo "| metric | bosun |"
echo "|---|---|"
echo "| idle RSS, server + agent, 0 pods | $(rss) |"

manifest() {
  local n=$1
  for i in $(seq "$n"); do
    cat <<EOM
---
apiVersion: v1
kind: Pod
metadata: {name: p$i, namespace: bench}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: busybox:latest, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
EOM
  done
}

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; printf "%.0f", a[i]*1000}'; }

for n in "${COUNTS[@]}"; do
  manifest "$n" >"$work/m$n.yaml"
  seen=$work/seen$n
  : >"$seen"
  kubectl get pods -n bench -w --no-headers \
    -o 'custom-columns=N:.metadata.name,R:.status.conditions[?(@.type=="Ready")].status' 2>/dev/null |
    while read -r name ready; do
      [ "$ready" = True ] && echo "$name $(date +%s.%N)" >>"$seen"
    done &
  watcher=$!
  sleep 1
  t0=$(date +%s.%N)
  kubectl apply -f "$work/m$n.yaml" >/dev/null
  for _ in $(seq 1200); do
    [ "$(sort -u -k1,1 "$seen" | wc -l)" -ge "$n" ] && break
    sleep 0.1
  done
  kill "$watcher" 2>/dev/null || true
  lat=$(sort -u -k1,1 "$seen" | awk -v t0="$t0" '{print $2 - t0}')
  echo "| $n pods at once: creation → Ready p50 / p99 | $(echo "$lat" | pct 50) / $(echo "$lat" | pct 99) ms ($(echo "$lat" | wc -l) Ready) |"
  if [ "$n" = "${COUNTS[-1]}" ]; then
    sleep 10
    echo "| idle RSS, server + agent, $n pods | $(rss) |"
  fi
  kubectl delete pods --all -n bench --timeout=300s >/dev/null
done
echo
echo "Kubernetes' SLO: p99 ≤ 5 s at cluster scale; target here p99 ≤ 1 s for 30 pods, ≤ 80 MiB idle RSS."
