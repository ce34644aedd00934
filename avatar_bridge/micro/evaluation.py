"""The field's evaluation protocols for micro-expressions, as pure functions.

Spotting (MEGC): a spotted interval is a true positive when its IoU with a ground-truth interval of the
same video is at least 0.5; precision, recall and F1 are counted over the whole set, not averaged per
video. Recognition (MEGC2019 composite): unweighted F1 (UF1, the mean of per-class F1) and unweighted
average recall (UAR), from predictions pooled over leave-one-subject-out folds. Random clip splits put
one person in training and test and inflate scores, so nothing here offers one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.records import EventKind, ExpressionEvent

Interval = tuple[float, float]

#: The MEGC threshold: a spotted interval matches a ground-truth one at IoU >= 0.5.
IOU_THRESHOLD = 0.5


def frames_to_interval(onset: int, offset: int) -> Interval:
    """Inclusive frame numbers -> half-open interval, so that IoU counts frames as MEGC does."""
    if offset < onset:
        raise InputError(f"offset frame {offset} is before onset frame {onset}")
    return float(onset), float(offset) + 1.0


def interval_iou(a: Interval, b: Interval) -> float:
    """Intersection over union of two intervals (start, end); 0 when they only touch or are empty."""
    (a0, a1), (b0, b1) = a, b
    if a1 < a0 or b1 < b0:
        raise InputError(f"interval end before start: {a} or {b}")
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = (a1 - a0) + (b1 - b0) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SpottingScores:
    """Counts and scores over a whole set. ``partial`` lists videos that lacked ground truth or
    predictions, so a reader knows the figure does not cover everything that was asked."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    threshold: float = IOU_THRESHOLD
    partial: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
            "recall": self.recall, "f1": self.f1, "iou_threshold": self.threshold,
            "partial": list(self.partial),
        }  # fmt: skip


def match_intervals(
    truth: Sequence[Interval], spotted: Sequence[Interval], threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int, float]]:
    """One-to-one matches (truth index, spotted index, IoU) with IoU >= ``threshold``.

    Greedy by descending IoU, so one spotted interval never counts for two ground-truth ones.
    """
    pairs = [(interval_iou(t, s), i, j) for i, t in enumerate(truth) for j, s in enumerate(spotted)]
    used_t: set[int] = set()
    used_s: set[int] = set()
    matches = []
    for iou, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if iou + 1e-12 < threshold:
            break
        if i in used_t or j in used_s:
            continue
        used_t.add(i)
        used_s.add(j)
        matches.append((i, j, iou))
    return matches


def spotting_scores(
    truth: Mapping[str, Sequence[Interval]],
    spotted: Mapping[str, Sequence[Interval]],
    threshold: float = IOU_THRESHOLD,
) -> SpottingScores:
    """Precision, recall and F1 over all videos (keys are video ids).

    A video with ground truth but no entry in ``spotted`` counts its events as missed and is listed in
    ``partial``; so is a spotted video absent from ``truth`` (its intervals count as false positives).
    """
    tp = fp = fn = 0
    partial = []
    for video in sorted(set(truth) | set(spotted)):
        t = list(truth.get(video, ()))
        s = list(spotted.get(video, ()))
        if video not in spotted or video not in truth:
            partial.append(video)
        n = len(match_intervals(t, s, threshold))
        tp += n
        fp += len(s) - n
        fn += len(t) - n
    return SpottingScores(tp, fp, fn, *precision_recall_f1(tp, fp, fn), threshold, tuple(partial))


def spotting_by_kind(
    truth: Mapping[str, Mapping[str, Sequence[Interval]]],
    spotted: Mapping[str, Mapping[str, Sequence[Interval]]],
    threshold: float = IOU_THRESHOLD,
) -> dict[str, SpottingScores]:
    """MEGC's long-video protocol (CAS(ME)^2, SAMM-LV): micro- and macro-expressions are spotted
    and matched apart (``truth[kind][video]``, ``spotted[kind][video]``, kinds 'micro' and 'macro'),
    and 'overall' pools their counts. A spotted micro interval over a true macro-expression is a
    false positive, as in the challenge."""
    scores = {kind: spotting_scores(truth.get(kind, {}), spotted.get(kind, {}), threshold)
              for kind in ("micro", "macro")}  # fmt: skip
    tp, fp, fn = (sum(getattr(s, name) for s in scores.values()) for name in ("tp", "fp", "fn"))
    partial = tuple(sorted({v for s in scores.values() for v in s.partial}))
    scores["overall"] = SpottingScores(tp, fp, fn, *precision_recall_f1(tp, fp, fn), threshold, partial)
    return scores


