#!/usr/bin/env bash
# bench/exec/run.sh — kubectl streaming against `bosun server` with its
# built-in agent (API server → kubelet HTTPS endpoint → CRI streaming
# server), each figure beside a peer measured in the same run, on scratch
# paths (own state root with busybox, bridge, pod CIDR, cgroup root,
# podman root; everything removed at exit):
#   - `kubectl exec POD -- true` round trip, p50/p99 over N runs (default 50);
#     peer: `podman exec` on a podman busybox container (--rootfs);
#   - `kubectl logs -f` line latency: the host writes a line into a FIFO the
#     container cats to its stdout, and times its arrival on kubectl's
#     stdout (p50/p99 over 40 lines); peer: `podman logs -f`;
#   - port-forward throughput: 64 MB from busybox httpd through
#     `kubectl port-forward` (WebSocket-tunnelled SPDY, kubectl's default,
#     and plain SPDY) against curl straight to the pod IP (target >= 0.5).
# Needs root, kubectl, curl, python3, /usr/lib/cni; podman optional.
#
#   bench/exec/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-50}
cargo build --release -q -p bosun --bin bosun
BOSUN=${CARGO_TARGET_DIR:-target}/release/bosun
work=$(mktemp -d /tmp/bosun-bench-exec.XXXXXX)
tag=$$
bridge=bxbench$((tag % 10000))
cg=/bosun-bench-exec-$tag
peer=bosun-bench-exec-$tag
server=
pfpid=
PODMAN=(podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp"
  --cgroup-manager=cgroupfs --events-backend=file)
