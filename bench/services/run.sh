#!/usr/bin/env bash
# bench/services: the service proxy and cluster DNS, in one run, inside a
# private "node" network namespace (bridge 10.42.0.1/24, busybox httpd
# backend pod, client pod), with `bosun server` running there:
#  1. requests/s with wrk from the client pod through a ClusterIP versus
#     directly to the pod IP (same client, same backend; busybox httpd closes
#     every connection, so every request is a new connection through the NAT
#     rules), and the ratio;
#  2. DNS queries/s and p50/p99 latency (bench/services/dnsload.py, 64
#     outstanding queries) at the DNS server's address, at the kube-dns
#     ClusterIP, and dnsmasq (the peer, when installed) answering the same
#     names from a hosts file;
#  3. with SERVICES Services x ENDPOINTS endpoints programmed (default
#     1000 x 10): time from an EndpointSlice change (CHANGES of them, default
#     20) to the proxy's nft transaction having committed (its "nftables
#     synced" log line; the rule is then checked with `nft list chain`),
#     p50/p99, and the proxy's own transaction time;
#  4. restart: the server is killed (SIGKILL, like a crash) over the full
#     table and started again: time until its first (full, atomic) sync
#     replaced the stale table.
# Every figure is printed with the load average beside it.
# Needs root, wrk, busybox, nft, kubectl, python3 (dnsmasq optional).
# Usage: bench/services/run.sh   (after `cargo build --release`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BOSUN=${BOSUN:-$here/../../target/release/bosun}
SERVICES=${SERVICES:-1000}
ENDPOINTS=${ENDPOINTS:-10}
CHANGES=${CHANGES:-20}
id=bosun-bench-svc-$$
node=$id-node backend=$id-be client=$id-cl
work=$(mktemp -d /tmp/$id.XXXXXX)
pids=()
server_pid=
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
load() { cut -d' ' -f1-3 /proc/loadavg; }
# The proxy's "nftables synced ... took_ms=N" debug lines (colour codes stripped).
synced() { sed 's/\x1b\[[0-9;]*m//g' "$1" | grep "nftables synced" || true; }
ms() { awk "BEGIN{printf \"%.0f\", ($2-$1)*1000}"; }
# "p50 X, p99 Y" of the numbers given.
pct() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
    i50 = int((NR + 1) / 2); i99 = int(NR * 0.99 + 0.999); if (i99 > NR) i99 = NR
    printf "p50 %s, p99 %s", a[i50], a[i99] }'
}
# bosun server in the node namespace (ip netns exec execs it, so $! is
# the server), proxy sync timings logged.
start_server() { # log-file
  BOSUN_LOG=${BOSUN_LOG:-info,proxy=debug} ip netns exec "$node" "$BOSUN" server \
    --bind-address 127.0.0.1 --https-listen-port 0 --data-dir "$work/data" \
    --write-kubeconfig "$work/kc" --disable-controller-manager --disable-scheduler \
    --disable-agent --node-ip 10.42.0.1 --node-name node1 --cluster-cidr 10.42.0.0/16 \
    >/dev/null 2>"$1" &
  server_pid=$!
  pids+=("$server_pid")
  until [ -s "$work/kc" ] && k get --raw /readyz >/dev/null 2>&1; do sleep 0.2; done
}

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
# busybox httpd closes each connection first, so every request leaves a
# TIME_WAIT socket in the backend; one client cycling through its ephemeral
# ports at thousands of requests/s soon collides with them (SYNs answered by
# challenge ACKs, 1 s retransmits), and both paths decay round after round.
# Many real clients would not collide; the backend skips TIME_WAIT here so
# the rounds measure the proxy, not port reuse. Same for both paths.
ip netns exec "$backend" sysctl -qw net.ipv4.tcp_max_tw_buckets=0
ip netns exec "$backend" busybox httpd -f -p 80 -h "$work/www" & pids+=($!)
start_server "$work/server.log"

