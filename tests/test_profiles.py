"""Profiles: the shipped ones load, validation names every problem, matching reports how."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.cli import main
from avatar_bridge.errors import ConfigError
from avatar_bridge.retarget import (
    SOURCE_NAMES,
    available_profiles,
    canonical_key,
    load_profile,
    match_names,
    parse_profile,
    read_rig_names,
    respell,
    source_vector,
)

SHIPPED = ("arkit52", "ict_facekit", "vrm0", "vrm1", "vrcft_unified", "facs")


def test_every_required_profile_ships_and_loads():
    assert set(SHIPPED) <= set(available_profiles())
    for name in SHIPPED:
        p = load_profile(name)
        assert p.name == name and p.targets
        c = p.compile()
        assert c.weights.shape == (len(p.targets), len(SOURCE_NAMES))
        assert np.all(c.neutral == 0.0)  # every shipped rig rests at 0


def test_vrm0_has_exactly_the_presets():
    assert load_profile("vrm0").target_names == (
        "Joy", "Angry", "Sorrow", "Fun", "A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R",
    )  # fmt: skip


def test_arkit52_identity_and_spelling_variants():
    p = load_profile("arkit52")
    assert p.target_names == ARKIT_NAMES
    x = np.random.default_rng(0).uniform(0, 1, len(SOURCE_NAMES))
    np.testing.assert_allclose(p.compile().apply(x), x[: len(ARKIT_NAMES)])
    assert load_profile("arkit52", spelling="unity").target_names[0] == "EyeBlinkLeft"
    assert load_profile("arkit52", spelling="suffix").target_names[0] == "eyeBlink_L"
    with pytest.raises(ConfigError, match="does not offer spelling"):
        load_profile("vrm0", spelling="unity")


def test_untracked_source_gives_neutral_not_nan():
    p = load_profile("arkit52").compile()
    s = source_vector(np.full(52, 0.5), None)  # tongueOut may be NaN, AUs absent (NaN)
    s[ARKIT_NAMES.index("tongueOut")] = np.nan
    v = p.apply(s)
    assert np.all(np.isfinite(v))
    assert v[ARKIT_NAMES.index("tongueOut")] == 0.0


def test_mirror_swaps_sides():
    x = source_vector(np.zeros(52), np.zeros(17))
    x[ARKIT_NAMES.index("eyeBlinkLeft")] = 1.0
    plain = load_profile("vrm0").compile().apply(x)
    mirrored = load_profile("vrm0", mirror=True).compile().apply(x)
    names = load_profile("vrm0").target_names
    assert plain[names.index("Blink_L")] == 1.0 and plain[names.index("Blink_R")] == 0.0
    assert mirrored[names.index("Blink_R")] == 1.0 and mirrored[names.index("Blink_L")] == 0.0


def test_curves_gain_offset_clamp(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        '[[target]]\nname = "p"\nsource = "jawOpen"\ncurve = "power"\nexponent = 2.0\n'
        '[[target]]\nname = "s"\nsource = "jawOpen"\ncurve = "smoothstep"\n'
        '[[target]]\nname = "g"\nsource = "jawOpen"\ngain = 3.0\noffset = -0.5\nclamp = [-1.0, 1.0]\n'
        '[[target]]\nname = "au"\nsource = "AU12"\n'
    )
    c = parse_profile(f).compile()
    s = source_vector(np.zeros(52), np.zeros(17))
    s[ARKIT_NAMES.index("jawOpen")] = 0.5
    s[SOURCE_NAMES.index("AU12")] = 2.5 / 5  # source_vector scales AUs to 0-1
    np.testing.assert_allclose(c.apply(s), [0.25, 0.5, 1.0, 0.5])
    s[ARKIT_NAMES.index("jawOpen")] = 0.1
    np.testing.assert_allclose(c.apply(s)[2], -0.2)


BAD = [
    (
        '[[target]]\nname = "a"\nsource = "jawOpenn"\n',
        ["target 'a'.sources.jawOpenn: unknown source", "did you mean jawOpen"],
    ),
    (
        '[[target]]\nname = "a"\nsource = "jawOpen"\n[[target]]\nname = "a"\nsource = "jawLeft"\n',
        ["target 'a': duplicate target"],
    ),
    (
        '[[target]]\nname = "a"\nsources = { jawOpen = "x" }\n',
        ["target 'a'.sources.jawOpen: must be a finite number"],
    ),
    (
        '[[target]]\nname = "a"\nsource = "jawOpen"\ngain = nan\n',
        ["target 'a'.gain: must be a finite number"],
    ),
    ('[[target]]\nname = "a"\nsource = "jawOpen"\nclamp = [1.0, 0.0]\n', ["clamp: low must be below high"]),
    ('[[target]]\nname = "a"\nsource = "jawOpen"\ncurve = "cubic"\n', ["target 'a'.curve: must be one of"]),
    ('[[target]]\nname = "a"\nsource = "jawOpen"\ncolour = 1\n', ["target 'a'.colour: unknown key"]),
    ('[[target]]\nname = "a"\nsource = "jawOpen"\nsources = { jawLeft = 1.0 }\n', ["exactly one of"]),
    ('[profile]\nmirror = "yes"\n[[target]]\nname = "a"\nsource = "jawOpen"\n', ["profile.mirror"]),
    ('[profile]\nname = "x"\n', ["at least one [[target]]"]),
    (
        '[[target]]\nname = "a"\nsource = "nope"\n[[target]]\nname = "b"\nsources = { jawOpen = inf }\n',
        ["sources.nope: unknown source", "target 'b'.sources.jawOpen: must be a finite number"],
    ),  # every problem
    ("[[target]\nname = 'a'\n", ["not valid TOML"]),
]


@pytest.mark.parametrize(("text", "messages"), BAD)
def test_validation_names_every_problem_with_file_and_key(tmp_path, text, messages):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse_profile(f)
    msg = str(info.value)
    assert str(f) in msg and "\n" not in msg
    for m in messages:
        assert m in msg


def test_unknown_profile_lists_shipped():
    with pytest.raises(ConfigError, match="unknown profile 'vrm9'.*vrm0"):
        load_profile("vrm9")


def test_naming_helpers():
    assert respell("eyeBlinkLeft", "suffix") == "eyeBlink_L"
    assert respell("jawOpen", "unity") == "JawOpen"
    keys = {canonical_key(n) for n in ("eyeBlink_L", "EyeBlinkLeft", "eye_blink.left", "eyeBlinkL")}
    assert len(keys) == 1
    assert canonical_key("mouthFunnel") != canonical_key("mouthFunne")  # a trailing l is not a side


def test_match_ict_facekit_names(shared_data):
    names = [str(n) for n in np.load(shared_data / "ict_facekit" / "ict_expression_deltas.npz")["names"]]
    assert len(names) == 57
    result = match_names(names, "ict")
    how = {e.name: e.how for e in result.entries}
    assert how["eyeBlink_L"] == "spelling variant"
    assert how["jawOpen"] == "exact"
    assert how["browInnerUp_L"] == "profile ict_facekit"
    assert result.unmatched == ["PupilDilate_L", "PupilDilate_R"]
    assert len(result.profile.targets) == 55
    # the matched profile drives the same shapes as the shipped one
    x = np.random.default_rng(1).uniform(0, 1, len(SOURCE_NAMES))
    shipped = load_profile("ict_facekit")
    matched = dict(zip(result.profile.target_names, result.profile.compile().apply(x), strict=True))
    for n, v in zip(shipped.target_names, shipped.compile().apply(x), strict=True):
        assert matched[n] == pytest.approx(v)


def _glb(path, target_names):
    doc = json.dumps({"asset": {"version": "2.0"}, "meshes": [{"extras": {"targetNames": target_names},
                      "primitives": []}]}).encode()  # fmt: skip
    doc += b" " * (-len(doc) % 4)
    path.write_bytes(
        b"glTF" + struct.pack("<II", 2, 12 + 8 + len(doc)) + struct.pack("<I4s", len(doc), b"JSON") + doc
    )


def test_read_rig_names_text_glb_and_list(tmp_path):
    t = tmp_path / "names.txt"
    t.write_text("# my rig\nJoy\n  EyeBlinkLeft  \n\n")
    assert read_rig_names(t) == ["Joy", "EyeBlinkLeft"]
    g = tmp_path / "rig.glb"
    _glb(g, ["jawOpen", "A"])
    assert read_rig_names(g) == ["jawOpen", "A"]
    assert read_rig_names(["x", "y"]) == ["x", "y"]


def test_cli_profiles_validate_match_show(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[target]]\nname = "a"\nsource = "jawOpenn"\n')
    assert main(["profiles", "validate", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "jawOpenn" in err and len(err.splitlines()) == 1
    names = tmp_path / "rig.txt"
    names.write_text("eyeBlink_L\nJoy\nmystery\n")
    out = tmp_path / "rig.toml"
    assert main(["profiles", "match", str(names), "--out", str(out), "--name", "rig"]) == 0
    report = capsys.readouterr().err
    assert "spelling variant" in report and "profile vrm0" in report and "unmatched" in report
    assert load_profile(out).target_names == ("eyeBlink_L", "Joy")
    assert main(["profiles", "validate", str(out)]) == 0
    assert main(["profiles", "match", "eyeBlinkLeft", "nothing", "--strict"]) == 1
    assert main(["profiles", "show", "vrm0"]) == 0
    assert "Blink_L" in capsys.readouterr().out
    assert main(["profiles", "show", "nope"]) == 1


@pytest.mark.parametrize("mirror", [False, True])
def test_stacked_profiles_equal_each_profile_alone(mirror, wolfgang_recording):
    """All shipped profiles stacked into one matrix give, per profile, what that profile gives alone
    (mirroring folded into the columns, NaN sources contributing nothing), on real sources."""
    from avatar_bridge.retarget.stacked import StackedProfiles

    compiled = [load_profile(n, mirror=mirror).compile() for n in available_profiles()]
    stacked = StackedProfiles.build(compiled)
    rng = np.random.default_rng(0)
    for r in wolfgang_recording[::40]:
        s = source_vector(r.faces[0].blendshapes, rng.uniform(0, 5, 17))
        s[rng.integers(0, len(s), 5)] = np.nan
        together = stacked.apply(s)
        for c, sl, names in zip(compiled, stacked.slices, stacked.names, strict=True):
            assert names == c.names
            np.testing.assert_allclose(together[sl], c.apply(s), atol=1e-12)
    np.testing.assert_allclose(stacked.neutral, np.concatenate([c.neutral for c in compiled]))
