"""Read libfikit's per-process counters (include/fikit/client.h) from Python.

When a Python program runs under fikit-run (LD_PRELOAD=libfikit.so), the library's C API is in the
process's global symbol scope: ctypes.CDLL(None) finds fikit_get_stats there. Without the library
every function here returns None, so workloads can call it unconditionally.
"""

import ctypes
import functools

FIELDS = ("launches", "passed_through", "dropped", "lp_waits", "reconnects")


class _Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in FIELDS]


@functools.lru_cache(maxsize=None)
def _symbol(name):
    """Return the C function `name` from the process's global scope, or None."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (AttributeError, OSError):
        return None


def loaded():
    """Return True if libfikit.so is loaded in this process."""
    return _symbol("fikit_get_stats") is not None


def read():
    """Return the library's counters as a dict, or None without the library."""
    fn = _symbol("fikit_get_stats")
    if fn is None:
        return None
    s = _Stats()
    fn.restype = None
    fn(ctypes.byref(s))
    return {name: int(getattr(s, name)) for name in FIELDS}


def connected():
    """Return True/False (registered with a broker or failing open), or None without the library."""
    fn = _symbol("fikit_connected")
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    return bool(fn())


def delta(before, after):
    """Return after - before per counter, or None if either is None."""
    if before is None or after is None:
        return None
    return {name: after[name] - before[name] for name in FIELDS}
