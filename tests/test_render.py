"""The offscreen renderer and avatar assets, on the project's default avatar and the ICT-FaceKit head."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.records import Frame, HeadPose
from avatar_bridge.render import Renderer, RenderOptions, load_avatar, load_ict, load_obj_avatar, save_avatar
from avatar_bridge.render.avatar import load_avatar_npz
from avatar_bridge.render.canonical import LIPS_INNER_LOWER, LIPS_INNER_UPPER, read_canonical_mesh
from avatar_bridge.render.fit import fit_targets, to_canonical
from avatar_bridge.render.geometry import euler_rotation
from avatar_bridge.render.gltf import load_gltf, save_glb

GREEN = np.array([0, 255, 0], np.uint8)


def pose(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0) -> HeadPose:
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = euler_rotation(pitch, yaw, roll)
    return HeadPose(m)


@pytest.fixture(scope="module")
def default_avatar():
    return load_avatar("default")


def changed(a: np.ndarray, b: np.ndarray, tol: int = 12) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > tol


def test_default_avatar_is_canonical_mesh_with_52_arkit_targets(default_avatar):
    a = default_avatar
    assert a.target_names == tuple(ARKIT_NAMES) and a.profile == "arkit52"
    assert a.deltas.shape == (52, a.num_vertices, 3) and a.num_vertices > 468
    moved = np.abs(a.deltas).max(axis=(1, 2))
    assert moved[ARKIT_NAMES.index("tongueOut")] == 0.0  # MediaPipe never scores it: never excited
    assert moved[ARKIT_NAMES.index("jawOpen")] > 0.5  # cm at weight 1
    assert int((moved > 0).sum()) == len(a.meta["excited"])
    assert a.meta["rms_model_cm"] < a.meta["rms_neutral_cm"]


def mouth_box(renderer: Renderer, weights: dict, margin: int = 12) -> tuple[slice, slice]:
    v = renderer.posed_vertices(weights, None)
    lips = list(LIPS_INNER_UPPER + LIPS_INNER_LOWER)
    p = renderer.camera.project(v)[lips]
    x0, y0 = p[:, :2].min(axis=0).astype(int) - margin
    x1, y1 = p[:, :2].max(axis=0).astype(int) + margin
    return slice(y0, y1), slice(x0, x1)


def test_jaw_open_changes_the_mouth_and_leaves_the_upper_face(default_avatar):
    r = Renderer(default_avatar)
    rest = r.render({}, None)
    open_ = r.render({"jawOpen": 1.0}, None)
    diff = changed(rest, open_)
    ys, xs = mouth_box(r, {"jawOpen": 1.0})
    assert diff[ys, xs].mean() > 0.15
    bridge_y = int(r.camera.project(r.posed_vertices({}, None))[6, 1])  # landmark 6: nose bridge
    upper = diff[:bridge_y]  # eyes, brows, forehead
    assert upper.mean() < 0.002, f"{upper.sum()} pixels above the nose bridge changed"
    assert ((rest[:bridge_y] != GREEN).any(axis=2)).sum() > 5000  # the upper face is drawn


def colored_nose(avatar):
    colors = avatar.vertex_colors().copy()
    near = np.linalg.norm(avatar.neutral - avatar.neutral[1], axis=1) < 1.2
    colors[near] = (0.0, 0.0, 1.0)
    return dataclasses.replace(avatar, colors=colors, texture=None)


def blue_centroid(image: np.ndarray) -> np.ndarray:
    blue = (image[:, :, 2] > 120) & (image[:, :, 0] < 60) & (image[:, :, 1] < 60)
    assert blue.sum() > 20
    ys, xs = np.nonzero(blue)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("mirror", [False, True])
def test_head_turns_with_the_pose(default_avatar, mirror):
    r = Renderer(colored_nose(default_avatar), RenderOptions(mirror=mirror))
    front = blue_centroid(r.render({}, pose()))
    left = blue_centroid(r.render({}, pose(yaw=0.4)))  # the subject turns to their left
    right = blue_centroid(r.render({}, pose(yaw=-0.4)))
    up = blue_centroid(r.render({}, pose(pitch=-0.3)))  # the nose (+z) rotates towards +y: looking up
    sign = -1 if mirror else 1
    assert sign * (left[0] - front[0]) > 10 and sign * (right[0] - front[0]) < -10
    assert up[1] < front[1] - 10


def test_backgrounds_and_chroma_green(tmp_path, default_avatar):
    r = Renderer(default_avatar, RenderOptions(width=320, height=240))
    img = r.render()
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert (img[0, 0] == GREEN).all() and (img[120, 160] != GREEN).any()
    assert (
        Renderer(default_avatar, RenderOptions(background="#102030")).render()[0, 0] == (16, 32, 48)
    ).all()
    picture = np.zeros((60, 80, 3), np.uint8)
    picture[:, :, 0] = 200  # BGR on disk: blue
    cv2.imwrite(str(tmp_path / "bg.png"), picture)
    img = Renderer(default_avatar, RenderOptions(background=str(tmp_path / "bg.png"))).render()
    assert (img[0, 0] == (0, 0, 200)).all()
    with pytest.raises(InputError):
        Renderer(default_avatar, RenderOptions(background=str(tmp_path / "missing.png")))
    with pytest.raises(ConfigError):
        RenderOptions(backend="vulkan")


def test_debug_view_shows_camera_image_and_landmarks(default_avatar, single_face_recording):
    face = single_face_recording[0].faces[0]
    w, h = face.image_size
    image = np.full((h, w, 3), 90, np.uint8)
    r = Renderer(default_avatar, RenderOptions(debug_view=True))
    out = r.render({}, face.pose, frame=Frame(0, 0.0, image), landmarks=face.landmarks)
    left, right = out[:, :320], out[:, 320:]
    red = (left[:, :, 0] == 255) & (left[:, :, 1] == 64)
    assert red.sum() > 300  # 478 landmarks drawn as dots
    ys, xs = np.nonzero(red)
    assert 0.2 * 320 < xs.mean() < 0.8 * 320
    assert ((left == 90).all(axis=2)).sum() > 10000  # the camera image, letterboxed
    assert ((right != GREEN).any(axis=2)).sum() > 5000  # the avatar, in the right half


def test_ict_head_renders_and_opens_its_jaw(shared_data):
    ict = load_ict(shared_data / "ict_facekit")
    assert ict.profile == "ict_facekit" and len(ict.target_names) == 57
    r = Renderer(ict)
    rest = r.render({}, pose())
    open_ = r.render({"jawOpen": 1.0}, pose())
    drawn = (rest != GREEN).any(axis=2)
    assert drawn.mean() > 0.1
    diff = changed(rest, open_)
    lip = ict.neutral[:, 1] < ict.neutral[ict.frame_vertices, 1].mean()
    assert diff.sum() > 1000 and lip.any()
    ys = np.nonzero(diff)[0]
    assert ys.min() > np.nonzero(drawn)[0].min() + 0.25 * np.ptp(np.nonzero(drawn)[0])  # lower face only


def test_gl_and_numpy_rasterisers_agree(default_avatar):
    from avatar_bridge.render.gl import gl_available

    reason = gl_available()
    if reason is not None:
        pytest.skip(f"no headless OpenGL here: {reason}")
    with Renderer(default_avatar, RenderOptions(backend="gl")) as gl:
        a = gl.render({"jawOpen": 0.7, "mouthSmileLeft": 0.5}, pose(yaw=0.3))
    b = Renderer(default_avatar).render({"jawOpen": 0.7, "mouthSmileLeft": 0.5}, pose(yaw=0.3))
    assert changed(a, b, tol=8).mean() < 0.002


def test_glb_npz_and_obj_round_trips(tmp_path, default_avatar):
    save_glb(default_avatar, tmp_path / "a.glb")
    g = load_gltf(tmp_path / "a.glb")
    assert g.target_names == default_avatar.target_names
    np.testing.assert_allclose(g.neutral, default_avatar.neutral, atol=1e-6)
    np.testing.assert_allclose(g.deltas, default_avatar.deltas, atol=1e-6)
    assert (g.faces == default_avatar.faces).all()
    n = load_avatar_npz(save_avatar(g, tmp_path / "a.npz"))
    np.testing.assert_allclose(n.deltas, g.deltas, atol=2e-3)  # float16 deltas
    # OBJ + per-target OBJs (fully posed shapes)
    v, f = default_avatar.neutral, default_avatar.faces
    (tmp_path / "face_targets").mkdir()

    def write(path, verts):
        lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts] + [
            f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f
        ]
        path.write_text("\n".join(lines) + "\n")

    write(tmp_path / "face.obj", v)
    jaw = default_avatar.deltas[ARKIT_NAMES.index("jawOpen")]
    write(tmp_path / "face_targets" / "jawOpen.obj", v + jaw)
    o = load_obj_avatar(tmp_path / "face.obj")
    assert o.target_names == ("jawOpen",)
    np.testing.assert_allclose(o.deltas[0], jaw, atol=1e-4)
    write(tmp_path / "face_targets" / "bad.obj", v[:10])
    with pytest.raises(InputError, match="vert"):
        load_obj_avatar(tmp_path / "face.obj")
    with pytest.raises(InputError):
        load_avatar(tmp_path / "nothing.glb")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError):
        load_avatar(tmp_path / "junk.npz")


def test_fit_recovers_canonical_frame_and_explains_real_frames(shared_data, single_face_recording):
    reference, _, _ = read_canonical_mesh(shared_data / "canonical_face_mesh.obj")
    face = single_face_recording[0].faces[0]
    c = to_canonical(face.landmarks, face.image_size, reference)
    err = np.linalg.norm(c - reference, axis=1)
    assert np.median(err) < 0.6  # cm: a real face is not the canonical one, but close
    fit = fit_targets({"single_face.mp4": single_face_recording}, reference)
    assert fit.rms_model_cm < 0.8 * fit.rms_neutral_cm
    assert "mouthSmileLeft" in fit.excited and "tongueOut" not in fit.excited
    idle = [i for i, n in enumerate(ARKIT_NAMES) if n not in fit.excited]
    assert np.abs(fit.deltas[idle]).max() == 0.0
