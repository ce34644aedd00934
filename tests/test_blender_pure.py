"""Fast tests of the Blender add-on's pure modules (no bpy): OSC framing, stream decoding, name
matching, curve files, time mapping, and the UDP receiver on 127.0.0.1."""

from __future__ import annotations

import math
import random
import socket
import sys
import time
from pathlib import Path

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # blender_addon is not part of the wheel; import it from the tree

from avatar_bridge.channels import ARKIT_NAMES  # noqa: E402
from blender_addon import curves, names, oscwire, protocol, session, timemap  # noqa: E402
from blender_addon.receiver import ReceiverError, UDPReceiver  # noqa: E402


def msg(address: str, *args: tuple[str, object]) -> bytes:
    b = OscMessageBuilder(address)
    for tag, value in args:
        b.add_arg(value, tag)
    return b.build().dgram


def bundle(*messages: bytes) -> bytes:
    """A bundle whose elements are raw message datagrams (so tests can also put bad ones in)."""
    body = b"".join(len(m).to_bytes(4, "big") + m for m in messages)
    return b"#bundle\x00" + b"\x00" * 7 + b"\x01" + body


def native(index=3, t=0.1, face=0, part=0, parts=1, blend=(("jawOpen", 0.5),), end=True, extra=()) -> bytes:
    ms = [
        msg("/ab/frame", ("i", index), ("d", t), ("i", face), ("i", part), ("i", parts)),
        msg("/ab/face", ("i", 1)),
    ]
    ms += [msg("/ab/blend", ("s", n), ("f", v)) for n, v in blend]
    ms += list(extra)
    if end:
        ms.append(msg("/ab/end", ("i", index)))
    return bundle(*ms)


# -- OSC framing -----------------------------------------------------------------------------------
def test_parse_bundle_built_by_python_osc():
    b = OscBundleBuilder(IMMEDIATELY)
    b.add_content(OscMessageBuilder("/a").build())
    m = OscMessageBuilder("/b")
    for tag, v in (("i", 7), ("f", 0.25), ("d", 1.5), ("s", "héllo"), ("h", 2**40)):
        m.add_arg(v, tag)
    b.add_content(m.build())
    out = oscwire.parse_packet(b.build().dgram)
    assert [x.address for x in out] == ["/a", "/b"]
    assert out[1].args == (7, 0.25, 1.5, "héllo", 2**40)


def test_every_truncation_of_a_valid_bundle_is_rejected_cleanly():
    data = native(extra=[msg("/ab/head", *[("f", 0.1)] * 6)])
    for cut in range(len(data)):
        try:
            oscwire.parse_packet(data[:cut])
        except oscwire.MalformedPacket:
            continue
        # a cut exactly between elements leaves a shorter but well-formed bundle
        assert cut >= 16 and cut % 4 == 0


@pytest.mark.parametrize(
    "data",
    [
        b"#bundle\x00\x00",  # shorter than the header
        b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x01\x00" + b"/a\x00\x00",  # element size past the end
        b"#bundle\x00" + b"\x00" * 8 + b"\xff\xff\xff\xf0",  # negative size
        b"/a\x00\x00,x\x00\x00",  # unsupported type tag
        b"/a\x00\x00,f\x00\x00\x00\x00",  # float cut short (python-osc alone would pad it)
        b"/a\x00\x00,s\x00\x00abc",  # unterminated string
        b"/a\x00",  # not 4-byte aligned
        b"/a\x00\x00,s\x00\x00\xff\xfe\x00\x00",  # not UTF-8
        b"no slash\x00\x00\x00\x00",
    ],
)
def test_malformed_datagrams(data):
    with pytest.raises(oscwire.MalformedPacket):
        oscwire.parse_packet(data)


def test_nesting_depth_is_bounded():
    data = msg("/a")
    for _ in range(10):
        data = bundle(data)
    with pytest.raises(oscwire.MalformedPacket, match="nested"):
        oscwire.parse_packet(data)


