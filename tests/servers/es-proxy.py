#!/usr/bin/env python3
"""Fault-injecting HTTP proxy in front of a real Elasticsearch (stdlib only).

    es-proxy.py --listen 127.0.0.1:PORT --upstream http://127.0.0.1:19200 \
                --control-file PATH

Everything is forwarded unchanged, unless the control file (a JSON object,
re-read on every request; missing or empty = no faults) asks for a fault:

  {"status_503": N}               the next N requests (any path) get a 503 and
                                  are not forwarded.
  {"bulk_429_items": N}           the next N `_bulk` requests are not forwarded;
                                  every item comes back status 429
                                  es_rejected_execution_exception, errors: true.
  {"bulk_fail_first_item_429": N} the next N `_bulk` requests are forwarded
                                  WITHOUT their first action (and its source
                                  line), and a 429 item for it is spliced in
                                  front of the real response's items, so only
                                  the other documents get indexed.
  {"delay_ms": M}                 every response is delayed by M ms, for as
                                  long as the key is present (not a counter).

Counters are decremented per use and written back to the control file
(atomically; a key reaching 0 is removed). status_503 is checked first, then
bulk_429_items, then bulk_fail_first_item_429.

Listening on port 0 picks a free port. The first line on stdout is
"es-proxy listening on http://HOST:PORT". SIGTERM/SIGINT stop it cleanly.
Faults are logged to stderr.
"""

import argparse
import base64
import gzip
import http.client
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}
BULK_ACTIONS = ("index", "create", "update", "delete")


class Control:
    """The control file: read per request, counters consumed under a lock."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def _read(self):
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as e:
            log(f"ignoring unparsable control file {self.path}: {e}")
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data):
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".es-proxy-control.")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)

    def decide(self, is_bulk):
        """Return (fault or None, delay_ms), consuming one use of the fault."""
        with self.lock:
            data = self._read()
            delay = data.get("delay_ms") or 0
            keys = ["status_503"]
            if is_bulk:
                keys += ["bulk_429_items", "bulk_fail_first_item_429"]
            for key in keys:
                n = data.get(key)
                if isinstance(n, int) and n > 0:
                    if n == 1:
                        del data[key]
                    else:
                        data[key] = n - 1
                    self._write(data)
                    return key, delay
            return None, delay


def log(msg):
    print(f"es-proxy: {msg}", file=sys.stderr, flush=True)


def random_id():
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


def split_bulk(body):
    """NDJSON _bulk body -> list of (action, meta, lines) per operation."""
    lines = [l for l in body.split(b"\n") if l.strip()]
    ops, i = [], 0
    while i < len(lines):
        header = json.loads(lines[i])
        action = next(iter(header))
        if action not in BULK_ACTIONS:
            raise ValueError(f"unknown bulk action {action!r}")
        take = 1 if action == "delete" else 2
        ops.append((action, header[action] or {}, lines[i:i + take]))
        i += take
    return ops


def rejected_item(action, meta, default_index):
    return {action: {
        "_index": meta.get("_index", default_index),
        "_id": meta.get("_id") or random_id(),
        "status": 429,
        "error": {
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation "
                      "[injected by es-proxy]",
        },
    }}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "es-proxy"

    def log_message(self, fmt, *args):  # quiet: faults are logged instead
        pass

    # Every method goes through the same path.
    def do_GET(self): self.handle_any()
    def do_POST(self): self.handle_any()
    def do_PUT(self): self.handle_any()
    def do_DELETE(self): self.handle_any()
    def do_HEAD(self): self.handle_any()
    def do_PATCH(self): self.handle_any()
    def do_OPTIONS(self): self.handle_any()

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        body = self.read_body()
        path_only = urllib.parse.urlsplit(self.path).path.rstrip("/")
        is_bulk = (self.command in ("POST", "PUT")
                   and path_only.split("/")[-1] == "_bulk")
        fault, delay_ms = self.server.control.decide(is_bulk)
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        try:
            if fault == "status_503":
                log(f"503 for {self.command} {self.path}")
                return self.reply_json(503, {
                    "error": {"type": "unavailable", "reason": "injected by es-proxy"},
                    "status": 503})
            if fault in ("bulk_429_items", "bulk_fail_first_item_429"):
                return self.fault_bulk(fault, body, path_only)
            status, headers, data = self.forward(body)
            self.reply(status, headers, data)
        except (ConnectionError, OSError, http.client.HTTPException) as e:
            log(f"upstream error for {self.command} {self.path}: {e}")
            self.reply_json(502, {"error": f"es-proxy upstream error: {e}", "status": 502})

    def fault_bulk(self, fault, body, path_only):
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        parts = path_only.split("/")
        default_index = parts[1] if len(parts) == 3 else None  # /{index}/_bulk
        try:
            ops = split_bulk(body)
        except (ValueError, StopIteration) as e:
            log(f"{fault}: cannot parse the _bulk body ({e}); forwarding it unchanged")
            return self.reply(*self.forward(body))
        if fault == "bulk_429_items" or len(ops) <= 1:
            log(f"{fault}: rejecting all {len(ops)} item(s) of {self.path}")
            return self.reply_json(200, {
                "errors": True, "took": 0,
                "items": [rejected_item(a, m, default_index) for a, m, _ in ops]})
        action, meta, _ = ops[0]
        rest = b"\n".join(l for _, _, ls in ops[1:] for l in ls) + b"\n"
        log(f"{fault}: rejecting item 0, forwarding {len(ops) - 1} of {self.path}")
        status, headers, data = self.forward(rest, drop={"content-encoding"},
                                             identity=True)
        if status != 200:
            return self.reply(status, headers, data)
        resp = json.loads(data)
        resp["items"].insert(0, rejected_item(action, meta, default_index))
        resp["errors"] = True
        self.reply_json(200, resp)

    def forward(self, body, drop=(), identity=False):
        up = self.server.upstream
        conn_cls = (http.client.HTTPSConnection if up.scheme == "https"
                    else http.client.HTTPConnection)
        conn = conn_cls(up.hostname, up.port, timeout=self.server.timeout_s)
        try:
            headers = {}
            for k, v in self.headers.items():
                lk = k.lower()
                if lk in HOP_BY_HOP or lk in ("host", "content-length", "expect") or lk in drop:
                    continue
                if identity and lk == "accept-encoding":
                    continue
                headers[k] = v
            headers["Host"] = up.netloc
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def reply(self, status, headers, data):
        self.send_response(status)
        for k, v in headers:
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == "content-length":
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
            self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply_json(self, status, obj):
        data = json.dumps(obj).encode()
        # Official clients refuse 2xx answers without the product header.
        self.reply(status, [("Content-Type", "application/json"),
                            ("X-elastic-product", "Elasticsearch")], data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT (port 0 = any free port)")
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:19200")
    ap.add_argument("--control-file", required=True)
    ap.add_argument("--timeout", type=float, default=60.0, help="upstream timeout, seconds")
    args = ap.parse_args()

    host, _, port = args.listen.rpartition(":")
    server = Server((host or "127.0.0.1", int(port)), Handler)
    server.upstream = urllib.parse.urlsplit(args.upstream)
    server.control = Control(args.control_file)
    server.timeout_s = args.timeout

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns, so not on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    h, p = server.server_address[:2]
    print(f"es-proxy listening on http://{h}:{p}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
