"""One receiving session: socket -> decoder -> complete frames, plus the counters the panel shows.

:meth:`StreamSession.poll` runs on Blender's main thread (from a timer, or directly in background
mode and tests). It never raises because of what arrived: every datagram that cannot be used is
counted under a reason and dropped. Pure Python, no bpy.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

from .protocol import MALFORMED, FrameAssembler, NativeDecoder, PacketError, StreamFrame, VMCDecoder
from .receiver import UDPReceiver

PROTOCOLS = ("NATIVE", "VMC")
DEFAULT_PORTS = {"NATIVE": 9100, "VMC": 39539}


@dataclass
class SessionOptions:
    """Where to listen and how much to accept.

    ``max_bytes``: datagrams above it are dropped as oversized (None: 1,400 for native, the
    sender's limit; 65,507 for VMC). ``max_queue``: datagrams buffered between the thread and the
    main thread (default 8192). ``rate_window``: seconds over which packets/s is measured (1.0).
    """

    protocol: str = "NATIVE"
    host: str = "127.0.0.1"
    port: int = 9100
    max_bytes: int | None = None
    max_queue: int = 8192
    recv_buffer_bytes: int = 1 << 20
    max_pending_frames: int = 16
    vmc_head_bone: str = "Head"
    rate_window: float = 1.0


@dataclass
class SessionStats:
    """Counters for the status panel; ``dropped`` maps a reason to a count of datagrams."""

    packets: int = 0
    frames: int = 0
    dropped: Counter = field(default_factory=Counter)
    queue_full: int = 0
    incomplete_frames: int = 0
    unknown_messages: int = 0
    bad_values: int = 0
    last_frame: int = -1
    last_timestamp: float = float("nan")
    packets_per_second: float = 0.0
    last_error: str = ""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values()) + self.queue_full

    def as_dict(self) -> dict:
        return {
            "packets": self.packets, "frames": self.frames, "dropped": dict(self.dropped),
            "dropped_total": self.dropped_total, "queue_full": self.queue_full,
            "incomplete_frames": self.incomplete_frames, "unknown_messages": self.unknown_messages,
            "bad_values": self.bad_values, "last_frame": self.last_frame,
            "packets_per_second": self.packets_per_second, "last_error": self.last_error,
        }  # fmt: skip


class StreamSession:
    """Socket plus decoder for one protocol; :meth:`poll` returns the frames completed since."""

    def __init__(self, options: SessionOptions | None = None) -> None:
        self.options = options or SessionOptions()
        if self.options.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.options.protocol!r}")
        self.stats = SessionStats()
        native = self.options.protocol == "NATIVE"
        limit = self.options.max_bytes or (1400 if native else 65507)
        self._native = NativeDecoder(max_bytes=limit)
        self._vmc = VMCDecoder(head_bone=self.options.vmc_head_bone, max_bytes=limit)
        self._assembler = FrameAssembler(max_pending=self.options.max_pending_frames)
        self._times: deque[float] = deque()
        self.receiver: UDPReceiver | None = None

    @property
    def running(self) -> bool:
        return self.receiver is not None and self.receiver.running

    def start(self) -> None:
        """Open the socket (raises receiver.ReceiverError, e.g. when the port is in use)."""
        if self.running:
            return
        o = self.options
        self.receiver = UDPReceiver(o.host, o.port, o.max_queue, o.recv_buffer_bytes)
        try:
            self.receiver.start()
        except OSError:
            self.receiver = None
            raise

    def stop(self) -> None:
        """Close the socket; what was queued and not polled is discarded."""
        if self.receiver is not None:
            self.receiver.stop()
            self.stats.queue_full = self.receiver.queue_full
            self.receiver = None
        self._assembler.reset()
        self._vmc.reset()

    def feed(self, data: bytes, received_at: float) -> list[StreamFrame]:
        """Decode one datagram into the frames it completes; count and drop anything unusable."""
        self.stats.packets += 1
        self._times.append(received_at)
        try:
            if self.options.protocol == "VMC":
                frames = self._vmc.decode(data, received_at)
                self.stats.bad_values = self._vmc.bad_values
            else:
                part = self._native.decode(data)
                self.stats.unknown_messages += part.unknown_messages
                self.stats.bad_values += part.bad_values
                done = self._assembler.add(part)
                self.stats.incomplete_frames = self._assembler.incomplete
                frames = [done] if done is not None else []
        except PacketError as e:
            self.stats.dropped[e.reason] += 1
            self.stats.last_error = str(e)
            return []
        except Exception as e:  # a decoder bug must not reach Blender either; count it
            self.stats.dropped[MALFORMED] += 1
            self.stats.last_error = f"{type(e).__name__}: {e}"
            return []
        for f in frames:
            self.stats.frames += 1
            self.stats.last_frame, self.stats.last_timestamp = f.index, f.timestamp
        return frames

    def poll(self, max_packets: int = 100_000, now: float | None = None) -> list[StreamFrame]:
        """Decode everything queued (up to ``max_packets``); frames in arrival order."""
        frames: list[StreamFrame] = []
        if self.receiver is not None:
            for received_at, data in self.receiver.drain(max_packets):
                frames.extend(self.feed(data, received_at))
            self.stats.queue_full = self.receiver.queue_full
        now = time.monotonic() if now is None else now
        while self._times and self._times[0] < now - self.options.rate_window:
            self._times.popleft()
        self.stats.packets_per_second = len(self._times) / self.options.rate_window
        return frames
