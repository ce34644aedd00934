"""A UDP socket read by a background thread that only fills a queue.

Blender data must be touched on the main thread only, so the thread does nothing but
``recvfrom`` and ``put``: decoding and applying happen in :meth:`StreamSession.poll` (session.py),
called from a timer or, in background mode and tests, directly. Pure Python, no bpy.
"""

from __future__ import annotations

import errno
import queue
import socket
import threading
import time


class ReceiverError(OSError):
    """The socket could not be opened; ``port_in_use`` tells the panel what to say."""

    def __init__(self, message: str, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


class UDPReceiver:
    """Bind ``host:port`` and queue ``(receive time, datagram)`` pairs from a daemon thread.

    ``max_queue`` (default 8192) bounds memory: when the main thread falls behind, new datagrams
    are counted in ``queue_full`` and dropped. ``recv_buffer_bytes`` (default 1 MiB) asks the
    kernel for room to absorb bursts. ``read_timeout`` (default 0.1 s) is how quickly stop() is
    noticed by the thread.
    """

    #: Larger than any UDP payload, so oversized datagrams arrive whole and can be counted.
    READ_SIZE = 65536

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9100,
        max_queue: int = 8192,
        recv_buffer_bytes: int = 1 << 20,
        read_timeout: float = 0.1,
    ) -> None:
        self.host, self.port = host, port
        self.max_queue, self.recv_buffer_bytes, self.read_timeout = max_queue, recv_buffer_bytes, read_timeout
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.received = 0
        self.queue_full = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port); the real port when 0 was asked for."""
        return self._sock.getsockname()[:2] if self._sock else None

    def start(self) -> None:
        """Open the socket and start the thread; raise :class:`ReceiverError` on failure."""
        if self.running:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer_bytes)
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            in_use = e.errno == errno.EADDRINUSE
            what = "is in use by another program" if in_use else f"cannot be opened ({e.strerror or e})"
            raise ReceiverError(f"UDP {self.host}:{self.port} {what}", port_in_use=in_use) from e
        sock.settimeout(self.read_timeout)
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"avatar-bridge-udp-{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        while not self._stop.is_set() and sock is not None:
            try:
                data = sock.recv(self.READ_SIZE)
            except TimeoutError:
                continue
            except OSError:  # the socket failed; nothing more will arrive
                break
            self.received += 1
            try:
                self.queue.put_nowait((time.monotonic(), data))
            except queue.Full:
                self.queue_full += 1

    def drain(self, max_items: int = 100_000) -> list[tuple[float, bytes]]:
        """Take up to ``max_items`` queued datagrams, oldest first, without blocking."""
        out = []
        for _ in range(max_items):
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def stop(self) -> None:
        """Close the socket and wait for the thread (at most a few read timeouts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 5 * self.read_timeout))
        if self._sock is not None:
            self._sock.close()
        self._sock, self._thread = None, None

    def __enter__(self) -> UDPReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
