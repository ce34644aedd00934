"""Sinks: encoders byte for byte against python-osc, real UDP on 127.0.0.1 decoded by independent
implementations (python-osc's server, vmcp's VMC events, pylivelinkface), on real MediaPipe data."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import BlockingOSCUDPServer

from avatar_bridge.errors import ConfigError, SinkError
from avatar_bridge.records import EventKind, ExpressionEvent, FrameOutput
from avatar_bridge.retarget import Retargeter
from avatar_bridge.sinks import open_sink
from avatar_bridge.sinks.livelink import encode_livelink
from avatar_bridge.sinks.native import encode_frame
from avatar_bridge.sinks.osc import encode_bundle, encode_message
from avatar_bridge.sinks.vmc import encode_vmc

# ----------------------------------------------------------------------------- helpers


def retargeted(recording, profile: str, aus=None):
    """FrameOutputs of a real recording retargeted to ``profile`` (no easing: values as sent)."""
    from avatar_bridge.retarget import RetargetOptions

    rt = Retargeter(profile, RetargetOptions(regain_ease=0.0))
    outs = []
    for r in recording:
        w = rt.update(r.faces[0] if r.faces else None, None, r.timestamp, r.index)
        outs.append(FrameOutput(r.index, r.timestamp, (w,)))
    return outs


class UdpReceiver:
    """A plain UDP socket on 127.0.0.1 collecting datagrams (for byte-level checks)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.port = self.sock.getsockname()[1]

    def receive(self, n: int) -> list[bytes]:
        return [self.sock.recvfrom(65536)[0] for _ in range(n)]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver():
    r = UdpReceiver()
    yield r
    r.close()


