"""Training and leave-one-subject-out evaluation of the classifiers, shared by the CLI and benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.classify.clips import ClipSet
from avatar_bridge.micro.classify.dct_lda import DCTLDA, DCTLDAOptions, dct_features
from avatar_bridge.micro.classify.tp_ha3dnet import (
    TPHA3DNet,
    TPHA3DNetOptions,
    TrainOptions,
    clip_tensor,
    label_indices,
    predict_proba,
    train,
)
from avatar_bridge.micro.evaluation import LosoResult, chance_reference, evaluate_loso

Progress = Callable[[str, int, int], None]


def tensors(clips: ClipSet, options: TPHA3DNetOptions) -> np.ndarray:
    return np.stack([clip_tensor(c, options) for c in clips.clips])


def loso_tp_ha3dnet(
    clips: ClipSet,
    options: TPHA3DNetOptions | None = None,
    train_options: TrainOptions | None = None,
    progress: Progress | None = None,
) -> tuple[LosoResult, dict]:
    """Leave-one-subject-out UF1/UAR of TP-HA3DNet on ``clips``, with the chance reference beside it."""
    o = options or TPHA3DNetOptions()
    to = train_options or TrainOptions()
    x = tensors(clips, o)
    y = label_indices(clips.labels, o.classes)

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> list[str]:
        model = TPHA3DNet(o)
        subject = clips.subjects[int(te[0])]
        cb = (
            None
            if progress is None
            else (lambda e, n, loss: progress(f"fold {subject}: loss {loss:.3f}", e, n))
        )
        train(model, x[tr], y[tr], to, cb)
        return [o.classes[k] for k in predict_proba(model, x[te]).argmax(axis=1)]

    result = evaluate_loso(clips.labels, clips.subjects, fit_predict, o.classes)
    return result, chance_reference(clips.labels, clips.subjects, o.classes)


def train_tp_ha3dnet(
    clips: ClipSet,
    options: TPHA3DNetOptions | None = None,
    train_options: TrainOptions | None = None,
    progress: Progress | None = None,
) -> tuple[TPHA3DNet, list[float]]:
    """One model on every clip (after its LOSO figures were measured)."""
    o = options or TPHA3DNetOptions()
    model = TPHA3DNet(o)
    cb = None if progress is None else (lambda e, n, loss: progress(f"all clips: loss {loss:.3f}", e, n))
    report = train(model, tensors(clips, o), label_indices(clips.labels, o.classes), train_options, cb)
    return model, report.losses


def face_features_from_folder(
    folder: Path, options: DCTLDAOptions | None = None, progress: Progress | None = None
) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """DCT features of every face image under ``folder/<class>/`` (one subfolder per class).

    Faces are found and aligned with the tracker; images without a face are listed, not fatal.
    Returns (features, labels, file names, problems)."""
    import cv2

    from avatar_bridge.micro.classify.dct_lda import face_image
    from avatar_bridge.records import Frame
    from avatar_bridge.tracking import FaceTracker, TrackerMode, TrackerOptions

    folder = Path(folder)
    files = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})
    if not files:
        raise InputError(f"no images under {folder}/<class>/ (one subfolder per expression class)")
    feats, labels, names, problems = [], [], [], []
    with FaceTracker(TrackerOptions(mode=TrackerMode.IMAGE)) as tracker:
        for n, path in enumerate(files):
            bgr = cv2.imread(str(path))
            if bgr is None:
                problems.append(f"{path}: not a readable image")
                continue
            frame = Frame(n, float(n), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            result = tracker.update(frame)
            if not result.faces:
                problems.append(f"{path}: no face found")
                continue
            feats.append(dct_features(face_image(frame.image, result.faces[0]), options))
            labels.append(path.parent.name)
            names.append(str(path))
            if progress is not None:
                progress("faces", n + 1, len(files))
    if not feats:
        raise InputError(f"no face found in any image under {folder}")
    return np.array(feats), labels, names, problems


def loso_dct_lda(features: np.ndarray, labels: Sequence[str], subjects: Sequence[Hashable],
                 options: DCTLDAOptions | None = None) -> LosoResult:  # fmt: skip
    """LOSO scores of DCT-LDA (a fold whose training set has one class only is skipped and marked)."""

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> list[str]:
        model = DCTLDA.fit(features[tr], [labels[i] for i in tr], options)
        return model.predict(features[te])

    return evaluate_loso(list(labels), list(subjects), fit_predict, sorted(set(labels)))
