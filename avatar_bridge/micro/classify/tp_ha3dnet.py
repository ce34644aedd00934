"""TP-HA3DNet: a three-path 3D CNN with hybrid (spatial + temporal) attention, in PyTorch.

As the seed dissertation describes it: three parallel paths over 64x64 clips of the left eye/brow,
right eye/brow and mouth; each path a Conv3D (3x3x3, 32 filters), MaxPool3D, hybrid attention,
flatten, dense with ReLU and dropout; the paths concatenated; softmax over the classes. Trained with
Adam (lr 1e-3), class-weighted cross-entropy and augmentation (rotation, crop, brightness, contrast);
saved as weights (:func:`export`), loaded for CPU inference (:func:`load_exported`).

Input: a float tensor (batch, 3 regions, channels, frames, 64, 64) made by :func:`clip_tensor`, the
model's preprocessing, used identically in training and inference. A micro-expression moves the face
by 1-4 px at 640 px face width, a fraction of a pixel in the 128 x 128 aligned face, so raw pixels
barely show it; the input is therefore the *motion*. By default (``motion="flow"``) two channels:
the dense optical flow (x, y) from the clip's first (onset) frame to each frame, times a fixed gain,
so the direction of a movement (a mouth corner up or down) is in the numbers, and the same for
every face. With ``motion="difference"`` (the model of 2026-11-22 and before) one channel: each
frame minus the onset frame, lightly smoothed and times ``motion_gain`` per grey level, which
shows a movement as the grey edges it shifts, different on every face. The appearance
(``channels`` = 2) follows: the grey clip normalised to zero mean and unit variance.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from avatar_bridge.errors import InputError, ModelError
from avatar_bridge.fileio import atomic_path

REGIONS = ("left_eye", "right_eye", "mouth")
CLASSES = ("negative", "positive", "surprise")
MOTIONS = ("difference", "flow")
FILE_FORMAT = "avatar-bridge TP-HA3DNet weights 1"  # what :func:`export` writes
#: What reading a damaged model file raises: torch.load's error depends on where the damage is.
_DAMAGED = (RuntimeError, ValueError, TypeError, KeyError, EOFError, struct.error, pickle.UnpicklingError,
            InputError)  # fmt: skip


@dataclass(frozen=True)
class TPHA3DNetOptions:
    """Architecture and preprocessing. ``frames``: clip length after temporal resampling (onset to
    offset); ``size``: crop side in px; ``channels``: 1 = motion only, 2 = motion and appearance;
    ``motion``: "flow" (optical flow from the onset frame, :func:`onset_flow`: x and y channels,
    times ``flow_gain`` per pixel of the crop) or "difference" (frame minus onset frame, one
    channel: ``motion_gain`` per grey level of change, after a Gaussian blur of ``blur`` px, 0 =
    none); flow, gain 4, was chosen on the development recordings (``bench_classifiers.py
    --protocol dev``: UF1 0.952 against 0.734 for the difference); ``filters``: Conv3D filters per
    path; ``pool``: MaxPool3D kernel (time, y, x), large enough that the dense layer stays small for
    CPU training; ``dense``: units per path; ``dropout``: rate."""

    classes: tuple[str, ...] = CLASSES
    frames: int = 8
    size: int = 64
    channels: int = 1
    motion_gain: float = 0.25
    blur: float = 1.0
    filters: int = 32
    pool: tuple[int, int, int] = (2, 8, 8)
    dense: int = 32
    dropout: float = 0.5
    attention_kernel: int = 7
    motion: str = "flow"
    flow_gain: float = 4.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise InputError(f"channels must be 1 (motion) or 2 (motion and appearance), got {self.channels}")
        if self.motion_gain <= 0 or self.blur < 0:
            raise InputError(f"motion_gain must be > 0 and blur >= 0, got {self.motion_gain}, {self.blur}")
        if self.motion not in MOTIONS:
            raise InputError(f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")
        if self.flow_gain <= 0:
            raise InputError(f"flow_gain must be > 0, got {self.flow_gain}")

    @property
    def input_channels(self) -> int:
        """Channels of the model input: the motion's (1, or 2 for flow), then the appearance's."""
        return (2 if self.motion == "flow" else 1) + (self.channels == 2)

    @property
    def vector_channels(self) -> tuple[int, int] | None:
        """The input channels holding a vector field's x and y (flow), turned and mirrored with the
        image by :func:`augment`; None for the difference."""
        return (0, 1) if self.motion == "flow" else None


class HybridAttention(nn.Module):
    """Spatial attention (a map over y, x from channel-pooled features) then temporal attention
    (a weight per frame from spatially pooled features); both sigmoid gates."""

    def __init__(self, channels: int, kernel: int = 7) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2)
        hidden = max(4, channels // 4)
        self.temporal = nn.Sequential(nn.Conv1d(channels, hidden, 3, padding=1), nn.ReLU(),
                                      nn.Conv1d(hidden, 1, 3, padding=1))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, T, H, W)
        b, c, t, h, w = x.shape
        pooled = torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=0)  # (2B, T, H, W)
        pooled = pooled.reshape(2, b, t, h, w).permute(1, 2, 0, 3, 4).reshape(b * t, 2, h, w)
        s = torch.sigmoid(self.spatial(pooled)).reshape(b, t, 1, h, w).permute(0, 2, 1, 3, 4)
        x = x * s
        tw = torch.sigmoid(self.temporal(x.mean(dim=(3, 4))))  # (B, 1, T)
        return x * tw[:, :, :, None, None]


class Path3D(nn.Module):
    """One region's path: Conv3D -> ReLU -> MaxPool3D -> hybrid attention -> flatten -> dense -> dropout."""

    def __init__(self, o: TPHA3DNetOptions) -> None:
        super().__init__()
        self.conv = nn.Conv3d(o.input_channels, o.filters, 3, padding=1)
        self.pool = nn.MaxPool3d(o.pool)
        self.attention = HybridAttention(o.filters, o.attention_kernel)
        t, h, w = (o.frames // o.pool[0], o.size // o.pool[1], o.size // o.pool[2])
        if min(t, h, w) < 1:
            raise InputError(f"pool {o.pool} is larger than the clip ({o.frames} frames of {o.size} px)")
        self.dense = nn.Linear(o.filters * t * h * w, o.dense)
        self.dropout = nn.Dropout(o.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after_pool(F.relu(self.pool(self.conv(x))))  # max commutes with ReLU: 1/128 of the work

    def after_pool(self, pooled: torch.Tensor) -> torch.Tensor:
        """The path after its pooled convolution (:class:`TPHA3DNet` runs the three convolutions as one)."""
        return self.dropout(F.relu(self.dense(torch.flatten(self.attention(pooled), 1))))


class TPHA3DNet(nn.Module):
    """Three paths, concatenated, one linear layer to class logits (softmax is applied in
    :meth:`predict_proba` and folded into the cross-entropy loss for training)."""

    def __init__(self, options: TPHA3DNetOptions | None = None, seed: int = 0) -> None:
        """``seed``: the initial weights' random seed, so that a training run can be repeated
        (torch's global generator is left as it was)."""
        super().__init__()
        self.options = options or TPHA3DNetOptions()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.paths = nn.ModuleList(Path3D(self.options) for _ in REGIONS)
            self.head = nn.Linear(self.options.dense * len(REGIONS), len(self.options.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, C, T, H, W) -> (B, classes)
        """The three paths' convolutions run as one grouped convolution over channels-last data, the
        same sums as three, because for one clip CPU torch then picks its fast (oneDNN) kernels: 4.3-6.2
        ms per clip against 14.6-25.4 ms path by path (``bench_classifiers.py --cost-only``, 1 thread)."""
        cl = torch.channels_last_3d
        weight = torch.cat([path.conv.weight for path in self.paths]).contiguous(memory_format=cl)
        bias = torch.cat([path.conv.bias for path in self.paths])
        x = x.flatten(1, 2).contiguous(memory_format=cl)  # (B, 3 x C, T, H, W), region-major
        pooled = F.relu(self.paths[0].pool(F.conv3d(x, weight, bias, padding=1, groups=len(self.paths))))
        parts = pooled.chunk(len(self.paths), dim=1)
        feats = [path.after_pool(part) for path, part in zip(self.paths, parts, strict=True)]
        return self.head(torch.cat(feats, dim=1))

    def forward_path_by_path(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` as the dissertation draws it, each path on its own region: the reference
        that the tests and ``bench_classifiers.py`` hold the grouped convolution to."""
        return self.head(torch.cat([path(x[:, k]) for k, path in enumerate(self.paths)], dim=1))

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        o = self.options
        return (batch, len(REGIONS), o.input_channels, o.frames, o.size, o.size)


# ---------------------------------------------------------------------------------------------------
# Clips


def resample_frames(n_in: int, n_out: int) -> np.ndarray:
    """Indices of ``n_out`` frames spread evenly over ``n_in`` (repeats when the clip is shorter)."""
    if n_in < 1:
        raise InputError("a clip needs at least one frame")
    return np.round(np.linspace(0, n_in - 1, n_out)).astype(np.int64)


def clip_tensor(crops: np.ndarray, options: TPHA3DNetOptions) -> np.ndarray:
    """(3 regions, T_in, size, size) grey uint8/float crops, onset first -> (3, channels, frames, size, size).

    Resamples time to ``options.frames``; the motion: (frame - onset frame) x ``motion_gain`` after a
    Gaussian blur of ``blur`` px, or with ``motion="flow"`` the flow's x and y from the onset frame
    (:func:`onset_flow`) x ``flow_gain``; then (``channels`` = 2) each region's clip normalised."""
    crops = np.asarray(crops, dtype=np.float32)
    if crops.ndim != 4 or crops.shape[0] != len(REGIONS) or crops.shape[2:] != (options.size, options.size):
        raise InputError(f"crops must have shape (3, T, {options.size}, {options.size}), got {crops.shape}")
    x = crops[:, resample_frames(crops.shape[1], options.frames)]
    if options.motion == "flow":
        flow = onset_flow(x) * np.float32(options.flow_gain)
        chans = [flow[..., 0], flow[..., 1]]
    else:
        smooth = x
        if options.blur > 0:
            import cv2

            flat = x.reshape(-1, options.size, options.size)
            smooth = np.stack([cv2.GaussianBlur(f, (0, 0), options.blur) for f in flat]).reshape(x.shape)
        chans = [(smooth - smooth[:, :1]) * np.float32(options.motion_gain)]
    if options.channels == 2:
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        std = x.std(axis=(1, 2, 3), keepdims=True) + 1e-3
        chans.append((x - mean) / std)
    return np.stack(chans, axis=1).astype(np.float32)


def onset_flow(crops: np.ndarray) -> np.ndarray:
    """(R, T, S, S, 2) dense optical flow (x right, y down, px) from each region's first frame to each
    of its frames (the first: zeros), of (R, T, S, S) grey crops. OpenCV's DIS flow, medium preset
    (as :mod:`micro.spotting.regionflow` offers it): on real 64 x 64 crops moved by 0.15-0.3 px it
    reads the shift to 0.05 px (median), none where nothing moved, in about 0.2 ms a frame
    (Farneback: 0.6 ms, and up to 0.23 px of false flow along the crop's border)."""
    import cv2

    grey = np.clip(np.rint(crops), 0, 255).astype(np.uint8)
    out = np.zeros((*grey.shape, 2), np.float32)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for r, frames in enumerate(grey):
        for k in range(1, len(frames)):
            out[r, k] = dis.calc(frames[0], frames[k], None)
    return out


def augment(batch: torch.Tensor, rng: np.random.Generator, rotation: float = 8.0, crop: float = 0.1,
            brightness: float = 0.2, contrast: float = 0.2, flip: bool = True,
            vectors: tuple[int, int] | None = None) -> torch.Tensor:  # fmt: skip
    """Random rotation (degrees), crop-and-rescale (fraction), brightness and contrast per sample,
    the same for every frame of a clip so the motion stays intact. Operates on normalised clips.

    ``flip``: half the clips mirrored, the left and right eye regions swapped with them (a face's
    mirror image shows the same expression on the other side: the labels do not change).
    ``vectors``: the channels (x, y) of a vector field (:attr:`TPHA3DNetOptions.vector_channels`),
    whose vectors turn, scale and mirror with the image, as the flow of the changed clip would."""
    b = batch.shape[0]
    r, c, t, h, w = batch.shape[1:]
    if flip:
        mirror = torch.from_numpy(rng.random(b) < 0.5)
        swapped = torch.flip(batch[:, [REGIONS.index("right_eye"), REGIONS.index("left_eye"),
                                       REGIONS.index("mouth")]], dims=[-1])  # fmt: skip
        if vectors is not None:  # a mirrored flow points the other way in x
            swapped[:, :, vectors[0]] = -swapped[:, :, vectors[0]]
        batch = torch.where(mirror[:, None, None, None, None, None], swapped, batch)
    flat = batch.reshape(b, r * c * t, h, w)
    ang = torch.tensor(rng.uniform(-rotation, rotation, b) * math.pi / 180, dtype=batch.dtype)
    scale = torch.tensor(1.0 - rng.uniform(0, crop, b), dtype=batch.dtype)
    shift = torch.tensor(rng.uniform(-crop, crop, (b, 2)) / 2, dtype=batch.dtype)
    theta = torch.zeros(b, 2, 3, dtype=batch.dtype)
    theta[:, 0, 0] = torch.cos(ang) * scale
    theta[:, 0, 1] = -torch.sin(ang) * scale
    theta[:, 1, 0] = torch.sin(ang) * scale
    theta[:, 1, 1] = torch.cos(ang) * scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, padding_mode="border", align_corners=False).reshape(batch.shape)
    if vectors is not None:  # each output pixel reads the input at theta p: vectors map by its inverse
        cos, sin = ((f(ang) / scale).reshape(b, 1, 1, 1, 1) for f in (torch.cos, torch.sin))
        u, v = out[:, :, vectors[0]], out[:, :, vectors[1]]
        out[:, :, vectors[0]], out[:, :, vectors[1]] = cos * u + sin * v, cos * v - sin * u  # new tensors
    gain = torch.tensor(1.0 + rng.uniform(-contrast, contrast, b), dtype=batch.dtype)
    bias = torch.tensor(rng.uniform(-brightness, brightness, b), dtype=batch.dtype)
    return out * gain[:, None, None, None, None, None] + bias[:, None, None, None, None, None]


# ---------------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainOptions:
    """Adam at ``lr``, ``epochs`` over the data in batches of ``batch``, class-weighted cross-entropy
    (weights = inverse class frequency), augmentation on unless ``augment`` is False (``flip``:
    mirrored clips among the augmentations, see :func:`augment`); ``threads`` limits torch's CPU
    threads (training shares the machine). 20 epochs, not 12, since the flow input (development
    recordings: UF1 0.888 -> 0.938 at flow gain 2)."""

    epochs: int = 20
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    augment: bool = True
    flip: bool = True
    seed: int = 0
    threads: int = 1


@dataclass
class TrainReport:
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    class_weights: list[float] = field(default_factory=list)
    samples: int = 0


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights normalised to mean 1 over the classes present (absent classes: 0)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return w.astype(np.float32)


def train(model: TPHA3DNet, x: np.ndarray, y: np.ndarray, options: TrainOptions | None = None,
          progress: Callable[[int, int, float], None] | None = None) -> TrainReport:  # fmt: skip
    """Train ``model`` in place on clips ``x`` (N, 3, C, T, S, S) with integer labels ``y``."""
    o = options or TrainOptions()
    if len(x) != len(y) or len(x) == 0:
        raise InputError(f"{len(x)} clips and {len(y)} labels: need the same, non-zero number")
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    rng = np.random.default_rng(o.seed)
    n_classes = len(model.options.classes)
    weights = class_weights(np.asarray(y), n_classes)
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(weights))
    opt = torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    report = TrainReport(class_weights=weights.tolist(), samples=len(x))
    model.train()
    for epoch in range(o.epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(order), o.batch):
            idx = torch.from_numpy(order[start : start + o.batch])
            xb = xt[idx]
            if o.augment:
                xb = augment(xb, rng, flip=o.flip, vectors=model.options.vector_channels)
            opt.zero_grad()
            loss = loss_fn(model(xb), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        report.losses.append(total / len(x))
        if progress is not None:
            progress(epoch + 1, o.epochs, report.losses[-1])
    model.eval()
    return report


@torch.no_grad()
def predict_proba(model: TPHA3DNet, x: np.ndarray | torch.Tensor, batch: int = 1) -> np.ndarray:
    """Class probabilities (softmax) of clips ``x`` by ``model``, put in eval mode, ``batch`` clips a
    call: one or two at a time is the fastest on CPU (one-off, 1 thread: 4-5 ms a clip at batch 1
    and 2, 9-12 ms at 4 to 32)."""
    model.eval()
    xt = torch.as_tensor(np.asarray(x, np.float32)) if not isinstance(x, torch.Tensor) else x
    out = [torch.softmax(model(xt[k : k + batch]), dim=1) for k in range(0, len(xt), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


# ---------------------------------------------------------------------------------------------------
# Export


def export(model: TPHA3DNet, path: str | Path, meta: dict | None = None) -> Path:
    """Save ``model``'s weights with its options and ``meta``, for :func:`load_exported`.

    Weights, not a program: they load in 0.1 s with ``torch.load(weights_only=True)`` (no pickled
    code runs) into this package's model, whose grouped convolution is the fast CPU form. TorchScript,
    the format before, is deprecated in torch 2.13; a ``torch.export`` program took 1.5 s
    to load (it imports torch's compiler) and ran no faster than eager: 4.3-6.4 against 3.6-5.2 ms
    a clip (one-off measurements)."""
    path = Path(path)
    payload = {
        "format": FILE_FORMAT,
        "options.json": json.dumps(asdict(model.options)),
        "meta.json": json.dumps(meta or {}),
        "weights": model.state_dict(),
    }
    buffer = io.BytesIO()  # torch.save reports a failed write as a RuntimeError; write_bytes, an OSError
    torch.save(payload, buffer)
    with atomic_path(path, "model") as tmp:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(buffer.getvalue())
    return path


@dataclass
class ExportedModel:
    """A loaded TP-HA3DNet: call :meth:`predict` on clip tensors."""

    module: TPHA3DNet
    options: TPHA3DNetOptions
    meta: dict

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return predict_proba(self.module, x)

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.options.classes[k] for k in self.predict_proba(x).argmax(axis=1)]


def load_exported(path: str | Path, threads: int = 1) -> ExportedModel:
    """Load a model written by :func:`export`, or a TorchScript file, as it wrote them before
    (its weights go into this version's :class:`TPHA3DNet`: the same probabilities, and no call to
    TorchScript after loading). ``threads``: torch's CPU threads (one event is a batch of one)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"TP-HA3DNet model not found: {path} (train one with 'avatar-bridge train tp-ha3dnet')"
        )
    torch.set_num_threads(threads)
    try:
        if _is_torchscript(path):
            stored = {"options.json": "", "meta.json": ""}
            weights = _torchscript_weights(path, stored)
        else:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(stored, dict) or stored.get("format") != FILE_FORMAT:
                raise ValueError(f"no {FILE_FORMAT!r} inside")
            weights = stored["weights"]
        options = _read_options(stored["options.json"])
        meta = json.loads(stored["meta.json"] or "{}")
        model = TPHA3DNet(options)
        model.load_state_dict(weights)
    except _DAMAGED as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]  # torch's messages run to many lines
        raise ModelError(f"{path} is not a TP-HA3DNet model of this version ({first})") from e
    model.eval()
    return ExportedModel(model, options, meta)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive holds its code (``constants.pkl`` beside it); other files, no."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _read_options(text: str) -> TPHA3DNetOptions:
    raw = json.loads(text)
    raw["classes"] = tuple(raw["classes"])
    raw["pool"] = tuple(raw["pool"])
    raw.setdefault("motion", "difference")  # files written before the flow input read differences
    return TPHA3DNetOptions(**raw)


def _torchscript_weights(path: Path, extra: dict[str, str]) -> dict[str, torch.Tensor]:
    """The weights of a TorchScript file, as :func:`export` wrote them before; ``extra`` gets its
    embedded files. Read, not run: so torch's deprecation warning is not the user's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu", _extra_files=extra).state_dict()


def label_indices(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: k for k, c in enumerate(classes)}
    bad = sorted({lab for lab in labels if lab not in index})
    if bad:
        raise InputError(f"labels {bad} are not among the classes {list(classes)}")
    return np.array([index[lab] for lab in labels], dtype=np.int64)
