"""VRChat OSC (``vrchat://``, default 127.0.0.1:9000): face tracking as avatar parameters.

Each target of the session's profile (``vrcft_unified`` by default, VRCFaceTracking's Unified
Expressions) is sent as ``/avatar/parameters/<prefix><Name>`` with one float32, ``prefix``
defaulting to ``FT/v2/``. VRChat rate-limits parameters, so a value is sent only when it changed
by more than ``min_delta`` since it was last sent, and every value again each ``refresh`` seconds.
One message per datagram (the form VRChat documents), or bundles with ``?bundle=1``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avatar_bridge.records import FrameOutput, RigWeights
from avatar_bridge.sinks.base import SinkURL, UdpSink
from avatar_bridge.sinks.osc import encode_bundle, message_prefix, pack_bundles

DEFAULT_PORT = 9000
DEFAULT_PREFIX = "FT/v2/"


def parameter_address(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"/avatar/parameters/{prefix}{name}"


@lru_cache(maxsize=64)
def _heads(names: tuple[str, ...], prefix: str) -> tuple[bytes, ...]:
    return tuple(message_prefix(parameter_address(n, prefix), "f") for n in names)


def encode_parameters(
    names: tuple[str, ...], values: np.ndarray, prefix: str = DEFAULT_PREFIX
) -> list[bytes]:
    """One OSC message ``/avatar/parameters/<prefix><name> ,f value`` per name; pure."""
    heads = _heads(tuple(names), prefix)
    packed = np.asarray(values, dtype=">f4").tobytes()
    if len(packed) != 4 * len(heads):
        raise ValueError(f"{len(heads)} names for {len(packed) // 4} values")
    return list(map(bytes.__add__, heads, [packed[i : i + 4] for i in range(0, len(packed), 4)]))


def changed_mask(values: np.ndarray, last: np.ndarray | None, min_delta: float) -> np.ndarray:
    """Which values to send: all when nothing was sent yet, else those that moved > min_delta."""
    if last is None or last.shape != values.shape:
        return np.ones(values.shape, bool)
    return np.abs(values - last) > min_delta


class VrchatSink(UdpSink):
    """``vrchat://HOST:PORT?profile=vrcft_unified&prefix=FT/v2/&min_delta=0.002&refresh=1&bundle=0``."""

    scheme = "vrchat"
    default_port = DEFAULT_PORT
    default_profile = "vrcft_unified"
    extra_params = frozenset({"prefix", "min_delta", "refresh", "bundle", "face", "max_datagram"})

    def __init__(self, url: SinkURL) -> None:
        super().__init__(url)
        self.prefix = url.params.get("prefix", DEFAULT_PREFIX)
        self.min_delta = url.float_param("min_delta", 0.002, 0.0, 1.0)
        self.refresh = url.float_param("refresh", 1.0, 0.0, 3600.0)
        self.bundle = url.bool_param("bundle", False)
        self.face = url.int_param("face", -1, lo=-1, hi=1 << 20)
        self.max_datagram = url.int_param("max_datagram", 1400, lo=128, hi=65507)
        self._sent: np.ndarray | None = None
        self._names: tuple[str, ...] = ()
        self._last_full: float | None = None

    def select(self, w: RigWeights, timestamp: float) -> tuple[tuple[str, ...], np.ndarray]:
        """The (names, values) due this frame, updating what was sent."""
        mask, values = self._due(w, timestamp)
        return tuple(n for n, m in zip(w.names, mask, strict=True) if m), values[mask]

    def _due(self, w: RigWeights, timestamp: float) -> tuple[np.ndarray, np.ndarray]:
        """(mask of the values due this frame, all values), updating what was sent."""
        values = np.asarray(w.values, np.float32)
        full = (
            self._sent is None
            or self._names != w.names
            or self._last_full is None
            or timestamp - self._last_full >= self.refresh
            or timestamp < self._last_full
        )
        if full:
            mask = np.ones(values.shape, bool)
            self._last_full = timestamp
        else:
            mask = changed_mask(values, self._sent, self.min_delta)
        sent = values.copy() if full or self._sent is None else np.where(mask, values, self._sent)
        self._sent, self._names = sent, w.names
        return mask, values

    def encode(self, out: FrameOutput) -> list[bytes]:
        if not out.weights:
            return []
        w = next((w for w in out.weights if w.face_id == self.face), out.weights[0])
        mask, values = self._due(w, out.timestamp)
        heads = _heads(w.names, self.prefix)
        idx = np.flatnonzero(mask).tolist()
        packed = values[mask].astype(">f4").tobytes()
        messages = [heads[i] + packed[4 * k : 4 * k + 4] for k, i in enumerate(idx)]
        if not self.bundle:
            return messages
        return [encode_bundle(g) for g in pack_bundles(messages, self.max_datagram)] if messages else []
