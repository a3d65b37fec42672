#!/usr/bin/env python3
"""bench/pod-startup/phases.py — where a burst's pod start-up time went.

    phases.py EVENTS_FILE SERVER_LOG NAMESPACE

Joins burst.py's watch events (created, bound, Ready, local clock) with the
server's debug timelines (`BOSUN_LOG=...,kubelet::podstart=debug,cri::podstart=debug`):
the kubelet's per-pod line (wall-clock time its worker saw the pod, then the
duration of each phase) and the CRI's sandbox (pause process, CNI ADD, record)
and container start (monitor spawn, until the container runs) lines. Prints
one markdown row per phase: p50 / p99 / max in ms over the burst's pods.
Phases the log lacks (other log level) are left out. Standard library only.
"""

import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def fields(line):
    return {k: v.strip('"') for k, v in FIELD.findall(ANSI.sub("", line))}


def pct(vals, p):
    vals = sorted(vals)
    return vals[max(0, (len(vals) * p + 99) // 100 - 1)]


def row(name, vals):
    if vals:
        print(f"| {name} | {pct(vals, 50):.0f} / {pct(vals, 99):.0f} / {max(vals):.0f} |")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    events, log, ns = sys.argv[1:]
    created, bound, ready = {}, {}, {}
    for line in open(events):
        parts = line.split()
        if len(parts) < 3:
            continue
        t, name = float(parts[0]), parts[1]
        created.setdefault(name, t)
        if len(parts) > 3 and parts[3] == "1":
            bound.setdefault(name, t)
        if parts[2] == "True":
            ready.setdefault(name, t)
    kubelet, sandbox, container = {}, {}, []
    for line in open(log, errors="replace"):
        if "pod start timeline" in line:
            f = fields(line)
            pod = f.get("pod", "")
            if pod.startswith(ns + "/"):
                kubelet[pod.split("/", 1)[1]] = f
        elif "sandbox timeline" in line:
            f = fields(line)
            sandbox[f.get("pod", "")] = f
        elif "container start timeline" in line:
            container.append(fields(line))
    rows = {}

    def add(name, v):
        rows.setdefault(name, []).append(v)

    for name, t0 in created.items():
        if name in bound:
            add("API: created → bound (scheduler)", (bound[name] - t0) * 1000)
        k = kubelet.get(name)
        if not k:
            continue
        seen = float(k["seen_at"])
        if name in bound:
            add("kubelet: bound → worker sees the pod (watch)", (seen - bound[name]) * 1000)
        for ph in k.get("phases", "").split():
            p, ms = ph.split("=")
            add(f"kubelet: {p}", float(ms))
        if name in ready:
            add("kubelet: status written → watch shows Ready", (ready[name] - seen) * 1000 - float(k["total_ms"]))
            add("total: created → Ready", (ready[name] - t0) * 1000)
        s = sandbox.get(name)
        if s:
            for key in ("pause_ms", "cni_ms", "save_ms"):
                add(f"CRI RunPodSandbox: {key[:-3]}", float(s[key]))
    for c in container[-len(kubelet) or None :]:
        for key in ("spawn_ms", "running_ms"):
            if key in c:
                add(f"CRI StartContainer: {key[:-3]}", float(c[key]))
    print("| phase (ms) | p50 / p99 / max |")
    print("|---|---|")
    for name, vals in rows.items():
        row(name, vals)


if __name__ == "__main__":
    main()