# 1. ClusterIP vs pod IP.
k create namespace bench >/dev/null
cat > "$work/web.yaml" <<YAML
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
YAML
k create -f "$work/web.yaml" >/dev/null
vip=$(k -n bench get svc web -o jsonpath='{.spec.clusterIP}')
until ip netns exec "$client" busybox timeout 5 busybox wget -q -O - "http://$vip/" >/dev/null 2>&1; do sleep 0.2; done
# Same client, backend, wrk threads and connections for both; a warm-up of
# each, then ROUNDS interleaved rounds (direct+ClusterIP, ClusterIP+direct, ...) so
# load from other processes hits both alike; medians reported.
ROUNDS=${ROUNDS:-5}
rps() { ip netns exec "$client" wrk -t2 -c16 -d"$2" "$1" | awk '/Requests\/sec/{print $2}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rps http://10.42.0.10/ 2s >/dev/null; rps "http://$vip/" 2s >/dev/null
directs=() vias=() ratios=()
for r in $(seq "$ROUNDS"); do
  # ABBA order, so a load trend favours neither side.
  if [ $((r % 2)) = 1 ]; then d=$(rps http://10.42.0.10/ 4s); v=$(rps "http://$vip/" 4s)
  else v=$(rps "http://$vip/" 4s); d=$(rps http://10.42.0.10/ 4s); fi
  directs+=("$d") vias+=("$v") ratios+=("$(awk "BEGIN{printf \"%.3f\", $v/$d}")")
done
direct=$(median "${directs[@]}") via=$(median "${vias[@]}")
echo "## bench/services ($(date -u +%F), $(nproc) cores)"
echo
echo "| measure | value | loadavg |"
echo "|---|---|---|"
echo "| wrk -t2 -c16 to the pod IP (peer: no proxy), req/s, median of $ROUNDS x 4 s (all: ${directs[*]}) | $direct | $(load) |"
echo "| wrk -t2 -c16 to the ClusterIP, same client and backend, interleaved (all: ${vias[*]}) | $via | $(load) |"
echo "| ClusterIP / direct: median of the per-round ratios (all: ${ratios[*]}) | $(median "${ratios[@]}") (ratio of the medians: $(awk "BEGIN{printf \"%.2f\", $via/$direct}")) | |"

# 2. DNS (before the big table, so the numbers are the server's alone).
sel=endpointslice.kubernetes.io/managed-by=bosun-dns
until dns_port=$(k -n kube-system get endpointslice -l "$sel" -o jsonpath='{.items[0].ports[0].port}' 2>/dev/null) && [ -n "$dns_port" ]; do sleep 0.2; done
names="web.bench.svc.cluster.local kubernetes.default.svc.cluster.local nope.bench.svc.cluster.local"
dnsload() { ip netns exec "$client" python3 "$here/dnsload.py" "$1" "$2" 5 64 $names; }
until ip netns exec "$client" busybox nslookup web.bench.svc.cluster.local 10.43.0.10 >/dev/null 2>&1; do sleep 0.2; done
echo "| DNS bosun at 10.42.0.1:$dns_port (direct), 64 outstanding | $(dnsload 10.42.0.1 "$dns_port") | $(load) |"
echo "| DNS bosun at 10.43.0.10:53 (kube-dns ClusterIP) | $(dnsload 10.43.0.10 53) | $(load) |"
if command -v dnsmasq >/dev/null; then
  printf '%s web.bench.svc.cluster.local\n10.43.0.1 kubernetes.default.svc.cluster.local\n' "$vip" > "$work/hosts"
  # `ip netns exec` directly (it execs, so $! is dnsmasq's pid; through the
  # in_node function it would be a subshell's, and cleanup missed dnsmasq).
  ip netns exec "$node" dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$work/hosts" \
    --listen-address=10.42.0.1 --bind-interfaces --port=5399 --local=/cluster.local/ \
    --cache-size=10000 --pid-file= --user=root 2>"$work/dnsmasq.log" & pids+=($!)
  until ip netns exec "$client" busybox nslookup -port=5399 web.bench.svc.cluster.local 10.42.0.1 >/dev/null 2>&1; do sleep 0.2; done
  echo "| DNS dnsmasq (peer, same names from a hosts file) at 10.42.0.1:5399 | $(dnsload 10.42.0.1 5399) | $(load) |"
else
  echo "| DNS dnsmasq (peer) | not installed (apt-get install dnsmasq-base) | |"
fi

# 3. Scale: SERVICES x ENDPOINTS.
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
# Four kubectl processes in parallel (one is API-bound on its own
# sequential round trips).
awk -v dir="$work" 'BEGIN{n=0} /^---$/{n++} {print > (dir "/many." (int((n-1)/2) % 4) ".yaml")}' "$work/many.yaml"
t0=$(now)
kc=()
for f in "$work"/many.[0-3].yaml; do k create -f "$f" >/dev/null & kc+=($!); done
for p in "${kc[@]}"; do wait "$p"; done
until [ "$(in_node nft list map ip bosun service-ips | grep -c 'goto svc-bench/svc-')" -ge "$SERVICES" ]; do sleep 0.5; done
t1=$(now)
chains=$(in_node nft list table ip bosun | grep -c '^\s*chain ')
echo "| create $SERVICES Services + slices ($ENDPOINTS endpoints) with kubectl until all in the kernel ($chains chains) | $(ms "$t0" "$t1") ms | $(load) |"
lat=() e2e=() own=()
for i in $(seq "$CHANGES"); do
  s=$((i * 97 % SERVICES)) ip="10.99.$i.$((RANDOM % 250 + 1))"
  cat > "$work/change.yaml" <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-$s-1, namespace: bench, labels: {kubernetes.io/service-name: svc-$s}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints: [{addresses: ["$ip"], conditions: {ready: true}}, {addresses: ["10.98.$i.1"], conditions: {ready: true}}]
YAML
  before=$(synced "$work/server.log" | wc -l)
  a=$(now)
  k replace -f "$work/change.yaml" >/dev/null
  b=$(now)
  # Wait for the proxy's next sync (its log line is written right after
  # the transaction committed) that put the new endpoint in the kernel.
  # The chain is read into a variable (no `| grep -q`: with pipefail, nft
  # killed by SIGPIPE would read as "not there"), after every new sync line
  # and at least once a second.
  seen=$before deadline=$(( $(date +%s) + 60 )) checked=$(date +%s)
  while :; do
    until [ "$(synced "$work/server.log" | wc -l)" -gt "$seen" ] || [ "$(date +%s)" -gt "$checked" ]; do
      sleep 0.005
    done
    seen=$(synced "$work/server.log" | wc -l) checked=$(date +%s)
    chain=$(in_node nft list chain ip bosun "svc-bench/svc-$s/tcp/http" 2>&1 || true)
    [[ $chain == *"$ip "* ]] && break
    [ "$(date +%s)" -lt "$deadline" ] || { echo "rule for $ip never synced" >&2; cp "$work/server.log" /tmp/bosun-bench-services-server.log; exit 1; }
  done
  line=$(synced "$work/server.log" | tail -n +$((before + 1)) | tail -1)
  c=$(date -d "$(echo "$line" | awk '{print $1}')" +%s.%N)
  d=$(ms "$b" "$c"); [ "$d" -lt 0 ] && d=0
  lat+=("$d") e2e+=("$(ms "$a" "$c")")
  own+=("$(synced "$work/server.log" | tail -n +$((before + 1)) | grep -o 'took_ms=[0-9]*' | cut -d= -f2 | awk '{t+=$1} END{print t}')")
  sleep 0.2
done
echo "| slice change -> rules in the kernel, after kubectl returned ($CHANGES changes), ms | $(pct "${lat[@]}") | $(load) |"
echo "| same, from kubectl start (includes kubectl's own start-up), ms | $(pct "${e2e[@]}") | |"
echo "| the proxy's nft transaction for each change, ms | $(pct "${own[@]}") (all: ${own[*]}) | |"

# 4. Restart over the stale table: SIGKILL (a crash), start again, time the
# first full sync.
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
rm -f "$work/kc"
r0=$(now)
start_server "$work/server2.log"
until [ -n "$(synced "$work/server2.log")" ]; do sleep 0.05; done
r1=$(now)
full=$(synced "$work/server2.log" | head -1 | grep -o 'took_ms=[0-9]*' | cut -d= -f2)
n=$(in_node nft list map ip bosun service-ips | grep -c 'goto svc-bench/svc-' || true)
echo "| restart over the stale table: start -> first full sync done ($n services) | $(ms "$r0" "$r1") ms (its nft transaction: $full ms) | $(load) |"
