#!/usr/bin/env python3
"""Raw HTTP/1.1 helpers for end-to-end tests (no client library in the way).

rawhttp.py send HOST PORT COUNT [--head IDX,...] [--timeout S]
    Reads request bytes from stdin, sends them in one write, then parses COUNT
    responses off the same connection. Responses to the requests whose 0-based
    indexes are listed after --head are read as responses to HEAD (no body).
    Prints one JSON document: {"responses": [...], "extra": N, "closed": bool,
    "error": "..."} where each response is {"status", "reason", "headers":
    [[name, value], ...], "body_len", "body_sha256", "body_head"} and "extra"
    is the number of bytes that arrived after the last parsed response within
    the timeout.

rawhttp.py trap PORTFILE COUNTFILE
    Listens on 127.0.0.1 (free port, written to PORTFILE), and writes the number
    of accepted connections to COUNTFILE after each accept. Answers nothing.
    Runs until killed.

"""
import hashlib
import json
import os
import socket
import sys


class Conn:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.closed = False
        self.sock.settimeout(timeout)

    def fill(self):
        if self.closed:
            raise EOFError("connection closed by peer")
        data = self.sock.recv(1 << 16)
        if not data:
            self.closed = True
            raise EOFError("connection closed by peer")
        self.buf += data

    def readline(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_to_close(self):
        while True:
            try:
                self.fill()
            except EOFError:
                break
        data, self.buf = self.buf, b""
        return data


def read_response(conn, is_head):
    while True:
        status_line = conn.readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError("bad status line: %r" % status_line)
        status = int(parts[1])
        headers = []
        while True:
            line = conn.readline().decode("latin-1")
            if line == "":
                break
            name, _, value = line.partition(":")
            headers.append([name.strip(), value.strip()])
        if 100 <= status < 200 and status != 101:
            continue  # interim response; the final one follows
        break
    hmap = {k.lower(): v for k, v in headers}
    body = b""
    if is_head or status in (204, 304):
        pass
    elif "chunked" in hmap.get("transfer-encoding", "").lower():
        while True:
            size = int(conn.readline().split(b";")[0], 16)
            if size == 0:
                while conn.readline() != b"":
                    pass
                break
            body += conn.read(size)
            conn.read(2)
    elif "content-length" in hmap:
        body = conn.read(int(hmap["content-length"]))
    else:
        body = conn.read_to_close()
    return {
        "status": status,
        "reason": parts[2] if len(parts) > 2 else "",
        "headers": headers,
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_head": body[:300].decode("latin-1"),
    }


def cmd_send(args):
    host, port, count = args[0], int(args[1]), int(args[2])
    heads, timeout = set(), 10.0
    i = 3
    while i < len(args):
        if args[i] == "--head":
            heads = {int(x) for x in args[i + 1].split(",") if x}
            i += 2
        elif args[i] == "--timeout":
            timeout = float(args[i + 1])
            i += 2
        else:
            raise SystemExit("unknown option " + args[i])
    payload = sys.stdin.buffer.read()
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall(payload)
    conn = Conn(sock, timeout)
    out = {"responses": [], "extra": 0, "closed": False, "error": None}
    try:
        for idx in range(count):
            out["responses"].append(read_response(conn, idx in heads))
        # Anything more within a short grace is a protocol error (e.g. a body
        # sent after a HEAD response).
        conn.sock.settimeout(0.5)
        try:
            conn.fill()
        except (socket.timeout, EOFError):
            pass
        out["extra"] = len(conn.buf)
    except (EOFError, ValueError, socket.timeout, ConnectionError) as exc:
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
    out["closed"] = conn.closed
    sock.close()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


def cmd_trap(args):
    portfile, countfile = args[0], args[1]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(countfile, "w") as f:
        f.write("0\n")
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.replace(portfile + ".tmp", portfile)
    n = 0
    held = []
    while True:
        c, _ = srv.accept()
        held.append(c)
        n += 1
        with open(countfile, "w") as f:
            f.write("%d\n" % n)



def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "send":
        return cmd_send(args)
    if cmd == "trap":
        return cmd_trap(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
