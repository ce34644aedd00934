"""A lab-like "held still" recording made from one real frame: what a camera films of a seated person
asked to keep a neutral face (as in CASME II, SAMM or CAS(ME)^2).

One frame repeated is too easy for a spotter: no sensor noise, no sway, no compression. The
camera model here adds, to every output image, in this order (each a documented option):

1. head sway: a smooth random similarity transform (translation, roll, scale) about the image
   centre, Gaussian-smoothed white noise with correlation time ``sway_time``, scaled to the given
   rms (a seated person drifts a few pixels at 640 px face width; out-of-plane turns are not modelled);
2. lighting: a smooth random global gain around 1 (flicker), and the room's light changing when
   asked (``light``: a lamp switched, a cloud, a passing reflection), hard negatives for a spotter;
3. sensor noise: Gaussian, per pixel and channel, in grey levels;
4. a codec round trip: per-frame JPEG at ``quality`` (as lab datasets store their frames), an
   MPEG-4 video written with ``cv2.VideoWriter`` and read back, or none.

The micro-expressions are injected by the generator before the camera (the face moves, then it
is filmed), so they sway, flicker and get compressed with the face.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from avatar_bridge.errors import InputError, OutputError
from avatar_bridge.records import Frame, TrackingResult

if TYPE_CHECKING:
    from avatar_bridge.micro.synth.generate import SynthOptions

CODECS = ("jpeg", "mp4v", "none")
NOISE_PAD = 96  # pixels of extra noise field each way (offsets to draw from: 97 x 97)


@dataclass(frozen=True, slots=True)
class CameraOptions:
    """How the held-still recording is filmed. Pixels are those of the output (face 640 px wide).

    sway_px: rms head translation (each axis); sway_deg: rms roll in degrees; sway_scale: rms
    relative scale change (the head nearing and leaving the camera); sway_time: seconds, the
    correlation time of the sway (sigma of the Gaussian smoothing of white noise), so it is slow
    and smooth as a seated person's drift. flicker: rms relative brightness change; flicker_time:
    its correlation time in seconds. noise: sensor noise deviation in grey levels (0-255).
    codec: 'jpeg' (per-frame JPEG at ``quality``, 0-100), 'mp4v' (an MPEG-4 video round trip
    through OpenCV) or 'none'. seed: the random state of sway, flicker and noise.
    light: changes of the room's light, each (start, ramp, change, hold): from ``start`` seconds the
    light's gain goes from 1 to 1 + ``change`` over ``ramp`` seconds (a raised cosine), stays there
    ``hold`` seconds (inf: to the end) and comes back over ``ramp``; (2, 0.15, 0.25, 0) is a brief
    flash of 25 %, (3.5, 0.1, -0.25, inf) a room 25 % darker from 3.5 s on. Before the sensor
    noise, as the scene's light is.
    """

    sway_px: float = 1.5
    sway_deg: float = 0.2
    sway_scale: float = 0.002
    sway_time: float = 0.8
    flicker: float = 0.004
    flicker_time: float = 0.3
    noise: float = 2.0
    codec: str = "jpeg"
    quality: int = 85
    seed: int = 0
    light: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise InputError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if not 1 <= self.quality <= 100:
            raise InputError(f"quality must be 1..100, got {self.quality}")
        for name in ("sway_px", "sway_deg", "sway_scale", "flicker", "noise"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.sway_time <= 0 or self.flicker_time <= 0:
            raise InputError("sway_time and flicker_time must be positive seconds")
        for change in self.light:
            if len(change) != 4 or not (change[1] > 0 and change[2] > -1 and change[3] >= 0):
                raise InputError(f"a light change is (start, ramp > 0, change > -1, hold >= 0), got {change}")


def light_spans(changes: Iterable[tuple[float, float, float, float]], end: float) -> list[dict]:
    """The light changes as hard negatives of the ground truth (kind "light"): each from its start to
    where the light settles (the end of its ramp when it stays, of its return otherwise), within ``end``."""
    out = []
    for start, ramp, change, hold in changes:
        stop = start + ramp if not np.isfinite(hold) else start + 2 * ramp + hold
        if start < end:
            out.append({"kind": "light", "onset": float(start), "offset": float(min(stop, end)),
                        "change": float(change)})  # fmt: skip
    return out


def light_gain(times: np.ndarray, changes: Iterable[tuple[float, float, float, float]]) -> np.ndarray:
    """The room's light at ``times`` (1 = unchanged): :attr:`CameraOptions.light`'s changes, multiplied."""
    gain = np.ones(len(times))
    for start, ramp, change, hold in changes:
        up = np.clip((times - start) / ramp, 0.0, 1.0)
        down = np.clip((times - start - ramp - hold) / ramp, 0.0, 1.0) if np.isfinite(hold) else 0.0
        level = 0.5 - 0.5 * np.cos(np.pi * up) - (0.5 - 0.5 * np.cos(np.pi * down))
        gain *= 1.0 + change * level
    return gain


def smooth_noise(rng: np.random.Generator, n: int, fps: float, tau: float, rms: float) -> np.ndarray:
    """``n`` samples of white noise smoothed by a Gaussian of ``tau`` seconds, scaled to ``rms``."""
    if rms == 0 or n == 0:
        return np.zeros(n)
    s = max(tau * fps, 1e-6)
    half = int(np.ceil(4 * s))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / s) ** 2)
    x = np.convolve(rng.standard_normal(n + 2 * half), k / k.sum(), mode="valid")
    x = x - x.mean()
    return x * (rms / max(float(np.sqrt((x**2).mean())), 1e-12))


def film(images: Iterable[np.ndarray], times: np.ndarray, options: CameraOptions) -> Iterator[np.ndarray]:
    """The camera's view of ``images`` (RGB uint8, one per timestamp of ``times``): sway, flicker,
    noise and the codec round trip, frame by frame (the MPEG-4 round trip needs the whole list)."""
    o = options
    times = np.asarray(times, dtype=np.float64)
    n = len(times)
    fps = (n - 1) / (times[-1] - times[0]) if n > 1 and times[-1] > times[0] else 30.0
    rng = np.random.default_rng(o.seed)
    dx, dy = (smooth_noise(rng, n, fps, o.sway_time, o.sway_px) for _ in range(2))
    roll = smooth_noise(rng, n, fps, o.sway_time, o.sway_deg)
    scale = 1.0 + smooth_noise(rng, n, fps, o.sway_time, o.sway_scale)
    gain = (1.0 + smooth_noise(rng, n, fps, o.flicker_time, o.flicker)) * light_gain(times, o.light)
    out = []
    field = None
    for i, img in enumerate(images):
        if i >= n:
            raise InputError(f"more images than timestamps ({n})")
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(roll[i]), float(scale[i]))
        m[:, 2] += (dx[i], dy[i])
        f = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        f = f.astype(np.float32) * np.float32(gain[i])
        if o.noise > 0:
            # Each frame's noise is a random window of one larger white-noise field: the same
            # statistics as fresh noise (at another offset each pixel gets another sample)
            # at a fraction of the cost of drawing 800 x 800 x 3 normals per frame.
            if field is None:
                field = rng.standard_normal((h + NOISE_PAD, w + NOISE_PAD) + img.shape[2:], dtype=np.float32)
                field *= np.float32(o.noise)
            y, x = rng.integers(0, NOISE_PAD + 1, size=2)
            f += field[y : y + h, x : x + w]
        f = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        if o.codec == "jpeg":
            bgr = cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, o.quality])
            if not ok:
                raise OutputError("OpenCV could not encode a JPEG frame")
            f = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        if o.codec == "mp4v":
            out.append(f)
        else:
            yield f
    if o.codec == "mp4v":
        yield from _mp4v_round_trip(out, fps)


def _mp4v_round_trip(images: list[np.ndarray], fps: float) -> list[np.ndarray]:
    h, w = images[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "still.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise OutputError("OpenCV has no mp4v encoder here; use codec='jpeg'")
        for f in images:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
        cap = cv2.VideoCapture(str(path))
        back = []
        while len(back) < len(images):
            ok, f = cap.read()
            if not ok:
                break
            back.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        cap.release()
    if len(back) != len(images):
        raise OutputError(f"the mp4v round trip gave {len(back)} frames of {len(images)}")
    return back


def held_still(frames: list[Frame], results: list[TrackingResult], index: int, seconds: float,
               fps: float) -> tuple[list[Frame], list[TrackingResult]]:  # fmt: skip
    """Frame ``index`` (and its tracking) repeated for ``seconds`` at ``fps``: the generator's source
    for a held-still recording (the camera then films it, :func:`film`)."""
    if not frames:
        raise InputError("the video has no frames to hold still")
    if not 0 <= index < len(frames):
        raise InputError(f"frame {index} is not in the video (frames 0 to {len(frames) - 1})")
    if not results[index].faces:
        raise InputError(f"frame {index} has no tracked face to hold still")
    n = int(round(seconds * fps))
    if n < 2:
        raise InputError(f"a held-still recording needs at least 2 frames, got {seconds} s at {fps} fps")
    image = frames[index].image
    return ([Frame(i, i / fps, image) for i in range(n)],
            [replace(results[index], index=i, timestamp=i / fps) for i in range(n)])  # fmt: skip


def lab_camera(seed: int, index: int) -> CameraOptions:
    """The lab-like tier's camera for frame ``index``: the defaults, randomness per seed and frame."""
    return CameraOptions(seed=1000 * seed + index)


def lab_recording(amplitude: float, seed: int, index: int) -> tuple[SynthOptions, CameraOptions]:
    """The lab-like tier's recording plan for frame ``index`` (what the spotting benchmark and the
    classifiers' held-still clips both use, so they share one cache entry): micro-expressions at
    ``amplitude`` px 0.8 s apart after a 1.5 s lead-in, one head jitter as a hard negative, no
    injected macro-expression (the warp of a 1-3 s expression is the slowest part of rendering),
    and :func:`lab_camera`; the randomness differs per seed and per source frame."""
    from avatar_bridge.micro.synth.generate import SynthOptions

    options = SynthOptions(amplitudes=(amplitude,), seed=1000 * seed + index, spacing=0.8, lead_in=1.5,
                           macro=0, jitter=1)  # fmt: skip
    return options, lab_camera(seed, index)
