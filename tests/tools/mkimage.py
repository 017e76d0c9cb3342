#!/usr/bin/env python3
"""Build a random OCI image layout by hand, for end-to-end tests.

usage: mkimage.py DIR TAG SIZE [SIZE...]

Each SIZE (bytes, or with a K/M/G suffix) becomes one gzip layer holding a
single file of that many random bytes. The layers are gzip-compressed already,
so skopeo pushes them unchanged (it would compress an uncompressed layer and
change its digest). Prints a JSON summary on stdout:
  {"manifest": "sha256:...", "manifest_size": N, "config": "sha256:...",
   "layers": ["sha256:...", ...], "blobs": {"sha256:...": size, ...}}
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time


def parse_size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B").rstrip("I")
    if text and text[-1] in mult:
        return int(text[:-1]) * mult[text[-1]]
    return int(text)


class RandomReader(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left, 1 << 20)
        if n <= 0:
            return 0
        b[:n] = os.urandom(n)
        self.left -= n
        return n


def write_blob(blobdir, data_path):
    h = hashlib.sha256()
    size = 0
    with open(data_path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    digest = h.hexdigest()
    os.replace(data_path, os.path.join(blobdir, digest))
    return "sha256:" + digest, size


def write_bytes_blob(blobdir, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobdir, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    root, tag = sys.argv[1], sys.argv[2]
    sizes = [parse_size(s) for s in sys.argv[3:]]
    blobdir = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobdir, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    layers, diff_ids, blobs = [], [], {}
    for i, size in enumerate(sizes):
        tar_path = os.path.join(root, f".layer{i}.tar")
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(f"data/layer{i}.bin")
            info.size = size
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, RandomReader(size))
            # A small marker file makes every layer unique even when SIZE is 0.
            marker = os.urandom(16).hex().encode()
            minfo = tarfile.TarInfo(f"data/layer{i}.id")
            minfo.size = len(marker)
            tar.addfile(minfo, io.BytesIO(marker))
        h = hashlib.sha256()
        gz_path = tar_path + ".gz"
        with open(tar_path, "rb") as src, open(gz_path, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    gz.write(chunk)
        os.unlink(tar_path)
        diff_ids.append("sha256:" + h.hexdigest())
        digest, bsize = write_blob(blobdir, gz_path)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": digest, "size": bsize})
        blobs[digest] = bsize

    config = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Labels": {"regmeter.e2e.nonce": os.urandom(8).hex()}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "regmeter e2e mkimage.py"} for _ in sizes],
    }
    cdigest, csize = write_bytes_blob(blobdir, json.dumps(config, sort_keys=True).encode())
    blobs[cdigest] = csize
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdigest, "size": csize},
        "layers": layers,
    }
    mbytes = json.dumps(manifest, indent=2).encode()
    mdigest, msize = write_bytes_blob(blobdir, mbytes)
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": mdigest, "size": msize,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    json.dump({"manifest": mdigest, "manifest_size": msize, "config": cdigest,
               "layers": [l["digest"] for l in layers], "blobs": blobs}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
