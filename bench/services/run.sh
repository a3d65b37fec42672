#!/usr/bin/env bash
# bench/services: the service proxy and cluster DNS, in one run, inside a
# private "node" network namespace (bridge 10.42.0.1/24, busybox httpd
# backend pod, client pod), with `bosun server` running there:
#  1. requests/s with wrk from the client pod through a ClusterIP versus
#     directly to the pod IP (same client, same backend; busybox httpd closes
#     every connection, so every request is a new connection through the NAT
#     rules), and the ratio;
#  2. with SERVICES Services x ENDPOINTS endpoints programmed (default
#     1000 x 10): time from an EndpointSlice change to the rule being in the
#     kernel (kubectl returned -> visible in `nft list`, and the proxy's own
#     nft transaction time from its log), and the time of one full sync;
#  3. DNS queries/s and p50/p99 latency (bench/services/dnsload.py, 64
#     outstanding queries) at the DNS server's address and at the kube-dns
#     ClusterIP.
# Needs root, wrk, busybox, nft, kubectl, python3.
# Usage: bench/services/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BOSUN=${BOSUN:-$here/../../target/release/bosun}
SERVICES=${SERVICES:-1000}
ENDPOINTS=${ENDPOINTS:-10}
id=bosun-bench-svc-$$
node=$id-node backend=$id-be client=$id-cl
work=$(mktemp -d /tmp/$id.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "$backend" "$client" "$node"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
in_node() { ip netns exec "$node" "$@"; }
k() { in_node kubectl --kubeconfig "$work/kc" "$@"; }
now() { date +%s.%N; }
# The proxy's "nftables synced ... took_ms=N" debug lines (colour codes stripped).
synced() { sed 's/\x1b\[[0-9;]*m//g' "$1" | grep "nftables synced" || true; }
ms() { python3 -c "print(f'{($2-$1)*1000:.0f}')" "" "$1" "$2" 2>/dev/null || awk "BEGIN{printf \"%.0f\", ($2-$1)*1000}"; }

# Network: node namespace with a bridge, two pods on veths.
ip netns add "$node"
ip -n "$node" link set lo up
ip -n "$node" link add br0 type bridge
ip -n "$node" addr add 10.42.0.1/24 dev br0
ip -n "$node" link set br0 up
ip -n "$node" route add default dev br0
in_node sysctl -qw net.ipv4.ip_forward=1
in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
pod() { # name ip vethname
  ip netns add "$1"
  ip -n "$node" link add "$3" type veth peer name eth0 netns "$1"
  ip -n "$node" link set "$3" master br0 up
  ip -n "$1" link set lo up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" route add default via 10.42.0.1
}
pod "$backend" 10.42.0.10 vbe
pod "$client" 10.42.0.100 vcl
mkdir -p "$work/www" && echo backend > "$work/www/index.html"
ip netns exec "$backend" busybox httpd -f -p 80 -h "$work/www" & pids+=($!)

# bosun server in the node namespace, proxy sync timings logged.
BOSUN_LOG=${BOSUN_LOG:-info,proxy=debug} in_node "$BOSUN" server --bind-address 127.0.0.1 \
  --https-listen-port 0 --data-dir "$work/data" --write-kubeconfig "$work/kc" \
  --disable-controller-manager --disable-scheduler --node-ip 10.42.0.1 --node-name node1 \
  --cluster-cidr 10.42.0.0/16 >/dev/null 2>"$work/server.log" & pids+=($!)
until [ -s "$work/kc" ] && k get --raw /readyz >/dev/null 2>&1; do sleep 0.2; done

# 1. ClusterIP vs pod IP.
k create namespace bench >/dev/null
cat > "$work/web.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: web, namespace: bench}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: bench, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints: [{addresses: ["10.42.0.10"], conditions: {ready: true}}]
EOF
k create -f "$work/web.yaml" >/dev/null
vip=$(k -n bench get svc web -o jsonpath='{.spec.clusterIP}')
until ip netns exec "$client" busybox timeout 5 busybox wget -q -O - "http://$vip/" >/dev/null 2>&1; do sleep 0.2; done
rps() { ip netns exec "$client" wrk -t2 -c16 -d8s "$1" | awk '/Requests\/sec/{print $2}'; }
direct=$(rps http://10.42.0.10/)
via=$(rps "http://$vip/")
direct2=$(rps http://10.42.0.10/)
echo "## bench/services ($(date -u +%F), $(nproc) cores)"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| wrk to pod IP, req/s (before / after) | $direct / $direct2 |"
echo "| wrk to ClusterIP, req/s | $via |"
echo "| ClusterIP / direct | $(awk "BEGIN{printf \"%.2f\", $via/(($direct+$direct2)/2)}") |"

# 3. DNS (before the big table, so the numbers are the server's alone).
dns_port=$(k -n kube-system get endpointslice kube-dns-bosun -o jsonpath='{.ports[0].port}')
names="web.bench.svc.cluster.local kubernetes.default.svc.cluster.local nope.bench.svc.cluster.local"
until ip netns exec "$client" busybox nslookup web.bench.svc.cluster.local 10.43.0.10 >/dev/null 2>&1; do sleep 0.2; done
echo "| DNS at 10.42.0.1:$dns_port (direct), 64 outstanding | $(ip netns exec "$client" python3 "$here/dnsload.py" 10.42.0.1 "$dns_port" 5 64 $names) |"
echo "| DNS at 10.43.0.10:53 (kube-dns ClusterIP) | $(ip netns exec "$client" python3 "$here/dnsload.py" 10.43.0.10 53 5 64 $names) |"

# 2. Scale: SERVICES x ENDPOINTS.
python3 - "$SERVICES" "$ENDPOINTS" > "$work/many.yaml" <<'PY'
import sys
n, e = int(sys.argv[1]), int(sys.argv[2])
for s in range(n):
    print(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{s}, namespace: bench}}\n"
          f"spec: {{ports: [{{name: http, port: 80}}]}}")
    eps = ", ".join(f'{{addresses: ["10.{44 + s // 250}.{s % 250}.{i + 1}"], conditions: {{ready: true}}}}' for i in range(e))
    print(f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
          f"metadata: {{name: svc-{s}-1, namespace: bench, labels: {{kubernetes.io/service-name: svc-{s}}}}}\n"
          f"addressType: IPv4\nports: [{{name: http, port: 80, protocol: TCP}}]\nendpoints: [{eps}]")
PY
t0=$(now)
k create -f "$work/many.yaml" >/dev/null
until [ "$(in_node nft list map ip bosun service-ips | grep -c 'goto svc-bench/svc-')" -ge "$SERVICES" ]; do sleep 0.5; done
t1=$(now)
echo "| create $SERVICES Services + slices with kubectl until all in the kernel | $(ms "$t0" "$t1") ms |"
lat=() e2e=() own=()
for i in 1 2 3 4 5; do
  s=$((i * 97 % SERVICES)) ip="10.99.$i.$((RANDOM % 250 + 1))"
  cat > "$work/change.yaml" <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-$s-1, namespace: bench, labels: {kubernetes.io/service-name: svc-$s}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints: [{addresses: ["$ip"], conditions: {ready: true}}]
EOF
  before=$(synced "$work/server.log" | wc -l)
  a=$(now)
  k replace -f "$work/change.yaml" >/dev/null
  b=$(now)
  # Wait for the proxy's next sync (no nft polling: dumping 11 000 chains
  # every few ms would compete with the transaction being measured).
  until [ "$(synced "$work/server.log" | wc -l)" -gt "$before" ]; do sleep 0.01; done
  line=$(synced "$work/server.log" | tail -n +$((before + 1)) | tail -1)
  c=$(date -d "$(echo "$line" | awk '{print $1}')" +%s.%N)
  in_node nft list chain ip bosun "clu-bench/svc-$s/tcp/http" | grep -q "$ip" || { echo "rule for $ip missing" >&2; exit 1; }
  lat+=("$(ms "$b" "$c")") e2e+=("$(ms "$a" "$c")")
  own+=("$(synced "$work/server.log" | tail -n +$((before + 1)) | grep -o 'took_ms=[0-9]*' | cut -d= -f2 | paste -sd+ || true)")
  sleep 0.5
done
echo "| slice change -> proxy sync done (rule in kernel), after kubectl returned (5 runs), ms | ${lat[*]} |"
echo "| same, from kubectl start (includes kubectl's ~100+ ms), ms | ${e2e[*]} |"
echo "| the proxy's nft transaction(s) for each change, ms | ${own[*]} |"
# One full sync of the whole table: restart the server (stale table replaced).
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'
rm -f "$work/kc"
BOSUN_LOG=${BOSUN_LOG:-info,proxy=debug} in_node "$BOSUN" server --bind-address 127.0.0.1 \
  --https-listen-port 0 --data-dir "$work/data" --write-kubeconfig "$work/kc" \
  --disable-controller-manager --disable-scheduler --node-ip 10.42.0.1 --node-name node1 \
  --cluster-cidr 10.42.0.0/16 >/dev/null 2>"$work/server2.log" & pids+=($!)
until [ -n "$(synced "$work/server2.log")" ]; do sleep 0.2; done
full=$(synced "$work/server2.log" | head -1 | grep -o 'took_ms=[0-9]*' | cut -d= -f2)
chains=$(in_node nft list table ip bosun | grep -c '^\s*chain ')
echo "| full sync after restart ($chains chains), ms | $full |"
