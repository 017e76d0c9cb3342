#!/usr/bin/env python3
"""tls_hello.py PORT: one TLS handshake attempt on 127.0.0.1:PORT, as a client
that tries HTTPS first makes it (no verification). Prints "<seconds> <how it
ended>": the seconds until the handshake failed (or "handshake-succeeded")."""
import socket
import ssl
import sys
import time

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
start = time.monotonic()
try:
    ctx.wrap_socket(s, server_hostname="registry.test")
    how = "handshake-succeeded"
except ssl.SSLError as e:
    how = e.reason or str(e)
except OSError as e:
    how = str(e)
print("%.2f %s" % (time.monotonic() - start, how))
