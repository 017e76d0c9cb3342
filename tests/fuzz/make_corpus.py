#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/<target>/.

The seeds are real shapes: what docker, skopeo and containerd send on a push
and a pull, what distribution answers, pipelined requests, and the request
smuggling shapes the proxy must refuse. Re-running it rewrites the seeds it
knows (file names are stable) and leaves any other file alone.

    python3 tests/fuzz/make_corpus.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DIGEST = "sha256:" + "3f" * 32
UUID = "0b6bcbd1-8a4f-4b9b-9d4a-6c0b1a2c3d4e"
STATE = "_state=" + "Zm9vYmFy" * 12 + "%3D%3D"
HOST = "127.0.0.1:5080"


def req(method, target, headers=(), body=b"", version="HTTP/1.1", host=HOST):
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts, ext="", trailer=b""):
    out = b""
    for p in parts:
        out += b"%x%s\r\n" % (len(p), ext.encode()) + p + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


def resp(status, reason, headers=(), body=b"", version="HTTP/1.1"):
    lines = [f"{version} {status} {reason}"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


DOCKER = ["User-Agent: docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64",
          "Accept-Encoding: gzip"]
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'
ACCEPT = ("Accept: application/vnd.docker.distribution.manifest.v2+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")

request_head = {
    # docker (classic store) push of one blob, then the manifest
    "docker-head-blob": req("HEAD", f"/v2/library/alpine/blobs/{DIGEST}", DOCKER),
    "docker-post": req("POST", "/v2/library/alpine/blobs/uploads/", DOCKER + ["Content-Length: 0"]),
    "docker-patch-chunked": req("PATCH", f"/v2/library/alpine/blobs/uploads/{UUID}?{STATE}&_rm=17a2b3c4d5e6f708.400",
                                DOCKER + ["Transfer-Encoding: chunked", "Content-Type: application/octet-stream"],
                                chunked(b"x" * 300, b"y" * 17, b"\0\1\2\r\n")),
    "docker-put-digest": req("PUT", f"/v2/library/alpine/blobs/uploads/{UUID}?{STATE}&digest={DIGEST}",
                             DOCKER + ["Content-Length: 0", "Content-Type: application/octet-stream"]),
    "docker-put-manifest": req("PUT", "/v2/library/alpine/manifests/latest",
                               DOCKER + ["Content-Type: application/vnd.oci.image.manifest.v1+json",
                                         f"Content-Length: {len(MANIFEST)}"], MANIFEST),
    # skopeo: POST, PATCH with a length, PUT
    "skopeo-patch-length": req("PATCH", f"/v2/a/b/c/blobs/uploads/{UUID}?{STATE}",
                               ["User-Agent: skopeo/1.9.3", "Content-Length: 64",
                                "Content-Type: application/octet-stream"], b"z" * 64),
    "skopeo-mount": req("POST", f"/v2/dst/blobs/uploads/?mount={DIGEST}&from=src", ["Content-Length: 0"]),
    # containerd: monolithic PUT with Expect
    "containerd-put": req("PUT", f"/v2/x/blobs/uploads/{UUID}?{STATE}&digest={DIGEST}",
                          ["User-Agent: containerd/v1.6.20", "Content-Length: 10", "Expect: 100-continue"],
                          b"0123456789"),
    # pulls
    "pull-manifest": req("GET", "/v2/library/alpine/manifests/3.19", DOCKER + [ACCEPT,
                         "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"]),
    "pull-range": req("GET", f"/v2/library/alpine/blobs/{DIGEST}", ["Range: bytes=0-1048575"]),
    "base-http10": req("GET", "/v2/", ["Connection: keep-alive"], version="HTTP/1.0", host=None),
    "tags-list": req("GET", "/v2/a/tags/list?n=100&last=v1", ["X-Forwarded-For: 10.0.0.1",
                     "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.test"]),
    "catalog": req("GET", "/v2/_catalog?n=10", ["Connection: close"]),
    "delete-manifest": req("DELETE", f"/v2/a/manifests/{DIGEST}"),
    # keep-alive: several in a row, with bodies in between
    "pipelined": req("GET", "/v2/") + req("PUT", "/v2/a/manifests/t", ["Content-Length: 5"], b"hello")
                 + req("PATCH", f"/v2/a/blobs/uploads/{UUID}", ["Transfer-Encoding: chunked"], chunked(b"abc"))
                 + req("HEAD", "/v2/a/manifests/t"),
    "chunk-ext-trailer": req("PATCH", f"/v2/a/blobs/uploads/{UUID}", ["Transfer-Encoding: chunked"],
                             chunked(b"0123456789abcdef", ext=';name="v"', trailer=b"Digest: x\r\nX-T: y\r\n"))
                         + req("GET", "/v2/"),
    "absolute-form": req("GET", "http://127.0.0.1:1/v2/?x=1", host="127.0.0.1:1"),
    "absolute-form-https": req("GET", "https://example.test/v2/a/manifests/latest"),
    "long-target": req("GET", "/v2/" + "/".join(["abcdefgh"] * 400) + "/manifests/latest?" + "q=" + "a" * 4000),
    "hop-by-hop": req("GET", "/v2/", ["Connection: keep-alive, X-Secret, Content-Length, Host",
                                      "Keep-Alive: timeout=5", "TE: trailers", "Trailer: X-T", "Upgrade: h2c",
                                      "Proxy-Authorization: Basic eA==", "X-Secret: 1", "Content-Length: 0"]),
    # smuggling shapes: all must be refused or framed one way only
    "smuggle-cl-te": req("POST", "/v2/a/blobs/uploads/", ["Content-Length: 4", "Transfer-Encoding: chunked"],
                         b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"),
    "smuggle-te-cl": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: chunked", "Content-Length: 40"],
                         chunked(b"abc")),
    "smuggle-dup-cl": req("PUT", "/v2/a/manifests/t", ["Content-Length: 5", "Content-Length: 6"], b"hello!"),
    "smuggle-cl-list": req("PUT", "/v2/a/manifests/t", ["Content-Length: 5, 5"], b"hello"),
    "smuggle-cl-plus": req("PUT", "/v2/a/manifests/t", ["Content-Length: +5"], b"hello"),
    "smuggle-cl-hex": req("PUT", "/v2/a/manifests/t", ["Content-Length: 0x5"], b"hello"),
    "smuggle-cl-huge": req("PUT", "/v2/a/manifests/t", ["Content-Length: 99999999999999999999"], b"x"),
    "smuggle-te-gzip": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: gzip"], b"abc"),
    "smuggle-te-chunked-identity": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: chunked, identity"],
                                       chunked(b"abc")),
    "smuggle-te-twice": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: chunked",
                                                              "Transfer-Encoding: chunked"], chunked(b"abc")),
    "smuggle-te-xchunked": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: xchunked"], chunked(b"abc")),
    "smuggle-te-tab": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding:\tchunked"], chunked(b"abc")),
    "smuggle-bad-chunk-size": req("PATCH", "/v2/a/blobs/uploads/u", ["Transfer-Encoding: chunked"],
                                  b"zz\r\nabc\r\n0\r\n\r\n"),
    "smuggle-chunk-overflow": req("PATCH", "/v2/a/blobs/uploads/u", ["Transfer-Encoding: chunked"],
                                  b"10000000000000001\r\nabc\r\n0\r\n\r\n"),
    "smuggle-chunk-no-crlf": req("PATCH", "/v2/a/blobs/uploads/u", ["Transfer-Encoding: chunked"],
                                 b"3\r\nabcX0\r\n\r\n"),
    "smuggle-chunk-lf-only": req("PATCH", "/v2/a/blobs/uploads/u", ["Transfer-Encoding: chunked"],
                                 b"3\nabc\n0\n\n"),
    "smuggle-chunk-negative": req("PATCH", "/v2/a/blobs/uploads/u", ["Transfer-Encoding: chunked"],
                                  b"-3\r\nabc\r\n0\r\n\r\n"),
    "smuggle-obs-fold": req("GET", "/v2/", ["X-A: 1", " Transfer-Encoding: chunked"]),
    "smuggle-space-colon": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding : chunked"], chunked(b"a")),
    "smuggle-conn-cl": req("PUT", "/v2/a/manifests/t", ["Connection: Content-Length", "Content-Length: 5"], b"hello"),
    "smuggle-conn-te": req("PATCH", "/v2/a/blobs/uploads/u", ["Connection: Transfer-Encoding",
                                                                "Transfer-Encoding: chunked"], chunked(b"hi")),
    "smuggle-nul": b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
    "smuggle-bare-cr": b"GET /v2/ HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
    "smuggle-bare-lf": b"GET /v2/ HTTP/1.1\nHost: x\n\r\n\r\n",
    "http2": req("GET", "/v2/", version="HTTP/2.0"),
    "http09": b"GET /v2/\r\n\r\n",
    "http11-version-9": req("GET", "/v2/", version="HTTP/1.9"),
    "connect": req("CONNECT", "127.0.0.1:22", host="127.0.0.1:22"),
    "options-star": req("OPTIONS", "*"),
    "target-ctl": b"GET /v2/\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    "target-utf8": "GET /v2/\u00e9/manifests/t HTTP/1.1\r\nHost: x\r\n\r\n".encode("utf-8"),
    # issue 13: RFC 9112 framing refusals, head limits, trailers, paths
    "te-identity-chunked": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: identity, chunked"], chunked(b"a")),
    "te-comma-chunked": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: ,chunked"], chunked(b"a")),
    "te-empty-second": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: chunked", "Transfer-Encoding:"],
                           chunked(b"a")),
    "te-gzip-chunked": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: gzip, chunked"], chunked(b"a")),
    "te-unknown": req("POST", "/v2/a/blobs/uploads/", ["Transfer-Encoding: foo"], b"abc"),
    "host-missing": req("GET", "/v2/", host=None),
    "host-twice": req("GET", "/v2/", ["Host: other.test"]),
    "host-invalid": req("GET", "/v2/", host="a/b@evil"),
    "cl-2to63": req("PUT", "/v2/a/manifests/t", ["Content-Length: 9223372036854775808"], b"x"),
    "cl-max": req("PUT", "/v2/a/manifests/t", ["Content-Length: 9223372036854775807"], b"x"),
    "chunk-ext-4k": req("PATCH", "/v2/a/blobs/uploads/u", ["Transfer-Encoding: chunked"],
                        b"3;" + b"e" * 4096 + b"\r\nabc\r\n0\r\n\r\n"),
    "http09-no-blank": b"GET /v2/\r\n",
    "bare-lf-crlf-lf": b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\n",
    "bare-lf-lf-crlf": b"GET /v2/ HTTP/1.1\r\nHost: x\n\r\n",
    "bare-lf-leading": b"\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "empty-lines-first": b"\r\n" * 3 + req("GET", "/v2/"),
    "fields-101": req("GET", "/v2/", [f"X-F{i}: v" for i in range(100)]),
    "fields-100": req("GET", "/v2/", [f"X-F{i}: v" for i in range(99)]),
    "connection-65": req("GET", "/v2/", ["Connection: " + ", ".join(f"o{i}" for i in range(65))]),
    "connection-64-named": req("GET", "/v2/", ["Connection: " + ", ".join(f"o{i}" for i in range(64))]
                               + [f"o{i}: v" for i in range(0, 64, 3)]),
    "issue13-hostile-head": req("GET", "/v2/", ["Connection: " + ",".join(["c"] * 15000)]
                                + [f"x:{i % 10}" for i in range(6000)]),
    "trailer-smuggle": req("PATCH", f"/v2/a/blobs/uploads/{UUID}", ["Transfer-Encoding: chunked"],
                           b"3\r\nabc\r\n0\r\nGET /v2/SMUGGLED HTTP/1.1\r\nHost: h\r\n\r\n"),
    "trailer-bad-name": req("PATCH", f"/v2/a/blobs/uploads/{UUID}", ["Transfer-Encoding: chunked"],
                            chunked(b"abc", trailer=b"X A: 1\r\n")),
    "trailer-many": req("PATCH", f"/v2/a/blobs/uploads/{UUID}", ["Transfer-Encoding: chunked"],
                        chunked(b"abc", trailer=b"".join(b"T%d: v\r\n" % i for i in range(120)))) + req("GET", "/v2/"),
    "dot-segments": req("GET", "/v2/a/../b/manifests/x") + req("GET", "/v2/a/%2e%2e/b/manifests/x")
                    + req("GET", "/v2/a%2Fb/manifests/x"),
    # responses (the same target reads its input as an upstream answer too)
    "resp-202-location": resp(202, "Accepted", [f"Location: http://127.0.0.1:5000/v2/a/blobs/uploads/{UUID}?{STATE}",
                              "Range: 0-0", "Content-Length: 0", f"Docker-Upload-Uuid: {UUID}",
                              "Docker-Distribution-Api-Version: registry/2.0"]),
    "resp-201-manifest": resp(201, "Created", [f"Docker-Content-Digest: {DIGEST}", "Location: /v2/a/manifests/x",
                              "Content-Length: 0"]),
    "resp-100-then-201": resp(100, "Continue") + resp(201, "Created", ["Content-Length: 0"]),
    "resp-200-chunked": resp(200, "OK", ["Transfer-Encoding: chunked", "Content-Type: application/json"],
                             chunked(b'{"name":"a","tags":["t"]}')),
    "resp-200-until-close": resp(200, "OK", ["Content-Type: application/octet-stream"], b"q" * 100),
    "resp-204": resp(204, "No Content", ["Content-Length: 12"]),
    "resp-304": resp(304, "Not Modified", ["Content-Length: 99"]),
    "resp-307": resp(307, "Temporary Redirect", ["Location: https://objects.test/blob?sig=abc", "Content-Length: 0"]),
    "resp-401": resp(401, "Unauthorized", ['WWW-Authenticate: Bearer realm="https://auth.test/token",'
                                           'service="registry",scope="repository:a:pull"',
                                           "Content-Length: 2"], b"{}"),
    "resp-http10-keepalive": resp(200, "OK", ["Connection: keep-alive", "Content-Length: 2"], b"{}",
                                  version="HTTP/1.0"),
    "resp-te-gzip": resp(200, "OK", ["Transfer-Encoding: gzip"], b"\x1f\x8b..."),
    "resp-conn-cl": resp(200, "OK", ["Connection: Content-Length, close", "Content-Length: 3"], b"abc"),
    "resp-status-000": resp("000", "Zero", ["Content-Length: 0"]),
    "resp-status-999": resp(999, "Odd", ["Content-Length: 0"]),
    "resp-trailer": resp(200, "OK", ["Transfer-Encoding: chunked"], chunked(b"ok", trailer=b"X-Sum: 1\r\n")),
    "resp-trailer-smuggle": resp(200, "OK", ["Transfer-Encoding: chunked"],
                                 b"2\r\nok\r\n0\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "resp-many-codings": resp(200, "OK", ["Transfer-Encoding: gzip, deflate"] * 50 + ["Transfer-Encoding: chunked"],
                              chunked(b"x")),
}

