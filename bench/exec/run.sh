#!/usr/bin/env bash
# bench/exec/run.sh — kubectl streaming against `bosun server` with its
# built-in agent (API server → kubelet HTTPS endpoint → CRI streaming
# server), each figure beside a peer measured in the same run, on scratch
# paths (own state root with busybox, bridge, pod CIDR, cgroup root,
# podman root; everything removed at exit):
#   - `kubectl exec POD -- true` round trip, p50/p99 over N runs (default 50);
#     peers: `podman exec` on a podman busybox container (--rootfs), and
#     `kubectl get pod` (kubectl's own start-up plus one API call: the floor
#     any kubectl command pays);
#   - `kubectl logs -f` line latency: the host writes a line into a FIFO the
#     container cats to its stdout, and times its arrival on kubectl's
#     stdout (p50/p99 over 40 lines); peer: `podman logs -f`;
#   - port-forward throughput: a 64 MB file from busybox httpd through
#     `kubectl port-forward` (WebSocket-tunnelled SPDY, kubectl's default,
#     and plain SPDY) against curl straight to the pod IP; median of 5
#     downloads each (target >= 0.5 of direct); and the client's ceiling:
#     kubectl against pf_ideal.py, which answers the port-forward itself
#     from memory (no kubelet, no pod, one TLS layer).
# Every figure's line carries /proc/loadavg. Needs root, kubectl, curl,
# python3, /usr/lib/cni; podman optional. Uses target/release/bosun (or
# $BOSUN); builds it only when missing. Progress goes to stderr.
#
#   bench/exec/run.sh [N]          (SECTIONS="exec logs pf" picks parts)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-50}
SECTIONS=${SECTIONS:-exec logs pf}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
BOSUN=${BOSUN:-${CARGO_TARGET_DIR:-target}/release/bosun}
if [ ! -x "$BOSUN" ]; then
  echo "building $BOSUN (cargo build --release -p bosun)…" >&2
  cargo build --release -q -p bosun --bin bosun
fi
BOSUN=$(realpath "$BOSUN")
work=$(mktemp -d /tmp/bosun-bench-exec.XXXXXX)
tag=$$
bridge=bxbench$((tag % 10000))
cg=/bosun-bench-exec-$tag
peer=bosun-bench-exec-$tag
server=
pfpid=
idealpid=
PODMAN=(podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp"
  --cgroup-manager=cgroupfs --events-backend=file)
