#!/usr/bin/env python3
"""`tools/fikit-demo` draws its timeline: a short demo (few HP requests) on the simulated driver
writes a PNG that is a valid PNG of the expected size (1000x400), with one row per setting. No
pixel comparison: the picture depends on timing."""
import os
import struct
import subprocess
import sys
import tempfile
import zlib


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def png_size(path):
    """(width, height) of a PNG whose chunks all have valid CRCs, else fail."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s is not a PNG (signature %r)" % (path, data[:8]))
    at, size, chunks = 8, None, []
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        crc, = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            fail("%s: chunk %r has a bad CRC" % (path, kind))
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        chunks.append(kind)
        at += 12 + length
    if not chunks or chunks[0] != b"IHDR" or chunks[-1] != b"IEND" or b"IDAT" not in chunks:
        fail("%s: chunks %r" % (path, chunks))
    return size


def main():
    build = os.environ.get("FIKIT_BUILD_DIR", "build")
    src = os.environ.get("FIKIT_SOURCE_DIR", ".")
    # tools/fikit-demo-timeline runs Debian's python3, which python3-matplotlib serves.
    if subprocess.run(["/usr/bin/python3", "-c", "import matplotlib"]).returncode != 0:
        fail("python3-matplotlib is not installed (scripts/install-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="fikit-demo-test-") as tmp:
        png = tmp + "/timeline.png"
        env = dict(os.environ)
        env.pop("FIKIT_SOCKET", None)
        r = subprocess.run([src + "/tools/fikit-demo", "--build", build, "--requests", "12",
                            "--policies", "none priority fikit", "--png", png],
                           capture_output=True, text=True, timeout=120, env=env)
        print(r.stdout + r.stderr)
        if r.returncode != 0:
            fail("fikit-demo exited %d" % r.returncode)
        if not os.path.exists(png):
            fail("no PNG written")
        size = png_size(png)
        if size != (1000, 400):
            fail("the PNG is %dx%d, want 1000x400" % size)
        if "wrote " + png not in r.stdout:
            fail("fikit-demo did not say where the picture is")
    print("PASS")


if __name__ == "__main__":
    main()
