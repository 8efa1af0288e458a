"""A static file server for remote-read tests: honours `Range` (one range, `a-b`, `a-`, `-n`),
keeps connections alive, logs every request as one JSON line, and injects faults.

    range_server.py ROOT LOG [FAULTS]

Prints the port it listens on (loopback, chosen by the OS) as its first line. LOG gets one
line per request: {"method", "path", "range", "status", "bytes"}. FAULTS, if given, is a JSON
file re-read on every request: a list of {"match": substring of the path, "times": n, "kind":
"status" | "truncate" | "drop" | "delay", "status": code, "seconds": s, "skip": n}; each fault
applies to the first `times` matching requests after the first `skip` (default 0).
"""

import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

ROOT, LOG = sys.argv[1], sys.argv[2]
FAULTS = sys.argv[3] if len(sys.argv) > 3 else None
LOCK = threading.Lock()
USED = {}  # fault index -> times applied


def fault_for(path):
    if not FAULTS or not os.path.exists(FAULTS):
        return None
    with open(FAULTS) as f:
        text = f.read()
    faults = json.loads(text)
    with LOCK:
        # A new fault list starts its counts afresh.
        if USED.get("text") != text:
            USED.clear()
            USED["text"] = text
        for i, fault in enumerate(faults):
            if fault["match"] not in path:
                continue
            seen = USED.get(("seen", i), 0)
            USED[("seen", i)] = seen + 1
            if seen >= fault.get("skip", 0) and USED.get(i, 0) < fault.get("times", 1):
                USED[i] = USED.get(i, 0) + 1
                return fault
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: with Nagle on, each response would wait
    # for the client's delayed ACK (40 ms), which real servers avoid.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def record(self, status, nbytes):
        line = {
            "method": self.command,
            "path": unquote(urlsplit(self.path).path),
            "range": self.headers.get("Range"),
            "status": status,
            "bytes": nbytes,
        }
        with LOCK, open(LOG, "a") as f:
            f.write(json.dumps(line) + "\n")

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        path = unquote(urlsplit(self.path).path)
        fault = fault_for(path)
        if fault and fault["kind"] == "delay":
            # Logged now: a client that gives up closes the socket before any answer.
            self.record("delayed", 0)
            time.sleep(fault["seconds"])
        if fault and fault["kind"] == "drop":
            self.record("dropped", 0)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault and fault["kind"] == "status":
            self.record(fault["status"], 0)
            self.send_response(fault["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        local = os.path.join(ROOT, path.lstrip("/"))
        if not os.path.isfile(local):
            self.record(404, 0)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(local)
        start, end, status = 0, size, 200
        spec = self.headers.get("Range")
        if spec:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", spec.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                self.record(400, 0)
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            a, b = m.group(1), m.group(2)
            if a == "":
                start, end = max(0, size - int(b)), size
            else:
                start, end = int(a), size if b == "" else min(size, int(b) + 1)
            if start >= size:
                self.record(416, 0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        with open(local, "rb") as f:
            f.seek(start)
            body = f.read(end - start)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if head:
            self.record(status, 0)
            return
        if fault and fault["kind"] == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.record("truncated", len(body) // 2)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)
        self.record(status, len(body))


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