# -- native decoding -------------------------------------------------------------------------------
def test_native_single_part_frame():
    head = msg("/ab/head", *[("f", v) for v in (0.1, -0.2, 0.05, 1.0, 2.0, -40.0)])
    event = msg("/ab/event", ("s", "micro"), ("s", "positive"), ("d", 1.0), ("d", 1.1), ("d", 1.3),
                ("f", 0.8),
                ("s", "AU12:1.20"))  # fmt: skip
    au = msg("/ab/au", ("s", "AU12"), ("f", 2.5))
    part = protocol.NativeDecoder().decode(native(index=9, t=0.3, extra=[head, event, au]))
    f = part.frame
    assert (f.index, f.timestamp, f.face_id, part.end) == (9, 0.3, 0, True)
    assert f.blend == {"jawOpen": 0.5} and f.aus == {"AU12": 2.5}
    assert f.head.euler == pytest.approx((0.1, -0.2, 0.05)) and f.head.translation[2] == pytest.approx(-40.0)
    assert f.events[0].label == "positive" and f.events[0].aus == "AU12:1.20"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x" * 1401, protocol.OVERSIZED),
        (b"\x00\x01garbage", protocol.MALFORMED),
        (msg("/ab/frame", ("i", 1)), protocol.UNKNOWN),  # a bare message, not a bundle
        (bundle(msg("/VMC/Ext/OK", ("i", 1))), protocol.UNKNOWN),
        (bundle(msg("/ab/frame", ("s", "x"), ("d", 0.0), ("i", 0), ("i", 0), ("i", 1))), protocol.MALFORMED),
        (native(parts=0), protocol.MALFORMED),
        (native(part=2, parts=2), protocol.MALFORMED),
        (native(extra=[msg("/ab/blend", ("i", 3), ("f", 0.1))]), protocol.MALFORMED),
        (native(extra=[msg("/ab/face", ("i", 7))]), protocol.MALFORMED),
        (bundle(native(end=False)[16:][4:], msg("/ab/end", ("i", 4))), protocol.MALFORMED),  # wrong end index
        (native(part=0, parts=2), protocol.MALFORMED),  # /ab/end in a part that is not the last
    ],
)
def test_native_rejects(data, reason):
    with pytest.raises(protocol.PacketError) as e:
        protocol.NativeDecoder().decode(data)
    assert e.value.reason == reason


def test_native_drops_non_finite_values_and_counts_unknown_messages():
    part = protocol.NativeDecoder().decode(
        native(blend=(("a", math.nan), ("b", 0.2)), extra=[msg("/ab/future", ("i", 1))])
    )
    assert (
        part.frame.blend == {"b": pytest.approx(0.2)} and part.bad_values == 1 and part.unknown_messages == 1
    )


def test_native_label_without_its_event_is_a_bad_value():
    label = msg("/ab/label", ("d", 1.25), ("s", "positive:0.90"))
    part = protocol.NativeDecoder().decode(native(extra=[label]))
    assert part.frame.events == [] and part.bad_values == 1 and part.unknown_messages == 0


def test_assembler_joins_parts_and_evicts_incomplete_frames():
    dec, asm = protocol.NativeDecoder(), protocol.FrameAssembler(max_pending=2)
    p0 = dec.decode(native(index=5, part=0, parts=2, blend=(("a", 0.1),), end=False))
    p1 = dec.decode(native(index=5, part=1, parts=2, blend=(("b", 0.2),)))
    assert asm.add(p1) is None
    assert asm.add(p1) is None and asm.duplicates == 1
    done = asm.add(p0)
    assert done is not None and set(done.blend) == {"a", "b"}
    for i in (6, 7, 8):  # three unfinished frames with room for two: the oldest is dropped
        assert asm.add(dec.decode(native(index=i, part=0, parts=2, end=False))) is None
    assert asm.incomplete == 1


# -- VMC -------------------------------------------------------------------------------------------
def test_vmc_frames_complete_on_apply():
    dec = protocol.VMCDecoder()
    q = (0.0, 0.0, 0.0, 1.0)
    assert dec.decode(msg("/VMC/Ext/Blend/Val", ("s", "Blink_L"), ("f", 0.7)), 1.0) == []
    assert (
        dec.decode(msg("/VMC/Ext/Bone/Pos", ("s", "Head"), *[("f", v) for v in (0, 1.5, 0, *q)]), 1.0) == []
    )
    frames = dec.decode(bundle(msg("/VMC/Ext/T", ("f", 12.5)), msg("/VMC/Ext/Root/Pos", ("s", "root")),
                               msg("/VMC/Ext/Blend/Apply")), 2.0)  # fmt: skip
    assert len(frames) == 1 and frames[0].blend == {"Blink_L": pytest.approx(0.7)}
    assert frames[0].timestamp == 12.5 and frames[0].head.euler == pytest.approx((0, 0, 0))
    assert dec.ignored_messages == 1
    with pytest.raises(protocol.PacketError):
        dec.decode(native(), 3.0)


