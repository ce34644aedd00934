"""Training and leave-one-subject-out evaluation of the classifiers, shared by the CLI and benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.classify.clips import ClipSet, event_window
from avatar_bridge.micro.classify.dct_lda import DCTLDA, DCTLDAOptions, dct_features
from avatar_bridge.micro.classify.tp_ha3dnet import (
    REGIONS,
    TPHA3DNet,
    TPHA3DNetOptions,
    TrainOptions,
    clip_tensor,
    label_indices,
    predict_proba,
    train,
)
from avatar_bridge.micro.evaluation import LosoResult, chance_reference, evaluate_loso, recognition_scores

Progress = Callable[[str, int, int], None]


def tensors(clips: ClipSet, options: TPHA3DNetOptions, spotted: bool = False) -> np.ndarray:
    """Model input of every clip, cut from its event's onset to offset (:func:`clips.event_window`:
    the ground truth's, or the spotter's with ``spotted``, all zeros where the spotter missed)."""
    out = np.zeros((len(clips.clips), len(REGIONS), options.input_channels, options.frames, options.size,
                    options.size), np.float32)  # fmt: skip
    for i, (clip, source) in enumerate(zip(clips.clips, clips.sources, strict=True)):
        window = event_window(clip, source, spotted)
        if window is not None:
            out[i] = clip_tensor(window, options)
    return out


def spotted_mask(clips: ClipSet) -> np.ndarray:
    """Which clips the spotter found (a matching spotted event is recorded in their source)."""
    return np.array([s.get("spotted") is not None for s in clips.sources], dtype=bool)


def loso_models(x: np.ndarray, y: np.ndarray, subjects: Sequence[Hashable],
                options: TPHA3DNetOptions | None = None, train_options: TrainOptions | None = None,
                train_mask: np.ndarray | None = None,
                progress: Progress | None = None) -> dict[Hashable, TPHA3DNet]:  # fmt: skip
    """One model per subject, trained on every other subject's clips (those in ``train_mask``):
    leave-one-subject-out. Predict each subject's clips with its own model."""
    o = options or TPHA3DNetOptions()
    subj = np.asarray(subjects, dtype=object)
    keep = np.ones(len(y), bool) if train_mask is None else np.asarray(train_mask, bool)
    if len(set(subj.tolist())) < 2:
        raise InputError("leave-one-subject-out needs at least 2 subjects")
    models = {}
    for s in dict.fromkeys(subj.tolist()):
        tr = np.flatnonzero((subj != s) & keep)
        model = TPHA3DNet(o)
        cb = (
            None
            if progress is None
            else (lambda e, n, loss, s=s: progress(f"without {s}: loss {loss:.3f}", e, n))
        )
        train(model, x[tr], y[tr], train_options, cb)
        models[s] = model
    return models


def loso_predict(models: dict[Hashable, TPHA3DNet], x: np.ndarray, subjects: Sequence[Hashable],
                 classes: Sequence[str]) -> list[str]:  # fmt: skip
    """Each clip predicted by the model that never saw its subject."""
    out = [""] * len(x)
    subj = np.asarray(subjects, dtype=object)
    for s, model in models.items():
        idx = np.flatnonzero(subj == s)
        if len(idx):
            for i, k in zip(idx, predict_proba(model, x[idx]).argmax(axis=1), strict=True):
                out[i] = classes[int(k)]
    return out


def breakdown(labels: Sequence[str], predictions: Sequence[str], sources: Sequence[dict],
              subjects: Sequence[Hashable], classes: Sequence[str],
              mask: np.ndarray | None = None) -> dict:  # fmt: skip
    """UF1/UAR of ``predictions`` over the clips in ``mask``: all together, per amplitude and per
    subject (a prediction that is not a class, such as '' for no decision, counts as wrong)."""
    idx = np.flatnonzero(np.ones(len(labels), bool) if mask is None else mask)
    if not len(idx):
        return {"n": 0}

    def score(sel: np.ndarray) -> dict:
        return recognition_scores([labels[i] for i in sel], [predictions[i] for i in sel], classes).as_dict()

    amps = sorted({float(sources[i].get("amplitude", 0.0)) for i in idx})
    subj = sorted({str(subjects[i]) for i in idx})
    return {
        "all": score(idx),
        "by_amplitude": {f"{a:g}": score(np.array([i for i in idx if sources[i].get("amplitude") == a]))
                         for a in amps},
        "by_subject": {s: score(np.array([i for i in idx if str(subjects[i]) == s])) for s in subj},
    }  # fmt: skip


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
