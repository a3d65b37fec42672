# bench/pod-startup/lib.sh — helpers of run.sh (sourced): statistics of
# burst.py's timestamped pod events, the process-memory report, the
# podman peer, and the cleanup that runs at exit. Uses run.sh's variables
# (work, tag, node, bridge, cg, pcg, server, BOSUN).
export LC_ALL=C

# Milliseconds between two $EPOCHREALTIME values.
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# "p50 / p99 / max" of the numbers on stdin (nearest-rank percentiles).
stats() {
  sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    p50 = int((NR * 50 + 99) / 100); p99 = int((NR * 99 + 99) / 100)
    printf "%.0f / %.0f / %.0f", v[p50], v[p99], v[NR] }'
}

wait_default_sa() {
  local _
  for _ in $(seq 50); do
    kubectl get sa default -n "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
}

ready_count() { awk '$3 == "True" { r[$2] = 1 } END { print length(r) }' "$1"; }

# Per pod: ms from the first event seen (its creation) to the first Ready=True.
latencies() {
  awk '{ if (!($2 in c)) c[$2] = $1; if ($3 == "True" && !($2 in r)) r[$2] = $1 }
    END { for (k in r) printf "%.1f\n", (r[k] - c[k]) * 1000 }' "$1"
}

# ms from the first pod created to the last one Ready.
makespan() {
  awk 'NR == 1 { s = $1 } $3 == "True" && !($2 in r) { r[$2] = 1; e = $1 }
    END { printf "%.0f", (e - s) * 1000 }' "$1"
}

# "pid kind" for every descendant of $1, kind from its command line:
# pause (bosun cri pause), monitor (bosun cri monitor), bosun (any other
# bosun process), other (container processes and anything else).
descendants() {
  local root=$1 pid ppid kids=() p kind cmd
  declare -A children=()
  while read -r pid ppid; do children[$ppid]+="$pid "; done < <(ps -e -o pid=,ppid=)
  kids=(${children[$root]:-})
  while [ ${#kids[@]} -gt 0 ]; do
    p=${kids[0]}
    kids=("${kids[@]:1}" ${children[$p]:-})
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      "$BOSUN cri pause"*) kind=pause ;;
      "$BOSUN cri monitor"*) kind=monitor ;;
      "$BOSUN "*) kind=bosun ;;
      *) kind=other ;;
    esac
    echo "$p $kind"
  done
}

# "rss_kb pss_kb" of one process (0 0 if gone).
mem_of() {
  awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r + 0, p + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo "0 0"
}

# CPU ms of process $1: "own reaped-children" (utime+stime, cutime+cstime).
cpu_of() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "0 0"; return; }
  set -- ${stat##*) }
  local hz
  hz=$(getconf CLK_TCK)
  echo "$(((${12} + ${13}) * 1000 / hz)) $(((${14} + ${15}) * 1000 / hz))"
}

