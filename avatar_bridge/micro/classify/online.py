"""TP-HA3DNet as an online labeller of the events the spotter decides (live and ``export``).

The spotter aligns every face every frame as the training clips were aligned
(:func:`micro.flow.aligned_face` of the grey frame: the 128 x 128 grey face). :class:`FaceFrames`
keeps the last second or so of those aligned faces per face; when a micro-expression is decided,
:class:`OnlineTPHA3DNet` cuts its frames exactly as the training clips were cut
(:func:`clips.event_window` on the frames of [onset - pad, offset +
pad], the three 64 x 64 regions of :data:`micro.flow.CROPS` in :data:`tp_ha3dnet.REGIONS` order),
makes the model input with :func:`tp_ha3dnet.clip_tensor` and predicts, batch 1. The model is
loaded once (``models/tp_ha3dnet.pt`` by default, found like every model:
:func:`avatar_bridge.resources.resolve_model`).

>>> labeller = OnlineTPHA3DNet()  # doctest: +SKIP
>>> ring = FaceFrames(seconds=1.2)  # doctest: +SKIP
>>> ring.push(t, aligned_face(grey(frame.image), face))  # every frame  # doctest: +SKIP
>>> labeller.label(event, ring)  # the event with label, emotion and label_scores, or None  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.classify.clips import event_window
from avatar_bridge.micro.classify.tp_ha3dnet import REGIONS, clip_tensor, load_exported
from avatar_bridge.micro.flow import crops_of
from avatar_bridge.records import ExpressionEvent

#: The shipped weights' file name (``models/``, or ``$AVATAR_BRIDGE_MODEL_DIR``).
MODEL_FILE = "tp_ha3dnet.pt"
#: The word each 3-class label honestly allows: 'positive' is happiness in the 3-class scheme
#: (MEGC 2019), 'negative' stands for anger, contempt, disgust, fear or sadness, which the model
#: does not tell apart. A class not listed (a model trained on other classes) is its own word.
EMOTIONS = {"positive": "happiness", "surprise": "surprise", "negative": "negative"}
#: Seconds of frames kept before the onset and after the offset, as the training clips were cut
#: (:func:`clips.still_clips`' ``pad``); :func:`clips.event_window` keeps [onset, offset] of them.
PAD = 0.12


def region_stack(aligned: np.ndarray) -> np.ndarray:
    """(3, 64, 64) crops of a 128 x 128 aligned grey face, in :data:`tp_ha3dnet.REGIONS` order."""
    if aligned.ndim != 2:
        raise InputError(f"expected a grey aligned face, got shape {aligned.shape}")
    crops = crops_of(aligned)
    return np.stack([crops[r] for r in REGIONS])


class FaceFrames:
    """The aligned grey faces of one face over the last ``seconds`` (source time), with their times.

    ``push`` keeps a reference (the spotter's flow makes a new array every frame: no copy)."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise InputError(f"the frame ring needs positive seconds, got {seconds}")
        self.seconds = seconds
        self._items: deque[tuple[float, np.ndarray]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def first_time(self) -> float:
        """Time of the oldest frame kept (inf when empty)."""
        return self._items[0][0] if self._items else float("inf")

    def push(self, t: float, aligned: np.ndarray) -> None:
        items = self._items
        items.append((t, aligned))
        while t - items[0][0] > self.seconds:
            items.popleft()

    def clear(self) -> None:
        self._items.clear()

    def clip(self, onset: float, offset: float, pad: float = PAD) -> tuple[np.ndarray, list[float]] | None:
        """(3, T, 64, 64) crops and times of the frames in [onset - pad, offset + pad], or None when
        the ring does not reach back to ``onset`` (or holds no frame there)."""
        if self.first_time > onset + 1e-6:
            return None
        chosen = [(t, a) for t, a in self._items if onset - pad <= t <= offset + pad]
        if not chosen:
            return None
        return np.stack([region_stack(a) for _, a in chosen], axis=1), [t for t, _ in chosen]


class OnlineTPHA3DNet:
    """A TP-HA3DNet model loaded once, labelling one event at a time from a :class:`FaceFrames`.

    ``model``: a file written by ``avatar-bridge train tp-ha3dnet`` (None: :data:`MODEL_FILE`
    from ``$AVATAR_BRIDGE_MODEL_DIR`` or the packaged models folder). ``threads``: torch's CPU
    threads (:func:`tp_ha3dnet.load_exported` sets them; one event is a batch of one clip).
    ``warmup``: predictions on an empty clip made at load, so that the first events do not pay for
    torch's first calls (measured, one-off: 14-22 ms of CPU, then 10, then 4-5).
    A missing or corrupt file raises :class:`~avatar_bridge.errors.ModelError` naming the path."""

    def __init__(
        self, model: str | os.PathLike[str] | None = None, threads: int = 1, warmup: int = 2
    ) -> None:
        from avatar_bridge.resources import resolve_model

        # A given file is loaded as it is (load_exported names it when it is missing or corrupt).
        self.path: Path = Path(model) if model is not None else resolve_model(MODEL_FILE)
        self.model = load_exported(self.path, threads)
        o = self.model.options
        empty = np.zeros((1, len(REGIONS), o.input_channels, o.frames, o.size, o.size), np.float32)
        for _ in range(warmup):
            self.model.predict_proba(empty)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.options.classes

    def probabilities(self, crops: np.ndarray, times: list[float], onset: float, offset: float) -> np.ndarray:
        """Class probabilities of the event [onset, offset] in ``crops`` (3, T, 64, 64) at ``times``."""
        window = event_window(crops, {"times": times, "onset": onset, "offset": offset})
        return self.model.predict_proba(clip_tensor(window, self.model.options)[None])[0]

    def label(self, event: ExpressionEvent, frames: FaceFrames) -> ExpressionEvent | None:
        """``event`` with ``label`` (the likeliest class), ``emotion`` (:data:`EMOTIONS`) and
        ``label_scores`` (every class's probability); None when ``frames`` miss its onset."""
        cut = frames.clip(event.onset, event.offset)
        if cut is None:
            return None
        p = self.probabilities(*cut, event.onset, event.offset)
        best = self.classes[int(np.argmax(p))]
        scores = {c: round(float(v), 4) for c, v in zip(self.classes, p, strict=True)}
        return replace(event, label=best, emotion=EMOTIONS.get(best, best), label_scores=scores)
