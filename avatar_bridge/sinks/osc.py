"""OSC 1.0 encoding: messages and bundles as bytes, pure functions, no sockets.

A small struct-based encoder rather than python-osc's builders because a frame carries ~100
messages and the whole avatar path has a 0.5 ms budget: address and type-tag prefixes are encoded
once and cached, and the float32 values of a frame are packed in one call (see
:func:`named_float_elements`). The tests check these bytes against python-osc's own builders and
decode everything with python-osc's parser.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from avatar_bridge.errors import SinkError

#: OSC time tag meaning "immediately".
IMMEDIATELY = b"\x00\x00\x00\x00\x00\x00\x00\x01"
BUNDLE_HEADER = b"#bundle\x00" + IMMEDIATELY
#: Bytes a bundle adds around its elements: header + time tag, then a 4-byte size per element.
BUNDLE_OVERHEAD = len(BUNDLE_HEADER)
ELEMENT_OVERHEAD = 4

_PACK = {"i": ">i", "f": ">f", "d": ">d"}
_I32 = struct.Struct(">i")


@lru_cache(maxsize=8192)
def osc_string(s: str) -> bytes:
    """UTF-8, NUL-terminated, padded with NULs to a multiple of 4 bytes (cached: names repeat)."""
    b = s.encode("utf-8") + b"\x00"
    return b + b"\x00" * (-len(b) % 4)


@lru_cache(maxsize=4096)
def message_prefix(address: str, tags: str) -> bytes:
    """The address and type-tag strings of a message (cached: they repeat every frame)."""
    if not address.startswith("/"):
        raise SinkError(f"OSC address must start with '/', got {address!r}")
    return osc_string(address) + osc_string("," + tags)


def encode_message(address: str, tags: str, args: Sequence[object] = ()) -> bytes:
    """One OSC message; ``tags`` uses i (int32), f (float32), d (float64), s (string)."""
    if len(tags) != len(args):
        raise SinkError(f"{address}: {len(tags)} type tags for {len(args)} arguments")
    parts = [message_prefix(address, tags)]
    for tag, arg in zip(tags, args, strict=True):
        if tag == "s":
            parts.append(osc_string(str(arg)))
        elif tag in _PACK:
            parts.append(struct.pack(_PACK[tag], arg))
        else:
            raise SinkError(f"{address}: unsupported OSC type tag {tag!r}")
    return b"".join(parts)


def encode_bundle(elements: Iterable[bytes]) -> bytes:
    """A bundle with time tag "immediately" around already-encoded messages."""
    pack = _I32.pack
    return BUNDLE_HEADER + b"".join([pack(len(e)) + e for e in elements])


# ----------------------------------------------------------------------------- bundle elements
# A bundle element is a message preceded by its int32 size. The sinks build elements directly, and
# for the many "(s name)(f value)" messages of a frame the size + address + type tags + name part
# is constant per name, so it is computed once per name list and the float32 values are packed in
# one call: a frame costs one join instead of ~100 struct calls.


def element(message: bytes) -> bytes:
    """``message`` as a bundle element (int32 size, then the message)."""
    return _I32.pack(len(message)) + message


def bundle_of_elements(elements: Iterable[bytes]) -> bytes:
    """A bundle (time tag "immediately") around elements made by :func:`element`."""
    return BUNDLE_HEADER + b"".join(elements)


@lru_cache(maxsize=256)
def named_float_heads(prefix: bytes, names: tuple[str, ...]) -> tuple[bytes, ...]:
    """Per name: the element bytes before the float32 of ``prefix + osc_string(name) + f32``."""
    return tuple(_I32.pack(len(prefix) + len(osc_string(n)) + 4) + prefix + osc_string(n) for n in names)


def named_float_elements(prefix: bytes, names: tuple[str, ...], values: object) -> list[bytes]:
    """One element ``prefix (s name)(f value)`` per name, in order (``prefix``: address + ",sf")."""
    heads = named_float_heads(prefix, names)
    packed = np.asarray(values, dtype=">f4").tobytes()
    if len(packed) != 4 * len(heads):
        raise SinkError(f"{len(heads)} names for {len(packed) // 4} values")
    return list(map(bytes.__add__, heads, [packed[i : i + 4] for i in range(0, len(packed), 4)]))


def pack_elements(
    elements: Sequence[bytes], max_datagram: int, trailer: bytes | None = None
) -> list[list[bytes]]:
    """Split ``elements`` greedily into groups whose bundles fit ``max_datagram`` bytes, in order;
    ``trailer`` (an element, e.g. an Apply) ends every group and counts in its size."""
    reserve = BUNDLE_OVERHEAD + (len(trailer) if trailer is not None else 0)
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = reserve
    for e in elements:
        cost = len(e)
        if reserve + cost > max_datagram:
            raise SinkError(f"one OSC message of {cost - 4} bytes cannot fit a {max_datagram}-byte datagram")
        if current and size + cost > max_datagram:
            groups.append(current)
            current, size = [], reserve
        current.append(e)
        size += cost
    if current:
        groups.append(current)
    if trailer is not None:
        for g in groups:
            g.append(trailer)
    return groups


def bundle_size(elements: Iterable[bytes]) -> int:
    return BUNDLE_OVERHEAD + sum(ELEMENT_OVERHEAD + len(e) for e in elements)


def pack_bundles(
    messages: Sequence[bytes], max_datagram: int, trailer: bytes | None = None
) -> list[list[bytes]]:
    """:func:`pack_elements` for plain messages (not yet size-prefixed); returns plain messages."""
    framed = [_I32.pack(len(m)) + m for m in messages]
    tail = None if trailer is None else _I32.pack(len(trailer)) + trailer
    return [[e[ELEMENT_OVERHEAD:] for e in g] for g in pack_elements(framed, max_datagram, tail)]
