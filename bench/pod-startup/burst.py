#!/usr/bin/env python3
"""bench/pod-startup/burst.py — creates N busybox pods at once and times each
from creation to Ready, with local timestamps from a watch.

    burst.py KUBECONFIG NAMESPACE N EVENTS_FILE [TIMEOUT_S]

Reads the cluster address and admin client certificate from KUBECONFIG (as
`bosun server` writes it: inline base64 data), lists and then watches the
pods of NAMESPACE, POSTs the N pods concurrently (one connection per worker
thread, 32 at most), and writes one line per watch event to EVENTS_FILE:
`<unix time with µs> <pod name> <Ready status or -> <1 once bound, else 0>`.
Returns once every pod is Ready (exit 0) or after TIMEOUT_S (default 300,
exit 1). Prints the create requests' own latency (p50/p99 ms) on stdout.
Standard library only.
"""

import base64
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def kubeconfig(path):
    """(host, port, ssl context) from a kubeconfig with inline data."""
    import re

    text = open(path).read()

    def field(name):
        m = re.search(r"^\s*" + re.escape(name) + r":\s*(\S+)\s*$", text, re.M)
        if not m:
            sys.exit(f"burst.py: no {name} in {path}")
        return m.group(1)

    server = field("server")
    hostport = server.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(field("certificate-authority-data")).decode()
    )
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        open(cert, "wb").write(base64.b64decode(field("client-certificate-data")))
        open(key, "wb").write(base64.b64decode(field("client-key-data")))
        ctx.load_cert_chain(cert, key)
    ctx.check_hostname = False
    return host.strip("[]"), int(port), ctx


def pod(ns, i):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p{i}", "namespace": ns},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:latest",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                }
            ],
        },
    }


def ready_of(obj):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status", "-")
    return "-"


class Watch(threading.Thread):
    """Appends every event of the namespace's pods, timestamped, to a file."""

    def __init__(self, conn, ns, out):
        super().__init__(daemon=True)
        self.conn, self.ns, self.out = conn, ns, out
        self.ready = set()
        self.started = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        self.conn.request("GET", f"/api/v1/namespaces/{self.ns}/pods")
        rv = json.loads(self.conn.getresponse().read())["metadata"]["resourceVersion"]
        path = f"/api/v1/namespaces/{self.ns}/pods?watch=1&resourceVersion={rv}"
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        self.started.set()
        with open(self.out, "w") as f:
            while True:
                line = resp.readline()
                if not line:
                    return
                t = time.time()
                ev = json.loads(line)
                obj = ev.get("object") or {}
                name = (obj.get("metadata") or {}).get("name", "?")
                ready = ready_of(obj)
                bound = 1 if (obj.get("spec") or {}).get("nodeName") else 0
                f.write(f"{t:.6f} {name} {ready} {bound}\n")
                f.flush()
                if ready == "True":
                    with self.lock:
                        self.ready.add(name)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    path, ns, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
    host, port, ctx = kubeconfig(path)
    connect = lambda: http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    watch = Watch(connect(), ns, out)
    watch.start()
    if not watch.started.wait(30):
        sys.exit("burst.py: the watch did not start")
    local = threading.local()
    lat = []

    def create(i):
        if not hasattr(local, "conn"):
            local.conn = connect()
        body = json.dumps(pod(ns, i))
        t = time.time()
        local.conn.request(
            "POST", f"/api/v1/namespaces/{ns}/pods", body, {"Content-Type": "application/json"}
        )
        resp = local.conn.getresponse()
        data = resp.read()
        if resp.status != 201:
            print(f"create p{i}: {resp.status} {data[:200]!r}", file=sys.stderr)
        lat.append((time.time() - t) * 1000)

    with ThreadPoolExecutor(max_workers=min(n, 32)) as pool:
        list(pool.map(create, range(1, n + 1)))
    lat.sort()
    pct = lambda p: lat[max(0, (len(lat) * p + 99) // 100 - 1)]
    print(f"{pct(50):.0f} / {pct(99):.0f}")
    deadline = time.time() + timeout
    while time.time() < deadline:
        with watch.lock:
            if len(watch.ready) >= n:
                return 0
        time.sleep(0.05)
    return 1


if __name__ == "__main__":
    sys.exit(main())
