#!/usr/bin/env python3
"""Why the storm rows' upstream-connection sampler (lib.sh) takes the median
of five `ss` dumps: one dump is not atomic. This keeps exactly N
connections established to a local listener (closing one before opening the
next, as fast as it can) and reports the highest count single dumps and
the median of five dumps read. N is never exceeded; single dumps exceed it.

    python3 tests/bench/ss_skew.py [N] [SECONDS]
"""
import socket
import subprocess
import sys
import threading
import time

DUMPS = 5
N = int(sys.argv[1]) if len(sys.argv) > 1 else 64
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 4

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(4096)
port = server.getsockname()[1]
accepted = []


def accept_forever():
    while True:
        conn, _ = server.accept()
        accepted.append(conn)
        if len(accepted) > 4 * N:
            accepted.pop(0).close()


def count():
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


threading.Thread(target=accept_forever, daemon=True).start()
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(N)]
end = time.monotonic() + SECONDS
reopened = 0


def churn():
    global reopened
    i = 0
    while time.monotonic() < end:
        conns[i].close()
        conns[i] = socket.create_connection(("127.0.0.1", port))
        reopened += 1
        i = (i + 1) % N


threading.Thread(target=churn, daemon=True).start()
single = median = 0
while time.monotonic() < end:
    single = max(single, count())
    median = max(median, sorted(count() for _ in range(DUMPS))[DUMPS // 2])
print(f"{N} connections (never more), {reopened} reopened in {SECONDS:g} s: "
      f"single dumps saw up to {single}, the median of {DUMPS} up to {median}")