def test_vmc_head_rotation_direction():
    """A Unity head yaw of +30 degrees about +y (turning to the character's right) is a yaw of -30
    degrees about the upright bone's y (Blender turns it to the right too: mirrored handedness)."""
    a = math.radians(30)
    q = (0.0, math.sin(a / 2), 0.0, math.cos(a / 2))
    pitch, yaw, roll = protocol.quaternion_to_euler(*protocol.unity_to_bone_quaternion(*q))
    assert (pitch, yaw, roll) == pytest.approx((0.0, -a, 0.0), abs=1e-6)


# -- names -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spelling", ["eyeBlinkLeft", "EyeBlinkLeft", "eyeBlink_L", "eye_blink_left", "EYEBLINK.L"]
)
def test_spellings_meet(spelling):
    assert names.NameMatcher(["eyeBlink_L", "eyeBlink_R"]).resolve(spelling) == ("eyeBlink_L",)


def test_exact_then_loose_then_table_and_never_a_guess():
    m = names.NameMatcher(
        ["jawOpen", "JawOpen", "browInnerUp_L", "browInnerUp_R", "mouthSmile_L"],
        [("browInnerUp", "browInnerUp_L"), ("browInnerUp", "browInnerUp_R"), ("x", "not a key")],
    )
    assert m.resolve("jawOpen") == ("jawOpen",)  # exact wins over the loose duplicate
    assert m.resolve("jaw_open") == () and m.why_unmatched("jaw_open").startswith("ambiguous")
    assert m.resolve("browInnerUp") == ("browInnerUp_L", "browInnerUp_R")
    assert m.resolve("mouthSmileRight") == () and m.why_unmatched("mouthSmileRight") == "no shape key"
    assert m.resolve("x") == ()  # a table row pointing at no shape key is ignored


def test_arkit_names_on_the_ict_facekit_rig(shared_data):
    import numpy as np

    ict = [str(n) for n in np.load(shared_data / "ict_facekit" / "ict_expression_deltas.npz")["names"]]
    matched, unmatched = names.NameMatcher(ict).split(ARKIT_NAMES)
    assert sorted(unmatched) == ["browInnerUp", "cheekPuff", "tongueOut"]  # split per side / absent
    assert matched["eyeBlinkLeft"] == ("eyeBlink_L",) and len(matched) == 49


# -- curves and time -------------------------------------------------------------------------------
def test_read_real_openface_output(samples):
    table = curves.read_curves(samples / "OpenFace_Test.csv")
    assert table.kind == "openface" and len(table.channels) == 17
    assert len(table.timestamps) > 0 and table.timestamps == sorted(table.timestamps)
    shapes = curves.shape_curves(table)
    assert {"mouthSmileLeft", "eyeBlinkRight", "jawOpen"} <= set(shapes)
    assert all(v is None or 0.0 <= v <= 1.0 for vals in shapes.values() for v in vals)


def test_project_profiles_as_au_mappings():
    facs = curves.load_au_mapping(ROOT / "blendshapes" / "profiles" / "facs.toml")
    assert facs.weights({"AU12_r": 2.5}) == {"AU12": pytest.approx(0.5)}
    ict = curves.load_au_mapping(ROOT / "blendshapes" / "profiles" / "ict_facekit.toml")
    assert ict.weights({"AU06": 5.0}) == {"cheekRaiser_L": 1.0, "cheekRaiser_R": 1.0}
    with pytest.raises(curves.CurveFileError, match="no target"):
        curves.load_au_mapping(ROOT / "blendshapes" / "profiles" / "arkit52.toml")


