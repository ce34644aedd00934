"""Output sinks, chosen by URL scheme: ``open_sink("vmc://127.0.0.1:39539?profile=vrm0")``.

=========== ============================================ ==================
scheme      what                                         default
=========== ============================================ ==================
osc         avatar-bridge's native stream (Blender)      127.0.0.1:9100
vmc         VMC protocol Performer (VSeeFace, Warudo)    127.0.0.1:39539
vrchat      VRChat OSC avatar parameters (FT/v2/...)     127.0.0.1:9000
livelink    Unreal Live Link Face                        127.0.0.1:11111
vcam        rendered avatar to a virtual camera          (lazy import)
preview     rendered avatar to a video file              (lazy import)
record      the camera frames themselves, to a video     (only when asked)
=========== ============================================ ==================

Entries are "module:Class" strings imported on first use, so a sink whose optional dependency is
missing only fails when it is asked for. A class is built with ``cls.from_url(url_text,
**defaults)`` when it has that classmethod, else ``cls(SinkURL)``; either way the sink is not yet
open: call ``open()`` (or use it as a context manager).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from avatar_bridge.errors import BackendUnavailableError, ConfigError
from avatar_bridge.records import FrameOutput
from avatar_bridge.sinks.base import DEFAULT_HOST, SinkURL, UdpSink

#: scheme -> "module:Class". Extend with :func:`register_sink`, never by editing at run time.
SINKS: dict[str, str] = {
    "osc": "avatar_bridge.sinks.native:NativeOscSink",
    "vmc": "avatar_bridge.sinks.vmc:VmcSink",
    "vrchat": "avatar_bridge.sinks.vrchat:VrchatSink",
    "livelink": "avatar_bridge.sinks.livelink:LiveLinkSink",
    "vcam": "avatar_bridge.sinks.vcam:VirtualCameraSink",
    "preview": "avatar_bridge.sinks.vcam:PreviewSink",
    "record": "avatar_bridge.sinks.record:RecordVideoSink",
}


@runtime_checkable
class Sink(Protocol):
    """What the live pipeline needs of a sink."""

    name: str
    profile: str | None

    def open(self) -> None: ...

    def send(self, out: FrameOutput) -> None: ...

    def close(self) -> None: ...


def _resolve(entry: str, scheme: str) -> type:
    module_name, _, cls_name = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BackendUnavailableError(f"the {scheme}:// sink is not available: {e}") from e
    try:
        return getattr(module, cls_name)
    except AttributeError as e:
        raise BackendUnavailableError(
            f"the {scheme}:// sink is not available: {module_name} has no {cls_name}"
        ) from e


def open_sink(url: str, registry: dict[str, str] | None = None, **defaults: Any) -> Sink:
    """Build the sink for ``url`` (not yet opened). Unknown scheme or bad URL: ConfigError."""
    table = SINKS if registry is None else registry
    parsed = SinkURL.parse(url)
    if parsed.scheme not in table:
        raise ConfigError(f"unknown sink scheme {parsed.scheme!r} in {url!r}; known: {', '.join(table)}")
    cls = _resolve(table[parsed.scheme], parsed.scheme)
    sink = cls.from_url(url, **defaults) if hasattr(cls, "from_url") else cls(parsed, **defaults)
    if not hasattr(sink, "name"):
        sink.name = url
    if not hasattr(sink, "profile"):
        sink.profile = None
    return sink


__all__ = ["DEFAULT_HOST", "SINKS", "Sink", "SinkURL", "UdpSink", "open_sink"]
