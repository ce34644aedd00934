"""OSC 1.0 encoding: messages and bundles as bytes, pure functions, no sockets.

A small struct-based encoder rather than python-osc's builders because a frame carries ~100
messages and the whole avatar path has a 0.5 ms budget; the tests check these bytes against
python-osc's own builders and decode everything with python-osc's parser.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from functools import lru_cache

from avatar_bridge.errors import SinkError

#: OSC time tag meaning "immediately".
IMMEDIATELY = b"\x00\x00\x00\x00\x00\x00\x00\x01"
BUNDLE_HEADER = b"#bundle\x00" + IMMEDIATELY
#: Bytes a bundle adds around its elements: header + time tag, then a 4-byte size per element.
BUNDLE_OVERHEAD = len(BUNDLE_HEADER)
ELEMENT_OVERHEAD = 4

_PACK = {"i": ">i", "f": ">f", "d": ">d"}


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
    parts = [BUNDLE_HEADER]
    for e in elements:
        parts.append(struct.pack(">i", len(e)))
        parts.append(e)
    return b"".join(parts)


def bundle_size(elements: Iterable[bytes]) -> int:
    return BUNDLE_OVERHEAD + sum(ELEMENT_OVERHEAD + len(e) for e in elements)


def pack_bundles(
    messages: Sequence[bytes], max_datagram: int, trailer: bytes | None = None
) -> list[list[bytes]]:
    """Split ``messages`` greedily into groups whose bundles fit ``max_datagram`` bytes, in order.

    ``trailer`` (if given) is appended to every group and counted in its size (e.g. an Apply).
    """
    reserve = BUNDLE_OVERHEAD + (ELEMENT_OVERHEAD + len(trailer) if trailer is not None else 0)
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = reserve
    for m in messages:
        cost = ELEMENT_OVERHEAD + len(m)
        if reserve + cost > max_datagram:
            raise SinkError(f"one OSC message of {len(m)} bytes cannot fit a {max_datagram}-byte datagram")
        if current and size + cost > max_datagram:
            groups.append(current)
            current, size = [], reserve
        current.append(m)
        size += cost
    if current:
        groups.append(current)
    if trailer is not None:
        for g in groups:
            g.append(trailer)
    return groups