cleanup() {
  [ -n "$pfpid" ] && kill "$pfpid" 2>/dev/null || true
  "${PODMAN[@]}" rm -f -t 0 "$peer" >/dev/null 2>&1 || true
  if [ -n "$server" ]; then
    kubectl --kubeconfig "$work/kc" delete pods --all -n bench --timeout=120s >/dev/null 2>&1 || true
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  for d in /sys/fs/cgroup/*/"${cg#/}"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  umount -R "$work/podman" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# busybox:latest in the scratch root (the rootfs stays for podman's --rootfs).
fs=$work/fs
mkdir -p "$fs"/{bin,etc,proc,sys,dev,tmp,t}
cp /bin/busybox "$fs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$fs/bin/$a" ] || ln -s busybox "$fs/bin/$a"; done
"$BOSUN" --root "$work/root" image import --rootfs "$fs" -c 'CMD ["sh"]' busybox:latest >/dev/null

"$BOSUN" --root "$work/root" server --bind-address 127.0.0.1 --https-listen-port 0 \
  --data-dir "$work/data" --write-kubeconfig "$work/kc" --node-name "bosun-bench-$tag" \
  --cni-bridge "$bridge" --cgroup-root "$cg" --pod-cidr "10.198.$((tag % 200)).0/24" \
  --cri-socket "$work/cri.sock" --pod-log-dir "$work/logs" >"$work/server.out" 2>"$work/server.log" &
server=$!
export KUBECONFIG=$work/kc
for _ in $(seq 600); do
  kubectl get node "bosun-bench-$tag" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True && break
  sleep 0.1
done
kubectl create ns bench >/dev/null
mkdir -p "$work/fifo-pod" "$work/fifo-peer"
mkfifo "$work/fifo-pod/p" "$work/fifo-peer/p"
kubectl apply -f - >/dev/null <<EOM
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: bench}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1048576 count=64 2>/dev/null && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: tick, namespace: bench}
spec:
  terminationGracePeriodSeconds: 0
  volumes: [{name: t, hostPath: {path: "$work/fifo-pod"}}]
  containers:
  - name: tick
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while true; do cat /t/p; done"]
    volumeMounts: [{name: t, mountPath: /t}]
EOM
kubectl wait -n bench --for=condition=Ready pod/web pod/tick --timeout=180s >/dev/null
ip=$(kubectl get pod -n bench web -o jsonpath='{.status.podIP}')
for _ in $(seq 100); do curl -sf -o /dev/null "http://$ip:8080/big" -r 0-0 && break; sleep 0.2; done

have_peer=0
if command -v podman >/dev/null; then
  if "${PODMAN[@]}" run -d --name "$peer" --network=none --ulimit nofile=1024:1024 --ulimit nproc=32768:32768 \
    -v "$work/fifo-peer:/t" --rootfs "$fs" sh -c 'while true; do cat /t/p; done' >/dev/null 2>"$work/podman.err"; then
    have_peer=1
  else
    echo "(peer podman unavailable: $(tail -1 "$work/podman.err"))"
  fi
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
cat >"$work/stats.py" <<'EOP'
import subprocess, sys, time, os, threading
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p / 100))]
def report(name, xs):
    print(f"| {name} | {pct(xs,50)*1000:.1f} ms | {pct(xs,99)*1000:.1f} ms | {len(xs)} |", flush=True)
mode = sys.argv[1]
if mode == "exec":
    n, cmd = int(sys.argv[2]), sys.argv[3:]
    xs = []
    for _ in range(n):
        t = time.perf_counter(); r = subprocess.run(cmd, capture_output=True)
        if r.returncode == 0: xs.append(time.perf_counter() - t)
    report(" ".join(os.path.basename(c) for c in cmd[:2]) + " … true", xs)
elif mode == "logs":
    fifo, name, cmd = sys.argv[2], sys.argv[3], sys.argv[4:]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sent, got = {}, {}
    def reader():
        for line in p.stdout:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "lat":
                got[parts[1]] = time.perf_counter()
    threading.Thread(target=reader, daemon=True).start()
    time.sleep(2)
    with open(fifo, "w") as f:
        for i in range(40):
            sent[str(i)] = time.perf_counter(); f.write(f"lat {i}\n"); f.flush()
            time.sleep(0.25)
    time.sleep(2); p.kill()
    report(name, [got[k] - sent[k] for k in sent if k in got])
EOP
st() { python3 "$work/stats.py" "$@"; }

echo "## exec round trip (load $(load))"
echo "| command | p50 | p99 | runs |"
echo "|---|---|---|---|"
st exec "$N" kubectl exec -n bench web -- true
[ $have_peer = 1 ] && st exec "$N" "${PODMAN[@]}" exec "$peer" true
echo
echo "## logs -f line latency (load $(load))"
echo "| reader | p50 | p99 | lines |"
echo "|---|---|---|---|"
st logs "$work/fifo-pod/p" "kubectl logs -f" kubectl logs -f -n bench tick --tail=0
[ $have_peer = 1 ] && st logs "$work/fifo-peer/p" "podman logs -f" "${PODMAN[@]}" logs -f --tail=0 "$peer"
echo

# speed URL: MB/s of the best of 3 downloads of /big.
speed() {
  local best=0 s
  for _ in 1 2 3; do
    s=$(curl -s -o /dev/null -w '%{speed_download}' "$1" || echo 0)
    best=$(python3 -c "print(max($best, $s / 1e6))")
  done
  printf '%.0f' "$best"
}
# forward ENV...: starts kubectl port-forward, prints its local port.
forward() {
  env "$@" kubectl port-forward -n bench pod/web :8080 >"$work/pf.out" 2>"$work/pf.err" &
  pfpid=$!
  for _ in $(seq 300); do
    port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\).*/\1/p' "$work/pf.out")
    [ -n "$port" ] && break
    sleep 0.1
  done
}
direct=$(speed "http://$ip:8080/big")
echo "## port-forward throughput, 64 MB (load $(load))"
echo "| path | MB/s | vs direct |"
echo "|---|---|---|"
echo "| direct to the pod IP | $direct | 1.00 |"
for mode in websocket spdy; do
  if [ $mode = spdy ]; then forward KUBECTL_PORT_FORWARD_WEBSOCKETS=false; else forward; fi
  if [ -n "${port:-}" ]; then
    pf=$(speed "http://127.0.0.1:$port/big")
    echo "| kubectl port-forward ($mode) | $pf | $(python3 -c "print(f'{$pf / max($direct, 1):.2f}')") |"
  else
    echo "| kubectl port-forward ($mode) | failed: $(tail -1 "$work/pf.err") | |"
  fi
  kill "$pfpid" 2>/dev/null || true
  wait "$pfpid" 2>/dev/null || true
  pfpid= port=
done
