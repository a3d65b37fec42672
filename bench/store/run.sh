#!/usr/bin/env bash
# bench/store/run.sh — our store vs the raw stores, in one run.
#
#   bench/store/run.sh [N] [CLIENTS]     (defaults: 10000 creates, 16 clients)
#
# Builds crates/store's `store_bench` example (release profile), starts a
# single-member etcd on loopback with a scratch data dir, and prints one table:
# raw rusqlite INSERTs (WAL, synchronous=FULL, one transaction each) beside our
# SQLite backend, and raw etcd-client puts beside our etcd backend, with
# objects/s, p50/p99 latency and the ratio ours/raw. Needs `etcd` (Debian's
# etcd-server); without it only the SQLite rows are printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
CLIENTS=${2:-16}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --release -q -p store --example store_bench
work=$(mktemp -d /tmp/bosun-bench-store.XXXXXX)
etcd_pid=
cleanup() {
  [ -n "$etcd_pid" ] && kill -9 "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

etcd_args=()
if command -v etcd >/dev/null; then
  cport=$(free_port); pport=$(free_port)
  etcd --name bench --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" --log-level warn >"$work/etcd.log" 2>&1 &
  etcd_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$cport/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  etcd_args=(--etcd "http://127.0.0.1:$cport")
else
  echo "etcd not installed: etcd rows skipped" >&2
fi

mkdir -p "$work/sqlite"
"$TARGET_DIR/release/examples/store_bench" --n "$N" --clients "$CLIENTS" --dir "$work/sqlite" "${etcd_args[@]}"
echo
echo "disk: $(df -h --output=source,fstype "$work" | tail -1)   files: $(du -sh "$work/sqlite" | cut -f1) sqlite, $(du -sh "$work/etcd" 2>/dev/null | cut -f1) etcd"
