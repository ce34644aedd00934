"""Property-based fuzzing of the Blender add-on's pure-Python decoders (no bpy needed).

The add-on runs inside Blender without avatar-bridge, so its documented errors are its own:
``MalformedPacket`` (OSC framing), ``PacketError`` (stream decoding, with a ``reason`` the panel
counts) and ``CurveFileError`` (curve CSV and AU-mapping files). Seeds are real datagrams made by
avatar-bridge's own encoders and the add-on's shipped mapping.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pythonosc.osc_message_builder import OscMessageBuilder
from test_fuzz_parsers import FUZZ, OPENFACE_SEED, inputs, mutated, outcome, put

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.records import RigWeights
from avatar_bridge.sinks.native import au_messages, blend_messages, end_message, frame_message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # blender_addon is not part of the wheel; import it from the tree
from blender_addon import curves, oscwire, protocol  # noqa: E402

sys.path.remove(str(ROOT))

BUNDLE_HEAD = b"#bundle\x00" + b"\x00" * 7 + b"\x01"


def bundle(*messages: bytes) -> bytes:
    return BUNDLE_HEAD + b"".join(struct.pack(">i", len(m)) + m for m in messages)


def osc(address: str, *args: tuple[str, object]) -> bytes:
    b = OscMessageBuilder(address)
    for tag, value in args:
        b.add_arg(value, tag)
    return b.build().dgram


_WEIGHTS = RigWeights(7, 0.25, 0, ARKIT_NAMES[:6], np.linspace(0, 1, 6, dtype=np.float32))
_BLEND = blend_messages(_WEIGHTS)[:4]
NATIVE_SEED = bundle(frame_message(7, 0.25, 0, 0, 1), osc("/ab/face", ("i", 1)), *_BLEND,
                     osc("/ab/head", *[("f", 0.1)] * 6), end_message(7))  # fmt: skip
VMC_SEED = bundle(osc("/VMC/Ext/Blend/Val", ("s", "Joy"), ("f", 0.5)), osc("/VMC/Ext/T", ("f", 1.5)),
                  osc("/VMC/Ext/Bone/Pos", ("s", "Head"), *[("f", 0.0)] * 6, ("f", 1.0)),
                  osc("/VMC/Ext/Blend/Apply"))  # fmt: skip
AU_MAPPING_SEED = (ROOT / "blender_addon" / "au_mapping.toml").read_bytes()
datagrams = st.sampled_from((NATIVE_SEED, VMC_SEED)).flatmap(lambda s: mutated(s) | st.just(s)) | st.binary(
    max_size=200
)


def test_seeds_are_valid():
    """The properties start from real, well-formed input (else they would fuzz nothing useful)."""
    part = protocol.NativeDecoder().decode(NATIVE_SEED)
    assert part.end and part.frame.index == 7 and part.frame.blend
    assert protocol.VMCDecoder().decode(VMC_SEED, 0.0)
    assert au_messages  # the native encoder module is the one the sink really uses


@FUZZ
@given(data=datagrams)
def test_fuzz_osc_framing(data):
    messages = outcome(oscwire.parse_packet, data, allowed=(oscwire.MalformedPacket,))
    if messages is not None:
        assert all(isinstance(m, oscwire.Message) for m in messages)


@FUZZ
@given(data=datagrams)
def test_fuzz_native_decoder_and_assembler(data):
    part = outcome(protocol.NativeDecoder().decode, data, allowed=(protocol.PacketError,))
    if part is not None:
        assembler = protocol.FrameAssembler()
        frame = assembler.add(part)
        assert frame is None or frame.index == part.frame.index


@FUZZ
@given(packets=st.lists(datagrams, min_size=1, max_size=4))
def test_fuzz_vmc_decoder(packets):
    decoder = protocol.VMCDecoder()  # stateful: a sequence of datagrams
    for data in packets:
        frames = outcome(decoder.decode, data, 0.0, allowed=(protocol.PacketError,))
        assert frames is None or isinstance(frames, list)


@FUZZ
@given(data=inputs(OPENFACE_SEED), face=st.none() | st.integers(-1, 3))
def test_fuzz_curve_csv(work, data, face):
    table = outcome(curves.read_curves, put(work, "curves.csv", data), face, allowed=(curves.CurveFileError,))
    if table is not None:
        assert all(len(v) == len(table.timestamps) for v in table.channels.values())


@FUZZ
@given(data=inputs(AU_MAPPING_SEED))
def test_fuzz_au_mapping(work, data):
    outcome(curves.load_au_mapping, put(work, "map.toml", data), allowed=(curves.CurveFileError,))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-addon")
