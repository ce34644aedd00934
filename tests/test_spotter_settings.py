"""Spotter settings from the command line (``--spotter NAME=VALUE`` on export and live)."""

from __future__ import annotations

import json

import pytest

from avatar_bridge.cli import main
from avatar_bridge.errors import InputError
from avatar_bridge.micro import SpotterOptions
from avatar_bridge.micro.spotting import with_settings


def test_settings_are_typed_by_their_field():
    o = with_settings(
        SpotterOptions(),
        ["z_on=7", "stabilise=yes", "zones=false", "pool=3", "scales=0.1, 0.25", "flow.refresh=0.4",
         "dense_preset=fast", "classifier_model=none"],
    )  # fmt: skip
    assert (o.z_on, o.stabilise, o.zones, o.pool, o.scales) == (7.0, True, False, 3, (0.1, 0.25))
    assert o.flow.refresh == 0.4 and o.flow.max_age == SpotterOptions().flow.max_age
    assert o.dense_preset == "fast" and o.classifier_model is None
    assert with_settings(SpotterOptions(), []) == SpotterOptions()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("zon=7", "did you mean z_on?"),
        ("flow.blurr=1", "did you mean flow.blur?"),
        ("z_on", "expected NAME=VALUE, for example z_on=7"),
        ("z_on=seven", "z_on: 'seven' is not a float"),
        ("stabilise=maybe", "stabilise: 'maybe' is not a bool (expected true or false)"),
        ("pool=1.5", "pool: '1.5' is not a int"),
        ("z_off=9", "need 0 < z_off < z_on"),  # the options' own checks still apply
    ],
)
def test_bad_settings_say_what_is_wrong(setting, message):
    with pytest.raises(InputError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        with_settings(SpotterOptions(), [setting])


def test_export_applies_the_settings(samples, tmp_path):
    """With the defaults the smile in single_face.mp4 is one held macro event, and the context rule
    keeps the lower face from being calm while it lasts; with the rule off (busy_window 0) the whole
    face counts as calm and brief bumps inside the smile come out as events of their own. The
    export's settings file records what was used."""
    video = str(samples / "single_face.mp4")
    runs = {}
    opened = ["--spotter", "busy_window=0", "--spotter", "flow.refresh=0.4"]
    for name, extra in (("default", []), ("open", opened)):
        out = tmp_path / name
        assert main(["export", video, "-o", str(out), "-q", "--no-plot", *extra]) == 0
        doc = json.loads((out / "single_face.events.json").read_text())
        settings = json.loads((out / "single_face.json").read_text())["settings"]["micro"]
        calm = doc["calm_time"]["0"]  # seconds watched, and calm per zone
        assert calm["seconds"] > 1.0 and set(calm) == {"seconds", "upper", "lower"}
        runs[name] = (doc["events"], settings, calm)
    (default, default_settings, default_calm), (opened, open_settings, open_calm) = runs.values()
    assert [e["kind"] for e in default] == ["macro"] and default_calm["lower"] < 0.5 * default_calm["seconds"]
    assert len(opened) > len(default) and open_calm["lower"] == open_calm["upper"] == open_calm["seconds"]
    assert default_settings["busy_window"] == SpotterOptions().busy_window
    assert open_settings["busy_window"] == 0.0 and open_settings["flow"]["refresh"] == 0.4


@pytest.mark.parametrize("command", ["export", "live"])
def test_a_bad_setting_is_one_line_and_nothing_runs(command, samples, tmp_path, capsys):
    out = tmp_path / "out"
    video = str(samples / "single_face.mp4")
    if command == "export":
        cmd = ["export", video, "-o", str(out), "-q", "--spotter", "zon=7"]
    else:
        cmd = ["live", "--source", video, "--fast", "--sink", "osc://127.0.0.1:9", "-q", "--spotter", "zon=7"]
    assert main(cmd) == 1
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "did you mean z_on?" in lines[0] and "Traceback" not in err
    assert not out.exists()


def test_the_calm_line_explains_a_face_that_was_never_calm():
    """The demo video's figures: calm well under a tenth of the time in both halves, so a second line
    says why no micro-expression was reported and how to look everywhere; a calm face gets no such
    line, and a face never watched gets no line at all."""
    from avatar_bridge.cli.spotter import calm_lines

    line = "face 0 calm enough to look for micro-expressions: "
    busy = calm_lines({0: {"seconds": 19.144, "upper": 0.042, "lower": 0.083}})
    assert busy[0] == line + "upper face 0 %, lower face 0 % of 19.1 s"
    assert len(busy) == 2 and "--spotter busy_window=0" in busy[1]
    calm = calm_lines({0: {"seconds": 7.0, "upper": 6.1, "lower": 7.0}, 1: {"seconds": 0.0, "face": 0.0}})
    assert calm == [line + "upper face 87 %, lower face 100 % of 7.0 s"]
