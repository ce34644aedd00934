"""Soak: the live pipeline on a looping real video, through every sink at once, for a bounded time.

Every network sink (osc, vmc, vrchat, livelink) sends to its own UDP receiver on 127.0.0.1; each
receiver goes away for ``--down`` seconds every ``--period`` seconds (staggered) and comes back
on the same port. The avatar renderer runs too, as a preview:// file (the vcam:// sink needs a
v4l2loopback device these machines lack). Per window of ``--window`` seconds it records resident
memory, frames/s and the latency from frame available to last sink sent, and each receiver's
datagrams. The reference is the first window after warm-up, in the same run. Flags:

- memory growth: RSS slope after warm-up above ``--max-growth`` MB/min;
- latency drift: last window's median latency above ``--max-drift`` x the reference (and +5 ms);
- dropped sink: a sink error, or a receiver that was up for a whole window yet got nothing.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 2] [--window 10] [--no-render]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json  # noqa: E402

import avatar_bridge.pipeline.live as live_mod  # noqa: E402
from avatar_bridge.capture import CaptureOptions, SourceInfo, VideoFileSource  # noqa: E402
from avatar_bridge.records import Frame  # noqa: E402
from avatar_bridge.sample_media import sample  # noqa: E402

SCHEMES = ("osc", "vmc", "vrchat", "livelink")


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class LoopingSource:
    """A real video played over and over, with indices and timestamps that keep increasing."""

    def __init__(self, path: Path, options: CaptureOptions, until: float) -> None:
        self.path, self.options, self.until = path, options, until
        with VideoFileSource(path, options) as probe:
            self.info = SourceInfo("video", path.name, probe.info.width, probe.info.height, probe.info.fps,
                                   None)  # fmt: skip
        self.decode_failed = False
        self.loops = 0

    def __iter__(self) -> Iterator[Frame]:
        index, offset = 0, 0.0
        while time.monotonic() < self.until:
            last = 0.0
            with VideoFileSource(self.path, self.options) as src:
                for f in src:
                    if time.monotonic() >= self.until:
                        return
                    last = f.timestamp
                    yield Frame(index, offset + f.timestamp, f.image)
                    index += 1
            offset += last + 1.0 / self.info.fps
            self.loops += 1

    def close(self) -> None:
        pass

    def __enter__(self) -> LoopingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@dataclass
class FlappingReceiver:
    """A UDP receiver on 127.0.0.1 that closes for ``down`` s every ``period`` s, then rebinds."""

    name: str
    period: float
    down: float
    phase: float
    t0: float
    window: float
    port: int = 0
    counts: dict[int, int] = field(default_factory=dict)  # window -> datagrams
    outages: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))
        sock.settimeout(0.05)
        self.port = sock.getsockname()[1]
        return sock

    def start(self) -> None:
        self._sock = self._bind()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        next_down = self.t0 + self.phase
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_down:  # disappear, then come back on the same port
                sock.close()
                self._stop.wait(self.down)
                self.outages.append((now, time.monotonic()))
                if self._stop.is_set():
                    return
                sock = self._bind()
                next_down += self.period
                continue
            try:
                sock.recvfrom(65536)
            except TimeoutError:
                continue
            w = int((time.monotonic() - self.t0) // self.window)
            self.counts[w] = self.counts.get(w, 0) + 1
        sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def up_whole_window(self, w: int) -> bool:
        lo, hi = self.t0 + w * self.window, self.t0 + (w + 1) * self.window
        return not any(a < hi and b > lo for a, b in self.outages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per reported window")
    parser.add_argument("--warmup", type=int, default=1, help="windows left out of the reference")
    parser.add_argument("--period", type=float, default=20.0, help="seconds between a receiver's outages")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a receiver stays away")
    parser.add_argument("--video", default="WolfgangLanger_Pexels.mp4")
    parser.add_argument("--no-render", action="store_true", help="leave out the preview:// renderer")
    parser.add_argument("--max-growth", type=float, default=2.0, help="MB/min of RSS growth that is flagged")
    parser.add_argument("--max-drift", type=float, default=1.5, help="latency ratio last/reference flagged")
    args = parser.parse_args()

    video = sample(args.video)
    duration = args.minutes * 60.0
    t0 = time.monotonic()
    stagger = args.period / len(SCHEMES)
    receivers = [FlappingReceiver(s, args.period, args.down, 5.0 + i * stagger, t0, args.window)
                 for i, s in enumerate(SCHEMES)]  # fmt: skip
    for r in receivers:
        r.start()
    urls = [f"{r.name}://127.0.0.1:{r.port}" for r in receivers]
    tmp = tempfile.TemporaryDirectory(prefix="soak-")
    if not args.no_render:
        urls.append(f"preview://{tmp.name}/avatar.mp4?size=320x240")
    source = LoopingSource(video, CaptureOptions(max_size=1280), until=t0 + duration)
    live_mod.open_source = lambda spec, options=None: source  # the pipeline reads the looping video

    snaps: list[tuple[float, int, float]] = []  # (time since start, frames so far, RSS MB)
    pipeline = live_mod.LivePipeline(
        live_mod.LiveOptions(source=str(video), sinks=tuple(urls), status_interval=1.0),
        on_status=lambda s: snaps.append((time.monotonic() - t0, s.frames, rss_mb())),
    )
    snaps.append((0.0, 0, rss_mb()))
    stats = pipeline.run()
    end = time.monotonic() - t0
    snaps.append((end, stats.frames, rss_mb()))
    for r in receivers:
        r.stop()
    tmp.cleanup()

    n_windows = max(1, int(end // args.window))
    lat = np.asarray(stats.latency) * 1e3
    rows, windows = [], []
    for w in range(n_windows):
        lo, hi = w * args.window, (w + 1) * args.window
        inside = [s for s in snaps if lo <= s[0] <= hi]
        if len(inside) < 2:
            continue
        f0, f1 = inside[0][1], inside[-1][1]
        dt = inside[-1][0] - inside[0][0]
        wl = lat[f0:f1]
        got = {r.name: r.counts.get(w, 0) for r in receivers}
        row = {"window": w, "t_end_s": round(hi, 1), "rss_mb": round(inside[-1][2], 1),
               "fps": round((f1 - f0) / dt, 2) if dt > 0 else 0.0,
               "latency_ms_median": round(float(np.median(wl)), 2) if wl.size else float("nan"),
               "latency_ms_p99": round(float(np.percentile(wl, 99)), 2) if wl.size else float("nan"),
               "datagrams": got,
               "receivers_up": [r.name for r in receivers if r.up_whole_window(w)]}  # fmt: skip
        windows.append(row)
        down = [r.name for r in receivers if not r.up_whole_window(w)]
        rows.append(
            [
                w,
                row["t_end_s"],
                row["rss_mb"],
                row["fps"],
                row["latency_ms_median"],
                row["latency_ms_p99"],
                "/".join(map(str, got.values())),
                ",".join(down) or "-",
            ]
        )
    title = f"soak: {args.minutes:g} min of {args.video} (looped {source.loops}x), {len(urls)} sinks"
    print_table(title, ["win", "t s", "RSS MB", "fps", "lat med", "lat p99", "/".join(SCHEMES), "away"],
                rows)  # fmt: skip

    steady = windows[args.warmup :] or windows
    ref, last = steady[0], steady[-1]
    if len(steady) >= 2:
        t = np.array([w["t_end_s"] for w in steady]) / 60.0
        growth = float(np.polyfit(t, [w["rss_mb"] for w in steady], 1)[0])
    else:
        growth = float("nan")
    drift = last["latency_ms_median"] / ref["latency_ms_median"] if ref["latency_ms_median"] else float("nan")
    silent = [f"{name} in window {w['window']}" for w in steady for name in w["receivers_up"]
              if w["datagrams"][name] == 0]  # fmt: skip
    flags = {
        "memory_growth": bool(growth > args.max_growth),
        "latency_drift": bool(
            drift > args.max_drift and last["latency_ms_median"] - ref["latency_ms_median"] > 5
        ),
        "dropped_sink": bool(stats.sink_errors or silent),
    }
    s = stats.summary()
    print(f"frames {s['frames']} in {s['elapsed_s']} s ({s['fps']} fps), latency median "
          f"{s['latency_ms_median']} ms p99 {s['latency_ms_p99']} ms; "
          f"RSS {ref['rss_mb']} -> {last['rss_mb']} MB "
          f"({growth:+.2f} MB/min after warm-up); latency last/reference {drift:.2f}; "
          f"sink errors {s['sink_errors'] or 'none'}; silent receivers {silent or 'none'}")  # fmt: skip
    print("flags: " + ", ".join(f"{k}={'YES' if v else 'no'}" for k, v in flags.items()))
    write_json("bench_soak", {"minutes": args.minutes, "video": args.video, "sinks": urls, "windows": windows,
                              "rss_growth_mb_per_min": growth, "latency_drift_ratio": drift, "flags": flags,
                              "silent_receivers": silent, "summary": s,
                              "outages": {r.name: len(r.outages) for r in receivers}})  # fmt: skip


if __name__ == "__main__":
    main()
