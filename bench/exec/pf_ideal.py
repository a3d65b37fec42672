#!/usr/bin/env python3
"""pf_ideal.py — how fast `kubectl port-forward` itself can go on this machine.

A TLS front for the real API server (run by bench/exec/run.sh): every request
is passed through to bosun unchanged, except a port-forward upgrade
(`POST …/portforward` with `Upgrade: SPDY/3.1`), which this process answers
itself. For each forwarded connection it waits for the client's first bytes
(curl's request) and sends one prebuilt HTTP response of SIZE_MB zero bytes
from memory as SPDY data frames of FRAME_KB each — no kubelet, no pod socket,
no second TLS layer, OpenSSL doing the one encryption kubectl must decrypt.
What remains is kubectl's own cost (TLS, spdystream, the copy to the local
socket) and curl's: the ceiling any server can give kubectl here.

Usage: pf_ideal.py PORT_FILE KUBECONFIG_JSON CERT KEY SPDY_DICTIONARY SIZE_MB FRAME_KB
Writes the port it listens on (127.0.0.1, ephemeral) to PORT_FILE.
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import tempfile
import threading
import zlib
from urllib.parse import urlparse

SYN_STREAM, SYN_REPLY, PING, GOAWAY = 1, 2, 6, 7
FLAG_FIN = 1


def upstream_context(cfg):
    """TLS client context with the admin credential of a `kubectl config view --raw -o json`."""
    user = cfg["users"][0]["user"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with tempfile.NamedTemporaryFile("wb", delete=False) as c, tempfile.NamedTemporaryFile("wb", delete=False) as k:
        c.write(base64.b64decode(user["client-certificate-data"]))
        k.write(base64.b64decode(user["client-key-data"]))
    ctx.load_cert_chain(c.name, k.name)
    os.unlink(c.name)
    os.unlink(k.name)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def pipe(src, dst):
    try:
        while True:
            data = src.recv(262144)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Session:
    """One SPDY/3.1 port-forward session on an upgraded connection."""

    def __init__(self, conn, leftover, dictionary, response, frame):
        self.conn, self.buf = conn, bytearray(leftover)
        self.inflate = zlib.decompressobj(zdict=dictionary)
        self.deflate = zlib.compressobj(zdict=dictionary)
        self.lock = threading.Lock()
        self.response, self.frame = memoryview(response), frame
        self.kind, self.request, self.error_of, self.served = {}, {}, {}, set()

    def send(self, data):
        with self.lock:
            self.conn.sendall(data)

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.conn.recv(262144)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    @staticmethod
    def data_frame(stream, flags, payload=b""):
        return struct.pack(">IB", stream, flags) + len(payload).to_bytes(3, "big") + payload

    def run(self):
        try:
            while True:
                head = self.read_exact(8)
                length = int.from_bytes(head[5:8], "big")
                payload = self.read_exact(length)
                if head[0] & 0x80:
                    kind = struct.unpack(">H", head[2:4])[0]
                    if kind == SYN_STREAM:
                        self.syn_stream(payload)
                    elif kind == PING:
                        self.send(head + payload)
                    elif kind == GOAWAY:
                        return
                else:
                    stream = struct.unpack(">I", head[:4])[0] & 0x7FFFFFFF
                    if payload and self.kind.get(stream) == "data" and stream not in self.served:
                        self.served.add(stream)
                        threading.Thread(target=self.respond, args=(stream,), daemon=True).start()
        except (EOFError, OSError):
            pass

    def syn_stream(self, payload):
        stream = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
        raw = self.inflate.decompress(payload[10:])
        headers, pos = {}, 4
        for _ in range(struct.unpack(">I", raw[:4])[0]):
            n = struct.unpack(">I", raw[pos:pos + 4])[0]
            name = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            n = struct.unpack(">I", raw[pos:pos + 4])[0]
            headers[name] = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
        self.kind[stream] = headers.get("streamtype")
        self.request[stream] = headers.get("requestid")
        if headers.get("streamtype") == "error":
            self.error_of[headers.get("requestid")] = stream
        with self.lock:
            block = self.deflate.compress(b"\0\0\0\0") + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            body = struct.pack(">I", stream) + block
            self.conn.sendall(struct.pack(">BBHB", 0x80, 3, SYN_REPLY, 0) + len(body).to_bytes(3, "big") + body)

    def respond(self, stream):
        try:
            for off in range(0, len(self.response), self.frame):
                self.send(self.data_frame(stream, 0, self.response[off:off + self.frame].tobytes()))
            self.send(self.data_frame(stream, FLAG_FIN))
            error = self.error_of.get(self.request.get(stream))
            if error is not None:
                self.send(self.data_frame(error, FLAG_FIN))
        except OSError:
            pass


def handle(conn, upstream, up_ctx, dictionary, response, frame):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            conn.close()
            return
        buf += chunk
    head, leftover = buf.split(b"\r\n\r\n", 1)
    first, lower = head.split(b"\r\n", 1)[0], head.lower()
    if b"/portforward" in first and b"upgrade: spdy/3.1" in lower:
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n")
        Session(conn, leftover, dictionary, response, frame).run()
        conn.close()
        return
    up = up_ctx.wrap_socket(socket.create_connection(upstream), server_hostname=upstream[0])
    up.sendall(buf)
    threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
    pipe(conn, up)


def main():
    port_file, kc_json, cert, key, dict_path, size_mb, frame_kb = sys.argv[1:8]
    cfg = json.load(open(kc_json))
    url = urlparse(cfg["clusters"][0]["cluster"]["server"])
    upstream = (url.hostname, url.port)
    up_ctx = upstream_context(cfg)
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(cert, key)
    srv_ctx.set_alpn_protocols(["http/1.1"])
    dictionary = open(dict_path, "rb").read()
    size = int(size_mb) * 1048576
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + bytes(size)
    lsock = socket.create_server(("127.0.0.1", 0))
    with open(port_file, "w") as f:
        f.write(str(lsock.getsockname()[1]))
    while True:
        raw, _ = lsock.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = srv_ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            continue
        args = (conn, upstream, up_ctx, dictionary, response, int(frame_kb) * 1024)
        threading.Thread(target=handle, args=args, daemon=True).start()


if __name__ == "__main__":
    main()
