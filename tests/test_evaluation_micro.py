"""The micro-expression protocols on hand-worked cases: IoU edges, whole-set spotting F1, UF1/UAR, LOSO."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro.evaluation import (
    chance_reference,
    evaluate_loso,
    events_to_frames,
    frames_to_interval,
    interval_iou,
    loso_folds,
    match_intervals,
    recognition_scores,
    score_injected,
    spotting_by_kind,
    spotting_scores,
    summarise_injected,
)
from avatar_bridge.records import EventKind, ExpressionEvent


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 10), (0, 10), 1.0),
        ((0, 10), (10, 20), 0.0),  # touching: no overlap
        ((0, 10), (20, 30), 0.0),
        ((0, 10), (5, 15), 5 / 15),
        ((0, 10), (0, 20), 0.5),  # exactly at the threshold
        ((2, 4), (0, 10), 0.2),  # contained
        ((3, 3), (0, 10), 0.0),  # empty interval
        ((3, 3), (3, 3), 0.0),
    ],
)
def test_interval_iou(a, b, iou):
    assert interval_iou(a, b) == pytest.approx(iou)
    assert interval_iou(b, a) == pytest.approx(iou)


def test_frames_are_inclusive_like_megc():
    # frames 1..10 against 6..15: 5 shared frames of 15 in the union
    assert interval_iou(frames_to_interval(1, 10), frames_to_interval(6, 15)) == pytest.approx(5 / 15)
    # a single-frame interval equals itself
    assert interval_iou(frames_to_interval(7, 7), frames_to_interval(7, 7)) == 1.0
    with pytest.raises(InputError, match="before onset"):
        frames_to_interval(10, 9)


def test_iou_exactly_half_is_a_true_positive():
    assert match_intervals([(0, 10)], [(0, 20)]) == [(0, 0, 0.5)]
    assert match_intervals([(0, 10)], [(0, 20.001)]) == []


def test_one_spotted_interval_cannot_match_two_truths():
    truth = [(0, 10), (1, 11)]
    spotted = [(0, 10)]
    m = match_intervals(truth, spotted)
    assert len(m) == 1 and m[0][0] == 0
    s = spotting_scores({"v": truth}, {"v": spotted})
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)


def test_spotting_over_the_whole_set_not_averaged_per_video():
    truth = {"a": [(0, 10), (50, 60)], "b": [(0, 10)], "c": []}
    spotted = {"a": [(0, 10), (100, 110)], "b": [(30, 40)], "c": [(5, 6)]}
    s = spotting_scores(truth, spotted)
    assert (s.tp, s.fp, s.fn) == (1, 3, 2)
    assert s.precision == pytest.approx(1 / 4)
    assert s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(2 * 0.25 * (1 / 3) / (0.25 + 1 / 3))
    assert s.partial == ()


def test_spotting_marks_missing_videos_partial_and_zero_when_nothing_found():
    s = spotting_scores({"a": [(0, 10)], "b": [(0, 5)]}, {"a": []})
    assert s.partial == ("b",)
    assert (s.tp, s.fp, s.fn, s.precision, s.recall, s.f1) == (0, 0, 2, 0.0, 0.0, 0.0)


def test_uf1_uar_hand_case():
    y_true = ["neg"] * 6 + ["pos"] * 3 + ["sur"] * 1
    y_pred = ["neg"] * 5 + ["pos"] + ["pos"] * 2 + ["neg"] + ["sur"]
    r = recognition_scores(y_true, y_pred, ["neg", "pos", "sur"])
    # neg: tp 5, fp 1, fn 1 -> f1 10/12; pos: tp 2, fp 1, fn 1 -> 4/6; sur: 1
    assert r.per_class_f1 == pytest.approx((10 / 12, 4 / 6, 1.0))
    assert r.uf1 == pytest.approx((10 / 12 + 4 / 6 + 1) / 3)
    assert r.uar == pytest.approx((5 / 6 + 2 / 3 + 1) / 3)
    assert r.accuracy == pytest.approx(8 / 10)
    assert r.confusion.tolist() == [[5, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert r.unlabelled == (0, 0, 0)


def test_predictions_outside_the_classes_are_counted_as_unlabelled():
    """They are misses of the true class, and the confusion matrix has no column for them: the
    count per true class goes to ``unlabelled`` (a picture's "no label" column)."""
    r = recognition_scores(["neg", "neg", "pos"], ["neg", "(none)", "pos"], ["neg", "pos"])
    assert r.confusion.tolist() == [[1, 0], [0, 1]] and r.unlabelled == (1, 0)
    assert r.per_class_recall == pytest.approx((0.5, 1.0))
    assert r.as_dict()["unlabelled"] == {"neg": 1, "pos": 0}


def test_majority_guess_gets_high_accuracy_but_low_uf1():
    y_true = ["neg"] * 8 + ["pos", "sur"]
    r = recognition_scores(y_true, ["neg"] * 10, ["neg", "pos", "sur"])
    assert r.accuracy == pytest.approx(0.8)
    assert r.uar == pytest.approx(1 / 3)
    assert r.uf1 == pytest.approx((2 * 8 / (16 + 2)) / 3)


def test_class_without_truth_left_out_of_the_means():
    r = recognition_scores(["a", "a", "b"], ["a", "a", "c"], ["a", "b", "c"])
    assert math.isnan(r.per_class_recall[2])
    assert r.uar == pytest.approx((1 + 0) / 2)
    doc = r.as_dict()  # strict JSON: null where a figure is undefined, never NaN
    assert doc["per_class_recall"]["c"] is None and doc["per_class_recall"]["a"] == 1.0
    json.dumps(doc, allow_nan=False)


def test_recognition_bad_input():
    with pytest.raises(InputError, match="2 true labels but 1"):
        recognition_scores(["a", "b"], ["a"])
    with pytest.raises(InputError, match="not one of the classes"):
        recognition_scores(["x"], ["x"], ["a"])


def test_loso_folds_never_share_a_subject():
    rng = np.random.default_rng(3)
    subjects = [f"s{k}" for k in rng.integers(0, 7, size=60)]
    folds = loso_folds(subjects)
    assert len(folds) == len(set(subjects))
    seen = []
    for f in folds:
        test_subj = {subjects[i] for i in f.test}
        train_subj = {subjects[i] for i in f.train}
        assert test_subj == {f.test_subject}
        assert f.test_subject not in train_subj
        assert len(f.train) + len(f.test) == len(subjects)
        seen.extend(f.test.tolist())
    assert sorted(seen) == list(range(len(subjects)))
    with pytest.raises(InputError, match="at least 2 subjects"):
        loso_folds(["a", "a"])


def test_evaluate_loso_pools_predictions_and_keeps_partial_results():
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"]
    subjects = ["a", "a", "b", "b", "c", "c"]
    calls = []

    def fit_predict(train, test):
        calls.append(subjects[test[0]])
        assert all(subjects[i] != subjects[test[0]] for i in train)
        if subjects[test[0]] == "c":
            raise InputError("no face in clip c")
        return [labels[i] for i in test]  # a perfect model

    res = evaluate_loso(labels, subjects, fit_predict)
    assert calls == ["a", "b", "c"]
    assert res.partial and "c" in res.skipped
    assert res.scores.n == 4 and res.scores.uf1 == 1.0
    assert res.as_dict()["partial"] is True


def test_chance_reference_is_near_chance():
    labels = ["neg"] * 40 + ["pos"] * 20 + ["sur"] * 20
    subjects = [f"s{k % 8}" for k in range(80)]
    ref = chance_reference(labels, subjects, ["neg", "pos", "sur"])
    assert ref["majority"]["uar"] == pytest.approx(1 / 3)
    assert 0.15 < ref["uniform_random"]["uar"] < 0.55


def _event(onset: float, offset: float, kind: EventKind = EventKind.MICRO, **kw) -> ExpressionEvent:
    return ExpressionEvent(kind, 0, onset, (onset + offset) / 2, offset, emitted_at=offset + 0.1, **kw)


def test_injected_events_scored_with_delay_side_label_and_what_false_ones_overlap():
    truth = {
        "events": [
            {
                "onset": 1.0,
                "offset": 1.4,
                "side": "left",
                "label": "positive",
                "amplitude": 2.0,
                "pattern": "AU12_L",
            },
            {
                "onset": 3.0,
                "offset": 3.3,
                "side": "both",
                "label": "negative",
                "amplitude": 2.0,
                "pattern": "AU4",
            },
            {
                "onset": 5.0,
                "offset": 5.2,
                "side": "both",
                "label": "surprise",
                "amplitude": 4.0,
                "pattern": "AU1+2",
            },
        ],
        "negatives": [
            {"kind": "jitter", "onset": 7.0, "offset": 7.3},
            {"kind": "blink", "onset": 9, "offset": 9.2},
        ],
    }
    events = [
        _event(1.05, 1.4, side="left", label="negative"),  # found, wrong label
        _event(3.2, 3.6),  # IoU 0.1/0.6: a false one, and the event is missed
        _event(5.0, 5.2, side="both", label="surprise"),
        _event(7.1, 7.2),  # on the head jitter
        _event(8.0, 12.0, kind=EventKind.MACRO),  # macro events are not scored
    ]
    s = score_injected(truth, events)
    assert (s["tp"], s["fp"], s["fn"], s["side_ok"], s["label_ok"]) == (2, 2, 1, 2, 1)
    assert s["delays"] == pytest.approx([0.1, 0.1])
    assert [r["found"] for r in s["events"]] == [True, False, True]
    assert s["events"][0]["iou"] == pytest.approx(0.35 / 0.4)
    assert [f["overlaps"] for f in s["false"]] == ["none", "jitter"]
    total = summarise_injected({"a": s, "b": score_injected(truth, [])}, minutes=2.0)
    assert (total["tp"], total["fp"], total["fn"]) == (2, 2, 4)
    two = total["per_amplitude"]["2"]
    assert (two["events"], two["found"], two["recall"], two["side_ok"], two["label_ok"]) == (4, 1, 0.25, 1, 0)
    assert two["delay_median"] == pytest.approx(0.1) and two["delay_max"] == pytest.approx(0.1)
    assert total["per_amplitude"]["4"]["recall"] == 0.5
    assert total["per_pattern"] == {
        p: {"events": 2, "found": k} for p, k in (("AU1+2", 1), ("AU12_L", 1), ("AU4", 0))
    }
    assert total["false_micro_per_minute"] == 1.0 and total["false_micro_overlapping"] == {
        "none": 1,
        "jitter": 1,
    }
    assert total["f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 4))


def test_megc_long_video_scores_each_kind_apart_then_pools_them():
    truth = {"micro": {"v": [(10, 20)]}, "macro": {"v": [(100, 160)], "w": [(5, 50)]}}
    # A micro interval over the true macro-expression is a false micro, not a hit.
    spotted = {"micro": {"v": [(11, 20), (100, 160)]}, "macro": {"v": [(90, 150)], "w": []}}
    s = spotting_by_kind(truth, spotted)
    assert (s["micro"].tp, s["micro"].fp, s["micro"].fn) == (1, 1, 0)
    assert (s["macro"].tp, s["macro"].fp, s["macro"].fn) == (1, 0, 1)
    assert (s["overall"].tp, s["overall"].fp, s["overall"].fn) == (2, 1, 1)
    assert s["overall"].f1 == pytest.approx(2 / 3) and not s["overall"].partial


def test_events_placed_on_the_dataset_frame_numbers():
    """Frame i of a folder read at fps is at i / fps; its number is the sheet's (here from 46)."""
    numbers = list(range(46, 46 + 30))
    events = [_event(0.1, 0.4), _event(0.2, 5.0, EventKind.MACRO)]
    spans = events_to_frames(events, numbers, 30.0)
    assert spans == {"micro": [frames_to_interval(49, 58)], "macro": [frames_to_interval(52, 75)]}
    with pytest.raises(InputError, match="no frames"):
        events_to_frames(events, [], 30.0)
