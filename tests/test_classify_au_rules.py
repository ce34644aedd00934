"""The AU-rule classifier against the objective-class table (reference section 7) and the 3-class mapping."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from avatar_bridge.errors import ConfigError
from avatar_bridge.micro.classify.au_rules import (
    AURuleClassifier,
    AURulesOptions,
    au_number,
    load_rules,
    parse_au_codes,
)
from avatar_bridge.records import EventKind, ExpressionEvent
from avatar_bridge.resources import data_dir

# The table of reference section 7, written out independently of the TOML file.
TABLE = {
    "I": ["6", "12", "6+12", "6+7+12", "7+12"],
    "II": ["1+2", "5", "25", "1+2+25", "25+26", "5+24"],
    "III": ["23", "4", "4+7", "4+5", "4+5+7", "17+24", "4+6+7", "4+38"],
    "IV": ["10", "9", "4+9", "4+40", "4+5+40", "4+7+9", "4+9+17", "4+7+10", "4+5+7+9", "7+10"],
    "V": ["1", "15", "1+4", "6+15", "15+17"],
    "VI": ["1+2+4", "20"],
}
LABEL = {
    "I": "positive",
    "II": "surprise",
    "III": "negative",
    "IV": "negative",
    "V": "negative",
    "VI": "negative",
}


@pytest.fixture(scope="module")
def clf():
    return AURuleClassifier()


@pytest.mark.parametrize(("cls", "codes"), [(c, code) for c, codes in TABLE.items() for code in codes])
def test_every_listed_combination_gives_its_class(clf, cls, codes):
    r = clf.classify_codes(codes)
    assert r.objective_class == cls
    assert r.label == LABEL[cls]


@pytest.mark.parametrize(
    ("codes", "cls", "emotion"),
    [
        ("6+12+25", "I", "happiness"),  # the most specific match wins over AU25 alone
        ("R12", "I", "happiness"),  # a one-sided code still counts
        ("AU1+AU2+AU4", "VI", "fear"),
        ("4+L10", "IV", "disgust"),
        ("L14", "VII", "contempt"),
        ("43", "VII", "others"),
        ("", "VII", "others"),
    ],
)
def test_specific_cases(clf, codes, cls, emotion):
    r = clf.classify_codes(codes)
    assert (r.objective_class, r.emotion) == (cls, emotion)


def test_contempt_is_negative_and_others_unlabelled(clf):
    assert clf.classify_codes("14").label == "negative"
    assert clf.classify_codes("43").label == ""


def test_intensities_weak_coactivation_ignored(clf):
    # AU12 strong, AU15 faint: the faint one is below 35 % of the peak
    r = clf.classify({"AU12": 2.0, "AU15": 0.4})
    assert r.objective_class == "I" and r.active == (12,)
    # both strong and the same specificity: the stronger one decides
    assert clf.classify({"AU12": 1.0, "AU15": 1.6}).objective_class == "V"
    # nothing above the floor
    assert clf.classify({"AU12": 0.1}).objective_class == "VII"
    assert clf.classify({}).objective_class == "VII"


def test_min_intensity_is_a_parameter():
    loose = AURuleClassifier(AURulesOptions(min_intensity=0.05))
    assert loose.classify({"AU12": 0.1}).objective_class == "I"


def test_classify_event_fills_label_and_emotion(clf):
    ev = ExpressionEvent(EventKind.MICRO, 0, 1.0, 1.1, 1.3, 1.5, aus={"AU04": 1.2, "AU07": 0.9})
    out = clf.classify_event(ev)
    assert (out.label, out.emotion) == ("negative", "anger")
    assert out.onset == ev.onset and out.aus == ev.aus


def test_rules_file_matches_reference_table():
    data = tomllib.loads((data_dir("blendshapes") / "micro_au_rules.toml").read_text())
    for cls, codes in TABLE.items():
        listed = {frozenset(c) for c in data["classes"][cls]["aus"]}
        assert listed == {frozenset(int(x) for x in code.split("+")) for code in codes}


def test_parse_au_codes():
    assert parse_au_codes("4+L10") == ({4: "", 10: "L"}, [])
    assert parse_au_codes("R12+R15") == ({12: "R", 15: "R"}, [])
    assert parse_au_codes("AU1+AU2 ,25C") == ({1: "", 2: "", 25: ""}, [])
    assert parse_au_codes(12.0) == ({12: ""}, [])
    assert parse_au_codes(float("nan")) == ({}, [])
    assert parse_au_codes("12+?") == ({12: ""}, ["?"])
    assert au_number("AU12_r") == 12 and au_number(7) == 7
    with pytest.raises(ConfigError):
        au_number("smile")


def test_bad_rules_files(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text("[classes.I]\nemotion='x'\nlabel='happy'\naus=[[12]]\n")
    with pytest.raises(ConfigError, match="label 'happy'"):
        load_rules(p)
    p.write_text("[classes.I]\nemotion='x'\nlabel='positive'\naus=[[12]]\n")
    with pytest.raises(ConfigError, match="empty aus list"):
        load_rules(p)
    p.write_text("[classes.I\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rules(p)
    with pytest.raises(ConfigError, match="not found"):
        load_rules(tmp_path / "missing.toml")


def test_random_events_always_get_a_known_class(clf):
    rng = np.random.default_rng(0)
    names = ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17"]
    for _ in range(200):
        values = rng.uniform(0, 3, len(names)) * (rng.random(len(names)) < 0.3)
        aus = {n: float(v) for n, v in zip(names, values, strict=True)}
        r = clf.classify(aus)
        assert r.objective_class in {"I", "II", "III", "IV", "V", "VI", "VII"}
        assert set(r.matched) <= set(r.active)
