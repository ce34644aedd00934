"""The sink protocol, sink URLs and the UDP transport every network sink shares.

A sink has ``open()``, ``send(out: FrameOutput)`` and ``close()`` (called once), a ``name`` for
reports and an optional ``profile`` (the rig profile its weights must be in; None = the
session's). Network sinks only encode (a pure function) and hand the datagrams to
:class:`UdpSink`, which sends them unconnected: a receiver that goes away (ICMP port
unreachable) never stops the pipeline.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from avatar_bridge.errors import ConfigError, SinkError
from avatar_bridge.records import FrameOutput

DEFAULT_HOST = "127.0.0.1"
#: Query parameters every network sink accepts.
COMMON_PARAMS = frozenset({"profile", "bind", "broadcast"})


@dataclass(frozen=True, slots=True)
class SinkURL:
    """A parsed sink URL: ``scheme://host:port/path?key=value&...``."""

    text: str
    scheme: str
    host: str | None
    port: int | None
    path: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SinkURL:
        """Split ``text``; a malformed URL raises ConfigError naming it and what is wrong."""
        if "://" not in text:
            raise ConfigError(
                f"malformed sink URL {text!r}: expected scheme://host:port (e.g. osc://127.0.0.1:9100)"
            )
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as e:
            raise ConfigError(f"malformed sink URL {text!r}: {e}") from e
        if not parts.scheme:
            raise ConfigError(f"malformed sink URL {text!r}: missing scheme")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(f"malformed sink URL {text!r}: port must be 1-65535, got {port}")
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as e:
            raise ConfigError(f"malformed sink URL {text!r}: bad query ({e})") from e
        params: dict[str, str] = {}
        for key, values in query.items():
            if len(values) != 1:
                raise ConfigError(f"malformed sink URL {text!r}: parameter {key!r} given {len(values)} times")
            params[key] = values[0]
        return cls(text, parts.scheme.lower(), parts.hostname, port, parts.path, params)

    def check_params(self, allowed: frozenset[str]) -> None:
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ConfigError(
                f"sink URL {self.text!r}: unknown parameter(s) {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )

    def int_param(self, key: str, default: int, lo: int, hi: int) -> int:
        return int(self._number(key, default, lo, hi, int, "an integer"))

    def float_param(self, key: str, default: float, lo: float, hi: float) -> float:
        return float(self._number(key, default, lo, hi, float, "a number"))

    def _number(self, key: str, default: float, lo: float, hi: float, cast: type, kind: str) -> float:
        if key not in self.params:
            return default
        try:
            value = cast(self.params[key])
        except ValueError as e:
            got = self.params[key]
            raise ConfigError(f"sink URL {self.text!r}: {key} must be {kind}, got {got!r}") from e
        if not lo <= value <= hi:
            raise ConfigError(f"sink URL {self.text!r}: {key} must be within {lo}..{hi}, got {value}")
        return value

    def bool_param(self, key: str, default: bool) -> bool:
        if key not in self.params:
            return default
        value = self.params[key].lower()
        if value in ("1", "true", "yes", "on", ""):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"sink URL {self.text!r}: {key} must be true or false, got {self.params[key]!r}")


def _os_reason(e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return "address already in use"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "not permitted"
    if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "host unreachable (no route)"
    if e.errno == errno.EADDRNOTAVAIL:
        return "address not available on this machine"
    return e.strerror or str(e)


class UdpSink:
    """Base of the network sinks: parse the URL, open an unconnected UDP socket, send datagrams.

    Subclasses set ``scheme``, ``default_port``, ``extra_params`` and implement ``encode(out)``.
    URL parameters: ``profile`` (rig profile), ``bind`` (local [host:]port to send from),
    ``broadcast`` (allow a broadcast address).
    """

    scheme = ""
    default_port = 0
    extra_params: frozenset[str] = frozenset({"max_datagram"})
    default_profile: str | None = None

    def __init__(self, url: SinkURL) -> None:
        url.check_params(COMMON_PARAMS | self.extra_params)
        if url.path not in ("", "/"):
            raise ConfigError(f"sink URL {url.text!r}: {self.scheme}:// takes no path, got {url.path!r}")
        self.url = url
        self.host = url.host or DEFAULT_HOST
        self.port = url.port or self.default_port
        self.profile: str | None = url.params.get("profile") or self.default_profile
        self.broadcast = url.bool_param("broadcast", False)
        self.bind = self._parse_bind(url)
        self.name = f"{self.scheme}://{self.host}:{self.port}"
        self._sock: socket.socket | None = None
        self._addr: tuple | None = None
        self._closed = False
        self.datagrams_sent = 0
        self.bytes_sent = 0
        self.refused = 0  # sends refused by an ICMP port-unreachable (nobody listening)

    @staticmethod
    def _parse_bind(url: SinkURL) -> tuple[str, int] | None:
        spec = url.params.get("bind")
        if spec is None:
            return None
        host, _, port_text = spec.rpartition(":")
        try:
            port = int(port_text)
        except ValueError as e:
            raise ConfigError(f"sink URL {url.text!r}: bind must be [host:]port, got {spec!r}") from e
        if not 0 <= port <= 65535:
            raise ConfigError(f"sink URL {url.text!r}: bind port must be 0-65535, got {port}")
        return (host or "127.0.0.1", port)  # private by default: name a host to bind wider

    def open(self) -> None:
        """Resolve the host, create the socket (bound if asked) and check there is a route."""
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise SinkError(f"{self.name}: cannot resolve host {self.host!r} ({e.strerror})") from e
        if self.bind is not None:
            infos = [i for i in infos if i[0] == socket.AF_INET] or infos
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if self.broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if self.bind is not None:
                try:
                    sock.bind(self.bind)
                except OSError as e:
                    raise SinkError(
                        f"{self.name}: cannot bind {self.bind[0]}:{self.bind[1]}: {_os_reason(e)}"
                    ) from e
            # A throwaway connected socket asks the kernel for a route without sending anything.
            probe = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if self.broadcast:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                probe.connect(addr)
            except OSError as e:
                raise SinkError(
                    f"{self.name}: cannot send to {self.host}:{self.port}: {_os_reason(e)}"
                ) from e
            finally:
                probe.close()
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock, self._addr = sock, addr

    def encode(self, out: FrameOutput) -> list[bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    def send(self, out: FrameOutput) -> None:
        """Encode and send one frame; a refused datagram (receiver gone) is counted, not raised."""
        if self._sock is None:
            raise SinkError(f"{self.name}: send() before open() or after close()")
        self.send_datagrams(self.encode(out))

    def send_datagrams(self, datagrams: list[bytes]) -> None:
        sock, addr = self._sock, self._addr
        assert sock is not None
        for d in datagrams:
            try:
                sock.sendto(d, addr)
            except ConnectionRefusedError:
                self.refused += 1
                continue
            except BlockingIOError:
                self.refused += 1  # kernel buffer full: drop rather than stall the pipeline
                continue
            except OSError as e:
                raise SinkError(f"{self.name}: send failed: {_os_reason(e)}") from e
            self.datagrams_sent += 1
            self.bytes_sent += len(d)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> UdpSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.text!r})"
