#!/usr/bin/env python3
"""A tiny HTTP/1.1 server on 127.0.0.1 that misbehaves on cue, by path.

    misbehaving_upstream.py PORTFILE [--port N] [--log FILE]

Listens on 127.0.0.1 (port N, or a free one), writes the port to PORTFILE
once it accepts connections, and serves until killed. One thread per
connection; keep-alive unless told otherwise. Every connection is logged, one
line per event, flushed at once (to --log FILE, default stderr):

    conn 3 open
    conn 3 request PATCH /sink/x
    conn 3 end eof body=1048576          (peer closed or reset; body bytes read so far)
    conn 3 end complete body=1048576     (we answered and the peer left later)
    conn 3 end closed-by-us              (we closed on purpose)

Behaviour by path (the query string is ignored except where noted). A
"/v2/" prefix is ignored when more follows, so "/v2/stall/manifests/x" stalls
like "/stall" while being a route the proxy counts (handler manifest):

  /v2/, /ok           200 {} with Docker-Distribution-Api-Version, keep-alive
  /refuse             close at once after reading the request head (FIN)
  /reset              reset the connection after reading the head (SO_LINGER 0)
  /stall              read the head, never answer (the socket stays open)
  /die-mid-body       200 announcing Content-Length 10 MiB, send 1 MiB, close
  /garbage            non-HTTP bytes (with a blank line in them), then close
  /slow-head?d=S      a valid 200 whose head trickles out over S s (default 3)
  /echo               200 whose body is the request head exactly as received
                      (then the request body is read and discarded)
  /redirect?to=URL    307 with Location: URL
  /sink...            reads the whole request body (Content-Length or
                      chunked, logged as it ends), then 201; a peer that
                      goes away mid-body is logged "end eof body=N"
  anything else       404 {}

The request body of other paths is read and discarded (Content-Length or
chunked) so keep-alive stays in step.
"""
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse

LOG_LOCK = threading.Lock()
LOG = sys.stderr
COUNTER = [0]


def log(line):
    with LOG_LOCK:
        LOG.write(line + "\n")
        LOG.flush()


class PeerGone(Exception):
    pass


class Conn:
    def __init__(self, sock, cid):
        self.sock = sock
        self.cid = cid
        self.buf = b""
        self.body = 0  # body bytes read in the current request

    def fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise PeerGone()
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise PeerGone()
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def readline(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def skip(self, n):
        while n > 0:
            if not self.buf:
                self.fill()
            take = min(n, len(self.buf))
            self.buf = self.buf[take:]
            self.body += take
            n -= take

    def read_body(self, headers):
        te = headers.get("transfer-encoding", "").lower()
        if "chunked" in te:
            while True:
                size = int(self.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.readline() != b"":
                        pass
                    return
                self.skip(size)
                self.readline()
        n = int(headers.get("content-length", "0") or 0)
        self.skip(n)

    def send(self, data):
        self.sock.sendall(data)


def response(status, reason, body=b"", extra=(), close=False):
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Length: %d" % len(body),
             "Content-Type: application/json; charset=utf-8",
             "Docker-Distribution-Api-Version: registry/2.0"]
    lines += list(extra)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def handle(sock, cid):
    conn = Conn(sock, cid)
    log("conn %d open" % cid)
    ended = "eof"
    try:
        while True:
            conn.body = 0
            head = conn.read_head()
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[0:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            url = urllib.parse.urlsplit(target)
            path, query = url.path, urllib.parse.parse_qs(url.query)
            # "/v2/<keyword>/..." behaves like "/<keyword>": the request is
            # then a registry route the proxy counts in its metrics.
            if path.startswith("/v2/") and len(path) > 4:
                path = "/" + path[4:]
            kw = path.strip("/").split("/")[0]
            log("conn %d request %s %s" % (cid, method, target))

            if kw == "refuse":
                ended = "closed-by-us"
                return
            if kw == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ended = "reset-by-us"
                return
            if kw == "stall":
                ended = "stalled"
                while True:  # hold until the peer goes away
                    conn.fill()
                    conn.buf = b""
            if kw == "die-mid-body":
                conn.read_body(headers)
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n"
                          b"Docker-Distribution-Api-Version: registry/2.0\r\n\r\n" % (10 << 20))
                chunk = b"m" * 65536
                for _ in range(16):
                    conn.send(chunk)
                time.sleep(0.2)
                ended = "closed-by-us"
                return
            if kw == "garbage":
                conn.send(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n\x16\x03\x01 garbage")
                time.sleep(0.2)
                ended = "closed-by-us"
                return
            if kw == "slow-head":
                conn.read_body(headers)
                delay = float(query.get("d", ["3"])[0])
                data = response(200, "OK", b"{}")
                head_len = data.index(b"\r\n\r\n") + 4
                step = delay / head_len
                for i in range(head_len):
                    conn.send(data[i:i + 1])
                    time.sleep(step)
                conn.send(data[head_len:])
                continue
            if kw == "echo":
                conn.send(response(200, "OK", head, ["X-Echo: 1"]))
                conn.read_body(headers)
                continue
            if kw == "redirect":
                conn.read_body(headers)
                to = query.get("to", ["http://127.0.0.1:1/"])[0]
                conn.send(response(307, "Temporary Redirect", b"", ["Location: " + to]))
                continue
            if kw.startswith("sink"):
                ended = "eof"  # until the body is complete, any end is the peer's
                conn.read_body(headers)
                log("conn %d body complete body=%d" % (cid, conn.body))
                conn.send(response(201, "Created", b"{}"))
                ended = "complete"
                continue
            conn.read_body(headers)
            if path == "/v2/" or kw == "ok":
                conn.send(response(200, "OK", b"{}"))
            else:
                conn.send(response(404, "Not Found", b"{}"))
            ended = "complete"
    except (PeerGone, ConnectionError, OSError, ValueError):
        pass
    finally:
        log("conn %d end %s body=%d" % (cid, ended, conn.body))
        try:
            sock.close()
        except OSError:
            pass


def main():
    global LOG
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    portfile, port = args[0], 0
    i = 1
    while i < len(args):
        if args[i] == "--port":
            port = int(args[i + 1])
            i += 2
        elif args[i] == "--log":
            LOG = open(args[i + 1], "a", buffering=1)
            i += 2
        else:
            print("unknown option " + args[i], file=sys.stderr)
            return 2
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.replace(portfile + ".tmp", portfile)
    while True:
        sock, _ = srv.accept()
        COUNTER[0] += 1
        threading.Thread(target=handle, args=(sock, COUNTER[0]), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