def events_to_frames(
    events: Sequence[ExpressionEvent], numbers: Sequence[int], fps: float
) -> dict[str, list[Interval]]:
    """The spotter's events on an image folder as the dataset's frame intervals, per kind.

    The folder was read in frame order at ``fps`` (frame ``i`` at ``i / fps`` s), and ``numbers``
    are its files' frame numbers in that order (a sheet's onset and offset count them, often from
    1). Onset and offset times round to the nearest frame, then become intervals as
    :func:`frames_to_interval` makes them from a sheet.
    """
    if not numbers or fps <= 0:
        raise InputError(f"no frames to place events on ({len(numbers)} frames, {fps} fps)")
    last = len(numbers) - 1
    out: dict[str, list[Interval]] = {"micro": [], "macro": []}
    for e in events:
        on = min(max(round(e.onset * fps), 0), last)
        off = min(max(round(e.offset * fps), on), last)
        out[e.kind.value].append(frames_to_interval(numbers[on], numbers[off]))
    return out


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if tp else 0.0


@dataclass(frozen=True, slots=True)
class RecognitionScores:
    """UF1 and UAR over ``classes`` with the per-class figures and the confusion matrix
    (rows = truth, columns = prediction, in ``classes`` order)."""

    uf1: float
    uar: float
    accuracy: float
    classes: tuple[str, ...]
    per_class_f1: tuple[float, ...]
    per_class_recall: tuple[float, ...]
    confusion: np.ndarray
    n: int
    #: Per true class, the predictions outside ``classes`` (no label): missing from ``confusion``.
    unlabelled: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready: a class absent from the truth has no recall (and maybe no F1): null, not NaN,
        which strict JSON readers refuse."""

        def per_class(values: tuple[float, ...]) -> dict[str, float | None]:
            return {c: None if math.isnan(v) else v for c, v in zip(self.classes, values, strict=True)}

        return {
            "uf1": self.uf1, "uar": self.uar, "accuracy": self.accuracy, "n": self.n,
            "classes": list(self.classes),
            "per_class_f1": per_class(self.per_class_f1),
            "per_class_recall": per_class(self.per_class_recall),
            "confusion": self.confusion.tolist(),
            "unlabelled": dict(zip(self.classes, self.unlabelled, strict=True)),
        }  # fmt: skip


def recognition_scores(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str] | None = None
) -> RecognitionScores:
    """UF1 and UAR as MEGC2019 defines them.

    UF1 = mean over classes of 2TP / (2TP + FP + FN); UAR = mean over classes of TP / N_class. Classes
    with no ground-truth sample are left out of both means (their recall is undefined); a prediction
    outside ``classes`` counts as a miss of the true class.
    """
    if len(y_true) != len(y_pred):
        raise InputError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not len(y_true):
        raise InputError("no samples to score")
    cls = tuple(classes) if classes is not None else tuple(sorted(set(y_true)))
    index = {c: k for k, c in enumerate(cls)}
    conf = np.zeros((len(cls), len(cls)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t not in index:
            raise InputError(f"true label {t!r} is not one of the classes {list(cls)}")
        if p in index:
            conf[index[t], index[p]] += 1
    true_counts = Counter(y_true)
    f1s, recalls = [], []
    for k in range(len(cls)):
        tp = conf[k, k]
        n_true = true_counts[cls[k]]
        n_pred = conf[:, k].sum()
        fp = n_pred - tp
        fn = n_true - tp
        f1s.append(2 * tp / (2 * tp + fp + fn) if n_true else float("nan"))
        recalls.append(tp / n_true if n_true else float("nan"))
    f1a, ra = np.array(f1s, dtype=float), np.array(recalls, dtype=float)
    present = ~np.isnan(ra)
    accuracy = float(np.trace(conf) / len(y_true))
    return RecognitionScores(
        uf1=float(np.mean(f1a[present])),
        uar=float(np.mean(ra[present])),
        accuracy=accuracy,
        classes=cls,
        per_class_f1=tuple(float(v) for v in f1a),
        per_class_recall=tuple(float(v) for v in ra),
        confusion=conf,
        n=len(y_true),
        unlabelled=tuple(int(true_counts[c] - conf[k].sum()) for k, c in enumerate(cls)),
    )


@dataclass(frozen=True, slots=True)
class Fold:
    """One leave-one-subject-out fold: indices into the sample list."""

    test_subject: Hashable
    train: np.ndarray
    test: np.ndarray


def loso_folds(subjects: Sequence[Hashable]) -> list[Fold]:
    """One fold per subject: that subject's samples are the test set, everyone else's the training set."""
    subj = list(subjects)
    if len(set(subj)) < 2:
        raise InputError(f"leave-one-subject-out needs at least 2 subjects, got {len(set(subj))}")
    order = list(dict.fromkeys(subj))
    folds = []
    for s in order:
        test = np.array([i for i, v in enumerate(subj) if v == s], dtype=np.int64)
        train = np.array([i for i, v in enumerate(subj) if v != s], dtype=np.int64)
        folds.append(Fold(s, train, test))
    return folds


@dataclass
class LosoResult:
    """Predictions pooled over every fold, their scores, and the folds that could not run."""

    scores: RecognitionScores
    y_true: list[str]
    y_pred: list[str]
    subjects: list[Hashable]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.skipped)

    def as_dict(self) -> dict:
        out = self.scores.as_dict()
        out["folds"] = len(set(self.subjects))
        out["skipped_folds"] = dict(self.skipped)
        out["partial"] = self.partial
        return out


def evaluate_loso(
    labels: Sequence[str],
    subjects: Sequence[Hashable],
    fit_predict: Callable[[np.ndarray, np.ndarray], Sequence[str]],
    classes: Sequence[str] | None = None,
    on_fold: Callable[[int, int, Hashable], None] | None = None,
) -> LosoResult:
    """Run ``fit_predict(train_idx, test_idx) -> predicted labels of test_idx`` on every LOSO fold.

    A fold whose training set lacks a class still runs; a fold that raises an avatar-bridge error is
    skipped, recorded in ``skipped`` and the result is marked partial rather than lost.
    """
    from avatar_bridge.errors import AvatarBridgeError

    folds = loso_folds(subjects)
    y_true: list[str] = []
    y_pred: list[str] = []
    subj_out: list[Hashable] = []
    skipped: dict[str, str] = {}
    for k, fold in enumerate(folds):
        if on_fold is not None:
            on_fold(k, len(folds), fold.test_subject)
        try:
            pred = list(fit_predict(fold.train, fold.test))
        except AvatarBridgeError as e:
            skipped[str(fold.test_subject)] = str(e)
            continue
        if len(pred) != len(fold.test):
            raise InputError(
                f"fold {fold.test_subject}: {len(pred)} predictions for {len(fold.test)} samples"
            )
        y_true.extend(labels[i] for i in fold.test)
        y_pred.extend(pred)
        subj_out.extend(subjects[i] for i in fold.test)
    if not y_true:
        raise InputError("every leave-one-subject-out fold failed: " + "; ".join(skipped.values()))
    cls = classes if classes is not None else sorted(set(labels))
    return LosoResult(recognition_scores(y_true, y_pred, cls), y_true, y_pred, subj_out, skipped)


def chance_reference(
    labels: Sequence[str], subjects: Sequence[Hashable], classes: Sequence[str] | None = None, seed: int = 0
) -> dict[str, dict]:
    """Two chance-level baselines under the same LOSO folds, to print beside a model's figures:
    the training fold's majority class, and a uniform random guess (seeded)."""
    cls = list(classes) if classes is not None else sorted(set(labels))
    rng = np.random.default_rng(seed)

    def majority(train: np.ndarray, test: np.ndarray) -> list[str]:
        values, counts = np.unique([labels[i] for i in train], return_counts=True)
        return [str(values[int(np.argmax(counts))])] * len(test)

    def uniform(train: np.ndarray, test: np.ndarray) -> list[str]:
        return [cls[int(k)] for k in rng.integers(0, len(cls), size=len(test))]

    return {
        "majority": evaluate_loso(labels, subjects, majority, cls).as_dict(),
        "uniform_random": evaluate_loso(labels, subjects, uniform, cls).as_dict(),
    }


