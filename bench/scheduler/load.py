#!/usr/bin/env python3
"""bench/scheduler/load.py: creates N pending pods through the API with a pool
of keep-alive HTTPS connections and times, through a watch, how long until
every one of them is bound. Prints one JSON line:
{"pods": N, "create_s": ..., "bind_s": ..., "pods_per_s": ...}.
With BIND_NODES=K in the environment the client binds each pod itself right
after creating it (to sim-node-<i mod K>, through pods/binding): the API
server's create+bind ceiling with no scheduler. Otherwise it also waits for
every pod's Scheduled event and reports when the last one exists.
Usage: load.py KUBECONFIG_DIR URL NAMESPACE N [THREADS]
(KUBECONFIG_DIR holds ca.pem, cert.pem, key.pem.)"""
import os
import http.client
import json
import ssl
import sys
import threading
import time
from urllib.parse import urlparse

d, url, ns, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 16
u = urlparse(url)
ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
ctx.load_cert_chain(f"{d}/cert.pem", f"{d}/key.pem")
ctx.check_hostname = False


def conn():
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=600)


def request(c, method, path, body=None):
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    return r.status, data


c = conn()
request(c, "POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": ns}}))
status, data = request(c, "GET", f"/api/v1/namespaces/{ns}/pods?limit=1")
rv = json.loads(data)["metadata"]["resourceVersion"]

bound = set()
done = threading.Event()
t_last = [0.0]


def watch():
    w = conn()
    w.request("GET", f"/api/v1/namespaces/{ns}/pods?watch=1&resourceVersion={rv}")
    r = w.getresponse()
    buf = b""
    while not done.is_set():
        chunk = r.read1(1 << 20)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            ev = json.loads(line)
            obj = ev.get("object", {})
            if obj.get("spec", {}).get("nodeName"):
                name = obj["metadata"]["name"]
                if name not in bound:
                    bound.add(name)
                    t_last[0] = time.monotonic()
                    if len(bound) >= n:
                        done.set()


watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
time.sleep(0.5)

pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "", "labels": {"app": "bench"}},
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }
        ]
    },
}
errors = [0]


bind_nodes = int(os.environ.get("BIND_NODES", "0"))


def post(c, path, body, ok):
    """POSTs with retries on a fresh connection; returns the connection."""
    for _ in range(5):
        try:
            status, _ = request(c, "POST", path, body)
            if status in ok:
                return c
        except (OSError, http.client.HTTPException):
            c = conn()
    errors[0] += 1
    return c


def create(idx):
    c = conn()
    for i in range(idx, n, threads):
        name = f"bench-{i}"
        body = json.dumps({**pod, "metadata": {"name": name, "labels": {"app": "bench"}}})
        c = post(c, f"/api/v1/namespaces/{ns}/pods", body, (201, 409))
        if bind_nodes:
            binding = json.dumps({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                  "target": {"apiVersion": "v1", "kind": "Node", "name": f"sim-node-{i % bind_nodes}"}})
            c = post(c, f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding, (201,))


t0 = time.monotonic()
workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
t1 = time.monotonic()
done.wait(900)
t2 = t_last[0] if done.is_set() else time.monotonic()
events_s = None
if not bind_nodes:
    # Every binding must have its Scheduled event (written in the background).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        _, data = request(conn(), "GET", f"/api/v1/namespaces/{ns}/events")
        items = json.loads(data).get("items", [])
        if sum(1 for e in items if e.get("reason") == "Scheduled") >= len(bound):
            events_s = round(time.monotonic() - t0, 2)
            break
        time.sleep(0.5)
print(json.dumps({
    "events_s": events_s,
    "pods": n,
    "bound": len(bound),
    "errors": errors[0],
    "create_s": round(t1 - t0, 2),
    "bind_s": round(t2 - t0, 2),
    "pods_per_s": round(len(bound) / (t2 - t0), 1),
}))