route = {
    "base": b"/v2/", "catalog": b"/v2/_catalog?n=1", "tags": b"/v2/library/alpine/tags/list",
    "manifest-tag": b"/v2/a/b/manifests/latest", "manifest-digest": f"/v2/a/manifests/{DIGEST}".encode(),
    "blob": f"/v2/a/blobs/{DIGEST}".encode(), "upload": b"/v2/a/blobs/uploads/",
    "upload-mount": f"/v2/a/blobs/uploads/?mount={DIGEST}&from=b".encode(),
    "upload-chunk": f"/v2/a/blobs/uploads/{UUID}?{STATE}".encode(),
    "referrers": f"/v2/a/referrers/{DIGEST}?artifactType=x".encode(),
    "host-name": b"/v2/Localhost:5000/foo/manifests/v1", "encoded": b"/v2/a%2Fb/tags/list",
    "bad-escape": b"/v2/a%zz/tags/list", "dotdot": b"/v2/a/../b/tags/list", "double-slash": b"/v2//a/tags/list",
    "absolute": b"http://h:1/v2/a/manifests/x", "opaque": b"mailto:x", "v2-noslash": b"/v2",
    "long": b"/v2/" + b"a/" * 2000 + b"manifests/" + b"t" * 128,
    "separators": b"/v2/a__b/c--d/e.f/manifests/sha256+x.y:AbC=_-",
    "hash": b"/v2/a/manifests/t#frag", "ctl": b"/v2/\x7f/tags/list",
    "dot-encoded": b"/v2/a/%2e%2e/b/manifests/x", "dot-mixed": b"/v2/a/.%2E/b/manifests/x",
    "dot-trailing": b"/v2/a/manifests/x/.", "dot-into-v2": b"/x/../v2/b/manifests/x",
    "slash-encoded-ref": b"/v2/a/manifests/x%2fy", "v2-encoded-slash": b"/v2%2F",
}

upload_session = {
    "token": b"17a2b3c4d5e6f708.400", "target": f"/v2/a/blobs/uploads/{UUID}?{STATE}&_rm=1.2".encode(),
    "target-two": b"/v2/a/blobs/uploads/u?_rm=1.2&x=1&_rm=zz&&y", "location-abs":
    f"http://127.0.0.1:5000/v2/a/blobs/uploads/{UUID}?{STATE}".encode(), "fragment": b"/v2/a?x#f&_rm=1.1",
    "upper": b"ABCDEF.0", "overflow": b"ffffffffffffffffff.1", "empty-parts": b"?&&_rm=&",
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("fuzz_request_head", request_head)
write("fuzz_route", route)
write("fuzz_upload_session", upload_session)
print("seeds:", len(request_head), len(route), len(upload_session))