def score_injected(
    truth: Mapping, events: Sequence[ExpressionEvent], threshold: float = IOU_THRESHOLD
) -> dict:
    """The micro-expressions spotted in a generated video against its ground truth (``truth``: a
    ``<name>.truth.json`` of ``avatar-bridge synth``, or any mapping with ``events``, each with
    onset, offset, side, label and amplitude; ``negatives`` optional).

    Matching as :func:`match_intervals`. Per true event: found or not, the matched interval
    (``spotted``), the IoU, the decision delay after its offset (``emitted_at - offset``, s) and
    whether side and label agree. Each false micro-expression is named by the hard negative it
    overlaps ('jitter', 'macro', 'blink'), or 'none'. ``macro``: the spotted macro-expressions'
    intervals (a missed event may sit inside one).
    """
    gt = list(truth["events"])
    micro = [e for e in events if e.kind == EventKind.MICRO]
    matches = match_intervals([(g["onset"], g["offset"]) for g in gt], [(e.onset, e.offset) for e in micro],
                              threshold)  # fmt: skip
    found = {i: (j, iou) for i, j, iou in matches}
    rows = []
    for i, g in enumerate(gt):
        row = {"onset": g["onset"], "offset": g["offset"], "amplitude": g.get("amplitude"),
               "pattern": g.get("pattern", ""), "found": i in found}  # fmt: skip
        if i in found:
            j, iou = found[i]
            e = micro[j]
            row |= {"spotted": [e.onset, e.offset], "iou": iou, "delay": e.emitted_at - g["offset"],
                    "side_ok": e.side == g.get("side"), "label_ok": e.label == g.get("label"),
                    "label": g.get("label"), "predicted": e.label}  # fmt: skip
        rows.append(row)
    hit = {j for j, _ in found.values()}
    negatives = list(truth.get("negatives", ()))
    false = []
    for j, e in enumerate(micro):
        if j in hit:
            continue
        over = [n["kind"] for n in negatives if min(n["offset"], e.offset) > max(n["onset"], e.onset)]
        false.append({"onset": e.onset, "offset": e.offset, "overlaps": over[0] if over else "none"})
    pairs = [r for r in rows if r["found"]]
    return {
        "tp": len(pairs), "fp": len(false), "fn": len(gt) - len(pairs),
        "delays": [r["delay"] for r in pairs],
        "side_ok": sum(r["side_ok"] for r in pairs), "label_ok": sum(r["label_ok"] for r in pairs),
        "events": rows, "false": false,
        "macro": [[e.onset, e.offset] for e in events if e.kind == EventKind.MACRO],
    }  # fmt: skip