def test_blendshape_csv_rules(tmp_path):
    header = "frame, face_id, timestamp, success, " + ", ".join(ARKIT_NAMES)

    def row(i: int, t: float, ok: int) -> str:
        values = ["" if n == "tongueOut" or not ok else f"{i / 10:.6f}" for n in ARKIT_NAMES]
        return f"{i}, 0, {t:.3f}, {ok}, " + ", ".join(values)

    p = tmp_path / "x.blendshapes.csv"
    p.write_text("\n".join([header, row(1, 0.0, 1), row(2, 0.033, 0), row(3, 0.067, 1)]) + "\n")
    t = curves.read_curves(p)
    assert t.kind == "blendshapes" and t.timestamps == [0.0, 0.067]
    assert "tongueOut" not in t.channels and t.channels["jawOpen"] == [0.1, 0.3]
    p.write_text(header + "\n1, 0, 0.0, 1, 0.5\n")
    with pytest.raises(curves.CurveFileError, match="line 2"):
        curves.read_curves(p)


def test_time_to_frames():
    rate = timemap.scene_rate(30000, 1001.0)
    assert rate == pytest.approx(29.97002997)
    frames, idx = timemap.bake_times([10.0, 10.01, 10.033, 10.1], 30.0, 1.0)
    assert frames == [1.0, 2.0, 4.0] and idx == [1, 2, 3]  # 10.0 and 10.01 share frame 1: the later wins
    frames, _ = timemap.bake_times([0.5], 24.0, 1.0, origin=0.0, subframes=True)
    assert frames == [13.0]
    with pytest.raises(ValueError):
        timemap.scene_rate(0)


# -- UDP -------------------------------------------------------------------------------------------
def _wait_frames(sess: session.StreamSession, n: int, timeout: float = 5.0) -> list:
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += sess.poll()
        time.sleep(0.002)
    return out


def test_session_over_udp_counts_bad_packets_and_keeps_going():
    sess = session.StreamSession(session.SessionOptions(port=0))
    sess.start()
    try:
        addr = sess.receiver.address
        rng = random.Random(7)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(200):
                tx.sendto(rng.randbytes(rng.randint(0, 300)), addr)
            tx.sendto(b"#bundle\x00" * 300, addr)  # 2,400 bytes: oversized
            for i in range(5):
                tx.sendto(native(index=i, t=i / 30, blend=(("jawOpen", i / 10),)), addr)
        frames = _wait_frames(sess, 5)
        assert [f.index for f in frames] == list(range(5))
        assert frames[-1].blend["jawOpen"] == pytest.approx(0.4)
        st = sess.stats
        assert st.packets == 206 and st.dropped_total == 201 and st.dropped[protocol.OVERSIZED] == 1
        assert st.last_frame == 4
    finally:
        sess.stop()
    assert sess.receiver is None


def test_port_in_use_is_reported():
    with UDPReceiver(port=0) as first:
        with pytest.raises(ReceiverError) as e:
            UDPReceiver(port=first.address[1]).start()
        assert e.value.port_in_use


# -- against avatar-bridge's own encoder -----------------------------------------------------------
def _outputs(recording, profile: str):
    """FrameOutputs of a real MediaPipe recording retargeted to ``profile``, as the pipeline sends them."""
    from avatar_bridge.records import FrameOutput
    from avatar_bridge.retarget import Retargeter

    rt = Retargeter(profile)
    for r in recording:
        face = r.faces[0] if r.faces else None
        yield FrameOutput(r.index, r.timestamp, weights=(rt.update(face, None, r.timestamp, r.index),))


def test_decodes_the_native_sink_bytes_of_a_real_recording(single_face_recording):
    from avatar_bridge.sinks.native import encode_frame

    dec, asm = protocol.NativeDecoder(), protocol.FrameAssembler()
    n = 0
    for out in _outputs(single_face_recording, "ict_facekit"):
        datagrams = encode_frame(out, max_datagram=400)  # small datagrams: several parts per frame
        assert len(datagrams) > 1
        frames = [f for d in reversed(datagrams) if (f := asm.add(dec.decode(d))) is not None]
        assert len(frames) == 1
        f, w = frames[0], out.weights[0]
        assert (f.index, f.timestamp, f.found) == (out.index, out.timestamp, w.face_found)
        assert sorted(f.blend) == sorted(w.names)
        assert [f.blend[k] for k in w.names] == pytest.approx(w.values.tolist(), abs=1e-6)
        assert f.head.euler == pytest.approx(w.pose.euler.tolist(), abs=1e-6)
        n += 1
    assert n == len(single_face_recording) and asm.incomplete == 0