class OscServer:
    """python-osc's BlockingOSCUDPServer in a thread, recording (address, args) in arrival order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.messages.append((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait_for(self, predicate, timeout: float = 5.0) -> None:
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end and not predicate(self.messages):
            time.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def osc_server():
    s = OscServer()
    yield s
    s.close()


# ----------------------------------------------------------------------------- OSC encoder


@pytest.mark.parametrize(
    ("address", "tags", "args"),
    [
        ("/ab/blend", "sf", ("mouthSmileLeft", 0.25)),
        ("/ab/frame", "idiii", (12, 0.4, 0, 1, 2)),
        ("/VMC/Ext/Bone/Pos", "sfffffff", ("Head", 0.0, 0.08, 0.0, 0.1, -0.2, 0.0, 0.97)),
        ("/ab/event", "ssdddfs", ("micro", "positive", 1.0, 1.1, 1.3, 0.7, "AU12:1.20")),
        ("/VMC/Ext/Blend/Apply", "", ()),
        ("/avatar/parameters/FT/v2/JawOpen", "f", (0.5,)),
    ],
)
def test_message_bytes_equal_python_osc(address, tags, args):
    builder = OscMessageBuilder(address)
    for tag, arg in zip(tags, args, strict=True):
        builder.add_arg(arg, {"s": "s", "f": "f", "d": "d", "i": "i"}[tag])
    assert encode_message(address, tags, args) == builder.build().dgram


def test_bundle_bytes_equal_python_osc():
    a = encode_message("/a", "i", (1,))
    b = encode_message("/bb", "sf", ("x", 2.0))
    builder = OscBundleBuilder(IMMEDIATELY)
    for m in (a, b):
        builder.add_content(OscPacket(m).messages[0].message)
    assert encode_bundle([a, b]) == builder.build().dgram


# ----------------------------------------------------------------------------- native stream


def _native_frames(datagrams: list[bytes]) -> list[list[tuple[str, list]]]:
    return [[(m.message.address, m.message.params) for m in OscPacket(d).messages] for d in datagrams]


def test_native_layout_and_splitting(single_face_recording):
    out = retargeted(single_face_recording, "arkit52")[40]
    aus_like = out  # the layout with AUs and an event is checked below
    event = ExpressionEvent(
        EventKind.MICRO, 0, 1.0, 1.1, 1.3, 1.35, {"AU12": 1.2, "AU06": 0.4}, confidence=0.7, label="positive"
    )
    from avatar_bridge.channels import AU_INTENSITY, AU_PRESENCE
    from avatar_bridge.records import ActionUnits

    aus = ActionUnits(
        out.index, out.timestamp, 0, np.linspace(0, 5, len(AU_INTENSITY)), np.zeros(len(AU_PRESENCE))
    )
    full = FrameOutput(out.index, out.timestamp, aus_like.weights, (aus,), (event,))
    for max_datagram in (1400, 512, 300):
        datagrams = encode_frame(full, max_datagram)
        assert all(len(d) <= max_datagram for d in datagrams)
        frames = _native_frames(datagrams)
        for part, msgs in enumerate(frames):
            assert msgs[0] == ("/ab/frame", [out.index, out.timestamp, 0, part, len(frames)])
        assert frames[-1][-1] == ("/ab/end", [out.index])
        flat = [m for msgs in frames for m in msgs if m[0] not in ("/ab/frame", "/ab/end")]
        blends = {a[0]: a[1] for addr, a in flat if addr == "/ab/blend"}
        assert list(blends) == list(out.weights[0].names)
        np.testing.assert_allclose(list(blends.values()), out.weights[0].values, atol=1e-7)
        au = [a for addr, a in flat if addr == "/ab/au"]
        assert [a[0] for a in au] == list(AU_INTENSITY)
        np.testing.assert_allclose([a[1] for a in au], aus.intensity, atol=1e-6)
        (head,) = [a for addr, a in flat if addr == "/ab/head"]
        np.testing.assert_allclose(head[:3], out.weights[0].pose.euler, atol=1e-5)
        (ev,) = [a for addr, a in flat if addr == "/ab/event"]
        assert ev[:2] == ["micro", "positive"] and ev[2:5] == [1.0, 1.1, 1.3]
        assert ev[6] == "AU12:1.20,AU06:0.40"
    assert len(encode_frame(full, 1400)) < len(encode_frame(full, 300))


def test_native_no_face_yet():
    frames = _native_frames(encode_frame(FrameOutput(3, 0.1)))
    assert frames == [[("/ab/frame", [3, 0.1, -1, 0, 1]), ("/ab/face", [0]), ("/ab/end", [3])]]


def test_native_stream_over_udp_matches_sent_values(single_face_recording, osc_server):
    outs = retargeted(single_face_recording, "arkit52")
    sink = open_sink(f"osc://127.0.0.1:{osc_server.port}")
    with sink:
        for k, out in enumerate(outs):  # paced like a live stream: the next frame once this one arrived
            sink.send(out)
            osc_server.wait_for(lambda ms, k=k: sum(a == "/ab/end" for a, _ in ms) > k)
    received: dict[int, dict[str, float]] = {}
    current = None
    for address, args in osc_server.messages:
        if address == "/ab/frame":
            current = received.setdefault(args[0], {})
        elif address == "/ab/blend":
            current[args[0]] = args[1]
    assert sorted(received) == [o.index for o in outs]
    for out in outs:
        w = out.weights[0]
        np.testing.assert_allclose([received[out.index][n] for n in w.names], w.values, atol=1e-7)
    assert sink.datagrams_sent == 2 * len(outs)  # 52 ARKit targets + head need two 1400-byte bundles


# ----------------------------------------------------------------------------- VMC


def test_vmc_decodes_with_vmcp_and_groups_end_with_apply(single_face_recording, receiver):
    from vmcp.events import (
        BlendShapeApplyEvent,
        BlendShapeEvent,
        BoneTransformEvent,
        RelativeTimeEvent,
        RootTransformEvent,
        StateEvent,
    )

    events = {
        "/VMC/Ext/Blend/Val": BlendShapeEvent,
        "/VMC/Ext/Blend/Apply": BlendShapeApplyEvent,
        "/VMC/Ext/Bone/Pos": BoneTransformEvent,
        "/VMC/Ext/Root/Pos": RootTransformEvent,
        "/VMC/Ext/OK": StateEvent,
        "/VMC/Ext/T": RelativeTimeEvent,
    }
    outs = retargeted(single_face_recording, "arkit52")[::10]
    sink = open_sink(f"vmc://127.0.0.1:{receiver.port}")
    with sink:
        for out in outs:
            sink.send(out)
    n = sink.datagrams_sent
    datagrams = receiver.receive(n)
    per_frame = n // len(outs)
    for k, out in enumerate(outs):
        decoded = []
        for d in datagrams[k * per_frame : (k + 1) * per_frame]:
            assert len(d) <= 1400
            msgs = [(m.message.address, tuple(m.message.params)) for m in OscPacket(d).messages]
            vals = [i for i, (a, _) in enumerate(msgs) if a == "/VMC/Ext/Blend/Val"]
            if vals:  # every bundle with Val messages closes its group with Apply
                assert msgs[vals[-1] + 1][0] == "/VMC/Ext/Blend/Apply"
            decoded += [events[a].from_message_data("test", a, args) for a, args in msgs]
        blends = {e.key: e.value for e in decoded if isinstance(e, BlendShapeEvent)}
        w = out.weights[0]
        assert list(blends) == list(w.names)
        np.testing.assert_allclose(list(blends.values()), w.values, atol=1e-7)
        bones = {e.joint.value: e for e in decoded if isinstance(e, BoneTransformEvent)}
        assert set(bones) == {"Head", "Neck"}
        (state,) = [e for e in decoded if isinstance(e, StateEvent)]
        assert state.model_state.value == 1
        assert any(isinstance(e, RootTransformEvent) for e in decoded)
        (t,) = [e for e in decoded if isinstance(e, RelativeTimeEvent)]
        assert t.delta == pytest.approx(out.timestamp, abs=1e-5)


def test_vmc_head_rotation_neck_times_head_is_full_rotation(single_face_recording):
    from avatar_bridge.retarget.pose import quaternion
    from avatar_bridge.sinks.vmc import unity_quaternion

    out = retargeted(single_face_recording, "vrm0")[50]
    msgs = [m.message for d in encode_vmc(out.weights[0], out.timestamp) for m in OscPacket(d).messages]
    bones = {m.params[0]: np.array(m.params[4:8]) for m in msgs if m.address == "/VMC/Ext/Bone/Pos"}

    def mul(a, b):  # quaternion product (x, y, z, w)
        ax, ay, az, aw = a
        bx, by, bz, bw = b
        return np.array(
            [
                aw * bx + ax * bw + ay * bz - az * by,
                aw * by - ax * bz + ay * bw + az * bx,
                aw * bz + ax * by - ay * bx + az * bw,
                aw * bw - ax * bx - ay * by - az * bz,
            ]
        )

    full = unity_quaternion(quaternion(out.weights[0].pose))
    np.testing.assert_allclose(np.abs(mul(bones["Neck"], bones["Head"])), np.abs(full), atol=1e-5)
    assert not np.allclose(bones["Head"], [0, 0, 0, 1])


def _qmul(a, b):  # quaternion product (x, y, z, w)
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def _rotate(q, v):  # rotate vector v by unit quaternion q (x, y, z, w)
    p = _qmul(_qmul(q, [*v, 0.0]), [-q[0], -q[1], -q[2], q[3]])
    return p[:3]


def _nose_offset(face) -> float:
    """Nose tip left (<0) or right (>0) of the cheeks' midpoint in the image, in face widths."""
    lm = face.landmarks_px
    return float((lm[1, 0] - 0.5 * (lm[234, 0] + lm[454, 0])) / abs(lm[454, 0] - lm[234, 0]))


