#!/usr/bin/env python3
"""A stand-in for a GPU program, for `bpf_broker_gpu_test.py --selftest` (no GPU needed): it
issues NVIDIA-shaped ioctls on a test character device that the broker's observer was told to
decode as the driver (fikit-broker start --bpf-test-device).

    bpf_fake_gpu_program.py DEV MIB [--register SOCKET NAME]

Creates an RM client, a device, a context (channel group) with a channel, MIB of device memory and
a stream (UVM range group); prints "allocated"; waits for a line; frees the memory and the stream;
prints "freed"; waits for a line; exits 0. With --register it first registers with the broker as a
tenant by hand (the control protocol of include/fikit/protocol.h) and stays registered.
Constants come from bpf/gpu_observer.h and include/fikit/abi.h, so they cannot drift.
"""

import ctypes
import fcntl
import os
import re
import socket
import struct
import sys

SOURCE = os.environ.get("FIKIT_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def defines(path, pattern):
    """{NAME: int} of the numeric `#define`s / `inline constexpr`s in path matching pattern."""
    out = {}
    with open(os.path.join(SOURCE, path)) as f:
        for m in re.finditer(pattern, f.read()):
            out[m.group(1)] = int(m.group(2), 0)
    return out


NV = defines("bpf/gpu_observer.h", r"#define (FIKIT_\w+) (0x[0-9a-fA-F]+|\d+)")
ABI = defines("include/fikit/abi.h", r"inline constexpr uint\d+_t (k\w+) = (0x[0-9a-fA-F]+|\d+);")
MSG_MAGIC = 0x4B494631  # kMsgMagic of include/fikit/protocol.h ("1FIK")
CLIENT, DEVICE, TSG, CHANNEL, VIDMEM = 0xC1D00001, 0xCAF00001, 0xCAF00010, 0xCAF00011, 0xCAF00020
GPFIFO_HOPPER = 0xC86F
STREAM_ID = 7


def nv_cmd(nr, size):  # _IOC(_IOC_READ | _IOC_WRITE, 'F', nr, size)
    return (3 << 30) | (size << 16) | (NV["FIKIT_NV_IOCTL_MAGIC"] << 8) | nr


def call(fd, cmd, buf):
    try:
        fcntl.ioctl(fd, cmd, buf, True)
    except OSError:
        pass  # the test device has no driver (ENOTTY): the observer sees the call all the same


def rm_alloc(fd, parent, handle, cls, params=0):
    root = 0 if handle == CLIENT else CLIENT  # a client is allocated under no root
    p = bytearray(struct.pack("<IIIIQQIIII", root, parent, handle, cls, params, 0, 0, 0, 0, 0))
    call(fd, nv_cmd(NV["FIKIT_NV_ESC_RM_ALLOC"], len(p)), p)


def rm_free(fd, parent, handle):
    p = bytearray(struct.pack("<IIII", CLIENT, parent, handle, 0))
    call(fd, nv_cmd(NV["FIKIT_NV_ESC_RM_FREE"], len(p)), p)


def range_group(fd, cmd):
    call(fd, cmd, bytearray(struct.pack("<QII", STREAM_ID, 0, 0)))


def register(path, name):
    """Register as a tenant (priority 0); return the connection, to be kept open."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    size = 16 + 8 + ABI["kNameLen"]
    s.send(struct.pack(f"<IHHII II{ABI['kNameLen']}s", MSG_MAGIC, ABI["kAbiMajor"],
                       ABI["kAbiMinor"], 1, size, 0, 0, name.encode()))
    reply = s.recv(4096)
    status = struct.unpack_from("<i", reply, 16)[0]
    if status != 0:
        error = reply[16 + 8 + 64:].split(b"\0")[0].decode()
        sys.exit(f"registration refused: {error}")
    return s


def main():
    dev, mib = sys.argv[1], int(sys.argv[2])
    conn = register(sys.argv[4], sys.argv[5]) if sys.argv[3:4] == ["--register"] else None
    fd = os.open(dev, os.O_RDWR)
    mem = ctypes.create_string_buffer(136)  # NV_MEMORY_ALLOCATION_PARAMS: size at offset 64
    struct.pack_into("<Q", mem, 64, mib << 20)
    rm_alloc(fd, 0, CLIENT, NV["FIKIT_CLASS_ROOT_CLIENT"])
    rm_alloc(fd, CLIENT, DEVICE, NV["FIKIT_CLASS_DEVICE"])
    rm_alloc(fd, DEVICE, TSG, NV["FIKIT_CLASS_CHANNEL_GROUP"])
    rm_alloc(fd, TSG, CHANNEL, GPFIFO_HOPPER)
    rm_alloc(fd, DEVICE, VIDMEM, NV["FIKIT_CLASS_MEMORY_LOCAL_USER"], ctypes.addressof(mem))
    range_group(fd, NV["FIKIT_UVM_CREATE_RANGE_GROUP"])
    print("allocated", flush=True)
    sys.stdin.readline()
    rm_free(fd, DEVICE, VIDMEM)
    range_group(fd, NV["FIKIT_UVM_DESTROY_RANGE_GROUP"])
    print("freed", flush=True)
    sys.stdin.readline()
    os.close(fd)
    if conn:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