def summarise_injected(
    videos: Mapping[str, dict], minutes: float, classes: Sequence[str] | None = None
) -> dict:
    """Pool :func:`score_injected` results of several videos (``minutes`` of video in all): the
    spotting scores over the whole set, recall per amplitude and per AU pattern, false
    micro-expressions per minute and by what they overlap, and ``recognition``: UF1/UAR over
    ``classes`` of the labels of the events found whose true label is one of them (None when none is)."""
    tp = sum(v["tp"] for v in videos.values())
    fp = sum(v["fp"] for v in videos.values())
    fn = sum(v["fn"] for v in videos.values())
    rows = [r for v in videos.values() for r in v["events"]]
    per_amp = {}
    for amp in sorted({r["amplitude"] for r in rows if r["amplitude"] is not None}):
        sel = [r for r in rows if r["amplitude"] == amp]
        hit = [r for r in sel if r["found"]]
        delays = [r["delay"] for r in hit]
        per_amp[f"{amp:g}"] = {
            "events": len(sel), "found": len(hit), "recall": len(hit) / len(sel),
            "side_ok": sum(r["side_ok"] for r in hit), "label_ok": sum(r["label_ok"] for r in hit),
            "delay_median": float(np.median(delays)) if delays else None,
            "delay_max": max(delays) if delays else None,
        }  # fmt: skip
    per_pattern = {}
    for pattern in sorted({r["pattern"] for r in rows}):
        sel = [r for r in rows if r["pattern"] == pattern]
        per_pattern[pattern] = {"events": len(sel), "found": sum(r["found"] for r in sel)}
    false = [f for v in videos.values() for f in v["false"]]
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    named = [r for r in rows if r["found"] and r.get("label") and (classes is None or r["label"] in classes)]
    recognition = (recognition_scores([r["label"] for r in named], [r["predicted"] or "" for r in named],
                                      classes).as_dict() if named else None)  # fmt: skip
    return {
        "videos": len(videos), "minutes": minutes, "iou_threshold": IOU_THRESHOLD,
        "tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
        "f1": f1,
        "per_amplitude": per_amp,
        "per_pattern": per_pattern,
        "false_micro_per_minute": len(false) / minutes if minutes > 0 else None,
        "false_micro_overlapping": dict(Counter(f["overlaps"] for f in false)),
        "recognition": recognition,
    }  # fmt: skip