def _head_turns(recording, n: int = 3):
    """The real frames where the subject's head is turned furthest each way (MediaPipe's yaw)."""
    faces = sorted((r.faces[0] for r in recording if r.faces), key=lambda f: float(f.pose.euler[1]))
    return faces[:n] + faces[-n:]


def test_vmc_head_turn_reaches_the_avatar_with_the_receivers_sign(wolfgang_recording):
    """A real head turn arrives as the same turn of the avatar, read the way VMC receivers read it:
    Unity (VRM faces +z, its own left is -x) and VMC4B's Unity -> Blender conversion (the avatar
    faces -y, its own left is +x). The subject's left is the image's right (the camera does not
    mirror), so a nose right of the cheeks is a turn to the subject's own left."""
    from avatar_bridge.records import RigWeights

    turns = _head_turns(wolfgang_recording)
    signs = set()
    for face in turns:
        nose = _nose_offset(face)
        assert abs(nose) > 0.03  # a visible turn, not noise
        w = RigWeights(0, 0.0, 0, ("A",), np.zeros(1, np.float32), face.pose)
        msgs = [m.message for d in encode_vmc(w, 0.0) for m in OscPacket(d).messages]
        bones = {m.params[0]: np.array(m.params[4:8]) for m in msgs if m.address == "/VMC/Ext/Bone/Pos"}
        q = _qmul(bones["Neck"], bones["Head"])
        forward_unity = _rotate(q, [0.0, 0.0, 1.0])
        assert np.sign(forward_unity[0]) == -np.sign(nose)  # own left = Unity -x
        x, y, z, qw = q  # VMC4B core/utility.py: Blender quaternion (w, x, z, -y)
        forward_blender = _rotate(np.array([x, z, -y, qw]), [0.0, -1.0, 0.0])
        assert np.sign(forward_blender[0]) == np.sign(nose)  # own left = Blender +x
        assert abs(forward_blender[2]) < 0.5  # a turn, not a nod
        signs.add(np.sign(nose))
    assert signs == {-1.0, 1.0}  # both directions were exercised