# CPU ms of the descendants of $1 (alive ones, with what they reaped).
cpu_descendants() {
  local pid kind own kids total=0
  while read -r pid kind; do
    read -r own kids < <(cpu_of "$pid")
    total=$((total + own + kids))
  done < <(descendants "$1")
  echo "$total"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# One table cell describing the memory of the server and what it owns.
mem_report() {
  local root=$1 pid kind r p
  declare -A n=() rss=() pss=()
  read -r r p < <(mem_of "$root")
  while read -r pid kind; do
    read -r r2 p2 < <(mem_of "$pid")
    n[$kind]=$((${n[$kind]:-0} + 1))
    rss[$kind]=$((${rss[$kind]:-0} + r2))
    pss[$kind]=$((${pss[$kind]:-0} + p2))
  done < <(descendants "$root")
  echo "server process $(mib "$r") MiB (PSS $(mib "$p"));"
  echo "other bosun processes it owns (not per pod): ${n[bosun]:-0}, RSS $(mib "${rss[bosun]:-0}") MiB;"
  echo "**server + agent $(mib $((r + ${rss[bosun]:-0}))) MiB**;"
  echo "per pod, counted apart: ${n[pause]:-0} pause processes RSS $(mib "${rss[pause]:-0}") MiB (PSS $(mib "${pss[pause]:-0}")),"
  echo "${n[monitor]:-0} container monitors RSS $(mib "${rss[monitor]:-0}") MiB (PSS $(mib "${pss[monitor]:-0}")),"
  echo "${n[other]:-0} container processes RSS $(mib "${rss[other]:-0}") MiB"
}

# --- podman peer -------------------------------------------------------------

P() {
  podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp" \
    --storage-driver overlay --cgroup-manager=cgroupfs --events-backend=file --runtime runc "$@"
}

podman_setup() {
  mkdir -p "$work/podman"
  [ -d /sys/fs/cgroup/memory/libpod_parent ] && libpod_existed=1 || libpod_existed=0
  tar -C "$1" -c . | P import - busybox:latest >/dev/null
}

# Starts $1 containers with concurrent `podman run -d`; each run's wall
# time (ms) goes to $work/podman$1, first start → last return to .span.
podman_burst() {
  local n=$1 i pids=() s
  : >"$work/podman$n"
  s=$EPOCHREALTIME
  for i in $(seq "$n"); do
    (
      a=$EPOCHREALTIME
      P run -d --name "bp$tag-$n-$i" --network=none --pull=never --cgroup-parent="$pcg" \
        --ulimit nofile=1024:1024 --ulimit nproc=32768:32768 busybox:latest sleep 3600 \
        >/dev/null 2>>"$work/podman.err" && printf '%s\n' "$(ms "$a" "$EPOCHREALTIME")" >>"$work/podman$n"
    ) &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  ms "$s" "$EPOCHREALTIME" >"$work/podman$n.span"
}

conmon_report() {
  local pid r p nn=0 rs=0 ps_=0 cs=0 cn=0
  for pid in $(pgrep -x conmon); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$work/podman" || continue
    read -r r p < <(mem_of "$pid")
    nn=$((nn + 1)) rs=$((rs + r)) ps_=$((ps_ + p))
    for c in $(pgrep -P "$pid"); do
      read -r r p < <(mem_of "$c")
      cn=$((cn + 1)) cs=$((cs + r))
    done
  done
  echo "$nn conmons RSS $(mib $rs) MiB (PSS $(mib $ps_)), $cn container processes RSS $(mib $cs) MiB"
}

podman_clear() { P rm -f -a -t 0 >/dev/null 2>&1 || true; }

# --- cleanup -------------------------------------------------------------------

# Kills every process of cgroup dir $1 (all hierarchies) and removes the dirs.
kill_cgroup() {
  local rel=${1#/} d
  for d in /sys/fs/cgroup/*/"$rel"; do
    [ -d "$d" ] || continue
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  sleep 0.2
  for d in /sys/fs/cgroup/*/"$rel"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# iptables NAT rules and chains the bridge plugin's ipMasq left for sandbox $1.
drop_masq() {
  local id=$1 rule chain
  iptables -t nat -S POSTROUTING 2>/dev/null | grep -F "id: \"$id\"" | while read -r rule; do
    chain=$(sed -n 's/.* -j \(CNI-[0-9a-f]*\).*/\1/p' <<<"$rule")
    eval "iptables -t nat ${rule/-A/-D}" 2>/dev/null || true
    [ -n "$chain" ] && { iptables -t nat -F "$chain"; iptables -t nat -X "$chain"; } 2>/dev/null || true
  done
}

cleanup() {
  set +e
  trap - INT TERM
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kubectl delete pods --all -A --wait=true --timeout=120s >/dev/null 2>&1
    kill "$server" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$server" 2>/dev/null
    wait "$server" 2>/dev/null
  fi
  # Whatever outlived the server: monitors and pause processes, containers.
  pkill_by_dir() {
    local p
    for p in $(pgrep -f -- "$work/"); do kill -9 "$p" 2>/dev/null; done
  }
  pkill_by_dir
  kill_cgroup "$cg"
  local f
  for f in "$work"/root/cri/sandboxes/*.json "$work"/root/*/sandboxes/*.json; do
    [ -f "$f" ] && drop_masq "$(basename "$f" .json)"
  done
  # The node-level masquerade (the CRI server removes it with its last sandbox).
  nft delete table ip "bosun-masq-$bridge" 2>/dev/null
  if [ -d "$work/podman" ]; then
    podman_clear
    P system prune -a -f >/dev/null 2>&1
  fi
  kill_cgroup "$pcg"
  [ "${libpod_existed:-1}" = 0 ] && kill_cgroup /libpod_parent
  grep -F " $work/" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip link del "$bridge" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
