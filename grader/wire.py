"""Plain-data wire format between the grader and a sandboxed submission.

Used on both sides of the sandbox: the trusted test runner (grader.runner) sends
arguments to the submission's functions, and the submission's worker
(grader._student) sends back what they returned. Only plain data crosses:
None, bool, int, float, str, lists, tuples, dicts with str keys, NumPy scalars
and NumPy arrays of bool, integer or float dtypes. The decoder never unpickles,
never calls code, checks every size before allocating and rebuilds arrays as
fresh ``numpy.ndarray`` objects, so whatever a submission sends can at worst be
wrong data: it cannot be an object with a forged ``__eq__``.

One thing that is not data crosses in one direction only: a function the
runner passes to the submission (a test's ``numerical_gradient(f, x)``) is sent
as a *reference*, a number. The worker's decoder turns it into a stub that asks
the runner to call ``f`` (grader.session); the function itself never leaves the
runner. The runner's decoder refuses references.

A frame is ``len(payload)`` as 4 bytes big-endian, then the payload:
``len(header)`` as 4 bytes big-endian, a UTF-8 JSON header, then the raw bytes of
each array one after the other. This module imports only the standard library
and NumPy, so the sandbox can load it without the rest of the grader.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time

import numpy as np

MAX_FRAME_BYTES = 256 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_NDIM = 32

# dtype strings the decoder accepts (native little-endian layouts only)
ALLOWED_DTYPES = {
    "|b1",
    "|i1",
    "<i2",
    "<i4",
    "<i8",
    "|u1",
    "<u2",
    "<u4",
    "<u8",
    "<f2",
    "<f4",
    "<f8",
}


class WireError(Exception):
    """The peer sent something that is not a valid frame of plain data."""


class PeerGone(WireError):
    """The peer closed its end of the pipe (it exited or was killed)."""


class WireTimeout(WireError):
    """The peer did not answer before the deadline."""


class Unencodable(TypeError):
    """A value cannot be sent: it is not plain data."""


# --------------------------------------------------------------------------- encode
def _dtype_str(dtype: np.dtype) -> str:
    s = dtype.newbyteorder("<").str if dtype.byteorder == ">" else dtype.str
    if s.startswith("="):
        s = "<" + s[1:]
    return s


def _encode(obj, blobs: list, depth: int, where: str, register):
    if depth > MAX_DEPTH:
        raise Unencodable(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if type(obj) is int or type(obj) is float:
        return obj
    if isinstance(obj, np.generic):
        arr = np.asarray(obj)
        dt = _dtype_str(arr.dtype)
        if dt not in ALLOWED_DTYPES:
            raise Unencodable(f"{where}: NumPy scalar of dtype {arr.dtype} is not supported")
        return {"t": "s", "dtype": dt, "v": arr.item()}
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj).view(np.ndarray)
        dt = _dtype_str(arr.dtype)
        if dt not in ALLOWED_DTYPES:
            raise Unencodable(
                f"{where}: array of dtype {arr.dtype} is not supported "
                "(use bool, integer or float arrays)"
            )
        arr = arr.astype(np.dtype(dt), copy=False)
        blobs.append(arr.tobytes())
        return {"t": "a", "b": len(blobs) - 1, "dtype": dt, "shape": list(arr.shape)}
    if isinstance(obj, (list, tuple)):
        kind = "u" if isinstance(obj, tuple) else "l"
        return {
            "t": kind,
            "v": [
                _encode(x, blobs, depth + 1, f"{where}[{i}]", register) for i, x in enumerate(obj)
            ],
        }
    if isinstance(obj, dict):
        keys = list(obj.keys())
        if not all(type(k) is str for k in keys):
            raise Unencodable(f"{where}: dict keys must be str")
        return {
            "t": "d",
            "k": keys,
            "v": [_encode(obj[k], blobs, depth + 1, f"{where}[{k!r}]", register) for k in keys],
        }
    # subclasses of int/float (e.g. bool-like tricks) are converted explicitly
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if register is not None and callable(obj):
        return {"t": "f", "id": register(obj)}
    raise Unencodable(
        f"{where}: an object of type {type(obj).__name__} is not plain data; "
        "use NumPy arrays, numbers, strings, tuples, lists or dicts"
    )


def encode(obj, where: str = "value", register=None) -> bytes:
    """Encode ``obj`` into one frame (length prefix included).

    ``register(function) -> int``, given by the runner only, turns each callable
    into a reference; without it a callable is Unencodable, like any object."""
    blobs: list[bytes] = []
    tree = _encode(obj, blobs, 0, where, register)
    header = json.dumps({"v": tree, "b": [len(b) for b in blobs]}).encode("utf-8")
    payload = struct.pack(">I", len(header)) + header + b"".join(blobs)
    if len(payload) > MAX_FRAME_BYTES:
        raise Unencodable(f"{where}: {len(payload)} bytes is more than the limit")
    return struct.pack(">I", len(payload)) + payload


# --------------------------------------------------------------------------- decode
def _decode(node, blobs: list, depth: int, stub):
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is not dict:
        raise WireError(f"unexpected JSON node of type {type(node).__name__}")
    kind = node.get("t")
    if kind == "l" or kind == "u":
        items = node.get("v")
        if type(items) is not list:
            raise WireError("malformed sequence")
        out = [_decode(x, blobs, depth + 1, stub) for x in items]
        return tuple(out) if kind == "u" else out
    if kind == "d":
        keys, vals = node.get("k"), node.get("v")
        if type(keys) is not list or type(vals) is not list or len(keys) != len(vals):
            raise WireError("malformed dict")
        if not all(type(k) is str for k in keys):
            raise WireError("dict keys must be str")
        return {k: _decode(v, blobs, depth + 1, stub) for k, v in zip(keys, vals, strict=True)}
    if kind == "s":
        dt = node.get("dtype")
        if dt not in ALLOWED_DTYPES:
            raise WireError(f"dtype {dt!r} not allowed")
        v = node.get("v")
        if type(v) not in (bool, int, float):
            raise WireError("malformed scalar")
        try:
            return np.dtype(dt).type(v)
        except (OverflowError, ValueError) as exc:
            raise WireError(f"bad scalar: {exc}") from None
    if kind == "a":
        dt, shape, idx = node.get("dtype"), node.get("shape"), node.get("b")
        if dt not in ALLOWED_DTYPES:
            raise WireError(f"dtype {dt!r} not allowed")
        if type(shape) is not list or len(shape) > MAX_NDIM:
            raise WireError("malformed shape")
        if not all(type(n) is int and n >= 0 for n in shape):
            raise WireError("malformed shape")
        if type(idx) is not int or not 0 <= idx < len(blobs):
            raise WireError("bad array reference")
        dtype = np.dtype(dt)
        count = 1
        for n in shape:
            count *= n
        blob = blobs[idx]
        if count * dtype.itemsize != len(blob):
            raise WireError("array size does not match its data")
        return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()
    if kind == "f":
        ref = node.get("id")
        if stub is None:
            raise WireError("function references are not accepted from this side")
        if type(ref) is not int or ref < 0:
            raise WireError("malformed function reference")
        return stub(ref)
    raise WireError(f"unknown node kind {kind!r}")


def decode_payload(payload: bytes, stub=None):
    """Decode a payload (the frame without its 4-byte length prefix).

    ``stub(ref) -> callable``, given by the worker only, turns a function
    reference into something the submission can call; without it a reference
    is refused."""
    if len(payload) < 4:
        raise WireError("truncated frame")
    (hlen,) = struct.unpack(">I", payload[:4])
    if hlen > MAX_HEADER_BYTES or 4 + hlen > len(payload):
        raise WireError("bad header length")
    try:
        header = json.loads(payload[4 : 4 + hlen].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WireError(f"header is not valid JSON: {exc}") from None
    if type(header) is not dict or type(header.get("b")) is not list:
        raise WireError("malformed header")
    sizes = header["b"]
    if not all(type(n) is int and n >= 0 for n in sizes):
        raise WireError("malformed blob sizes")
    if 4 + hlen + sum(sizes) != len(payload):
        raise WireError("blob sizes do not add up")
    blobs, pos = [], 4 + hlen
    for n in sizes:
        blobs.append(payload[pos : pos + n])
        pos += n
    try:
        return _decode(header.get("v"), blobs, 0, stub)
    except RecursionError:
        raise WireError("value nested too deeply") from None


# --------------------------------------------------------------------------- pipes
def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    """Read exactly ``n`` bytes from ``fd`` or raise PeerGone / WireTimeout."""
    chunks, got = [], 0
    while got < n:
        timeout = _remaining(deadline)
        if timeout is not None:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise WireTimeout("no answer before the deadline")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise PeerGone("the other side closed the pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd: int, deadline: float | None = None, max_bytes: int = MAX_FRAME_BYTES, stub=None):
    """Receive and decode one frame."""
    (n,) = struct.unpack(">I", read_exact(fd, 4, deadline))
    if n > max_bytes:
        raise WireError(f"frame of {n} bytes is larger than the limit of {max_bytes}")
    return decode_payload(read_exact(fd, n, deadline), stub)


def send_bytes(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write all of ``data`` to ``fd`` (which may be non-blocking) before the deadline."""
    view = memoryview(data)
    while view:
        timeout = _remaining(deadline)
        if timeout is not None:
            _, ready, _ = select.select([], [fd], [], timeout)
            if not ready:
                raise WireTimeout("the other side is not reading")
        try:
            written = os.write(fd, view[: 1 << 16])
        except BlockingIOError:
            continue
        except (BrokenPipeError, OSError) as exc:
            raise PeerGone(f"cannot write to the other side: {exc}") from None
        view = view[written:]


def send(fd: int, obj, deadline: float | None = None, where: str = "value", register=None) -> None:
    send_bytes(fd, encode(obj, where, register), deadline)
