#!/usr/bin/env bash
# bench/apiserver/run.sh — the API server under load, on both backends, in one run.
#
#   bench/apiserver/run.sh [N] [CLIENTS] [WATCHERS]   (defaults: 10000, 16, 1000)
#
# For SQLite (embedded) and etcd (single loopback member, if installed):
#   - N ConfigMap creates through the API with CLIENTS concurrent HTTPS clients
#     (objects/s, p50/p99), beside the raw store's figure from bench/store's
#     store_bench (same N and concurrency), with the ratio API/raw;
#   - idle RSS of `bosun server` holding those N objects;
#   - N pod creates, then p99 of listing all N pods;
#   - WATCHERS watchers on pods and 1000 pod creates: p99 delivery latency.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
CLIENTS=${2:-16}
WATCHERS=${3:-1000}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
ulimit -n 65536 2>/dev/null || true

cargo build --release -q -p bosun --bin bosun
cargo build --release -q -p apiserver --example apiserver_bench
cargo build --release -q -p store --example store_bench
BOSUN=$TARGET_DIR/release/bosun
BENCH=$TARGET_DIR/release/examples/apiserver_bench
work=$(mktemp -d /tmp/bosun-bench-apiserver.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_etcd() {
  local cport pport
  cport=$(free_port); pport=$(free_port)
  etcd --name bench --data-dir "$work/etcd" --quota-backend-bytes 8589934592 \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" --log-level warn >"$work/etcd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$cport/health" >/dev/null 2>&1 && break; sleep 0.2; done
  ETCD_URL="http://127.0.0.1:$cport"
}

# run_backend NAME [--datastore-endpoint URL]
run_backend() {
  local name=$1; shift
  local dir=$work/$name port server
  port=$(free_port)
  "$BOSUN" server --disable-agent --data-dir "$dir/data" --write-kubeconfig "$dir/kubeconfig" --bind-address 127.0.0.1 \
    --https-listen-port "$port" "$@" >"$dir.log" 2>&1 &
  server=$!
  pids+=("$server")
  local url=https://127.0.0.1:$port
  for _ in $(seq 300); do [ -f "$dir/data/tokens.csv" ] && break; sleep 0.1; done
  local token; token=$(cut -d, -f1 "$dir/data/tokens.csv" | head -1)
  local ca=$dir/data/tls/ca.crt
  for _ in $(seq 300); do curl -sf --cacert "$ca" -H "Authorization: Bearer $token" "$url/readyz" >/dev/null && break; sleep 0.1; done
  for ns in bench fan; do
    curl -sf --cacert "$ca" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -X POST "$url/api/v1/namespaces" -d "{\"metadata\":{\"name\":\"$ns\"}}" >/dev/null
  done
  local b=(--url "$url" --token "$token" --ca "$ca")
  echo "== bosun server on $name =="
  "$BENCH" create-configmaps "${b[@]}" --n "$N" --clients "$CLIENTS" | tee "$work/$name.create"
  sleep 5
  echo "idle RSS with $N ConfigMaps stored: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$server/status)"
  "$BENCH" create-pods "${b[@]}" --n "$N" --clients "$CLIENTS"
  "$BENCH" list-pods "${b[@]}" --n 30
  "$BENCH" watch-fanout "${b[@]}" --n 1000 --watchers "$WATCHERS"
  echo "RSS after the run: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$server/status)"
  echo
}

mkdir -p "$work/sqlite" "$work/etcd-api"
run_backend sqlite
etcd_args=()
if command -v etcd >/dev/null; then
  start_etcd
  run_backend etcd-api --datastore-endpoint "$ETCD_URL"
  etcd_args=(--etcd "$ETCD_URL")
else
  echo "etcd not installed: etcd rows skipped" >&2
fi

echo "== raw stores (bench/store's store_bench, $N creates, $CLIENTS clients) =="
mkdir -p "$work/raw"
"$TARGET_DIR/release/examples/store_bench" --n "$N" --clients "$CLIENTS" --dir "$work/raw" "${etcd_args[@]}" | tee "$work/raw.out"
echo
api_rate() { sed -n 's/.*= \([0-9]*\) ops\/s.*/\1/p' "$work/$1.create"; }
raw_rate() { awk -F'|' -v k="$1" '$2 ~ k {gsub(/ /,"",$3); print $3; exit}' "$work/raw.out"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1] or 0),float(sys.argv[2] or 0); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
s_api=$(api_rate sqlite); s_raw=$(raw_rate "raw rusqlite")
echo "ConfigMap creates/s through the API vs the raw store:"
echo "  SQLite: API $s_api/s, raw $s_raw/s, ratio $(ratio "$s_api" "$s_raw")"
if [ ${#etcd_args[@]} -gt 0 ]; then
  e_api=$(api_rate etcd-api); e_raw=$(raw_rate "raw etcd")
  echo "  etcd:   API $e_api/s, raw $e_raw/s, ratio $(ratio "$e_api" "$e_raw")"
fi
