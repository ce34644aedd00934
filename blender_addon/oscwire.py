"""Strict OSC framing: split a datagram into messages, or say exactly why it cannot be used.

python-osc decodes each message's arguments; this module adds what a receiver inside Blender needs
and python-osc leaves lenient: bundle element sizes that must add up to the datagram, a bounded
nesting depth, only the argument types avatar-bridge and VMC use, and a message whose size matches
its type tags exactly (python-osc pads truncated floats and skips unknown types with a log line).
Pure Python, no bpy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pythonosc.osc_message import OscMessage

BUNDLE_PREFIX = b"#bundle\x00"
#: Argument types accepted, with their encoded size in bytes (strings are variable).
_FIXED_SIZE = {"i": 4, "f": 4, "d": 8, "h": 8, "T": 0, "F": 0, "N": 0}
_ALLOWED = frozenset("ifdhsTFN")


class MalformedPacket(ValueError):
    """The datagram is not well-formed OSC (truncated, bad sizes, bad type tags...)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded OSC message: its address and its arguments as Python values."""

    address: str
    args: tuple


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _read_string(data: bytes, start: int) -> tuple[str, int]:
    end = data.find(b"\x00", start)
    if end < 0:
        raise MalformedPacket("unterminated string")
    nxt = start + _pad4(end - start + 1)
    if nxt > len(data):
        raise MalformedPacket("string padding runs past the end")
    try:
        return data[start:end].decode("utf-8"), nxt
    except UnicodeDecodeError as e:
        raise MalformedPacket("string is not UTF-8") from e


def parse_message(data: bytes) -> Message:
    """Decode one OSC message and check that its size matches its type tags exactly."""
    if not data.startswith(b"/") or len(data) % 4:
        raise MalformedPacket("not an OSC message")
    address, index = _read_string(data, 0)
    if index == len(data):
        return Message(address, ())
    tags, index = _read_string(data, index)
    if not tags.startswith(",") or not set(tags[1:]) <= _ALLOWED:
        raise MalformedPacket(f"unsupported type tags {tags[:16]!r}")
    size = index
    for tag in tags[1:]:
        if tag == "s":
            _, size = _read_string(data, size)
        else:
            size += _FIXED_SIZE[tag]
    if size != len(data):
        raise MalformedPacket("message size does not match its type tags")
    try:
        args = tuple(OscMessage(data).params)
    except Exception as e:  # python-osc raises several types; all mean "malformed"
        raise MalformedPacket(f"undecodable arguments: {e}") from e
    return Message(address, args)


def parse_packet(data: bytes, max_depth: int = 4) -> list[Message]:
    """All messages of a datagram (a message, or a bundle, nested up to ``max_depth``), in order."""
    if data.startswith(BUNDLE_PREFIX):
        if max_depth <= 0:
            raise MalformedPacket("bundles nested too deeply")
        if len(data) < 16:
            raise MalformedPacket("bundle shorter than its header")
        out: list[Message] = []
        index = 16
        while index < len(data):
            if index + 4 > len(data):
                raise MalformedPacket("truncated bundle element size")
            (size,) = struct.unpack(">i", data[index : index + 4])
            index += 4
            if size <= 0 or size % 4 or index + size > len(data):
                raise MalformedPacket("bundle element size out of range")
            out.extend(parse_packet(data[index : index + size], max_depth - 1))
            index += size
        return out
    return [parse_message(data)]
