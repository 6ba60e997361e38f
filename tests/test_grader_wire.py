"""grader.wire: only plain data crosses the sandbox boundary."""

from __future__ import annotations

import json
import os
import struct
import time

import numpy as np
import pytest

from grader import wire


def roundtrip(obj):
    frame = wire.encode(obj)
    return wire.decode_payload(frame[4:])


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        "text",
        [1, (2, 3), {"a": [4.0]}],
        (),
        {"nested": {"deeper": (None, "x")}},
    ],
)
def test_plain_values_roundtrip(value):
    assert roundtrip(value) == value


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "uint8", "bool", "float16"])
def test_arrays_roundtrip_with_dtype_and_shape(dtype):
    x = (np.arange(24) % 5).reshape(2, 3, 4).astype(dtype)
    y = roundtrip(x)
    assert type(y) is np.ndarray
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, x)


def test_non_contiguous_and_big_endian_arrays_are_normalised():
    x = np.arange(12.0).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(roundtrip(x), x)
    be = np.arange(4, dtype=">f8")
    y = roundtrip(be)
    assert y.dtype == np.dtype("<f8")
    np.testing.assert_array_equal(y, be)


def test_numpy_scalars_keep_their_type():
    y = roundtrip({"i": np.int64(3), "f": np.float32(1.5)})
    assert type(y["i"]) is np.int64 and y["i"] == 3
    assert type(y["f"]) is np.float32


def test_custom_objects_are_refused_by_the_encoder():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    with pytest.raises(wire.Unencodable, match="AlwaysEqual"):
        wire.encode([1, AlwaysEqual()])


def test_object_arrays_and_non_str_keys_are_refused():
    with pytest.raises(wire.Unencodable, match="dtype object"):
        wire.encode(np.array([None, 1], dtype=object))
    with pytest.raises(wire.Unencodable, match="keys"):
        wire.encode({1: 2})


def forged(header: dict, blobs: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack(">I", len(h)) + h + blobs


@pytest.mark.parametrize(
    "header, blobs, match",
    [
        ({"v": {"t": "a", "b": 0, "dtype": "|O", "shape": [1]}, "b": [8]}, b"\0" * 8, "dtype"),
        ({"v": {"t": "a", "b": 0, "dtype": "<f8", "shape": [2]}, "b": [8]}, b"\0" * 8, "size"),
        ({"v": {"t": "a", "b": 3, "dtype": "<f8", "shape": [1]}, "b": [8]}, b"\0" * 8, "ref"),
        ({"v": {"t": "a", "b": 0, "dtype": "<f8", "shape": [-1]}, "b": [8]}, b"\0" * 8, "shape"),
        ({"v": {"t": "pickle", "data": "..."}, "b": []}, b"", "unknown"),
        ({"v": {"t": "d", "k": [1], "v": [2]}, "b": []}, b"", "keys"),
        ({"v": 1, "b": [4]}, b"", "add up"),
    ],
)
def test_decoder_rejects_forged_frames(header, blobs, match):
    with pytest.raises(wire.WireError, match=match):
        wire.decode_payload(forged(header, blobs))


def test_decoder_rejects_deep_nesting_and_garbage():
    deep = {"t": "l", "v": []}
    node = deep
    for _ in range(wire.MAX_DEPTH + 5):
        child = {"t": "l", "v": []}
        node["v"].append(child)
        node = child
    with pytest.raises(wire.WireError):
        wire.decode_payload(forged({"v": deep, "b": []}))
    with pytest.raises(wire.WireError):
        wire.decode_payload(b"\x00\x00\x00\x05{not json")


def test_recv_enforces_size_limit_deadline_and_eof():
    r, w = os.pipe()
    try:
        os.write(w, struct.pack(">I", 10**9))
        with pytest.raises(wire.WireError, match="larger than the limit"):
            wire.recv(r, time.monotonic() + 5, max_bytes=1000)
        t = time.monotonic()
        with pytest.raises(wire.WireTimeout):
            wire.recv(r, time.monotonic() + 0.2)
        assert time.monotonic() - t < 2
    finally:
        os.close(w)
    with pytest.raises(wire.PeerGone):
        wire.recv(r, time.monotonic() + 5)
    os.close(r)


def test_functions_cross_only_as_references_and_only_towards_the_submission():
    def f(v):
        return v * 2

    with pytest.raises(wire.Unencodable, match="function"):
        wire.encode({"f": f})  # the submission's side: a function is not plain data
    registered = []

    def register(function):
        registered.append(function)
        return len(registered) - 1

    frame = wire.encode({"f": f, "x": [1.5, f]}, register=register)
    assert registered == [f, f] and b"v * 2" not in frame
    with pytest.raises(wire.WireError, match="function references are not accepted"):
        wire.decode_payload(frame[4:])  # the runner's side refuses references
    stubs = wire.decode_payload(frame[4:], stub=lambda ref: ("stub", ref))
    assert stubs == {"f": ("stub", 0), "x": [1.5, ("stub", 1)]}
    with pytest.raises(wire.WireError, match="malformed function reference"):
        wire.decode_payload(forged({"v": {"t": "f", "id": "0"}, "b": []}), stub=lambda ref: ref)


def test_runner_lines_are_split_in_linear_time_and_capped():
    from grader.autograde import LineBuffer

    buf = LineBuffer(max_line=10_000)
    line = b"x" * 9_000
    for i in range(0, len(line), 7):  # one long line in many small chunks
        buf.feed(line[i : i + 7])
    assert buf.pop() is None
    buf.feed(b"\n{}\n\nab")
    assert [buf.pop(), buf.pop(), buf.pop(), buf.pop()] == [line, b"{}", b"", None]
    buf.feed(b"c\n")
    assert buf.pop() == b"abc"
    with pytest.raises(ValueError, match="longer than 10,000 bytes"):
        for _ in range(2):
            buf.feed(b"y" * 6_000)
