"""Does avatar-path smoothing keep micro-expressions?  (issue 3 requirement)

A 200 ms raised-cosine event of amplitude 0.3 at 60 fps over tracker-like noise (Gaussian,
sigma 0.02, lag-1 correlation 0.3: MediaPipe's resting jitter is of that order and not white),
averaged over 300 noise draws. Reported per filter: the share of the apex kept by the mean
output, its lag in frames (peak of the mean output vs. the clean peak), and how much the resting
jitter (standard deviation) drops against the raw signal. Requirement: apex >= 0.85, lag <= 1
frame, jitter drop >= 3x. Plain One Euro filters are the in-run reference; two harder and one
easier noise condition and 30 fps show how far the figures carry.

Run: .venv/bin/python benchmarks/bench_smoothing.py   (writes benchmarks/results/smoothing.json)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avatar_bridge.retarget.smoothing import (
    DeviationGatedFilter,
    OneEuroFilter,
    PassThrough,
    SmoothingKind,
    SmoothingOptions,
)

AMPLITUDE = 0.3
DURATION = 0.2
TRIALS = 300


def ar1_noise(rng: np.random.Generator, n: int, trials: int, sigma: float, rho: float) -> np.ndarray:
    e = rng.normal(0.0, sigma * np.sqrt(1 - rho**2), (n, trials))
    x = np.empty((n, trials))
    x[0] = rng.normal(0.0, sigma, trials)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + e[i]
    return x


def measure(make, fps: float, sigma: float, rho: float, seed: int = 1) -> dict[str, float]:
    n = int(6.0 * fps)
    t = np.arange(n) / fps
    t0 = 3.0
    inside = (t >= t0) & (t <= t0 + DURATION)
    clean = 0.1 + np.where(inside, AMPLITUDE * (1 - np.cos(2 * np.pi * (t - t0) / DURATION)) / 2, 0.0)
    raw = clean[:, None] + ar1_noise(np.random.default_rng(seed), n, TRIALS, sigma, rho)
    f = make(TRIALS)
    out = np.stack([f.update(raw[i], t[i]) for i in range(n)])
    mean = out.mean(axis=1)
    rest = (t > 1.0) & ((t < t0 - 0.5) | (t > t0 + DURATION + 0.5))
    return {
        "apex_kept": float((mean.max() - mean[rest].mean()) / AMPLITUDE),
        "lag_frames": int(np.argmax(mean) - np.argmax(clean)),
        "jitter_drop": float(raw[rest].std() / out[rest].std()),
    }


FILTERS = {
    "raw (no filter)": lambda k: PassThrough(k),
    "One Euro 1 Hz (reference)": lambda k: OneEuroFilter(
        k, SmoothingOptions(kind=SmoothingKind.ONE_EURO, min_cutoff=1.0)
    ),
    "One Euro 0.5 Hz": lambda k: OneEuroFilter(
        k, SmoothingOptions(kind=SmoothingKind.ONE_EURO, min_cutoff=0.5)
    ),
    "One Euro 3 Hz": lambda k: OneEuroFilter(
        k, SmoothingOptions(kind=SmoothingKind.ONE_EURO, min_cutoff=3.0)
    ),
    "One Euro 1 Hz beta 5": lambda k: OneEuroFilter(
        k, SmoothingOptions(kind=SmoothingKind.ONE_EURO, min_cutoff=1.0, beta=5.0)
    ),
    "deviation-gated (default)": lambda k: DeviationGatedFilter(k, SmoothingOptions()),
}
CONDITIONS = [
    ("60 fps, sigma 0.02, rho 0.3 (requirement)", 60.0, 0.02, 0.3),
    ("60 fps, sigma 0.01, white", 60.0, 0.01, 0.0),
    ("60 fps, sigma 0.03, rho 0.5", 60.0, 0.03, 0.5),
    ("30 fps, sigma 0.02, rho 0.3", 30.0, 0.02, 0.3),
]


def main() -> None:
    rows = []
    for cond, fps, sigma, rho in CONDITIONS:
        print(f"\n{cond}")
        print(f"  {'filter':<28} {'apex kept':>9} {'lag (frames)':>12} {'jitter drop':>11}  pass")
        for name, make in FILTERS.items():
            m = measure(make, fps, sigma, rho)
            ok = m["apex_kept"] >= 0.85 and m["lag_frames"] <= 1 and m["jitter_drop"] >= 3.0
            figures = f"{m['apex_kept']:9.3f} {m['lag_frames']:12d} {m['jitter_drop']:10.2f}x"
            print(f"  {name:<28} {figures}  {'yes' if ok else 'no'}")
            rows.append(
                {"condition": cond, "fps": fps, "sigma": sigma, "rho": rho, "filter": name, **m, "passes": ok}
            )
    out = Path(__file__).resolve().parent / "results" / "smoothing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.part")
    meta = {"trials": TRIALS, "amplitude": AMPLITUDE, "duration_s": DURATION}
    tmp.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    tmp.replace(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
