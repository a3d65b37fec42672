#!/usr/bin/env bash
# hack/gpu-node-check.sh — checks bosun's NVIDIA GPU support on a host that has a GPU
# (CI machines have none; the test suite covers GPU detection on a fake /dev tree).
#
#   1. the real-hardware device-plugin test (`gpus_on_real_hardware`), if its binary is given;
#   2. a single-node cluster (`bosun server` with its built-in agent, no proxy/DNS) plus
#      `bosun device-plugin`, which must detect the GPUs and publish nvidia.com/gpu;
#   3. a pod limited to one nvidia.com/gpu runs and sees /dev/nvidia<N>, nvidiactl and
#      NVIDIA_VISIBLE_DEVICES; with every GPU taken, one more such pod stays Pending with an
#      "Insufficient nvidia.com/gpu" event; deleting the first lets it run.
#
# Usage: BOSUN=path/to/bosun KUBECTL=kubectl [DP_TEST=path/to/device_plugin-test] \
#        [BUSYBOX=/bin/busybox] [LOGS=dir] [DEV_ROOT=/] hack/gpu-node-check.sh
# Runs as root; leaves nothing behind (scratch state under a temp dir, its own cgroup root,
# pods deleted and the server stopped at exit, also on failure).
set -u
# shellcheck source=hack/busybox.sh
. "$(dirname "$0")/busybox.sh"
BOSUN=${BOSUN:-target/release/bosun}
KUBECTL=${KUBECTL:-kubectl}
BUSYBOX=${BUSYBOX:-/bin/busybox}
# A fake dev tree for a dry run without a GPU (char devices made with mknod).
DEV_ROOT=${DEV_ROOT:-/}
# The node's address (a GPU box may have no default route to detect it from).
NODE_IP=${NODE_IP:-$(hostname -I 2>/dev/null | awk '{print $1}')}
NODE_IP=${NODE_IP:-127.0.0.1}
LOGS=${LOGS:-$(mktemp -d /tmp/bosun-gpu-logs-XXXXXX)}
mkdir -p "$LOGS"
WORK=$(mktemp -d /tmp/bosun-gpu-XXXXXX)
ROOT=$WORK/root
KC=$WORK/admin.kubeconfig
FAILED=0
SERVER=""
PLUGIN=""

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; FAILED=1; }
k() { "$KUBECTL" --kubeconfig "$KC" "$@"; }
CGROUP=bosun-gpu-check-$$
cleanup() {
  k delete pod --all --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1
  [ -n "$PLUGIN" ] && kill "$PLUGIN" 2>/dev/null
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  # Containers outlive the agent (as containerd's shims do): stop whatever is left in
  # this run's own cgroup root, then drop its mounts, cgroups and files.
  find /sys/fs/cgroup -path "*/$CGROUP/*" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
  sleep 0.5
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find /sys/fs/cgroup -depth -type d -path "*/$CGROUP*" -exec rmdir {} + 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local n=$(($1 * 2)) what=$2; shift 2
  while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; n=$((n - 1)); done
  fail "timed out waiting for $what"; return 1
}

say "host"
uname -r
nvidia-smi -L 2>&1 | head -4
ls -l "$DEV_ROOT"/dev/nvidia* 2>&1
echo "cgroup fs: $(stat -fc %T /sys/fs/cgroup)"
for p in nft iptables ip mount; do printf '%s: %s\n' "$p" "$(command -v $p || echo missing)"; done

if [ -n "${DP_TEST:-}" ]; then
  say "device-plugin test on real hardware"
  timeout 180 "$DP_TEST" --exact gpus_on_real_hardware --nocapture --test-threads 1 2>&1 | tail -8
  [ "${PIPESTATUS[0]}" = 0 ] || fail "gpus_on_real_hardware"
fi

say "busybox image"
busybox_rootfs "$WORK/rootfs" "$BUSYBOX"
busybox_import "$BOSUN" "$ROOT" "$WORK/rootfs" || fail "image import"

say "bosun server + agent"
"$BOSUN" --root "$ROOT" server --data-dir "$ROOT/server" --write-kubeconfig "$KC" \
  --https-listen-port 0 --kubelet-port 0 --disable-kube-proxy --disable-cluster-dns \
  --cri-socket "$WORK/cri.sock" --cgroup-root "/$CGROUP" --root-dir "$ROOT/kubelet" --pod-log-dir "$WORK/logs" \
  --node-name gpu-node --node-ip "$NODE_IP" -v >"$LOGS/server.log" 2>&1 &
SERVER=$!
wait_for 90 "node Ready" sh -c "'$KUBECTL' --kubeconfig '$KC' get node gpu-node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" \
  || { tail -30 "$LOGS/server.log"; exit 1; }

say "bosun device-plugin"
"$BOSUN" --root "$ROOT" device-plugin --dev-root "$DEV_ROOT" --dir "$ROOT/kubelet/device-plugins" -v >"$LOGS/plugin.log" 2>&1 &
PLUGIN=$!
gpus=$(ls "$DEV_ROOT/dev" | grep -c '^nvidia[0-9][0-9]*$')
wait_for 60 "nvidia.com/gpu allocatable" sh -c "'$KUBECTL' --kubeconfig '$KC' get node gpu-node -o jsonpath='{.status.allocatable.nvidia\.com/gpu}' | grep -qx $gpus"
echo "capacity: $(k get node gpu-node -o jsonpath='{.status.capacity}')"
echo "allocatable: $(k get node gpu-node -o jsonpath='{.status.allocatable}')"

pod() { # pod NAME: one busybox container limited to one GPU, host network (no CNI needed)
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: cuda
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "ls /dev | grep nvidia; echo NVIDIA_VISIBLE_DEVICES=\$NVIDIA_VISIBLE_DEVICES; ls -l /dev/nvidia* >&2; sleep 3600"]
    resources: {limits: {nvidia.com/gpu: 1}}
YAML
}
running() { k get pod "$1" -o jsonpath='{.status.phase}' | grep -qx Running; }

say "pods that each take one GPU ($gpus on this host)"
for i in $(seq 1 "$gpus"); do
  pod "gpu-$i" | k create -f - && wait_for 90 "gpu-$i Running" running "gpu-$i"
  k logs "gpu-$i"
  k logs "gpu-$i" | grep -q '^nvidiactl$' || fail "gpu-$i sees no /dev/nvidiactl"
  k logs "gpu-$i" | grep -q '^NVIDIA_VISIBLE_DEVICES=[0-9]' || fail "gpu-$i has no NVIDIA_VISIBLE_DEVICES"
done
say "one pod more than GPUs stays Pending"
pod gpu-extra | k create -f -
sleep 5
k get pod gpu-extra -o jsonpath='{.status.phase}{"\n"}'
wait_for 30 "Insufficient nvidia.com/gpu event" sh -c "'$KUBECTL' --kubeconfig '$KC' get events --field-selector involvedObject.name=gpu-extra -o jsonpath='{.items[*].message}' | grep -q 'Insufficient nvidia.com/gpu'"
k get events --field-selector involvedObject.name=gpu-extra -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}'
k delete pod gpu-1 --wait=true
wait_for 90 "gpu-extra Running after gpu-1 went" running gpu-extra && k logs gpu-extra

say "result"
[ "$FAILED" = 0 ] && echo "GPU NODE CHECK PASSED" || { echo "GPU NODE CHECK FAILED"; tail -40 "$LOGS/server.log"; }
exit "$FAILED"