# ----------------------------------------------------------------------------- VRChat


def test_vrchat_addresses_and_float_types(single_face_recording, receiver):
    from avatar_bridge.retarget import load_profile

    outs = retargeted(single_face_recording, "vrcft_unified")
    sink = open_sink(f"vrchat://127.0.0.1:{receiver.port}?min_delta=0&refresh=100")
    with sink:
        sink.send(outs[30])
    names = load_profile("vrcft_unified").target_names
    datagrams = receiver.receive(len(names))
    got = {}
    for d in datagrams:
        assert d.split(b"\x00", 1)[0].startswith(b"/avatar/parameters/FT/v2/")
        msg = OscPacket(d).messages[0].message
        assert msg.dgram[msg.dgram.index(b",") : msg.dgram.index(b",") + 2] == b",f"  # one float32
        got[msg.address.removeprefix("/avatar/parameters/FT/v2/")] = msg.params[0]
    assert list(got) == list(names)
    np.testing.assert_allclose(list(got.values()), outs[30].weights[0].values, atol=1e-7)
    assert {"JawOpen", "EyeClosedLeft", "MouthCornerPullLeft", "BrowInnerUpLeft"} <= set(got)


def test_vrchat_sends_only_changes_then_refreshes(single_face_recording):
    from avatar_bridge.sinks.base import SinkURL
    from avatar_bridge.sinks.vrchat import VrchatSink

    outs = retargeted(single_face_recording, "vrcft_unified")
    sink = VrchatSink(SinkURL.parse("vrchat://?min_delta=0.01&refresh=1.0"))
    first = sink.encode(outs[10])
    again = sink.encode(FrameOutput(11, outs[10].timestamp + 0.01, outs[10].weights))
    later = sink.encode(FrameOutput(12, outs[10].timestamp + 1.5, outs[10].weights))
    assert len(first) == len(outs[10].weights[0].names)
    assert again == []  # nothing changed
    assert len(later) == len(first)  # periodic refresh


# ----------------------------------------------------------------------------- Live Link Face


def test_livelink_packet_decodes_with_pylivelinkface(single_face_recording, receiver):
    from pylivelinkface import FaceBlendShape, PyLiveLinkFace

    outs = retargeted(single_face_recording, "arkit52")
    sink = open_sink(f"livelink://127.0.0.1:{receiver.port}?subject=test-face&fps=30")
    with sink:
        sink.send(outs[45])
    (packet,) = receiver.receive(1)
    ok, face = PyLiveLinkFace.decode(packet)
    assert ok
    assert face.name == "test-face" and face._version == 6 and face.fps == 30
    w = outs[45].weights[0]
    for i, name in enumerate(w.names):
        assert face.get_blendshape(FaceBlendShape(i)) == pytest.approx(float(w.values[i]), abs=1e-7), name
    pitch, yaw, roll = w.pose.euler  # Epic's normalisation: degrees / 180 = radians / pi
    assert face.get_blendshape(FaceBlendShape.HeadYaw) == pytest.approx(float(yaw) / np.pi, abs=1e-6)
    assert face.get_blendshape(FaceBlendShape.HeadPitch) == pytest.approx(float(pitch) / np.pi, abs=1e-6)
    assert face.get_blendshape(FaceBlendShape.HeadRoll) == pytest.approx(float(roll) / np.pi, abs=1e-6)
    assert face._frames == int(outs[45].timestamp * 30)


