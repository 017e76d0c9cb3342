#!/usr/bin/env python3
"""Stand-in upstreams for tests/e2e/metering.sh (issue 16).

    metering_upstream.py PORTFILE redirect REGISTRY_URL
    metering_upstream.py PORTFILE ratelimit BUDGET

Listens on 127.0.0.1 (a free port), writes the port to PORTFILE once it
accepts connections, and serves until killed (HTTP/1.1, keep-alive).

redirect   a registry on object storage with `redirect` on: every request is
           forwarded to REGISTRY_URL as it is, except blob GETs, which are
           answered 307 with Location: REGISTRY_URL + the same path (the
           client then downloads the bytes from there, not through the proxy).
ratelimit  Docker Hub's rate budget: every answer carries
           RateLimit-Limit: BUDGET;w=21600 and RateLimit-Remaining: N;w=21600,
           N counting down one per request. /v2/ and manifest GETs get 200 {}
           while N > 0; once the budget is spent every request gets 429 with
           distribution's TOOMANYREQUESTS body (none to a HEAD).
"""
import http.client
import http.server
import os
import re
import sys
import threading
import urllib.parse

BLOB_PATH = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads regmeter's numbers
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def handle_any(self):
        body = self.read_body()
        if MODE == "redirect":
            self.redirect_mode(body)
        else:
            self.ratelimit_mode()

    def redirect_mode(self, body):
        path = urllib.parse.urlsplit(self.path).path
        if self.command == "GET" and BLOB_PATH.match(path):
            self.answer(307, headers=[("Location", TARGET + self.path)])
            return
        target = urllib.parse.urlsplit(TARGET)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        # Header by header: a client sends several Accept lines, a dict would keep one.
        conn.putrequest(self.command, self.path, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in ("host", "connection", "content-length"):
                conn.putheader(name, value)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        reply = conn.getresponse()
        data = reply.read()
        passed = [(k, v) for k, v in reply.getheaders()
                  if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        self.answer(reply.status, data, passed)
        conn.close()

    def ratelimit_mode(self):
        with LOCK:
            left = STATE["remaining"]
            if left > 0:
                STATE["remaining"] = left - 1
        headers = [("RateLimit-Limit", "%d;w=21600" % BUDGET),
                   ("RateLimit-Remaining", "%d;w=21600" % max(left - 1, 0)),
                   ("Docker-Distribution-Api-Version", "registry/2.0"),
                   ("Content-Type", "application/json")]
        if left > 0:
            self.answer(200, b"{}", headers)
            return
        body = (b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit.",'
                b'"detail":"stand-in"}]}\n')
        self.answer(429, body, headers)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


def main():
    global MODE, TARGET, BUDGET
    if len(sys.argv) != 4 or sys.argv[2] not in ("redirect", "ratelimit"):
        sys.exit(__doc__)
    portfile, MODE = sys.argv[1], sys.argv[2]
    if MODE == "redirect":
        TARGET = sys.argv[3].rstrip("/")
    else:
        BUDGET = int(sys.argv[3])
        STATE["remaining"] = BUDGET
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(portfile + ".tmp", portfile)
    server.serve_forever()


MODE = TARGET = None
BUDGET = 0
STATE = {"remaining": 0}
LOCK = threading.Lock()

if __name__ == "__main__":
    main()