step() { echo "[$(date +%T)] $*" >&2; }
cleanup() {
  step "cleaning up"
  [ -n "$pfpid" ] && kill "$pfpid" 2>/dev/null || true
  [ -n "$idealpid" ] && kill "$idealpid" 2>/dev/null || true
  timeout 60 "${PODMAN[@]}" rm -f -t 0 "$peer" >/dev/null 2>&1 || true
  if [ -n "$server" ]; then
    timeout 150 kubectl --kubeconfig "$work/kc" delete pods --all -n bench --timeout=120s >/dev/null 2>&1 || true
    # Pods with a 0 s grace period vanish from the API at once; the kubelet
    # then removes their containers (and rootfs mounts): wait for that.
    for _ in $(seq 300); do
      grep -q " $work/root/" /proc/mounts || break
      sleep 0.2
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  grep " $work/" /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for d in /sys/fs/cgroup/*/"${cg#/}"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  umount -R "$work/podman" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
die() {
  echo "bench/exec: $*" >&2
  tail -20 "$work/server.log" >&2 || true
  exit 1
}

# busybox:latest in the scratch root (the rootfs stays for podman's --rootfs).
step "importing busybox"
fs=$work/fs
# shellcheck source=hack/busybox.sh
. hack/busybox.sh
busybox_rootfs "$fs"
mkdir -p "$fs/t"
busybox_import "$BOSUN" "$work/root" "$fs"

# Ephemeral API and kubelet ports; no service proxy or cluster DNS on the
# shared host network (not measured here).
step "starting bosun server"
"$BOSUN" --root "$work/root" server --bind-address 127.0.0.1 --https-listen-port 0 --kubelet-port 0 \
  --disable-kube-proxy --disable-cluster-dns \
  --data-dir "$work/data" --write-kubeconfig "$work/kc" --node-name "bosun-bench-$tag" \
  --cni-bridge "$bridge" --cgroup-root "$cg" --pod-cidr "10.198.$((tag % 200)).0/24" \
  --cri-socket "$work/cri.sock" --pod-log-dir "$work/logs" >"$work/server.out" 2>"$work/server.log" &
server=$!
export KUBECONFIG=$work/kc
ready=
for _ in $(seq 900); do
  kill -0 "$server" 2>/dev/null || die "bosun server exited"
  if [ -s "$work/kc" ] && kubectl get node "bosun-bench-$tag" --request-timeout=5s \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; then
    ready=1
    break
  fi
  sleep 0.2
done
[ -n "$ready" ] || die "node not Ready after 180 s"
kubectl create ns bench >/dev/null
mkdir -p "$work/fifo-pod" "$work/fifo-peer"
mkfifo "$work/fifo-pod/p" "$work/fifo-peer/p"
step "starting pods"
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
kubectl wait -n bench --for=condition=Ready pod/web pod/tick --timeout=180s >/dev/null || die "pods not Ready"
ip=$(kubectl get pod -n bench web -o jsonpath='{.status.podIP}')
served=
for _ in $(seq 150); do
  if curl -sf --connect-timeout 2 --max-time 5 -o /dev/null -r 0-0 "http://$ip:8080/big"; then
    served=1
    break
  fi
  sleep 0.2
done
[ -n "$served" ] || die "httpd in pod web ($ip:8080) does not answer from the host"

have_peer=0
if command -v podman >/dev/null; then
  step "starting the podman peer"
  if timeout 120 "${PODMAN[@]}" run -d --name "$peer" --network=none --ulimit nofile=1024:1024 \
    --ulimit nproc=32768:32768 -v "$work/fifo-peer:/t" --rootfs "$fs" \
    sh -c 'while true; do cat /t/p; done' >/dev/null 2>"$work/podman.err"; then
    have_peer=1
  else
    echo "(peer podman unavailable: $(tail -1 "$work/podman.err"))"
  fi
fi

cat >"$work/stats.py" <<'EOP'
import subprocess, sys, time, os, threading
def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p / 100))]
def report(name, xs, n):
    if not xs:
        print(f"| {name} | failed | | 0/{n} | {load()} |", flush=True); return
    print(f"| {name} | {pct(xs,50)*1000:.1f} ms | {pct(xs,99)*1000:.1f} ms | {len(xs)}/{n} | {load()} |", flush=True)
mode = sys.argv[1]
if mode == "exec":
    n, name, cmd = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode == 0: xs.append(time.perf_counter() - t)
    report(name, xs, n)
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
    # O_NONBLOCK open fails (ENXIO) while no reader has the FIFO open:
    # never block forever on a container that is not reading.
    fd = None
    for _ in range(100):
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK); break
        except OSError:
            time.sleep(0.1)
    if fd is None:
        p.kill(); report(name, [], 40); sys.exit(0)
    os.set_blocking(fd, True)
    for i in range(40):
        sent[str(i)] = time.perf_counter(); os.write(fd, f"lat {i}\n".encode())
        time.sleep(0.25)
    os.close(fd)
    time.sleep(2); p.kill()
    report(name, [got[k] - sent[k] for k in sent if k in got], 40)
elif mode == "speed":
    # MB/s of each of R downloads of URL; prints the median.
    url, r = sys.argv[2], int(sys.argv[3])
    xs = []
    for _ in range(r):
        out = subprocess.run(["curl", "-s", "--connect-timeout", "5", "--max-time", "120",
                              "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url],
                             capture_output=True, text=True).stdout.split()
        if len(out) == 2 and int(float(out[1])) == 64 << 20:
            xs.append(float(out[0]) / 1e6)
    xs.sort()
    print(f"{xs[len(xs) // 2]:.0f}" if xs else "0")
EOP
st() { python3 "$work/stats.py" "$@"; }

if want exec; then
step "exec round trips ($N each)"
echo "## exec round trip"
echo "| command | p50 | p99 | ok/runs | loadavg |"
echo "|---|---|---|---|---|"
st exec "$N" "kubectl exec web -- true" kubectl exec -n bench web -- true
[ $have_peer = 1 ] && st exec "$N" "podman exec (peer)" "${PODMAN[@]}" exec "$peer" true
st exec "$N" "kubectl get pod web (client floor)" kubectl get pod -n bench web -o name
echo
fi
if want logs; then
step "logs -f line latency"
echo "## logs -f line latency"
echo "| reader | p50 | p99 | lines | loadavg |"
echo "|---|---|---|---|---|"
st logs "$work/fifo-pod/p" "kubectl logs -f" kubectl logs -f -n bench tick --tail=0
[ $have_peer = 1 ] && st logs "$work/fifo-peer/p" "podman logs -f (peer)" "${PODMAN[@]}" logs -f --tail=0 "$peer"
echo
fi
want pf || exit 0

# forward ENV...: starts kubectl port-forward, sets $port to its local port.
forward() {
  env "$@" kubectl port-forward -n bench pod/web :8080 >"$work/pf.out" 2>"$work/pf.err" &
  pfpid=$!
  port=
  for _ in $(seq 300); do
    port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\).*/\1/p' "$work/pf.out")
    [ -n "$port" ] && break
    sleep 0.1
  done
}
# CPU (user+system) a process has used so far, in ms (clock ticks of 10 ms).
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_lines=()
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
step "port-forward throughput"
echo "## port-forward throughput, 64 MB, median of 5"
echo "| path | MB/s | vs direct | loadavg |"
echo "|---|---|---|---|"
direct=$(st speed "http://$ip:8080/big" 5)
echo "| direct to the pod IP | $direct | 1.00 | $(load) |"
# The client's ceiling: kubectl against pf_ideal.py, a TLS front for the API
# server that answers the port-forward itself from memory (plain SPDY).
ideal_kubeconfig() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=pf-ideal -keyout "$work/ideal.key" -out "$work/ideal.crt" 2>/dev/null
  kubectl config view --raw -o json >"$work/kc.json"
  python3 bench/exec/pf_ideal.py "$work/ideal.port" "$work/kc.json" "$work/ideal.crt" "$work/ideal.key" \
    crates/streaming/src/spdy3_dictionary.bin 64 "${PF_IDEAL_FRAME_KB:-256}" 2>"$work/ideal.err" &
  idealpid=$!
  for _ in $(seq 100); do [ -s "$work/ideal.port" ] && break; sleep 0.1; done
  cp "$work/kc" "$work/kc-ideal"
  local cluster
  cluster=$(kubectl config view -o jsonpath='{.clusters[0].name}')
  kubectl --kubeconfig "$work/kc-ideal" config unset "clusters.$cluster.certificate-authority-data" >/dev/null
  kubectl --kubeconfig "$work/kc-ideal" config set-cluster "$cluster" --insecure-skip-tls-verify=true \
    --server "https://127.0.0.1:$(cat "$work/ideal.port")" >/dev/null
}
for mode in ${PF_MODES:-websocket spdy ideal}; do
  case $mode in
    websocket) forward ;;
    spdy) forward KUBECTL_PORT_FORWARD_WEBSOCKETS=false ;;
    ideal) ideal_kubeconfig; forward KUBECONFIG="$work/kc-ideal" KUBECTL_PORT_FORWARD_WEBSOCKETS=false ;;
  esac
  if [ -n "$port" ]; then
    srv=$server
    [ $mode = ideal ] && srv=$idealpid
    k0=$(cpu_ms "$pfpid") s0=$(cpu_ms "$srv")
    pf=$(st speed "http://127.0.0.1:$port/big" 5)
    k1=$(cpu_ms "$pfpid") s1=$(cpu_ms "$srv")
    echo "| kubectl port-forward ($mode) | $pf | $(ratio "$pf" "$direct") | $(load) |"
    cpu_lines+=("| $mode: CPU over its transfers (warm-up + 5 x 64 MB) | kubectl $((k1 - k0)) ms, $([ $mode = ideal ] && echo pf_ideal.py || echo bosun server) $((s1 - s0)) ms |")
  else
    echo "| kubectl port-forward ($mode) | failed: $(tail -1 "$work/pf.err") | | $(load) |"
  fi
  kill "$pfpid" 2>/dev/null || true
  wait "$pfpid" 2>/dev/null || true
  pfpid=
done
for l in "${cpu_lines[@]}"; do echo "$l"; done
# The direct path again, after: the machine's load drifts during the run.
direct2=$(st speed "http://$ip:8080/big" 5)
echo "| direct to the pod IP (again) | $direct2 | $(ratio "$direct2" "$direct") | $(load) |"