@pytest.mark.parametrize(
    ("angles", "scale"), [("normalized", 1 / np.pi), ("radians", 1.0), ("degrees", 180 / np.pi)]
)
def test_livelink_head_angles_units_and_sign_on_real_head_turns(wolfgang_recording, receiver, angles, scale):
    """HeadYaw > 0 when the subject turns to their own left (nose right of the cheeks in the
    unmirrored image), in the unit asked for; normalised values stay within -1..1."""
    from pylivelinkface import FaceBlendShape, PyLiveLinkFace

    from avatar_bridge.records import RigWeights

    names = load_arkit_names()
    sink = open_sink(f"livelink://127.0.0.1:{receiver.port}?angles={angles}")
    turns = _head_turns(wolfgang_recording)
    with sink:
        for face in turns:
            w = RigWeights(0, 0.0, 0, names, np.zeros(len(names), np.float32), face.pose)
            sink.send(FrameOutput(0, 0.0, (w,)))
    for face, packet in zip(turns, receiver.receive(len(turns)), strict=True):
        ok, decoded = PyLiveLinkFace.decode(packet)
        assert ok
        head_yaw = decoded.get_blendshape(FaceBlendShape.HeadYaw)
        assert head_yaw == pytest.approx(float(face.pose.euler[1]) * scale, rel=1e-5, abs=1e-6)
        assert np.sign(head_yaw) == np.sign(_nose_offset(face))
        if angles == "normalized":
            assert -1.0 <= head_yaw <= 1.0


def load_arkit_names() -> tuple[str, ...]:
    from avatar_bridge.channels import ARKIT_NAMES

    return tuple(ARKIT_NAMES)


def test_livelink_rejects_bad_device_id(single_face_recording):
    out = retargeted(single_face_recording, "arkit52")[0]
    with pytest.raises(ConfigError, match="UUID"):
        encode_livelink(out.weights[0], 0, 0.0, 60, device_id="short")


# ----------------------------------------------------------------------------- URLs and transport


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nope://127.0.0.1:1", "unknown sink scheme"),
        ("osc:/127.0.0.1", "malformed sink URL"),
        ("osc://127.0.0.1:99999", "(?i)port out of range"),
        ("osc://127.0.0.1:0", "port must be 1-65535"),
        ("osc://127.0.0.1:abc", "malformed sink URL"),
        ("osc://127.0.0.1:9100?colour=red", "unknown parameter"),
        ("osc://127.0.0.1:9100?max_datagram=10", "max_datagram"),
        ("vmc://127.0.0.1:9100?neck_share=2", "neck_share"),
        ("osc://127.0.0.1:9100/some/path", "takes no path"),
        ("osc://127.0.0.1:9100?bind=x", "bind"),
        ("livelink://127.0.0.1:11111?angles=grads", "angles must be one of normalized, radians, degrees"),
    ],
)
def test_bad_sink_urls(url, message):
    with pytest.raises(ConfigError, match=message):
        open_sink(url)


def test_open_errors_port_in_use_not_permitted_unresolvable():
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        port = busy.getsockname()[1]
        with pytest.raises(SinkError, match="in use"):
            open_sink(f"osc://127.0.0.1:9100?bind=127.0.0.1:{port}").open()
    finally:
        busy.close()
    with pytest.raises(SinkError, match="not permitted"):
        open_sink("osc://255.255.255.255:9100").open()
    with pytest.raises(SinkError, match="cannot resolve"):
        open_sink("osc://no-such-host.invalid:9100").open()


def test_receiver_that_goes_away_never_raises(single_face_recording):
    outs = retargeted(single_face_recording, "arkit52")[:20]
    r = UdpReceiver()
    sink = open_sink(f"osc://127.0.0.1:{r.port}")
    with sink:
        sink.send(outs[0])
        r.receive(2)
        r.close()  # the receiver goes away: the kernel answers with ICMP port unreachable
        for out in outs[1:]:
            sink.send(out)
    assert sink.datagrams_sent + sink.refused == 2 * len(outs)


def test_lazy_entry_failure_is_one_clear_error():
    from avatar_bridge.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="not available"):
        open_sink("x://", registry={"x": "avatar_bridge.sinks.no_such_module:Sink"})
