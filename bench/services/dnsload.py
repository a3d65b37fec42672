#!/usr/bin/env python3
"""DNS load client for bench/services: keeps WINDOW queries outstanding on one
UDP socket for SECONDS, cycling through NAMES; prints queries/s, p50 and p99
latency, and the count of lost or failed (SERVFAIL...) replies.
Usage: dnsload.py SERVER PORT SECONDS WINDOW NAME..."""
import random, select, socket, struct, sys, time

server, port, seconds, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
names = sys.argv[5:]

def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.strip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect((server, port))
sock.setblocking(False)
pending, lat, errors, sent = {}, [], 0, 0
next_id = random.randrange(65536)
end = time.perf_counter() + seconds
while True:
    now = time.perf_counter()
    if now >= end and not pending:
        break
    while now < end and len(pending) < window:
        next_id = (next_id + 1) % 65536
        sock.send(query(next_id, names[sent % len(names)]))
        pending[next_id] = time.perf_counter()
        sent += 1
    r, _, _ = select.select([sock], [], [], 0.5)
    if not r:
        errors += len(pending)  # lost: give up on everything outstanding
        pending.clear()
        continue
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            break
        qid, flags = struct.unpack(">HH", data[:4])
        t = pending.pop(qid, None)
        if t is None:
            continue
        if flags & 0xF not in (0, 3):  # NOERROR and NXDOMAIN are answers
            errors += 1
        lat.append(time.perf_counter() - t)
lat.sort()
if not lat:
    print("no replies")
    sys.exit(1)
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
print(f"{len(lat) / seconds:.0f} queries/s, p50 {pct(0.50):.2f} ms, p99 {pct(0.99):.2f} ms, "
      f"{errors} failed or lost of {sent}")
